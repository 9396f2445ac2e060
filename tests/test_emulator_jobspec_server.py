"""The emulator's server side against Nomad's source: conversion, admission hooks, validation.

There is no oracle for the server (nomad/structs, nomad/job_endpoint_hooks.go), so each test
reproduces a case of Nomad's own tests or code, cited beside it, with Nomad's exact texts.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nomadmesh.testing.nomad_api import (
    NomadApiError,
    ServerConfig,
    admit,
    against_existing,
    check_register,
    decode_register,
    decode_validate,
    multierror,
    spec_changed,
    submission,
    validate_response,
)
from nomadmesh.testing.nomad_api.convert import new
from nomadmesh.testing.nomad_api.validate import go_duration, validate_group, validate_job

Obj = dict[str, Any]


def body(job: Obj, **request: Any) -> bytes:
    return json.dumps({"Job": job, **request}).encode()


def web(**group: Any) -> Obj:
    """A small service job in the API's JSON shape."""
    task = {"Name": "app", "Driver": "docker", "Config": {"image": "busybox:1.36"}}
    return {"ID": "web", "TaskGroups": [{"Name": "api", "Count": 2, "Tasks": [task], **group}]}


DEV_AGENT = ServerConfig()


def register(job: Obj, *, config: ServerConfig = DEV_AGENT, path_id: str | None = None,
             **request: Any) -> Obj:
    req = decode_register(body(job, **request))
    return admit(check_register(req, path_id), config=config, write_region=req.region,
                 write_namespace=req.namespace).job


def refusal(job: Obj, **kw: Any) -> NomadApiError:
    with pytest.raises(NomadApiError) as err:
        register(job, **kw)
    return err.value


# --- the agent's checks (command/agent/job_endpoint.go:555 jobUpdate) ----------------------------

def test_agent_refuses_scaling_in_system_jobs_with_400() -> None:
    job = web(Scaling={"Min": 1, "Max": 2})
    job["Type"] = "system"
    err = refusal(job)
    assert (err.status, err.text) == (
        400, "Task groups with job type system do not support scaling blocks")


@pytest.mark.parametrize(("request_fields", "path_id", "text"), [
    ({"Job": None}, None, "Job must be specified"),
    ({"Job": {"Name": "x"}}, None, "Job ID hasn't been provided"),
    ({"Job": {"ID": "x"}}, "y", "Job ID does not match name"),
    ({"Job": {"ID": "x"}, "EvalPriority": 101}, None,
     "Eval priority must be between 1 and 100 inclusively"),
])
def test_agent_request_checks_are_400(request_fields: Obj, path_id: str | None,
                                      text: str) -> None:
    with pytest.raises(NomadApiError) as err:
        check_register(decode_register(json.dumps(request_fields).encode()), path_id)
    assert (err.value.status, err.value.text) == (400, text)


# --- conversion and server defaults ------------------------------------------------------------

def test_server_defaults_a_user_sees_in_get_job() -> None:
    job = register(web())
    # structs.go:4658 Job.Canonicalize, job_endpoint_hook_node_pool_ce.go:25
    assert (job["Datacenters"], job["NodePool"], job["Namespace"]) == (["*"], "default",
                                                                        "default")
    task = job["TaskGroups"][0]["Tasks"][0]
    # structs.go:8115 Task.Canonicalize: a default workload identity is always there
    assert task["Identity"] == new("WorkloadIdentity", Name="default",
                                   Audience=["nomadproject.io"])
    # ApiJobToStructJob keeps only Stagger and MaxParallel at the job level (job_endpoint.go:1152)
    assert job["Update"] == new("UpdateStrategy", Stagger=30_000_000_000, MaxParallel=1)
    assert job["TaskGroups"][0]["Update"]["HealthCheck"] == "checks"


