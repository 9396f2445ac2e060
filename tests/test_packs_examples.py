"""The example packs in examples/packs: each renders valid, sensible jobs from its variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nomadmesh.deploy import NomadClient
from nomadmesh.errors import ValidationError
from nomadmesh.mesh import Mesh, has_sidecar, inject
from nomadmesh.model import Job
from nomadmesh.packs import Pack, find_pack, list_packs
from nomadmesh.packs.deploy import run_pack

PACKS = Path(__file__).parent.parent / "examples" / "packs"


def example(name: str) -> Pack[Any]:
    """An example pack by directory name, or a pack installed with nomadmesh by pack name."""
    return find_pack(str(PACKS / name) if (PACKS / name).is_dir() else name).pack


def render(name: str, deployment: str | None = None, **values: Any) -> list[Job]:
    p = example(name)
    return p.render(p.resolve(values=values, env={}), deployment=deployment)


def test_every_example_pack_is_listed_with_a_description() -> None:
    found = {f.pack.name: f.pack.description for f in list_packs(search_path=[PACKS])}
    # the example directories and the pack installed with nomadmesh itself
    assert set(found) == {"batch-report", "mesh-control-plane", "redis-cache", "web-service"}
    assert all(found.values())


def test_every_example_variable_is_documented() -> None:
    for directory in ("batch_report", "mesh-control-plane", "redis_cache", "web_service"):
        assert all(v.description for v in example(directory).describe()), directory


def test_the_web_service_renders_itself_and_its_redis_under_the_deployment() -> None:
    assert [j.id for j in render("web_service", "shop", image="web:1")] == ["shop", "shop-redis"]


def test_the_web_service_needs_an_image() -> None:
    with pytest.raises(ValidationError) as exc:
        render("web_service")
    assert [p.path for p in exc.value.problems] == ["image"]


def test_web_service_upstreams_become_the_mesh_group_meta() -> None:
    [web, _] = render("web_service", image="web:1",
                      upstreams={"service-b": "/hi_b", "service-a": "/hi_a"})
    assert web.groups[0].meta["nomadmesh.upstreams"] == "service-a=/hi_a,service-b=/hi_b"


def test_a_web_service_upstream_prefix_must_be_a_path() -> None:
    with pytest.raises(ValidationError) as exc:
        render("web_service", image="web:1", upstreams='{"service-a": "hi_a"}')
    assert exc.value.problems[0].path == "upstreams"
    assert "must start with '/'" in exc.value.problems[0].message


def test_injection_meshes_the_web_service_but_not_its_redis() -> None:
    web, redis = (inject(j) for j in render("web_service", image="web:1",
                                            upstreams={"service-a": "/hi_a"}))
    assert has_sidecar(web.groups[0]) and not has_sidecar(redis.groups[0])


def test_the_redis_dependency_takes_its_nested_variables() -> None:
    [web, redis] = render("web_service", "shop", image="web:1", **{"redis.port": "6390"})
    assert list(redis.groups[0].tasks[0].config["args"]) == ["--port", "6390"]
    assert 'service "shop-redis"' in (web.groups[0].tasks[0].templates[0].data or "")


def test_web_service_canaries_set_the_update_strategy() -> None:
    [web, _] = render("web_service", image="web:1", canaries="1")
    update = web.groups[0].update
    assert update is not None and (update.canary, update.auto_promote) == (1, False)


def test_redis_with_a_volume_persists_to_it() -> None:
    [redis] = render("redis_cache", volume="redis-data")
    [volume] = redis.groups[0].volumes.values()  # Nomad's map of volumes, keyed by name
    assert volume.source == "redis-data"
    assert "--appendonly" in redis.groups[0].tasks[0].config["args"]


def test_the_control_plane_registers_the_service_the_mesh_looks_up() -> None:
    [xds] = render("mesh-control-plane")
    assert xds.groups[0].services[0].name == Mesh().control_plane


def test_the_control_plane_is_never_meshed_itself() -> None:
    [xds] = render("mesh-control-plane")
    assert not has_sidecar(inject(xds).groups[0])


def test_the_control_plane_runs_in_its_image_with_the_chosen_log_level() -> None:
    [xds] = render("mesh-control-plane", log_level="debug")
    task = xds.groups[0].tasks[0]
    assert (task.driver, task.config["image"]) == ("docker", "ghcr.io/nomadmesh/nomadmesh:0.1.0")
    assert list(task.config["args"])[-2:] == ["--log-level", "debug"]


def test_without_an_image_the_control_plane_runs_the_nodes_nomadmesh() -> None:
    [xds] = render("mesh-control-plane", image="")
    task = xds.groups[0].tasks[0]
    assert (task.driver, task.config["command"]) == ("raw_exec", "nomadmesh")


def test_the_control_plane_log_level_is_one_of_the_choices() -> None:
    with pytest.raises(ValidationError) as exc:
        render("mesh-control-plane", log_level="loud")
    assert exc.value.problems[0].path == "log_level"


def test_the_batch_report_is_periodic_without_overlap() -> None:
    [report] = render("batch_report", crons="0 1 * * *, 30 13 * * 1-5")
    assert report.type == "batch" and report.periodic is not None
    assert (report.periodic.crons, report.periodic.prohibit_overlap) == (
        ("0 1 * * *", "30 13 * * 1-5"), True)


def test_a_malformed_batch_schedule_is_reported_at_crons() -> None:
    with pytest.raises(ValidationError) as exc:
        render("batch_report", crons="every night")
    assert exc.value.problems[0].path == "crons"


def test_batch_report_environment_comes_from_a_var_file(tmp_path: Path) -> None:
    vars_file = tmp_path / "report.yaml"
    vars_file.write_text("env:\n  REPORT: weekly\nretries: 0\n")
    p = example("batch_report")
    [report] = p.render(p.resolve(var_files=[vars_file], env={}))
    assert report.groups[0].tasks[0].env["REPORT"] == "weekly"


@pytest.fixture
def client(nomad_url: str) -> Iterator[NomadClient]:
    with NomadClient(nomad_url) as c:
        yield c


def test_the_injected_web_service_and_its_redis_become_healthy(client: NomadClient) -> None:
    jobs = [inject(j) for j in render("web_service", "shop", image="web:1",
                                      upstreams={"service-a": "/hi_a"})]
    result = run_pack(client, jobs, timeout=30)
    assert [(r.job_id, r.status) for r in result.results] == [
        ("shop", "healthy"), ("shop-redis", "healthy")]
