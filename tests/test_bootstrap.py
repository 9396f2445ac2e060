"""The sidecar's Envoy bootstrap: its shape, placeholders kept verbatim, real Envoy runs it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from nomadmesh.mesh.bootstrap import (
    XDS_CLUSTER,
    BootstrapParams,
    XdsTls,
    render_bootstrap,
)
from nomadmesh.testing.envoy import EnvoyProcess, free_port, validate_bootstrap
from nomadmesh.xds import ControlPlane, Snapshot


def _params(**overrides: object) -> BootstrapParams:
    values: dict[str, object] = {
        "node_id": "alloc-1",
        "cluster": "service-a",
        "xds_host": "127.0.0.1",
        "xds_port": 18000,
        "admin_port": 0,
    }
    values.update(overrides)
    return BootstrapParams(**values)  # type: ignore[arg-type]


def test_node_id_and_cluster_come_from_params() -> None:
    node = render_bootstrap(_params())["node"]
    assert (node["id"], node["cluster"]) == ("alloc-1", "service-a")


def test_node_metadata_carries_egress_binding_and_user_keys() -> None:
    params = _params(egress_address="10.0.0.5", egress_port=4000, node_metadata={"team": "x"})
    metadata = render_bootstrap(params)["node"]["metadata"]
    assert metadata == {"team": "x", "egress_address": "10.0.0.5", "egress_port": 4000}


def test_ads_is_grpc_v3_to_the_xds_cluster() -> None:
    dynamic = render_bootstrap(_params())["dynamic_resources"]
    ads = dynamic["ads_config"]
    assert ads["api_type"] == "GRPC"
    assert ads["transport_api_version"] == "V3"
    assert ads["grpc_services"] == [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}]
    assert dynamic["cds_config"] == {"ads": {}, "resource_api_version": "V3"}
    assert dynamic["lds_config"] == {"ads": {}, "resource_api_version": "V3"}


def test_xds_cluster_speaks_http2_through_protocol_options() -> None:
    clusters = render_bootstrap(_params())["static_resources"]["clusters"]
    xds = next(c for c in clusters if c["name"] == XDS_CLUSTER)
    options = xds["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["explicit_http_config"] == {"http2_protocol_options": {}}
    assert "http2_protocol_options" not in xds


def test_xds_cluster_is_static_for_an_ip_and_dns_for_a_name() -> None:
    def xds_type(host: str) -> str:
        clusters = render_bootstrap(_params(xds_host=host))["static_resources"]["clusters"]
        return str(next(c["type"] for c in clusters if c["name"] == XDS_CLUSTER))

    assert (xds_type("127.0.0.1"), xds_type("xds.service.consul")) == ("STATIC", "STRICT_DNS")


def test_admin_listens_on_loopback_by_default() -> None:
    admin = render_bootstrap(_params(admin_port=19000))["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": 19000}


def test_placeholder_strings_are_copied_verbatim() -> None:
    placeholders = {
        "node_id": "@@ALLOC_ID@@",
        "xds_host": "@@XDS_HOST@@",
        "xds_port": "@@XDS_PORT@@",
        "admin_port": "@@ADMIN_PORT@@",
        "metrics_port": "@@METRICS_PORT@@",
        "egress_port": "@@EGRESS_PORT@@",
    }
    text = repr(render_bootstrap(_params(**placeholders)))
    for value in placeholders.values():
        assert repr(value) in text


_TLS_MODES = ("plain", "tls", "mtls")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    client = ca.issue_cert("sidecar.nomadmesh")
    client.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    client.private_key_pem.write_to_path(str(directory / "key.pem"))
    return {name: str(directory / f"{name}.pem") for name in ("ca", "cert", "key")}


def _tls(mode: str, files: dict[str, str]) -> XdsTls | None:
    if mode == "plain":
        return None
    if mode == "tls":
        return XdsTls(ca_file=files["ca"], server_name="xds.nomadmesh")
    return XdsTls(ca_file=files["ca"], cert_file=files["cert"], key_file=files["key"])


@pytest.mark.envoy
def test_every_combination_passes_envoy_validate(tls_files: dict[str, str]) -> None:
    hosts = ("127.0.0.1", "xds.service.consul")
    port_kinds = (int, str)
    failures = []
    for host, kind, mode in itertools.product(hosts, port_kinds, _TLS_MODES):
        params = _params(
            xds_host=host,
            xds_port=kind(18000),
            metrics_port=kind(9102),
            egress_port=kind(3101),
            admin_port=kind(19000),
            xds_tls=_tls(mode, tls_files),
        )
        result = validate_bootstrap(render_bootstrap(params))
        if result.returncode != 0:
            failures.append((host, kind.__name__, mode, result.stdout + result.stderr))
    assert failures == []


@pytest.fixture
def empty_control_plane() -> ControlPlane:
    with ControlPlane(listen="127.0.0.1:0") as plane:
        yield plane


def started(plane: ControlPlane, bootstrap: dict[str, Any]) -> EnvoyProcess:
    """An Envoy for `bootstrap`, with an empty snapshot waiting for it (Envoy is ready after xDS)."""
    envoy = EnvoyProcess(bootstrap)
    plane.cache.set_snapshot(envoy.node_hash, Snapshot.empty())
    return envoy


@pytest.mark.envoy
def test_envoy_comes_up_ready_and_connected(empty_control_plane: ControlPlane) -> None:
    params = _params(xds_port=empty_control_plane.port, metrics_port=free_port())
    with started(empty_control_plane, render_bootstrap(params)) as envoy:
        envoy.wait_for(envoy.is_ready, what="/ready")
        envoy.wait_for(lambda: envoy.stat("control_plane.connected_state") == "1",
                       what="connected control plane")


@pytest.mark.envoy
def test_metrics_listener_serves_only_prometheus_stats(empty_control_plane: ControlPlane) -> None:
    metrics_port = free_port()
    params = _params(
        xds_port=empty_control_plane.port, metrics_port=metrics_port, admin_port=free_port()
    )
    with started(empty_control_plane, render_bootstrap(params)) as envoy:
        envoy.wait_for(envoy.is_ready, what="/ready")
        base = f"http://127.0.0.1:{metrics_port}"
        prometheus = requests.get(base + "/stats/prometheus", timeout=5)
        assert prometheus.status_code == 200
        assert "envoy_server_live" in prometheus.text
        assert requests.get(base + "/config_dump", timeout=5).status_code == 404


def test_tls_file_paths_appear_in_the_transport_socket(tmp_path: Path) -> None:
    tls = XdsTls(ca_file=str(tmp_path / "ca"), cert_file="c.pem", key_file="k.pem")
    clusters = render_bootstrap(_params(xds_tls=tls))["static_resources"]["clusters"]
    xds = next(c for c in clusters if c["name"] == XDS_CLUSTER)
    common = xds["transport_socket"]["typed_config"]["common_tls_context"]
    assert common["validation_context"]["trusted_ca"] == {"filename": str(tmp_path / "ca")}
    assert common["tls_certificates"][0]["certificate_chain"] == {"filename": "c.pem"}