def test_conversion_drops_what_apijobtostructjob_does_not_copy() -> None:
    job = web()
    job["ParentID"] = "other"
    job["TaskGroups"][0]["Tasks"][0]["Resources"] = {"CPU": 200, "DiskMB": 500}
    job["TaskGroups"][0]["Volumes"] = {"v": {"Type": "ephemeral", "Source": "x"}}
    out = register(job)
    assert out["ParentID"] == ""  # job_endpoint.go:1128 never copies ParentID
    # :1598 ApiResourcesToStructs has no DiskMB; :1300 only host and csi volumes are kept
    assert out["TaskGroups"][0]["Tasks"][0]["Resources"]["DiskMB"] == 0
    assert out["TaskGroups"][0]["Volumes"] == {}


def test_service_and_check_names_are_filled_by_both_canonicalizers() -> None:
    job = web(Services=[{"PortLabel": "http", "Checks": [{"Type": "http", "Path": "/",
                                                          "Interval": 10**10,
                                                          "Timeout": 10**9}]}],
              Networks=[{"DynamicPorts": [{"Label": "http"}]}])
    service = register(job)["TaskGroups"][0]["Services"][0]
    # api/services.go:274 names a group service <job>-<group>; structs services.go:222 the check
    assert service["Name"] == "web-api"
    assert service["Checks"][0]["Name"] == 'service: "web-api" check'
    assert (service["Provider"], service["Namespace"], service["Cluster"]) == (
        "consul", "default", "default")


def test_consul_service_implies_a_consul_version_constraint() -> None:
    job = web(Services=[{"Name": "web"}])
    constraints = register(job)["TaskGroups"][0]["Constraints"]
    # job_endpoint_hooks.go consulServiceDiscoveryConstraint
    assert new("Constraint", LTarget="${attr.consul.version}", RTarget=">= 1.8.0",
               Operand="semver") in constraints


def test_nomad_service_with_checks_implies_discovery_and_version_constraints() -> None:
    job = web(Services=[{"Name": "web", "Provider": "nomad", "PortLabel": "http",
                         "Checks": [{"Type": "tcp", "Interval": 10**10, "Timeout": 10**9}]}],
              Networks=[{"DynamicPorts": [{"Label": "http"}]}])
    constraints = register(job)["TaskGroups"][0]["Constraints"]
    assert constraints == [
        new("Constraint", LTarget="${attr.nomad.service_discovery}", RTarget="true", Operand="="),
        new("Constraint", LTarget="${attr.nomad.version}", RTarget=">= 1.4.0", Operand="semver"),
    ]


def test_signals_imply_a_set_contains_constraint() -> None:
    # nomad/job_endpoint_hooks.go getSignalConstraint: sorted, comma-joined
    job = web()
    task = job["TaskGroups"][0]["Tasks"][0]
    task["KillSignal"] = "SIGINT"
    task["Templates"] = [{"EmbeddedTmpl": "x", "DestPath": "local/x", "ChangeMode": "signal",
                          "ChangeSignal": "sighup"}]
    constraints = register(job)["TaskGroups"][0]["Constraints"]
    assert constraints == [new("Constraint", LTarget="${attr.os.signals}",
                               RTarget="SIGHUP,SIGINT", Operand="set_contains")]


def test_vault_is_refused_without_a_vault_cluster_and_constrained_with_one() -> None:
    job = web()
    job["TaskGroups"][0]["Tasks"][0]["Vault"] = {}
    err = refusal(job)
    # job_endpoint_hook_vault.go:21
    assert (err.status, err.text) == (
        500, multierror(['Vault "default" not enabled but used in the job']))
    out = register(job, config=ServerConfig(vault_clusters=("default",)))
    assert out["TaskGroups"][0]["Constraints"] == [
        new("Constraint", LTarget="${attr.vault.version}", RTarget=">= 0.6.1",
            Operand="semver")]
    vault = out["TaskGroups"][0]["Tasks"][0]["Vault"]
    assert (vault["Cluster"], vault["Env"], vault["ChangeMode"]) == ("default", True, "restart")


