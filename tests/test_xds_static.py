"""The snapshot file source and `nomadmesh xds serve`: served as given, validated, hot-reloaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from nomadmesh.errors import XdsError
from nomadmesh.mesh.bootstrap import BootstrapParams, render_bootstrap
from nomadmesh.testing.envoy import EnvoyProcess, HttpBackend, eventually, free_port
from nomadmesh.xds import ControlPlane
from nomadmesh.xds.resources import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE
from nomadmesh.xds.sources.static import load_snapshot_file

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."


def design_snapshot(backend_port: int, egress_port: int = 3101) -> dict[str, Any]:
    """The original design's snapshot: listener `egress`, route `egress_route`, one cluster."""
    return {
        "version_info": "1",
        "node": {"service_name": "edge-router"},
        "resources": [
            {
                "@type": LISTENER_TYPE,
                "name": "egress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": egress_port}},
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "envoy.filters.network.http_connection_manager",
                                "typed_config": {
                                    "@type": HCM + "HttpConnectionManager",
                                    "stat_prefix": "egress",
                                    "rds": {
                                        "route_config_name": "egress_route",
                                        "config_source": {"ads": {}, "resource_api_version": "V3"},
                                    },
                                    "http_filters": [
                                        {
                                            "name": "envoy.filters.http.router",
                                            "typed_config": {
                                                "@type": "type.googleapis.com/"
                                                "envoy.extensions.filters.http.router.v3.Router"
                                            },
                                        }
                                    ],
                                },
                            }
                        ]
                    }
                ],
            },
            {
                "@type": ROUTE_TYPE,
                "name": "egress_route",
                "virtual_hosts": [
                    {
                        "name": "egress",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/hi_a"}, "route": {"cluster": "service-a"}}],
                    }
                ],
            },
            {
                "@type": CLUSTER_TYPE,
                "name": "service-a",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "service-a",
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {
                                                "address": "127.0.0.1",
                                                "port_value": backend_port,
                                            }
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            },
        ],
    }


def write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document) if path.suffix == ".yaml" else json.dumps(document))
    return path


def test_a_file_in_the_original_design_shape_loads_as_given(tmp_path: Path) -> None:
    snapshots = load_snapshot_file(write(tmp_path / "s.yaml", design_snapshot(8080)))
    snapshot = snapshots["edge-router"]
    assert snapshot.version == "1"
    assert list(snapshot.of_type(LISTENER_TYPE)) == ["egress"]
    assert list(snapshot.of_type(CLUSTER_TYPE)) == ["service-a"]


def test_a_bad_field_names_the_file_and_the_resource(tmp_path: Path) -> None:
    document = design_snapshot(8080)
    document["resources"][0]["adress"] = {}
    path = write(tmp_path / "s.json", document)
    with pytest.raises(XdsError, match=r"s\.json, resource 0 \(Listener 'egress'\): .*adress"):
        load_snapshot_file(path)


def test_a_route_to_a_missing_cluster_is_refused(tmp_path: Path) -> None:
    document = design_snapshot(8080)
    del document["resources"][2]
    with pytest.raises(XdsError, match="routes to cluster 'service-a', which does not exist"):
        load_snapshot_file(write(tmp_path / "s.yaml", document))


def test_an_unknown_resource_type_is_refused(tmp_path: Path) -> None:
    document = design_snapshot(8080)
    document["resources"][0]["@type"] = "type.googleapis.com/envoy.config.listener.v3.Nope"
    with pytest.raises(XdsError, match="resource 0: @type"):
        load_snapshot_file(write(tmp_path / "s.yaml", document))


@pytest.mark.parametrize(("edit", "error"), [
    (lambda r: r.__setitem__("\ud800", 1), r"resource 0: the key \\ud800 holds an unpaired"),
    (lambda r: r["address"]["socket_address"].__setitem__("address", "a\udc00"),
     r"resource 0: the value of address\.socket_address\.address holds an unpaired"),
    (lambda r: r["filter_chains"][0]["filters"][0].__setitem__("x\ud800", {}),
     r"the key filter_chains\[0\]\.filters\[0\]\.x\\ud800 holds"),
])
def test_a_lone_surrogate_in_a_key_or_string_names_its_path(
        tmp_path: Path, edit: Any, error: str) -> None:
    # Fuzz finding: json_format raised SystemError for an unknown key holding "\ud800".
    document = design_snapshot(8080)
    edit(document["resources"][0])
    with pytest.raises(XdsError, match=error):
        load_snapshot_file(write(tmp_path / "s.json", document))


