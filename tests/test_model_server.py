"""What a Nomad server stores: `canonicalize(job)` after the agent, reproducing the cases of Nomad's
own tests of the admission hooks (nomad/job_endpoint_hook_*_test.go, job_endpoint_hooks_test.go at
aa026cc99cfb). Nomad's tests call one hook on a structs job; these build the same job as a user
would and read the hook's effect in the stored job, so every other step runs as on a real server.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from nomadmesh import (
    Check,
    Constraint,
    Consul,
    ConsulConnect,
    ConsulExposeConfig,
    ConsulExposePath,
    ConsulGateway,
    ConsulGatewayBindAddress,
    ConsulGatewayProxy,
    ConsulGatewayTLSConfig,
    ConsulIngressConfigEntry,
    ConsulIngressListener,
    ConsulIngressService,
    ConsulLinkedService,
    ConsulMeshConfigEntry,
    ConsulProxy,
    ConsulSidecarService,
    ConsulTerminatingConfigEntry,
    ConsulTransparentProxy,
    ConsulUpstream,
    Group,
    Job,
    Network,
    Port,
    Resources,
    Service,
    SidecarTask,
    Task,
    Template,
    Vault,
    WorkloadIdentity,
    canonicalize,
)
from nomadmesh.model import NUMA, Schedule, ScheduleCron, Secret, ServerConfig
from nomadmesh.model._base import SECOND
from tests.strategies import jobs

# nomad/job_endpoint_hooks.go:37 and job_endpoint_hook_connect.go:86, :128, :115.
CONSUL = Constraint(attribute="${attr.consul.version}", value=">= 1.8.0", operator="semver")
GRPC = Constraint(attribute="${attr.consul.grpc}", value="0", operator=">")
TLS = Constraint(attribute="${attr.consul.version}", value=">= 1.11.2", operator="semver")
VAULT = Constraint(attribute="${attr.vault.version}", value=">= 0.6.1", operator="semver")
CNI = [Constraint(attribute=f"${{attr.plugins.cni.version.{p}}}", value=">= 0.4.0",
                  operator="semver") for p in ("bridge", "firewall", "host-local", "loopback",
                                               "portmap")]
IDENTITY = Constraint(attribute="${attr.nomad.version}", value=">= 1.7.0-a", operator="semver")
ENVOY_ARGS = ("-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json", "-l", "${meta.connect.log_level}",
              "--concurrency", "${meta.connect.proxy_concurrency}", "--disable-hot-restart")


def stored_group(group: Group, **job: Any) -> Group:
    """The group of a one-group job named "my-job" (mock.Job's name) as the server stores it."""
    stored = canonicalize(Job("mock-service", name="my-job", groups=[group], **job))
    assert canonicalize(stored) == stored  # every hook is idempotent on what it stored
    return stored.groups[0]


def app(**fields: Any) -> Task:
    return Task("app", driver="docker", **fields)


# --- the Connect hook (nomad/job_endpoint_hook_connect.go) ---------------------------------------


def test_sidecar_tasks_are_injected_for_interpolated_services() -> None:
    """TestJobEndpointConnect_groupConnectHook: a connect-proxy task per sidecar service, named
    after the service once interpolated with the job's meta, and a dynamic port mapped To -1."""
    group = stored_group(Group("web", networks=[Network(mode="bridge")], tasks=[app()], services=[
        Service(name="${NOMAD_META_backend_name}", port="8080",
                connect=ConsulConnect(sidecar_service=ConsulSidecarService())),
        Service(name="${NOMAD_META_admin_name}", port="9090",
                connect=ConsulConnect(sidecar_service=ConsulSidecarService()))]),
        meta={"backend_name": "backend", "admin_name": "admin"})
    assert [s.name for s in group.services] == ["backend", "admin"]
    assert [t.name for t in group.tasks] == ["app", "connect-proxy-backend", "connect-proxy-admin"]
    assert group.networks[0].ports == (Port("connect-proxy-backend", to=-1, host_network="default"),
                                       Port("connect-proxy-admin", to=-1, host_network="default"))


def test_the_sidecar_task_is_newConnectSidecarTask_canonicalized() -> None:
    """job_endpoint_hook_connect.go:524 newConnectSidecarTask, then Task.Canonicalize (:318):
    the group's restart policy, a 5s kill timeout, the default identity."""
    group = stored_group(Group("web", networks=[Network(mode="bridge")], tasks=[app()], services=[
        Service(name="backend", port="8080",
                connect=ConsulConnect(sidecar_service=ConsulSidecarService()))]))
    sidecar = group.tasks[1]
    assert (sidecar.name, sidecar.kind, sidecar.driver) == (
        "connect-proxy-backend", "connect-proxy:backend", "docker")
    assert dict(sidecar.config) == {"image": "${meta.connect.sidecar_image}", "args": ENVOY_ARGS}
    assert sidecar.resources is not None and sidecar.logs is not None
    assert (sidecar.resources.cpu, sidecar.resources.memory) == (250, 128)
    assert (sidecar.logs.max_files, sidecar.logs.max_file_size) == (2, 2)
    assert (sidecar.shutdown_delay, sidecar.kill_timeout) == (5 * SECOND, 5 * SECOND)
    assert sidecar.lifecycle is not None
    assert (sidecar.lifecycle.hook, sidecar.lifecycle.sidecar) == ("prestart", True)
    assert sidecar.constraints == (CONSUL, GRPC)
    assert sidecar.restart == group.restart
    assert sidecar.identity == WorkloadIdentity(name="default", aud=["nomadproject.io"])


def test_a_service_named_with_JOB_names_its_sidecar_after_the_job() -> None:
    """TestJobEndpointConnect_ConnectInterpolation (Nomad issue 6853): ${JOB} is replaced by
    Service.Canonicalize before the sidecar task is created."""
    group = stored_group(Group("web", networks=[Network(mode="bridge")], tasks=[app()], services=[
        Service(name="${JOB}-api", port="9999",
                connect=ConsulConnect(sidecar_service=ConsulSidecarService()))]))
    assert [t.name for t in group.tasks] == ["app", "connect-proxy-my-job-api"]


def test_the_sidecar_driver_is_podman_when_only_podman_tasks_run() -> None:
    """TestJobEndpointConnect_groupConnectGuessTaskDriver and newConnectSidecarTask("redis",
    "podman"): podman if a task uses it and none uses docker."""
    def sidecar_driver(*drivers: str) -> str | None:
        group = stored_group(Group("web", networks=[Network(mode="bridge")], services=[
            Service(name="redis", port="6379",
                    connect=ConsulConnect(sidecar_service=ConsulSidecarService()))],
            tasks=[Task(f"t{i}", driver=d) for i, d in enumerate(drivers)]))
        return group.tasks[-1].driver

    assert sidecar_driver("podman") == "podman"
    assert sidecar_driver("podman", "docker") == "docker"
    assert sidecar_driver("exec") == "docker"


def test_a_sidecar_task_block_merges_over_the_defaults_as_the_api_canonicalized_it() -> None:
    """structs/services.go:1588 MergeIntoTask after api/consul.go:122 SidecarTask.Canonicalize:
    what the block sets wins, and so do the api's defaults it got (100/300, 10x10 logs, no
    shutdown delay: Nomad issue 11497). A new driver replaces the config."""
    sidecar = SidecarTask(driver="raw_exec", user="sidecars", kill_signal="SIGHUP",
                          config={"command": "/bin/sidecar", "args": ["a", "b"]},
                          resources=Resources(cpu=400))
    group = stored_group(Group("web", networks=[Network(mode="bridge")], tasks=[app()], services=[
        Service(name="backend", port="8080", connect=ConsulConnect(
            sidecar_service=ConsulSidecarService(), sidecar_task=sidecar))]))
    task = group.tasks[1]
    assert (task.driver, task.user, task.kill_signal) == ("raw_exec", "sidecars", "SIGHUP")
    assert dict(task.config) == {"command": "/bin/sidecar", "args": ("a", "b")}
    assert task.resources is not None and task.logs is not None
    assert (task.resources.cpu, task.resources.memory) == (400, 300)
    # Task.ShutdownDelay is a Go value: its zero is stored as None.
    assert (task.logs.max_files, task.logs.max_file_size, task.shutdown_delay) == (10, 10, None)


def test_a_task_taking_the_sidecars_name_makes_it_take_another() -> None:
    """job_endpoint_hook_connect.go:304: a suffix is appended (random in Nomad, derived from the
    names here), the Kind still names the service."""
    group = stored_group(Group("web", networks=[Network(mode="bridge")],
                               tasks=[Task("connect-proxy-api", driver="docker")], services=[
        Service(name="api", port="80", connect=ConsulConnect(sidecar_service=ConsulSidecarService()))]))
    sidecar = group.tasks[1]
    assert sidecar.kind == "connect-proxy:api"
    assert sidecar.name.startswith("connect-proxy-api-") and len(sidecar.name) == 24


def test_a_group_without_network_gets_no_sidecar() -> None:
    """job_endpoint_hook_connect.go:155: the hook skips it (validation refuses it)."""
    group = stored_group(Group("web", tasks=[app()], services=[
        Service(name="api", port="80", connect=ConsulConnect(sidecar_service=ConsulSidecarService()))]))
    assert [t.name for t in group.tasks] == ["app"]


def ingress(mode: str, **connect: Any) -> Group:
    """mock.ConnectIngressGatewayJob(mode, false), with a gateway service named from meta."""
    gateway = ConsulGateway(
        proxy=ConsulGatewayProxy(connect_timeout=3 * SECOND),
        ingress=ConsulIngressConfigEntry(listeners=[ConsulIngressListener(
            port=2000, protocol="tcp", services=[ConsulIngressService(name="service1")])],
            tls=connect.pop("tls", None)))
    return Group("web", networks=[Network(mode=mode)], tasks=connect.pop("tasks", []), services=[
        Service(name="${NOMAD_META_gateway_name}", port="9999",
                connect=ConsulConnect(gateway=gateway, **connect))])


def test_an_ingress_gateway_in_bridge_mode_gets_its_task_and_bind_addresses() -> None:
    """TestJobEndpointConnect_groupConnectHook_IngressGateway_BridgeNetwork: the gateway task
    (newConnectGatewayTask, :500), the TLS constraint for a customized TLS version, and the
    proxy rewritten by gatewayProxy for bridge networking (:423)."""
    group = stored_group(ingress("bridge", tls=ConsulGatewayTLSConfig(enabled=True,
                                                                      tls_min_version="TLSv1_2")),
                         meta={"gateway_name": "my-gateway"})
    service = group.services[0]
    assert service.name == "my-gateway"
    task = group.tasks[0]
    assert (task.name, task.kind, task.driver) == (
        "connect-ingress-my-gateway", "connect-ingress:my-gateway", "docker")
    assert dict(task.config) == {"image": "${meta.connect.gateway_image}", "args": ENVOY_ARGS}
    assert task.constraints == (CONSUL, GRPC, TLS)
    assert task.lifecycle is None
    assert service.connect is not None and service.connect.gateway is not None
    assert service.connect.gateway.proxy == ConsulGatewayProxy(
        connect_timeout=3 * SECOND, envoy_gateway_no_default_bind=True,
        envoy_gateway_bind_addresses=[ConsulGatewayBindAddress("service1", address="0.0.0.0",
                                                               port=2000)])


def test_an_ingress_gateway_in_host_mode_uses_the_host_network() -> None:
    """TestJobEndpointConnect_groupConnectHook_IngressGateway_HostNetwork: network_mode host in
    the task's config, the operator's proxy kept with no bind addresses."""
    group = stored_group(ingress("host"), meta={"gateway_name": "my-gateway"})
    task = group.tasks[0]
    assert task.config["network_mode"] == "host"
    assert task.constraints == (CONSUL, GRPC)
    proxy = group.services[0].connect.gateway.proxy  # type: ignore[union-attr]
    assert proxy == ConsulGatewayProxy(connect_timeout=3 * SECOND)


def test_an_ingress_gateway_next_to_podman_tasks_runs_on_podman() -> None:
    """TestJobEndpointConnect_groupConnectHook_IngressGateway_GuessPodman: mode "Host" is not
    "host", so no network_mode."""
    group = stored_group(ingress("Host", tasks=[Task("mytask", driver="podman")]),
                         meta={"gateway_name": "my-gateway"})
    task = group.tasks[1]
    assert (task.name, task.driver) == ("connect-ingress-my-gateway", "podman")
    assert "network_mode" not in task.config


def test_a_terminating_gateway_gets_a_port_and_a_default_bind_address() -> None:
    """TestJobEndpointConnect_groupConnectHook_TerminatingGateway and :350: a terminating
    gateway service without a port gets connect-terminating-<service>."""
    gateway = ConsulGateway(proxy=ConsulGatewayProxy(connect_timeout=3 * SECOND),
                            terminating=ConsulTerminatingConfigEntry(services=[
                                ConsulLinkedService(name="service1")]))
    group = stored_group(Group("web", networks=[Network(mode="bridge")], services=[
        Service(name="my-gateway", connect=ConsulConnect(gateway=gateway))]))
    service = group.services[0]
    assert service.port == "connect-terminating-my-gateway"
    assert group.networks[0].ports == (Port("connect-terminating-my-gateway", to=-1,
                                            host_network="default"),)
    assert [t.name for t in group.tasks] == ["connect-terminating-my-gateway"]
    proxy = service.connect.gateway.proxy  # type: ignore[union-attr]
    assert proxy is not None and proxy.envoy_gateway_no_default_bind
    assert dict(proxy.envoy_gateway_bind_addresses) == {
        "default": ConsulGatewayBindAddress("default", address="0.0.0.0", port=-1)}


def test_a_mesh_gateway_gets_a_lan_port_and_wan_and_lan_bind_addresses() -> None:
    """TestJobEndpointConnect_groupConnectHook_MeshGateway."""
    gateway = ConsulGateway(proxy=ConsulGatewayProxy(connect_timeout=3 * SECOND),
                            mesh=ConsulMeshConfigEntry())
    group = stored_group(Group("web", networks=[Network(mode="bridge")], services=[
        Service(name="my-gateway", port="public_port", connect=ConsulConnect(gateway=gateway))]))
    assert group.networks[0].ports == (Port("connect-mesh-my-gateway-lan", to=-1,
                                            host_network="default"),)
    assert [(t.name, t.kind) for t in group.tasks] == [("connect-mesh-my-gateway",
                                                        "connect-mesh:my-gateway")]
    proxy = group.services[0].connect.gateway.proxy  # type: ignore[union-attr]
    assert proxy is not None and sorted(proxy.envoy_gateway_bind_addresses) == ["lan", "wan"]


def test_a_mesh_gateway_without_a_port_is_refused() -> None:
    """job_endpoint_hook_connect.go:362: the mutator's error refuses the job."""
    job = Job("mesh", groups=[Group("web", networks=[Network(mode="bridge")], services=[
        Service(name="gw", connect=ConsulConnect(gateway=ConsulGateway(mesh=ConsulMeshConfigEntry())))])])
    assert ("job[mesh].group[web].service[0].port",
            "error in job mutator connect: service.port must be set for mesh gateway service") in [
        (p.path, p.message) for p in job.problems_list()]


@pytest.mark.parametrize(("gateway", "mode", "expected"), [
    # TestJobEndpointConnect_gatewayProxy "nil proxy": defaults and bind addresses in bridge mode
    (ConsulGateway(ingress=ConsulIngressConfigEntry(listeners=[ConsulIngressListener(
        port=3000, protocol="tcp", services=[ConsulIngressService(name="service1")])])), "bridge",
     ConsulGatewayProxy(connect_timeout=5 * SECOND, envoy_gateway_no_default_bind=True,
                        envoy_gateway_bind_addresses=[ConsulGatewayBindAddress(
                            "service1", address="0.0.0.0", port=3000)])),
    # "ingress set defaults": the operator's timeout and config are kept
    (ConsulGateway(proxy=ConsulGatewayProxy(connect_timeout=2 * SECOND, config={"foo": 1}),
                   ingress=ConsulIngressConfigEntry(listeners=[ConsulIngressListener(
                       port=3000, protocol="tcp", services=[ConsulIngressService(name="service1")])])),
     "bridge",
     ConsulGatewayProxy(connect_timeout=2 * SECOND, config={"foo": 1},
                        envoy_gateway_no_default_bind=True,
                        envoy_gateway_bind_addresses=[ConsulGatewayBindAddress(
                            "service1", address="0.0.0.0", port=3000)])),
    # "ingress leave as-is": a proxy that binds tagged addresses is the operator's (the api
    # canonicalization gave it the 5s timeout, which Nomad's structs-level test has nil)
    (ConsulGateway(proxy=ConsulGatewayProxy(config={"foo": 1},
                                            envoy_gateway_bind_tagged_addresses=True),
                   ingress=ConsulIngressConfigEntry(listeners=[ConsulIngressListener(
                       port=3000, protocol="tcp", services=[ConsulIngressService(name="service1")])])),
     "bridge",
     ConsulGatewayProxy(connect_timeout=5 * SECOND, config={"foo": 1},
                        envoy_gateway_bind_tagged_addresses=True)),
    # "terminating set defaults"
    (ConsulGateway(proxy=ConsulGatewayProxy(connect_timeout=2 * SECOND,
                                            envoy_dns_discovery_type="STRICT_DNS"),
                   terminating=ConsulTerminatingConfigEntry(services=[ConsulLinkedService(
                       name="service1", ca_file="/cafile.pem")])),
     "bridge",
     ConsulGatewayProxy(connect_timeout=2 * SECOND, envoy_dns_discovery_type="STRICT_DNS",
                        envoy_gateway_no_default_bind=True,
                        envoy_gateway_bind_addresses=[ConsulGatewayBindAddress(
                            "default", address="0.0.0.0", port=-1)])),
    # "mesh set defaults in cni"
    (ConsulGateway(mesh=ConsulMeshConfigEntry()), "cni/test-net",
     ConsulGatewayProxy(connect_timeout=5 * SECOND, envoy_gateway_no_default_bind=True,
                        envoy_gateway_bind_addresses=[
                            ConsulGatewayBindAddress("wan", address="0.0.0.0", port=-1),
                            ConsulGatewayBindAddress("lan", address="0.0.0.0", port=-1)])),
])
def test_the_gateway_proxy_is_set_for_the_network_mode(gateway: ConsulGateway, mode: str,
                                                       expected: ConsulGatewayProxy) -> None:
    """TestJobEndpointConnect_gatewayProxy (job_endpoint_hook_connect.go:423 gatewayProxy)."""
    group = stored_group(Group("web", networks=[Network(mode=mode)], services=[
        Service(name="gw", port="public", connect=ConsulConnect(gateway=gateway))]))
    assert group.services[0].connect.gateway.proxy == expected  # type: ignore[union-attr]


def test_a_native_service_names_the_only_task_and_marks_it() -> None:
    """TestJobEndpointConnect_getNamedTaskForNativeService and :327: the task of a one-task
    group is inferred and gets Kind connect-native:<service>."""
    group = stored_group(Group("web", networks=[Network(mode="host")],
                               tasks=[Task("native_task", driver="exec")], services=[
        Service(name="test_connect_native", port="9999", connect=ConsulConnect(native=True))]))
    assert group.services[0].task == "native_task"
    assert group.tasks[0].kind == "connect-native:test_connect_native"


@pytest.mark.parametrize(("task", "message"), [
    (None, "task for Consul Connect Native service web->svc is ambiguous and must be set"),
    ("t3", "task t3 named by Consul Connect Native service web->svc does not exist"),
])
def test_a_native_service_whose_task_cannot_be_found_is_refused(task: str | None,
                                                                message: str) -> None:
    """TestJobEndpointConnect_getNamedTaskForNativeService, refused by the mutator."""
    job = Job("native", groups=[Group("web", networks=[Network(mode="host")],
                                      tasks=[Task("t1", driver="exec"), Task("t2", driver="exec")],
                                      services=[Service(name="svc", port="9", task=task,
                                                        connect=ConsulConnect(native=True))])])
    assert ("job[native].group[web].service[0].task", f"error in job mutator connect: {message}") in [
        (p.path, p.message) for p in job.problems_list()]


# --- the expose-check hook (nomad/job_endpoint_hook_expose_check.go) ------------------------------


def exposed(check: Check, port: str = "http", ports: tuple[Port, ...] = (Port("http", static=8080),),
            mode: str = "bridge") -> Group:
    return Group("group1", networks=[Network(mode=mode, ports=ports)], tasks=[app()], services=[
        Service(name="service1", port=port, checks=[check],
                connect=ConsulConnect(sidecar_service=ConsulSidecarService()))])


def test_an_exposed_check_with_a_port_becomes_an_expose_path() -> None:
    """TestJobExposeCheckHook_exposePathForCheck "use port label": the local port is the
    service port's static value."""
    group = stored_group(exposed(Check(name="check1", type="http", path="/health", port="http",
                                       protocol="http2", expose=True, interval="10s",
                                       timeout="2s")))
    proxy = group.services[0].connect.sidecar_service.proxy  # type: ignore[union-attr]
    assert proxy is not None and proxy.expose == ConsulExposeConfig(paths=[ConsulExposePath(
        path="/health", protocol="http2", local_path_port=8080, listener_port="http")])


def test_an_exposed_check_without_a_port_gets_a_generated_one() -> None:
    """TestJobExposeCheckHook_exposePathForCheck "empty check port": a dynamic port
    svc_<service>_ck_<6 hex of ServiceCheck.Hash("<service>_<index>")> (expose_check.go:188)."""
    group = stored_group(exposed(Check(name="check1", type="http", path="/health", expose=True,
                                       interval="10s", timeout="2s"), port="9999", ports=()))
    port = group.networks[0].ports[-1]
    assert port.label.startswith("svc_service1_ck_") and len(port.label) == len("svc_service1_ck_") + 6
    assert (port.to, port.host_network) == (-1, "default")
    check = group.services[0].checks[0]
    assert check.port == port.label
    proxy = group.services[0].connect.sidecar_service.proxy  # type: ignore[union-attr]
    assert proxy is not None and proxy.expose is not None
    assert proxy.expose.paths == (ConsulExposePath(path="/health", local_path_port=9999,
                                                   listener_port=port.label),)


def test_the_generated_port_label_hashes_the_check_as_nomad_does() -> None:
    """nomad/structs/services.go:487 ServiceCheck.Hash: sha256 over the check's fields, Go's
    Duration.String for the interval and timeout (known answer computed from that definition)."""
    from nomadmesh.model.server import _check_hash, _go_duration

    assert [_go_duration(d) for d in (0, 1500, 2_500_000, 90 * SECOND, 3600 * SECOND)] == [
        "0s", "1.5µs", "2.5ms", "1m30s", "1h0m0s"]
    check = Check(name="check1", type="http", path="/health", interval=10 * SECOND,
                  timeout=2 * SECOND, on_update="require_healthy")
    import hashlib

    parts = ["service1_0", "check1", "http", "", "", "/health", "", "", "10s", "2s", "", "",
             "require_healthy", ""]
    assert _check_hash(check, "service1_0") == hashlib.sha256("".join(parts).encode()).hexdigest()


def test_an_exposed_check_on_a_host_network_is_refused() -> None:
    """TestJobExposeCheckHook_tgValidateUseOfBridgeMode: expose needs one bridge or CNI network."""
    job = Job("x", groups=[exposed(Check(name="c", type="http", path="/h", port="http", expose=True,
                                         interval="10s", timeout="2s"), mode="host")])
    assert ("job[x].group[group1].network",
            'error in job mutator expose-check: connect expose check: invalid network mode for '
            'Consul Connect: group "group1" uses network mode "host"; must be "bridge" or "cni/*"'
            ) in [(p.path, p.message) for p in job.problems_list()]


def test_an_exposed_check_of_a_dynamic_service_port_is_refused() -> None:
    """expose_check.go:214: a dynamic port has no value at submission, nor is its label a number."""
    job = Job("x", groups=[exposed(Check(name="c", type="http", path="/h", expose=True,
                                         interval="10s", timeout="2s"), ports=(Port("http"),))])
    assert ("job[x].group[group1].service[0].check[0]",
            "error in job mutator expose-check: unable to determine local service port for service "
            "check group1->service1->c") in [(p.path, p.message) for p in job.problems_list()]


def test_a_grpc_or_tcp_check_is_exposed_only_when_exposable() -> None:
    """TestJobExposeCheckHook_checkIsExposable: http or grpc with a path starting with "/"."""
    group = stored_group(exposed(Check(name="c", type="tcp", port="http", expose=True,
                                       interval="10s", timeout="2s")))
    assert group.services[0].connect.sidecar_service.proxy is None  # type: ignore[union-attr]


# --- implied constraints (nomad/job_endpoint_hooks.go:260) ----------------------------------------


def constraints_of(*tasks: Task, **group: Any) -> tuple[Constraint, ...]:
    return stored_group(Group("example-group-1", tasks=tasks, **group)).constraints


def test_no_needed_constraints() -> None:
    """Test_jobImpliedConstraints_Mutate "no needed constraints"."""
    assert constraints_of(app()) == ()


def test_a_task_with_vault_adds_the_vault_version_once() -> None:
    """"task with vault", "group with multiple tasks with vault"."""
    assert constraints_of(Task("a", driver="x", vault=Vault()), Task("b", driver="x", vault=Vault())
                          ) == (VAULT,)


def test_an_existing_vault_version_constraint_is_kept() -> None:
    """"existing vault version constraint": matched on the attribute only."""
    mine = Constraint(attribute="${attr.vault.version}", value="1.3.0", operator="semver")
    assert constraints_of(Task("a", driver="x", vault=Vault()), constraints=[mine]) == (mine,)


def test_signals_of_vault_kill_and_templates_are_one_sorted_constraint() -> None:
    """"task with vault signal change", "task with kill signal", "multiple tasks with template
    signal change": ${attr.os.signals} set_contains the sorted union."""
    found = constraints_of(
        Task("a", driver="x", vault=Vault(change_mode="signal", change_signal="SIGINT")),
        Task("b", driver="x", kill_signal="SIGUSR1", templates=[
            Template(destination="local/x", change_mode="signal", change_signal="SIGHUP")]))
    assert found == (VAULT, Constraint(attribute="${attr.os.signals}",
                                       value="SIGHUP,SIGINT,SIGUSR1", operator="set_contains"))


def test_nomad_services_need_service_discovery_and_checks_nomad_1_4() -> None:
    """"task group nomad discovery" (and with checks: nativeServiceDiscoveryChecksConstraint)."""
    plain = constraints_of(app(), services=[Service(name="s", provider="nomad")])
    checked = constraints_of(app(), services=[Service(name="s", port="http", provider="nomad",
                                                      checks=[Check(type="tcp", interval="5s",
                                                                    timeout="1s")])])
    nsd = Constraint(attribute="${attr.nomad.service_discovery}", value="true", operator="=")
    assert plain == (nsd,)
    assert checked == (nsd, Constraint(attribute="${attr.nomad.version}", value=">= 1.4.0",
                                       operator="semver"))


def test_consul_services_need_consul_1_8_on_the_group_or_the_task() -> None:
    """"task group Consul discovery", "task group with empty provider", "task-level service": a
    task's Consul service puts the constraint on the task."""
    assert constraints_of(app(), services=[Service(name="s")]) == (CONSUL,)
    group = stored_group(Group("g", tasks=[app(services=[Service(name="example-task-service-1")])]))
    assert group.constraints == ()
    assert group.tasks[0].constraints == (CONSUL,)


def test_numa_needs_nomad_1_6_3_on_linux() -> None:
    """"task group with numa block"."""
    found = constraints_of(app(resources=Resources(numa=NUMA(affinity="require"))))
    assert found == (Constraint(attribute="${attr.nomad.version}", value=">= 1.6.3-dev",
                                operator="semver"),
                     Constraint(attribute="${attr.kernel.name}", value="linux", operator="="))


def test_bridge_networking_needs_the_cni_plugins() -> None:
    """"task group with bridge network"."""
    assert constraints_of(app(), networks=[Network(mode="bridge")]) == tuple(CNI)


def test_transparent_proxy_needs_consul_cni_and_nomad_1_8() -> None:
    """"task group with tproxy": in the order of the hook's loop."""
    found = constraints_of(app(), networks=[Network(mode="bridge")], services=[Service(
        name="s", port="80", connect=ConsulConnect(sidecar_service=ConsulSidecarService(
            proxy=ConsulProxy(transparent_proxy=ConsulTransparentProxy()))))])
    assert found == (CONSUL, *CNI,
                     Constraint(attribute="${attr.plugins.cni.version.consul-cni}",
                                value=">= 1.4.2", operator="semver"),
                     Constraint(attribute="${attr.nomad.version}", value=">= 1.8.0-dev",
                                operator="semver"))


def test_a_scheduled_task_needs_nomad_1_8() -> None:
    """"task with schedule" (a schedule without cron is not kept by ApiTaskToStructsTask)."""
    found = constraints_of(app(schedule=Schedule(cron=ScheduleCron(start="0 9 * * *", end="0 17"))))
    assert found == (Constraint(attribute="${attr.nomad.version}", value=">= 1.8.0-dev",
                                operator="semver"),)


def test_secret_providers_are_implied_for_every_group() -> None:
    """"task with secret", "tasks with overlapping secrets": each provider once, and (as the hook
    loops over the whole job's providers for each group) in every group."""
    def secret(name: str, provider: str) -> Secret:
        return Secret(name, provider=provider, path=f"x/{name}")

    job = canonicalize(Job("j", groups=[
        Group("a", tasks=[app(secrets=[secret("s1", "test"), secret("s2", "test")])]),
        Group("b", tasks=[app(secrets=[secret("s3", "other")])])]))
    expected = tuple(Constraint(attribute=f"${{attr.plugins.secrets.{p}.version}}",
                                operator="is_set") for p in ("test", "other"))
    assert [g.constraints for g in job.groups] == [expected, expected]


# --- the Consul hook (nomad/job_endpoint_hook_consul.go) -------------------------------------------


def test_a_consul_partition_becomes_a_constraint_of_its_group_or_task() -> None:
    """TestJobEndpointHook_ConsulCE: ${attr.consul.partition} = <partition>, added once."""
    group = stored_group(Group("g", consul=Consul(partition="foo"), tasks=[
        app(consul=Consul(partition="foo"))]))
    partition = Constraint(attribute="${attr.consul.partition}", value="foo", operator="=")
    assert group.constraints == (partition,)
    assert group.tasks[0].constraints == (partition,)


# --- implicit identities (nomad/job_endpoint_hook_implicit_identities.go) -------------------------


def test_no_identity_is_given_by_a_server_without_default_identities() -> None:
    """"no mutation when no service identity is configured": Nomad's default agent config."""
    group = stored_group(Group("g", tasks=[app(vault=Vault(), consul=Consul())],
                               services=[Service(name="web", port="80")]))
    assert group.services[0].identity is None and group.tasks[0].identities == ()
    assert IDENTITY not in group.constraints


def test_a_service_identity_is_named_for_its_service() -> None:
    """"mutate identity name and service name when custom identity is provided":
    consul-service_<task>-<service>-<port> (structs/services.go:813), and the group needs
    Nomad 1.7 (:53)."""
    wid = WorkloadIdentity(aud=["consul.io", "nomad.dev"], file=True)
    group = stored_group(Group("g", tasks=[app(services=[
        Service(name="web-task", port="80", identity=wid)])], services=[
        Service(name="web", task="app", port="80", identity=wid)]))
    assert group.services[0].identity == evolve_wid(wid, "consul-service_app-web-80", "web")
    assert group.tasks[0].services[0].identity == evolve_wid(wid, "consul-service_app-web-task-80",
                                                             "web-task")
    assert group.constraints[-1] == IDENTITY


def evolve_wid(wid: WorkloadIdentity, name: str, service: str) -> WorkloadIdentity:
    return WorkloadIdentity(name=name, service_name=service, aud=wid.aud, file=wid.file)


def test_the_servers_consul_and_vault_identities_are_given_to_tasks() -> None:
    """Test_jobImplicitIdentitiesHook_Mutate_consulTask and _vault: identities named
    consul_<cluster> and vault_<cluster> from the server's configuration (nomad/config.go:598
    keeps audience, env, file, filepath and TTL), canonicalized by the FSM; a service without an
    identity gets the server's, and a nomad service none."""
    config = ServerConfig(
        consul_service_identity=WorkloadIdentity(aud=["consul.io"], ttl="1h", name="ignored"),
        consul_task_identity=WorkloadIdentity(aud=["consul.io"], change_signal="sighup"),
        vault_default_identity=WorkloadIdentity(aud=["vault.io"], env=True))
    job = Job("j", groups=[Group("g", consul=Consul(), services=[
        Service(name="web", port="80"), Service(name="n", provider="nomad")], tasks=[
        app(vault=Vault()),
        Task("own", driver="x", identities=[WorkloadIdentity(name="consul_default", aud=["mine"])])])])
    group = canonicalize(job, config=config).groups[0]
    assert group.services[0].identity == WorkloadIdentity(
        name="consul-service_web-80", service_name="web", aud=["consul.io"], ttl=3600 * SECOND)
    assert group.services[1].identity is None
    assert group.tasks[0].identities == (
        WorkloadIdentity(name="consul_default", aud=["consul.io"]),
        WorkloadIdentity(name="vault_default", aud=["vault.io"], env=True))
    assert group.tasks[1].identities == (WorkloadIdentity(name="consul_default", aud=["mine"]),)
    assert group.constraints.count(IDENTITY) == 1
    assert canonicalize(canonicalize(job, config=config), config=config) == canonicalize(
        job, config=config)


# --- the canonicalizer (nomad/job_endpoint_hooks.go:241) ------------------------------------------


def test_a_zero_priority_takes_the_servers_default() -> None:
    """Test_jobCanonicalizer_Mutate: priority 0 becomes the configured job_default_priority."""
    job = Job("j", priority=0, groups=[Group("g", tasks=[app()])])
    assert canonicalize(job).priority == 50
    assert canonicalize(job, config=ServerConfig(job_default_priority=70)).priority == 70
    assert canonicalize(Job("j", priority=20, groups=[Group("g", tasks=[app()])]),
                        config=ServerConfig(job_default_priority=70)).priority == 20


# --- ApiJobToStructJob (command/agent/job_endpoint.go:1128) ---------------------------------------


def test_what_the_server_structs_do_not_keep() -> None:
    """job_endpoint.go:1707 (no service check_restart, no check advertise, a task service's
    checks take its task), :1651 (no network device), :1376 (no vault policies; the job's vault
    namespace), :1309 (only host and CSI volumes)."""
    from nomadmesh import CheckRestart, VolumeRequest

    job = Job("j", vault_namespace="ns", groups=[Group(
        "g", networks=[Network(mode="host", device="eth0")],
        volumes=[VolumeRequest("a", type="host", source="a"), VolumeRequest("b", type="nfs")],
        tasks=[app(vault=Vault(policies=["p"]), services=[Service(
            name="s", port="80", check_restart=CheckRestart(limit=3), checks=[
                Check(type="tcp", interval="5s", timeout="1s", task="other", advertise="x")])])])])
    group = canonicalize(job).groups[0]
    service, check = group.tasks[0].services[0], group.tasks[0].services[0].checks[0]
    assert (service.check_restart, check.advertise, check.task) == (None, None, "app")
    assert check.check_restart is not None and check.check_restart.limit == 3
    assert group.networks[0].device is None
    vault = group.tasks[0].vault
    assert vault is not None and (vault.policies, vault.namespace) == ((), "ns")
    assert list(group.volumes) == ["a"]


def test_scaling_without_max_is_stored_as_minus_one() -> None:
    """command/agent/scaling_endpoint.go:84 ApiScalingPolicyToStructs (validation refuses it)."""
    from nomadmesh import Scaling

    group = stored_group(Group("g", scaling=Scaling(min=1), tasks=[app()]))
    assert group.scaling is not None and (group.scaling.max, group.scaling.min) == (-1, 1)


def test_an_upstream_without_mesh_gateway_is_stored_with_an_empty_one() -> None:
    """structs.ConsulUpstream.MeshGateway is a struct value: GET returns {"Mode": ""}."""
    group = stored_group(Group("g", networks=[Network(mode="bridge")], tasks=[app()], services=[
        Service(name="s", port="80", connect=ConsulConnect(sidecar_service=ConsulSidecarService(
            proxy=ConsulProxy(upstreams=[ConsulUpstream(destination_name="db",
                                                        local_bind_port=5432)]))))]))
    upstream = group.services[0].connect.sidecar_service.proxy.upstreams[0]  # type: ignore[union-attr]
    assert upstream.mesh_gateway is not None and upstream.mesh_gateway.mode is None


def test_the_countdash_example_is_stored_with_its_sidecars() -> None:
    """examples/jobs/connect-countdash.nomad.hcl, Nomad's own Connect example: each group gets
    its connect-proxy task and port; the dashboard's sidecar_task block sets 300 MHz / 256 MB,
    and the api's sidecar-task defaults replace the injected 2x2 MB logs (Nomad issue 11497)."""
    from nomadmesh import load
    from tests.example_files import JOBS

    stored = canonicalize(load(JOBS / "connect-countdash.nomad.hcl"))
    api, dashboard = stored.groups
    assert [t.name for t in api.tasks] == ["web", "connect-proxy-count-api"]
    assert [p.label for p in api.networks[0].ports] == ["connect-proxy-count-api"]
    sidecar = dashboard.tasks[1]
    assert sidecar.name == "connect-proxy-count-dashboard"
    assert sidecar.resources is not None and sidecar.logs is not None
    assert (sidecar.resources.cpu, sidecar.resources.memory) == (300, 256)
    assert (sidecar.logs.max_files, sidecar.logs.max_file_size) == (10, 10)
    assert [p.label for p in dashboard.networks[0].ports] == ["http", "connect-proxy-count-dashboard"]
    assert CONSUL in dashboard.constraints and CNI[0] in dashboard.constraints


@pytest.mark.parametrize("name", ["connect-countdash.nomad.hcl", "service-a.nomad.hcl",
                                  "cache-bridge-dns.nomad.hcl"])
def test_the_fsms_second_canonicalize_changes_nothing(name: str) -> None:
    """nomad/fsm.go:681 canonicalizes the job again after the hooks; canonicalize does what that
    pass would change where the hooks add it, so running it again is a no-op."""
    from nomadmesh import load
    from nomadmesh.model.server import DEFAULT_SERVER, _canonical_job, stored
    from tests.example_files import JOBS

    job = load(JOBS / name).canonicalize(server=False)
    for config in (DEFAULT_SERVER, ServerConfig(
            consul_service_identity=WorkloadIdentity(aud=["consul.io"], change_signal="sighup"),
            consul_task_identity=WorkloadIdentity(aud=["c"]), vault_default_identity=WorkloadIdentity())):
        out = stored(job, zero_fill=False, config=config)
        assert _canonical_job(out) == out


# --- the validating Connect and expose-check hooks -------------------------------------------------


def refusals(group: Group) -> list[tuple[str, str]]:
    return [(p.path.removeprefix("job[v]."), p.message)
            for p in Job("v", groups=[group]).problems_list()]


def sidecar(name: str, **proxy: Any) -> Service:
    return Service(name=name, port="9999", connect=ConsulConnect(sidecar_service=ConsulSidecarService(
        proxy=ConsulProxy(**proxy) if proxy else None)))


@pytest.mark.parametrize(("group", "expected"), [
    # TestJobEndpointConnect_groupConnectSidecarValidate
    (Group("g1", tasks=[app()], services=[sidecar("s")]),
     ("group[g1].network", 'connect sidecar: must have exactly one network for Consul Connect: '
                           'group "g1" has 0 networks')),
    (Group("g2", tasks=[app()], networks=[Network(mode="host")], services=[sidecar("s")]),
     ("group[g2].network", 'connect sidecar: invalid network mode for Consul Connect: group "g2" '
                           'uses network mode "host"; must be "bridge" or "cni/*"')),
    (Group("group", tasks=[app()], networks=[Network(mode="bridge")],
           services=[sidecar("Connect-Service")]),
     ("group[group].service[0].name", 'Consul Connect service name "Connect-Service" in group '
                                      '"group" must not contain uppercase characters')),
    (Group("Connect-Group", tasks=[app()], networks=[Network(mode="bridge")],
           services=[sidecar("connect-service")]),
     ("group[Connect-Group]", 'Consul Connect group "Connect-Group" with service '
                              '"connect-service" must not contain uppercase characters')),
    # "connect group overlap upstreams" and TestJobEndpointConnect_groupConnectUpstreamsValidate
    (Group("connect-group", tasks=[app()], networks=[Network(mode="bridge")], services=[
        sidecar("s1", upstreams=[ConsulUpstream(destination_name="a", local_bind_port=8999)]),
        sidecar("s2", upstreams=[ConsulUpstream(destination_name="b", local_bind_port=8999)])]),
     ("group[connect-group].service[1].connect.sidecar_service.proxy.upstreams[0]",
      'Consul Connect services "s2" and "s1" in group "connect-group" using same address for '
      'upstreams (:8999)')),
    (Group("group", tasks=[app()], networks=[Network(mode="bridge", ports=[Port("www", static=80)])],
           services=[sidecar("s1", transparent_proxy=ConsulTransparentProxy(
               exclude_inbound_ports=["www", "9000", "no-such-label"]))]),
     ("group[group].service[0].connect.sidecar_service.proxy.transparent_proxy"
      ".exclude_inbound_ports", 'Consul Connect transparent proxy port "no-such-label" must be '
                                'numeric or one of network.port labels')),
    (Group("group", tasks=[app()], networks=[Network(mode="bridge")], services=[
        Service(name="s1", port="1", connect=ConsulConnect(native=True)),
        sidecar("s2", transparent_proxy=ConsulTransparentProxy())]),
     ("group[group]", "Consul Connect transparent proxy requires there is only one connect block")),
    # TestJobEndpointConnect_groupConnectGatewayValidate
    (Group("g1", networks=[Network()], services=[Service(name="gw", port="1", connect=ConsulConnect(
        gateway=ConsulGateway(ingress=ConsulIngressConfigEntry())))]),
     ("group[g1].network", 'connect gateway: invalid network mode for Consul Connect: group "g1" '
                           'uses network mode ""; must be "bridge", "host", or "cni/*"')),
    # TestJobExposeCheckHook_tgValidateUseOfCheckExpose and _Validate
    (Group("g1", tasks=[app()], networks=[Network(mode="bridge")], services=[Service(
        name="s1", port="1", checks=[Check(name="c1", type="http", path="/", interval="5s",
                                           timeout="1s", expose=True)])]),
     ("group[g1].service[0].check[0].expose",
      "exposed service check g1->s1->c1 requires use of sidecar_proxy")),
    (Group("g1", networks=[Network(mode="bridge")], tasks=[app(services=[Service(
        name="s2", port="1", checks=[Check(name="s2-check1", type="http", path="/", interval="5s",
                                           timeout="1s", expose=True)])])]),
     ("group[g1].task[app].service[0].check[0].expose",
      "exposed service check g1[app]->s2->s2-check1 is not a task-group service")),
])
def test_what_the_validating_hooks_refuse(group: Group, expected: tuple[str, str]) -> None:
    assert expected in refusals(group)


def test_a_valid_connect_group_passes_the_hooks() -> None:
    group = Group("api", tasks=[app()], networks=[Network(mode="bridge")], services=[
        sidecar("s1", upstreams=[ConsulUpstream(destination_name="a", local_bind_port=9001)]),
        sidecar("s2", upstreams=[ConsulUpstream(destination_name="b", local_bind_port=9002)])])
    assert refusals(group) == []


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(jobs())
def test_a_stored_job_reads_back_and_canonicalizes_to_itself(job: Job) -> None:
    """What a GET returns (sidecars, ports, constraints, identities included) is read back
    unchanged and canonicalize leaves it as it is: the comparison a deploy makes."""
    stored = canonicalize(job)
    got = Job.from_api(stored.to_api())
    assert got == stored
    assert canonicalize(got) == stored