def test_connect_sidecar_is_injected_as_nomad_does() -> None:
    # nomad/job_endpoint_hook_connect.go:274 groupConnectHook, :524 newConnectSidecarTask
    job = web(Services=[{"Name": "count-api", "PortLabel": "9001",
                         "Connect": {"SidecarService": {}}}],
              Networks=[{"Mode": "bridge"}])
    group = register(job)["TaskGroups"][0]
    sidecar = group["Tasks"][1]
    assert (sidecar["Name"], sidecar["Kind"], sidecar["Driver"]) == (
        "connect-proxy-count-api", "connect-proxy:count-api", "docker")
    assert sidecar["Config"]["image"] == "${meta.connect.sidecar_image}"
    assert (sidecar["Resources"]["CPU"], sidecar["Resources"]["MemoryMB"]) == (250, 128)
    assert sidecar["Lifecycle"] == new("TaskLifecycleConfig", Hook="prestart", Sidecar=True)
    assert (sidecar["ShutdownDelay"], sidecar["LogConfig"]["MaxFiles"]) == (5_000_000_000, 2)
    assert group["Networks"][0]["DynamicPorts"] == [
        new("Port", Label="connect-proxy-count-api", To=-1, HostNetwork="default")]
    assert new("Constraint", LTarget="${attr.consul.grpc}", RTarget="0",
               Operand=">") in sidecar["Constraints"]


def test_ingress_gateway_task_and_bridge_binds_are_injected() -> None:
    # nomad/job_endpoint_hook_connect.go:332 (gateway branch), :423 gatewayProxy, :500 task
    ingress = {"Listeners": [{"Port": 8080, "Protocol": "tcp", "Services": [{"Name": "api"}]}]}
    job = web(Services=[{"Name": "ingress", "PortLabel": "8080",
                         "Connect": {"Gateway": {"Ingress": ingress}}}],
              Networks=[{"Mode": "bridge"}])
    group = register(job)["TaskGroups"][0]
    gateway = group["Tasks"][1]
    assert (gateway["Name"], gateway["Kind"]) == ("connect-ingress-ingress",
                                                  "connect-ingress:ingress")
    assert gateway["Config"]["image"] == "${meta.connect.gateway_image}"
    proxy = group["Services"][0]["Connect"]["Gateway"]["Proxy"]
    assert (proxy["ConnectTimeout"], proxy["EnvoyGatewayNoDefaultBind"]) == (5 * 10**9, True)
    assert proxy["EnvoyGatewayBindAddresses"] == {
        "api": new("ConsulGatewayBindAddress", Address="0.0.0.0", Port=8080)}


def test_exposed_check_gets_a_port_and_an_expose_path() -> None:
    # nomad/job_endpoint_hook_expose_check.go:172 exposePathForCheck (the "9999" case of
    # job_endpoint_hook_expose_check_test.go): a numeric service port, a generated check port
    checks = [{"Name": "health", "Type": "http", "Path": "/health", "Expose": True,
               "Interval": 10**10, "Timeout": 10**9}]
    job = web(Services=[{"Name": "api", "PortLabel": "9999", "Checks": checks,
                         "Connect": {"SidecarService": {}}}], Networks=[{"Mode": "bridge"}])
    group = register(job)["TaskGroups"][0]
    sidecar_port, port = group["Networks"][0]["DynamicPorts"]  # the connect hook runs first
    assert sidecar_port["Label"] == "connect-proxy-api"
    assert port["Label"].startswith("svc_api_ck_") and len(port["Label"]) == len("svc_api_ck_") + 6
    assert (port["To"], port["HostNetwork"]) == (-1, "default")
    expose = group["Services"][0]["Connect"]["SidecarService"]["Proxy"]["Expose"]
    assert expose["Paths"] == [new("ConsulExposePath", Path="/health", LocalPathPort=9999,
                                   ListenerPort=port["Label"])]


def test_connect_needs_one_bridge_network() -> None:
    # nomad/job_endpoint_hook_connect.go:634 groupConnectNetworkModeValidate
    job = web(Services=[{"Name": "db", "Connect": {"SidecarService": {}}}])
    assert refusal(job).text == multierror([
        'connect sidecar: must have exactly one network for Consul Connect: group "api" has 0 '
        "networks"])
    job["TaskGroups"][0]["Networks"] = [{"Mode": "host"}]
    assert refusal(job).text == multierror([
        'connect sidecar: invalid network mode for Consul Connect: group "api" uses network '
        'mode "host"; must be "bridge" or "cni/*"'])


