"""Sidecar injection: what a meshed group gets, when a group is meshed, and every conflict."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import nomadmesh
from nomadmesh.contract import Policy, Retries
from nomadmesh.errors import MeshError
from nomadmesh.mesh import GroupMesh, Mesh, Sidecar, Upstream, inject, is_meshed, sidecar_task
from nomadmesh.model import (
    Check,
    Group,
    Job,
    Lifecycle,
    LogConfig,
    Network,
    Port,
    Resources,
    Service,
    Task,
)
from nomadmesh.model._base import SECOND

JOBS = Path(__file__).parent.parent / "examples" / "jobs"


def group(name: str = "api", *, mode: str | None = "bridge", count: int = 1,
          meta: dict[str, str] | None = None, env: dict[str, str] | None = None,
          ports: tuple[Port, ...] = (Port("http", to=8080),), driver: str = "docker") -> Group:
    """A group with one app task and its service, as a user writes it."""
    return Group(
        name,
        count=count,
        networks=[Network(mode=mode, ports=ports)] if mode is not None else [],
        services=[Service(name=name, port="http")],
        meta=meta,
        tasks=[Task(f"{name}-app", driver=driver, config={"image": f"{name}:1"}, env=env)],
    )


def job(*groups: Group) -> Job:
    return Job("web", datacenters=["dc1"], groups=groups or [group()])


def only_group(j: Job) -> Group:
    (g,) = j.groups
    return g


def problem_paths(exc: pytest.ExceptionInfo[MeshError]) -> list[str]:
    return [p.path for p in exc.value.problems]


# --- the original design's scenario ----------------------------------------------------------------


def test_original_design_service_b_calls_service_a_through_its_egress_listener() -> None:
    mesh = Mesh(groups={"service-b": GroupMesh(upstreams=[Upstream("service-a", prefix="/hi_a")])})
    service_a = job(group("service-a", count=2))
    service_b = job(group("service-b"))

    a, b = inject(service_a, mesh), inject(service_b, mesh)

    a_group, b_group = only_group(a), only_group(b)
    assert a_group.count == 2
    assert [t.name for t in a_group.tasks] == ["service-a-app", "service-a-sidecar"]
    sidecar = b_group.task("service-b-sidecar")
    assert sidecar is not None
    assert sidecar.driver == "docker"
    assert sidecar.config["image"] == "docker.io/envoyproxy/envoy:v1.40.0"
    assert sidecar.lifecycle == Lifecycle(hook="prestart", sidecar=True)
    assert [p.label for p in b_group.ports] == ["http", "envoy_metrics", "inbound"]
    app = b_group.task("service-b-app")
    assert app is not None
    assert dict(app.env) == {"EGRESS_HOST": "127.0.0.1", "EGRESS_PORT": "3101",
                             "SERVICE_A_URL": "http://127.0.0.1:3101/hi_a"}
    assert b_group.services[0].meta == {"nomadmesh-upstreams": "service-a=/hi_a"}
    assert "nomadmesh-upstreams" not in a_group.services[0].meta


# --- what a meshed group gets ----------------------------------------------------------------------


def test_sidecar_defaults_match_nomads_connect_proxy() -> None:
    sidecar = sidecar_task(only_group(inject(job())))
    assert sidecar is not None
    assert sidecar.resources == Resources(cpu=250, memory=128)
    assert sidecar.logs == LogConfig(max_files=2, max_file_size=2)
    assert sidecar.shutdown_delay == 5 * SECOND
    assert sidecar.config["args"] == ("-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json", "-l",
                                      "info", "--concurrency", "1", "--disable-hot-restart")


def test_sidecar_is_named_after_the_service() -> None:
    injected = inject(job(group("orders")))
    assert sidecar_task(only_group(injected)) == only_group(injected).task("orders-sidecar")


def test_bootstrap_template_names_the_node_after_alloc_and_service() -> None:
    sidecar = sidecar_task(only_group(inject(job())))
    assert sidecar is not None
    bootstrap = sidecar.templates[-1]
    assert bootstrap.destination == "secrets/envoy_bootstrap.json"
    assert bootstrap.change_mode == "restart"
    assert '"id": "{{ env "NOMAD_ALLOC_ID" }}"' in (bootstrap.data or "")
    assert '"cluster": "api"' in (bootstrap.data or "")


def test_consul_control_plane_resolves_every_instance_in_the_template() -> None:
    sidecar = sidecar_task(only_group(inject(job(), Mesh(control_plane="my-xds"))))
    assert sidecar is not None
    xds_env, instances, bootstrap = sidecar.templates
    assert '{{ range $i, $s := service "my-xds" }}' in (instances.data or "")
    # A new or gone control plane instance is re-rendered into the file Envoy watches: no restart.
    assert (instances.destination, instances.change_mode) == (
        "secrets/nomadmesh_xds_endpoints.json", "noop")
    assert "nomadmesh_xds_endpoints.json" in (bootstrap.data or "")
    assert "range" not in (bootstrap.data or "")
    assert xds_env.env is True
    assert xds_env.change_mode == "noop"
    assert "XDS_HOST={{ $s.Address }}" in (xds_env.data or "")


def test_fixed_control_plane_is_literal_env_and_bootstrap() -> None:
    sidecar = sidecar_task(only_group(inject(job(), Mesh(control_plane="10.0.0.5:18000"))))
    assert sidecar is not None
    assert dict(sidecar.env) == {"XDS_HOST": "10.0.0.5", "XDS_PORT": "18000"}
    assert len(sidecar.templates) == 1
    assert '"port_value": 18000' in (sidecar.templates[0].data or "")


def test_metrics_service_is_tagged_for_prometheus() -> None:
    sidecar = sidecar_task(only_group(inject(job())))
    assert sidecar is not None
    (metrics,) = sidecar.services
    assert (metrics.name, metrics.port) == ("api-sidecar-metrics", "envoy_metrics")
    assert metrics.tags == ("prometheus", "nomadmesh-sidecar")
    assert metrics.meta["metrics_path"] == "/stats/prometheus"


def test_bridge_mode_maps_only_the_metrics_and_inbound_ports_to_the_host() -> None:
    ports = only_group(inject(job())).ports
    assert ports[1:] == (Port("envoy_metrics", to=9102), Port("inbound", to=3102))


def test_the_app_service_is_registered_at_the_inbound_listener_and_checked_directly() -> None:
    base = job()
    service = only_group(base).services[0]
    checked = attrs.evolve(service, checks=[Check(type="http", path="/health", interval=SECOND,
                                                  timeout=SECOND)])
    group_ = attrs.evolve(only_group(base), services=[checked])
    published = only_group(inject(attrs.evolve(base, groups=[group_]))).services[0]
    assert published.port == "inbound"
    assert [c.port for c in published.checks] == [service.port]
    bootstrap = sidecar_task(only_group(inject(base))).templates[-1].data  # type: ignore[union-attr]
    assert '"inbound_port": 3102' in bootstrap
    assert f'"app_port": "{{{{ env "NOMAD_PORT_{service.port}" }}}}"' in bootstrap


def test_without_inbound_the_service_keeps_its_port() -> None:
    group_ = only_group(inject(job(), Mesh(inbound=False)))
    assert group_.services[0].port == only_group(job()).services[0].port
    assert [p.label for p in group_.ports] == ["http", "envoy_metrics"]


def test_host_mode_gives_every_listener_a_dynamic_port() -> None:
    g = only_group(inject(job(group(mode="host"))))
    assert [(p.label, p.static) for p in g.ports[1:]] == [
        ("egress", None), ("envoy_admin", None), ("envoy_metrics", None), ("inbound", None)]
    app = g.task("api-app")
    assert app is not None
    assert dict(app.env) == {"EGRESS_HOST": "${NOMAD_IP_egress}",
                             "EGRESS_PORT": "${NOMAD_PORT_egress}"}


def test_host_mode_docker_sidecar_uses_the_host_network() -> None:
    sidecar = sidecar_task(only_group(inject(job(group(mode="host")))))
    assert sidecar is not None
    assert sidecar.config["network_mode"] == "host"


def test_upstream_urls_in_host_mode_use_the_egress_address() -> None:
    mesh = Mesh(groups={"api": GroupMesh(upstreams=[Upstream("db-api", prefix="/db")])})
    app = only_group(inject(job(group(mode="host")), mesh)).task("api-app")
    assert app is not None
    assert app.env["DB_API_URL"] == "http://${NOMAD_ADDR_egress}/db"


def test_exec_sidecar_runs_the_envoy_binary() -> None:
    mesh = Mesh(sidecar=Sidecar(driver="exec", envoy_binary="/opt/envoy/bin/envoy"))
    sidecar = sidecar_task(only_group(inject(job(), mesh)))
    assert sidecar is not None
    assert sidecar.config["command"] == "/opt/envoy/bin/envoy"
    assert "image" not in sidecar.config


def test_upstreams_from_group_meta_are_published_and_wired() -> None:
    meta = {"nomadmesh.upstreams": "service-a=/hi_a, service-b=/hi_b"}
    g = only_group(inject(job(group(meta=meta))))
    assert g.services[0].meta["nomadmesh-upstreams"] == "service-a=/hi_a,service-b=/hi_b"
    app = g.task("api-app")
    assert app is not None
    assert app.env["SERVICE_B_URL"] == "http://127.0.0.1:3101/hi_b"


def test_task_level_service_carries_the_routes() -> None:
    g = Group("api", networks=[Network(mode="bridge", ports=[Port("http")])],
              meta={"nomadmesh.upstreams": "db=/db"},
              tasks=[Task("app", driver="docker", services=[Service(name="api", port="http")])])
    app = only_group(inject(job(g))).task("app")
    assert app is not None
    assert app.services[0].meta == {"nomadmesh-upstreams": "db=/db"}


def test_env_var_names_are_configurable() -> None:
    mesh = Mesh(egress_host_env="PROXY_HOST", egress_port_env="PROXY_PORT",
                upstream_url_env="UPSTREAM_{SERVICE}",
                groups={"api": GroupMesh(upstreams=[Upstream("db", prefix="/db")])})
    app = only_group(inject(job(), mesh)).task("api-app")
    assert app is not None
    assert set(app.env) == {"PROXY_HOST", "PROXY_PORT", "UPSTREAM_DB"}


def test_user_fields_of_the_app_task_are_kept() -> None:
    g = group(env={"LOG_LEVEL": "debug"})
    app = only_group(inject(job(g))).task("api-app")
    assert app is not None
    assert app.env["LOG_LEVEL"] == "debug"
    assert app.config == {"image": "api:1"}


# --- which groups are meshed ----------------------------------------------------------------------


def test_a_group_without_services_is_left_alone() -> None:
    batch = Group("worker", tasks=[Task("work", driver="docker")])
    j = job(group(), batch)
    assert inject(j).groups[1] is batch


def test_group_meta_opts_out() -> None:
    j = job(group(meta={"nomadmesh.mesh": "false"}))
    assert inject(j) is j


def test_python_settings_opt_out_over_meta() -> None:
    j = job(group(meta={"nomadmesh.mesh": "true"}))
    assert inject(j, Mesh(groups={"api": GroupMesh(enabled=False)})) is j


def test_a_group_with_a_connect_sidecar_is_left_alone() -> None:
    g = attrs.evolve(group(), services=[Service(name="api", port="http",
                                                connect={"SidecarService": {}})])
    j = job(g)
    assert inject(j) is j


def test_injecting_twice_gives_the_same_job() -> None:
    once = inject(job(group(meta={"nomadmesh.upstreams": "a=/a"})))
    assert inject(once) == once


def test_the_input_job_is_not_changed() -> None:
    original = job()
    copy = attrs.evolve(original)
    inject(original)
    assert original == copy


# --- overrides merge onto defaults (Nomad issue 11497) ----------------------------------------------


def test_group_env_override_keeps_resources_logs_and_shutdown_delay() -> None:
    mesh = Mesh(groups={"api": GroupMesh(sidecar=Sidecar(env={"EXTRA": "1"}))})
    sidecar = sidecar_task(only_group(inject(job(), mesh)))
    assert sidecar is not None
    assert sidecar.env["EXTRA"] == "1"
    assert sidecar.resources == Resources(cpu=250, memory=128)
    assert sidecar.logs == LogConfig(max_files=2, max_file_size=2)
    assert sidecar.shutdown_delay == 5 * SECOND


def test_resources_override_merges_field_by_field() -> None:
    mesh = Mesh(sidecar=Sidecar(resources=Resources(memory=256)),
                groups={"api": GroupMesh(sidecar=Sidecar(resources=Resources(cpu=500)))})
    sidecar = sidecar_task(only_group(inject(job(), mesh)))
    assert sidecar is not None
    assert sidecar.resources == Resources(cpu=500, memory=256)


def test_extra_args_follow_the_defaults() -> None:
    mesh = Mesh(sidecar=Sidecar(args=["--drain-time-s", "10"]))
    sidecar = sidecar_task(only_group(inject(job(), mesh)))
    assert sidecar is not None
    assert sidecar.config["args"][-3:] == ("--disable-hot-restart", "--drain-time-s", "10")


# --- conflicts are errors with paths ----------------------------------------------------------------


def test_a_port_label_the_sidecar_needs_is_a_conflict() -> None:
    g = group(ports=(Port("http", to=8080), Port("envoy_metrics")))
    with pytest.raises(MeshError) as caught:
        inject(job(g))
    assert problem_paths(caught) == ["job[web].group[api].network.port[envoy_metrics]"]


def test_an_app_port_on_the_sidecars_port_inside_the_namespace_is_a_conflict() -> None:
    g = group(ports=(Port("http", to=3101),))
    with pytest.raises(MeshError) as caught:
        inject(job(g))
    assert problem_paths(caught) == ["job[web].group[api].network.port[http].to"]


def test_an_env_var_the_mesh_sets_is_a_conflict() -> None:
    with pytest.raises(MeshError) as caught:
        inject(job(group(env={"EGRESS_PORT": "9999"})))
    assert problem_paths(caught) == ["job[web].group[api].task[api-app].env.EGRESS_PORT"]


def test_two_upstreams_with_one_prefix_are_a_conflict() -> None:
    meta = {"nomadmesh.upstreams": "a=/x,b=/x"}
    with pytest.raises(MeshError, match="prefix '/x' is used by both 'a' and 'b'") as caught:
        inject(job(group(meta=meta)))
    assert problem_paths(caught) == ["job[web].group[api].meta.nomadmesh.upstreams"]


def test_a_python_upstream_clashing_with_meta_names_the_setting() -> None:
    mesh = Mesh(groups={"api": GroupMesh(upstreams=[Upstream("b", prefix="/x")])})
    with pytest.raises(MeshError) as caught:
        inject(job(group(meta={"nomadmesh.upstreams": "a=/x"})), mesh)
    assert problem_paths(caught) == ["mesh.groups.api.upstreams[0]"]


def test_unknown_upstream_syntax_is_an_error() -> None:
    with pytest.raises(MeshError, match="not of the form service=/prefix") as caught:
        inject(job(group(meta={"nomadmesh.upstreams": "service-a:/hi_a"})))
    assert problem_paths(caught) == ["job[web].group[api].meta.nomadmesh.upstreams"]


def test_a_meshed_group_without_a_network_is_an_error() -> None:
    with pytest.raises(MeshError) as caught:
        inject(job(group(mode=None)))
    assert problem_paths(caught) == ["job[web].group[api].network"]


def test_network_mode_none_is_an_error() -> None:
    with pytest.raises(MeshError) as caught:
        inject(job(group(mode="none")))
    assert problem_paths(caught) == ["job[web].group[api].network.mode"]


def test_raw_exec_sidecar_in_a_bridge_network_is_an_error() -> None:
    with pytest.raises(MeshError, match="raw_exec"):
        inject(job(), Mesh(sidecar=Sidecar(driver="raw_exec")))


def test_a_task_with_the_sidecars_name_is_a_conflict() -> None:
    g = attrs.evolve(group(), tasks=(*group().tasks, Task("api-sidecar", driver="docker")))
    with pytest.raises(MeshError) as caught:
        inject(job(g))
    assert problem_paths(caught) == ["job[web].group[api].task[api-sidecar]"]


def test_a_bad_mesh_meta_flag_is_an_error() -> None:
    with pytest.raises(MeshError) as caught:
        inject(job(group(meta={"nomadmesh.mesh": "yes"})))
    assert problem_paths(caught) == ["job[web].group[api].meta.nomadmesh.mesh"]


def test_every_conflict_of_every_group_is_reported_at_once() -> None:
    j = job(group("a", mode=None), group("b", env={"EGRESS_HOST": "x"}))
    with pytest.raises(MeshError) as caught:
        inject(j)
    assert problem_paths(caught) == ["job[web].group[a].network",
                                      "job[web].group[b].task[b-app].env.EGRESS_HOST"]


def test_invalid_mesh_settings_are_rejected_before_injecting() -> None:
    with pytest.raises(MeshError) as caught:
        inject(job(), Mesh(egress_port=70000))
    assert problem_paths(caught) == ["mesh.egress_port"]


# --- the result is a job Nomad accepts --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bridge", "host"])
@pytest.mark.parametrize("driver", ["docker", "exec"])
def test_injected_job_validates_and_survives_the_json_round_trip(mode: str, driver: str) -> None:
    mesh = Mesh(sidecar=Sidecar(driver=driver),
                groups={"api": GroupMesh(upstreams=[Upstream("db", prefix="/db")])})
    injected = inject(job(group(mode=mode)), mesh)
    assert injected.validate() is injected
    assert Job.from_api(injected.to_api()) == injected


def test_is_meshed_tells_which_groups_inject_would_touch() -> None:
    j = job(group("a"), group("b", meta={"nomadmesh.mesh": "false"}))
    assert [is_meshed(j, g) for g in j.groups] == [True, False]


def test_a_policy_change_leaves_the_injected_job_unchanged() -> None:
    # Policy travels in the config transport, never in job meta: changing it replaces no allocation.
    job = nomadmesh.load(JOBS / "service-b.nomad.hcl")
    fast = Mesh(groups={"service-b": GroupMesh(upstreams=[
        Upstream("service-a", "/hi_a", policy=Policy(timeout="1s"))])})
    slow = Mesh(policy=Policy(timeout="30s"), groups={"service-b": GroupMesh(upstreams=[
        Upstream("service-a", "/hi_a", policy=Policy(timeout="9s", retries=Retries(attempts=5)))])})
    assert inject(job, fast) == inject(job, slow) == inject(job)