@pytest.mark.parametrize("text", ["[" * 5000, "a: " + "{" * 201 + "}" * 201])
def test_brackets_nested_past_any_resource_are_refused_before_yaml_reads_them(
        tmp_path: Path, text: str) -> None:
    # PyYAML's scanner is quadratic in flow depth: 5,000 brackets took seconds of CPU.
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(XdsError, match=r"s\.yaml: brackets nested more than 200 levels deep"):
        load_snapshot_file(path)


def test_an_integer_longer_than_python_reads_names_its_line(tmp_path: Path) -> None:
    # Fuzz finding: yaml's int() raised ValueError for a 4,301-digit integer.
    path = tmp_path / "s.yaml"
    path.write_text("version_info: 1\nresources: []\nservice_name: " + "7" * 4301 + "\n")
    with pytest.raises(XdsError, match=r"s\.yaml, line 3: an integer has more than 4,300 digits"):
        load_snapshot_file(path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ControlPlane, Path]]:
    path = write(tmp_path / "s.yaml", design_snapshot(8080))
    with ControlPlane(listen="127.0.0.1:0", snapshot_file=path) as plane:
        yield plane, path


def test_an_edited_file_is_reloaded(served: tuple[ControlPlane, Path]) -> None:
    plane, path = served
    document = design_snapshot(8081)
    document["version_info"] = "2"
    write(path, document)
    eventually(
        lambda: plane.cache.get("edge-router").version == "2",  # type: ignore[union-attr]
        what="the reload",
    )


def test_a_broken_edit_keeps_the_last_good_snapshot(served: tuple[ControlPlane, Path]) -> None:
    plane, path = served
    before = plane.cache.get("edge-router")
    path.write_text("resources: [")
    eventually(lambda: not plane.healthy(), what="the refusal")
    assert plane.cache.get("edge-router") is before
    assert plane.metrics.snapshot_errors._value.get() == 1


@pytest.mark.envoy
def test_envoy_serves_the_snapshot_file_routes(tmp_path: Path) -> None:
    with HttpBackend("a1") as backend:
        egress = free_port()
        path = write(tmp_path / "s.yaml", design_snapshot(backend.port, egress))
        with ControlPlane(listen="127.0.0.1:0", snapshot_file=path) as plane:
            params = BootstrapParams(
                node_id="e1",
                cluster="edge-router",
                xds_host="127.0.0.1",
                xds_port=plane.port,
                admin_port=0,
                metrics_port=free_port(),
            )
            with EnvoyProcess(render_bootstrap(params)) as envoy:
                # The file's own listener address is served as given (no egress metadata).
                def answer() -> str:
                    try:
                        return requests.get(f"http://127.0.0.1:{egress}/hi_a", timeout=2).text
                    except requests.RequestException:
                        return ""

                envoy.wait_for(lambda: answer() == "a1 /hi_a", what="traffic via the file")


def test_the_original_designs_literal_shape_with_a_top_level_service_name_loads(
        tmp_path: Path) -> None:
    document = design_snapshot(8080)
    document["service_name"] = document.pop("node")["service_name"]
    snapshots = load_snapshot_file(write(tmp_path / "s.yaml", document))
    assert list(snapshots) == ["edge-router"]
    assert snapshots["edge-router"].version == "1"


def test_service_names_that_disagree_are_refused(tmp_path: Path) -> None:
    document = design_snapshot(8080)
    document["service_name"] = "other"
    with pytest.raises(XdsError, match=r"service_name 'other' and node\.service_name"):
        load_snapshot_file(write(tmp_path / "s.yaml", document))


@pytest.mark.parametrize("broken", [b"version_info: \xff\xfe\n", b"[" * 5000])
def test_a_non_utf8_or_deeply_nested_edit_is_reported_and_later_good_edits_apply(
        served: tuple[ControlPlane, Path], broken: bytes) -> None:
    plane, path = served
    before = plane.cache.get("edge-router")
    path.write_bytes(broken)
    eventually(lambda: not plane.healthy(), what="the refusal")
    (problem,) = plane.health().problems
    assert "refused, serving the last good one" in problem
    assert plane.cache.get("edge-router") is before
    document = design_snapshot(8082)
    document["version_info"] = "3"
    write(path, document)
    eventually(lambda: plane.cache.get("edge-router").version == "3",  # type: ignore[union-attr]
               what="a later good edit")
    assert plane.healthy()