def test_sidecar_task_overrides_merge_onto_the_defaults() -> None:
    # nomad/structs/services.go:1588 MergeIntoTask: only what is set replaces the default
    job = web(Services=[{"Name": "db", "Connect": {"SidecarService": {},
                                                   "SidecarTask": {"Resources": {"CPU": 500}}}}],
              Networks=[{"Mode": "bridge"}])
    sidecar = register(job)["TaskGroups"][0]["Tasks"][1]
    assert (sidecar["Resources"]["CPU"], sidecar["Resources"]["MemoryMB"]) == (500, 300)


# --- validation texts (nomad/structs/structs.go, cases of structs_test.go) -----------------------

def test_empty_job_validation_names_every_missing_field() -> None:
    # structs_test.go:326 "job is empty"
    text = multierror(validate_job(new("Job")))
    for part in ("datacenters", "job ID", "job name", "job region", "job type", "namespace",
                 "task groups"):
        assert part in text


def test_task_group_errors_as_structs_test_expects() -> None:
    # structs_test.go:381 "job task group is type invalid"
    restart = new("RestartPolicy", Interval=5 * 60 * 10**9, Delay=10 * 10**9, Attempts=10)
    job = new("Job", Region="global", ID="x", Namespace="test", Name="my-job", Type="service",
              Priority=50, Datacenters=["*"], TaskGroups=[
                  new("TaskGroup", Name="web", RestartPolicy=restart),
                  new("TaskGroup", Name="web", RestartPolicy=restart),
                  new("TaskGroup", RestartPolicy=restart)])
    text = multierror(validate_job(job))
    for part in ("2 redefines 'web' from group 1", "group 3 missing name",
                 "Task group web validation failed", "Missing tasks for task group",
                 "Unsupported restart mode", "Task Group web should have a reschedule policy",
                 "Task Group web should have an ephemeral disk object"):
        assert part in text


def test_nested_multierror_text_on_register_is_500() -> None:
    job = web()
    job["TaskGroups"][0]["Tasks"][0]["Driver"] = ""
    job["TaskGroups"][0]["Tasks"][0]["Resources"] = {"MemoryMB": 5}
    err = refusal(job)
    # Task.Validate appends Resources.Validate's multierror, which holds MeetsMinResources' own
    inner = multierror(["Missing task driver",
                        multierror([multierror(["minimum MemoryMB value is 10; got 5"])])])
    assert err.status == 500
    assert err.text == multierror([
        "Task group api validation failed: " + multierror([
            "Task app validation failed: " + inner])])


def test_periodic_service_job_is_refused() -> None:
    job = web()
    job["Periodic"] = {"Spec": "*/5 * * * *"}
    assert refusal(job).text == multierror([
        'Periodic can only be used with "batch" or "sysbatch" scheduler'])


def test_bad_cron_spec_is_cronexprs_error() -> None:
    job = web()
    job["Type"] = "batch"
    job["Periodic"] = {"Spec": "61 * * * *"}
    assert refusal(job).text == multierror([multierror([
        "Invalid cron spec \"61 * * * *\": syntax error in minute field: '61'"])])


def test_count_outside_scaling_bounds_is_refused() -> None:
    # structs_test.go TestJob_ValidateScaling
    job = web(Count=10, Scaling={"Min": 1, "Max": 5})
    assert refusal(job).text == multierror([
        "Task group api validation failed: " + multierror([
            "Task group scaling policy validation failed: " + multierror([
                "Scaling policy invalid: task group count must not be greater than maximum "
                "count in scaling policy"])])])


def test_count_comes_from_scaling_min_when_unset() -> None:
    # api/tasks.go:530 TaskGroup.Canonicalize
    job = web(Scaling={"Min": 3, "Max": 5})
    del job["TaskGroups"][0]["Count"]
    group = register(job)["TaskGroups"][0]
    assert group["Count"] == 3
    assert group["Scaling"]["Target"] == {"Namespace": "default", "Job": "web", "Group": "api"}


def test_port_collisions_and_constraint_operands() -> None:
    job = web(Networks=[{"ReservedPorts": [{"Label": "a", "Value": 80},
                                           {"Label": "b", "Value": 80}]}],
              Constraints=[{"LTarget": "${node.class}", "RTarget": "x"}])
    text = refusal(job).text
    assert "Static port 80 already reserved by taskgroup network:a" in text
    assert "Constraint 1 validation failed: " + multierror([
        "Missing constraint operand", 'Unknown constraint type ""']) in text


def test_check_rules_follow_the_service_provider() -> None:
    # nomad/structs/services.go validateConsulService / validateNomadService and validateCommon
    checks = [{"Name": "c", "Type": "http", "Path": "http://x/", "Interval": 10**10,
               "Timeout": 10**9}]
    job = web(Services=[{"Name": "web", "PortLabel": "http", "Checks": checks}],
              Networks=[{"DynamicPorts": [{"Label": "http"}]}])
    assert "Check c invalid: http type must have relative http path" in refusal(job).text
    checks[0] |= {"Path": "/", "Interval": 10**8, "SuccessBeforePassing": 2}
    job["TaskGroups"][0]["Services"][0]["Provider"] = "nomad"
    assert "interval (100ms) cannot be lower than 1s" in refusal(job).text
    checks[0]["Interval"] = 10**10
    assert "success_before_passing may only be set for Consul service checks" in refusal(
        job).text


def test_task_blocks_follow_their_validate_methods() -> None:
    job = web(Volumes={"data": {"Type": "host", "Source": ""}})
    task = job["TaskGroups"][0]["Tasks"][0]
    task["VolumeMounts"] = [{"Volume": "data", "Destination": "/d", "PropagationMode": "x"}]
    task["Identities"] = [{"Name": "bad name", "Audience": ["a"]}]
    task["Secrets"] = [{"Name": "s", "Provider": "vault", "Path": "p"}]
    task["Artifacts"] = [{"GetterSource": "https://x/y", "GetterOptions": {"checksum": "md5:zz"}}]
    text = refusal(job).text
    # structs.go:9921 validateChecksum with encoding/hex's error
    assert "Artifact 1 validation failed: " + multierror([
        "invalid checksum: encoding/hex: invalid byte: U+007A 'z'"]) in text
    # volumes.go:147, volumes.go VolumeMount.Validate, workload_id.go:451, Task.Validate
    assert "Task group volume validation for data failed: " + multierror([
        "volume has an empty source"]) in text
    assert 'Volume Mount (0) is invalid: "' + multierror([
        'volume mount has an invalid propagation mode: "x"']) + '"' in text
    assert 'Identity "bad name" is invalid: ' + multierror([
        'invalid name "bad name". Must match regex ^[a-zA-Z0-9-_]{1,128}$']) in text
    assert 'Secret "s" has provider "vault" but no vault block' in text


def test_nonexistent_node_pool() -> None:
    job = web()
    job["NodePool"] = "gpu"
    assert refusal(job).text == multierror(['job "web" is in nonexistent node pool "gpu"'])


def test_validate_endpoint_answers_200_with_validation_errors() -> None:
    job = web()
    job["TaskGroups"][0]["Tasks"][0]["Driver"] = ""
    reply = validate_response(decode_validate(body(job)))
    # nomad/job_endpoint.go:486 Job.Validate: ValidationErrors are the top-level entries
    assert reply["ValidationErrors"] == [
        "Task group api validation failed: " + multierror([
            "Task app validation failed: " + multierror(["Missing task driver"])])]
    assert reply["Error"] == multierror(reply["ValidationErrors"])
    assert validate_response(decode_validate(body(web())))["ValidationErrors"] is None


def test_memory_max_is_a_warning_without_oversubscription() -> None:
    job = web()
    job["TaskGroups"][0]["Tasks"][0]["Resources"] = {"MemoryMB": 100, "MemoryMaxMB": 200}
    req = decode_register(body(job))
    warnings = admit(check_register(req, None)).warnings_text
    assert warnings == ('1 warning:\n\n* Memory oversubscription is not enabled; Task "api.app" '
                        "memory_max value will be ignored. Update the Scheduler Configuration "
                        "to allow oversubscription.")


def test_services_without_shutdown_delay_warn_as_nomad_does() -> None:
    # nomad/structs/structs.go generateTaskGroupServiceShutdownDelayWarnings, :4956 Warnings
    job = web(Services=[{"Name": "web", "PortLabel": "http"}], Update={"MaxParallel": 5},
              Networks=[{"DynamicPorts": [{"Label": "http"}]}])
    warnings = admit(check_register(decode_register(body(job)), None)).warnings
    assert warnings == [
        'Group "api" has warnings: ' + multierror([
            "Update max parallel count is greater than task group count (5 > 2). A destructive "
            "change would result in the simultaneous replacement of all allocations."]),
        'group "api" defines services, but neither the group nor any of its tasks have '
        "shutdown_delay set"]


def test_region_and_namespace_come_from_the_request_first() -> None:
    # command/agent/job_endpoint.go:1057 regionForJob, :1109 namespaceForJob
    req = decode_register(body(web(), Region="east", Namespace="team"))
    admitted = admit(check_register(req, None), write_region=req.region,
                     write_namespace=req.namespace)
    assert (admitted.region, admitted.job["Region"], admitted.job["Namespace"]) == (
        "east", "east", "team")


def test_register_against_the_stored_job() -> None:
    # nomad/job_endpoint.go:222 EnforceIndex, :1946 validateJobUpdate, state_store.go:5709
    stored = register(web(Scaling={"Min": 1, "Max": 10}))
    stored["JobModifyIndex"] = 7
    stored["TaskGroups"][0]["Count"] = 4
    stored["TaskGroups"][0]["Scaling"]["ID"] = "policy-1"
    req = decode_register(body(web(Scaling={"Min": 1, "Max": 10}), EnforceIndex=True,
                               JobModifyIndex=7, PreserveCounts=True))
    new = admit(check_register(req, None)).job
    kept = against_existing(stored, new, req)
    assert kept["TaskGroups"][0]["Count"] == 4
    assert kept["TaskGroups"][0]["Scaling"]["ID"] == "policy-1"
    stale = decode_register(body(web(), EnforceIndex=True, JobModifyIndex=3))
    with pytest.raises(NomadApiError) as err:
        against_existing(stored, new, stale)
    assert err.value.text == ("Enforcing job modify index 3: job exists with conflicting job "
                              "modify index: 7")
    batch = copy.deepcopy(new)
    batch["Type"] = "batch"
    with pytest.raises(NomadApiError, match=r'^cannot update job from type "service" to "batch"$'):
        against_existing(stored, batch, None)


def test_spec_changed_ignores_server_fields() -> None:
    a = register(web())
    b = copy.deepcopy(a)
    b["Version"], b["JobModifyIndex"], b["Status"] = 3, 99, "running"
    assert not spec_changed(a, b)
    b["TaskGroups"][0]["Count"] = 5
    assert spec_changed(a, b)


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1500, "1.5µs"), (10**9, "1s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
    (1_500_000_000, "1.5s"), (-5 * 10**9, "-5s"), (250_000_000, "250ms"),
])
def test_go_duration_text(ns: int, text: str) -> None:
    # Go's time.Duration.String(), as validation messages print durations
    assert go_duration(ns) == text


# --- TestTaskGroup_Validate (nomad/structs/structs_test.go:1497), case by case ------------------

MIN = 60 * 10**9
SEC = 10**9


def _restart(**kw: Any) -> Obj:
    return new("RestartPolicy", **{"Interval": 5 * MIN, "Delay": 10 * SEC, "Attempts": 10,
                                   "Mode": "delay", **kw})


def _service_update(**kw: Any) -> Obj:
    return new("UpdateStrategy", **{"Stagger": 30 * SEC, "MaxParallel": 1,
                                    "HealthCheck": "checks", "MinHealthyTime": 10 * SEC,
                                    "HealthyDeadline": 5 * MIN, "ProgressDeadline": 10 * MIN,
                                    **kw})


def _runnable(**kw: Any) -> Obj:
    return new("Task", **{"Driver": "mock_driver", "Resources": new("Resources", CPU=100,
                                                                    MemoryMB=300),
                          "LogConfig": new("LogConfig", MaxFiles=10, MaxFileSizeMB=10), **kw})


def _ports(*labels: tuple[str, int]) -> list[Obj]:
    return [new("NetworkResource", ReservedPorts=[new("Port", Label=label, Value=value)
                                                  for label, value in labels])]


GROUP_CASES: list[tuple[str, Obj, str, list[str]]] = [
    ("task group is missing basic specs",
     new("TaskGroup", Count=-1, RestartPolicy=_restart(),
         ReschedulePolicy=new("ReschedulePolicy", Interval=5 * MIN, Attempts=5, Delay=5 * SEC)),
     "service", ["group name", "count can't be negative", "Missing tasks"]),
    ("two tasks using same port",
     new("TaskGroup", Tasks=[
         new("Task", Name="task-a", Resources=new("Resources", Networks=_ports(("foo", 123)))),
         new("Task", Name="task-b", Resources=new("Resources", Networks=_ports(("foo", 123))))]),
     "service", ["Static port 123 already reserved by task-a:foo"]),
    ("multiple leaders defined and one empty task",
     new("TaskGroup", Name="web", Count=1, Tasks=[
         new("Task", Name="web", Leader=True), new("Task", Name="web", Leader=True),
         new("Task")], RestartPolicy=_restart(),
         ReschedulePolicy=new("ReschedulePolicy", Interval=5 * MIN, Attempts=10,
                              Delay=5 * SEC, DelayFunction="constant")),
     "service", ["should have an ephemeral disk object", "2 redefines 'web' from task 1",
                 "Task 3 missing name", "Only one task may be marked as leader",
                 "Task web validation failed"]),
    ("invalid update block for batch job",
     new("TaskGroup", Name="web", Count=1, Tasks=[new("Task", Name="web", Leader=True)],
         Update=_service_update()),
     "batch", ["does not allow update block"]),
    ("invalid reschedule policy for system job",
     new("TaskGroup", Count=-1, RestartPolicy=_restart(),
         ReschedulePolicy=new("ReschedulePolicy", Interval=5 * MIN, Attempts=5, Delay=5 * SEC)),
     "system", ["System or sysbatch jobs should not have a reschedule policy"]),
    ("invalid max run duration for service job",
     new("TaskGroup", Name="web", Count=1, MaxRunDuration=5 * MIN,
         Tasks=[new("Task", Name="web")]),
     "service", ['Job type "service" does not allow max_run_duration']),
    ("invalid non-positive max run duration for batch job",
     new("TaskGroup", Name="web", Count=1, MaxRunDuration=0, Tasks=[new("Task", Name="web")]),
     "batch", ["MaxRunDuration must be greater than zero"]),
    ("invalid volume type",
     new("TaskGroup", Volumes={"foo": new("VolumeRequest", Type="nothost", Source="foo")},
         Tasks=[new("Task", Name="task-a", Resources=new("Resources"))]),
     "service", ["volume has unrecognized type nothost"]),
    ("invalid volume with wrong CSI and canary specs",
     new("TaskGroup", Name="group-a", Update=new("UpdateStrategy", Canary=1),
         Volumes={"foo": new("VolumeRequest", Type="csi", PerAlloc=True)},
         Tasks=[new("Task", Name="task-a", Resources=new("Resources"))]),
     "service", ["volume has an empty source",
                 "volume cannot be per_alloc when canaries are in use",
                 "CSI volumes must have an attachment mode",
                 "CSI volumes must have an access mode"]),
    ("invalid task referencing non existent task",
     new("TaskGroup", Name="group-a", Services=[new(
         "Service", Name="service-a", Provider="consul", Checks=[new(
             "ServiceCheck", Name="check-a", Type="tcp", TaskName="task-b", PortLabel="http",
             Interval=SEC, Timeout=SEC)])], Tasks=[new("Task", Name="task-a")]),
     "service", ["Check check-a invalid: refers to non-existent task task-b"]),
    ("services inside group using different providers",
     new("TaskGroup", Name="group-a", Services=[
         new("Service", Name="service-a", Provider="nomad"),
         new("Service", Name="service-b", Provider="consul")],
         Tasks=[new("Task", Name="task-a")]),
     "service", ["Multiple service providers used: task group services must use the same "
                 "provider"]),
    ("conflicting progress deadline and kill timeout",
     new("TaskGroup", Name="web", Count=1, Tasks=[
         new("Task", Name="web", Leader=True, KillTimeout=10 * MIN + 25 * MIN)],
         Update=_service_update()),
     "service", ["KillTimout (35m0s) longer than the group's ProgressDeadline (10m0s)"]),
    ("task group with only a poststart lifecycle task and no main task",
     new("TaskGroup", Name="group-a", RestartPolicy=_restart(Delay=15 * SEC, Attempts=2,
                                                             Interval=30 * MIN, Mode="fail"),
         ReschedulePolicy=new("ReschedulePolicy", Delay=30 * SEC, DelayFunction="exponential",
                              MaxDelay=3600 * SEC, Unlimited=True),
         Migrate=new("MigrateStrategy", MaxParallel=1, HealthCheck="checks",
                     MinHealthyTime=10 * SEC, HealthyDeadline=5 * MIN),
         EphemeralDisk=new("EphemeralDisk", SizeMB=300),
         Tasks=[_runnable(Name="poststart-task", Lifecycle=new(
             "TaskLifecycleConfig", Hook="poststart"))]),
     "service", ["Task group group-a must have at least one main task"]),
    ("progress_deadline 0 does not conflict with kill_timeout",
     new("TaskGroup", Name="web", Count=1, Tasks=[
         _runnable(Name="web", Leader=True, KillTimeout=35 * MIN)],
         Update=_service_update(ProgressDeadline=0),
         RestartPolicy=_restart(Delay=15 * SEC, Attempts=2, Interval=30 * MIN, Mode="fail"),
         ReschedulePolicy=new("ReschedulePolicy", Delay=30 * SEC, DelayFunction="exponential",
                              MaxDelay=3600 * SEC, Unlimited=True),
         Migrate=new("MigrateStrategy", MaxParallel=1, HealthCheck="checks",
                     MinHealthyTime=10 * SEC, HealthyDeadline=5 * MIN),
         EphemeralDisk=new("EphemeralDisk", SizeMB=300)),
     "service", []),
]


@pytest.mark.parametrize(("group", "job_type", "expected"),
                         [(g, t, e) for _, g, t, e in GROUP_CASES],
                         ids=[name for name, *_ in GROUP_CASES])
def test_task_group_validate_cases(group: Obj, job_type: str, expected: list[str]) -> None:
    errors = validate_group(group, new("Job", Type=job_type))
    text = multierror(errors) if errors else ""
    assert (errors == []) == (expected == [])
    for part in expected:  # structs_test.go requireErrors: each text appears
        assert part in text


def test_submission_is_stored_with_escaped_variables_or_dropped_when_too_big() -> None:
    # api/jobs.go:1072 JobSubmission.Canonicalize, nomad/job_endpoint_hooks.go submissionController
    req = decode_register(body(web(), Submission={
        "Source": 'job "web" {}', "Format": "hcl2", "VariableFlags": {"msg": "a b\nc"}}))
    stored, warning = submission(req, register(web()))
    assert warning is None and stored is not None
    assert (stored["VariableFlags"], stored["JobID"], stored["Namespace"]) == (
        {"msg": "a+b%0Ac"}, "web", "default")
    big = decode_register(body(web(), Submission={"Source": "x" * 1_000_001, "Format": "hcl2"}))
    assert submission(big, register(web())) == (
        None, "job source size of 1.0 MB exceeds maximum of 1.0 MB and will be discarded")
