"""Validation as Nomad's server does it (nomad/structs at aa026cc99cfb): Nomad's rules and messages,
on the job as the server stores it, with nomadmesh paths; nothing Nomad accepts is refused."""

from __future__ import annotations

from typing import Any

import pytest

from nomadmesh import (
    Affinity,
    Artifact,
    Check,
    Constraint,
    ConsulConnect,
    ConsulGateway,
    ConsulIngressConfigEntry,
    ConsulSidecarService,
    Group,
    Job,
    Lifecycle,
    Network,
    Port,
    ReschedulePolicy,
    Resources,
    RestartPolicy,
    Scaling,
    Secret,
    Service,
    Spread,
    Task,
    Template,
    UpdateStrategy,
    ValidationError,
    VolumeMount,
    VolumeRequest,
    WorkloadIdentity,
    evolve,
)
from nomadmesh.model.validation import go_duration


def job(*, job: dict[str, Any] | None = None, group: dict[str, Any] | None = None,
        task: dict[str, Any] | None = None) -> Job:
    t = Task("app", **{"driver": "docker", "config": {"image": "nginx"}, **(task or {})})
    g = Group("api", tasks=[t], **(group or {}))
    fields = dict(job or {})
    return Job(fields.pop("id", "web"), groups=[g], **fields)


def problems(j: Job) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in j.problems_list()]


G = "job[web].group[api]"
T = f"{G}.task[app]"


def test_a_minimal_job_is_valid_because_the_server_fills_region_datacenters_and_defaults() -> None:
    assert problems(job()) == []
    assert job().validate() == job()


@pytest.mark.parametrize(("changes", "expected"), [
    # nomad/structs/structs.go:4743-4754 Job.Validate
    ({"job": {"id": "my web"}}, [("job[my web]", "Job ID contains a space")]),
    ({"job": {"name": "a\x00b"}}, [("job[web].name", "Job Name contains a null character")]),
    ({"job": {"type": "cron"}}, [("job[web].type", 'Invalid job type: "cron"')]),
    ({"job": {"type": ""}}, [("job[web].type", "Missing job type")]),
    ({"job": {"datacenters": ["dc1", ""]}},
     [("job[web].datacenters[1]", "Job datacenter must be non-empty string")]),
    # structs.go:4856 periodic only with batch
    ({"job": {"periodic": {"crons": ["* * * * *"]}}},
     [("job[web].periodic", 'Periodic can only be used with "batch" or "sysbatch" scheduler')]),
    # structs.go:4836 system jobs
    ({"job": {"type": "system"}, "group": {"count": 3}},
     [(f"{G}.count", "Job task group api has count 3. Count cannot exceed 1 with system scheduler")]),
    ({"job": {"type": "system", "affinities": [Affinity(attribute="${node.class}", value="x")]}},
     [("job[web].affinity", "System jobs may not have an affinity block")]),
])
def test_job_rules(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    if "periodic" in changes.get("job", {}):
        from nomadmesh import Periodic

        changes["job"]["periodic"] = Periodic(**changes["job"]["periodic"])
    assert problems(job(**changes)) == expected


def test_duplicate_groups_and_tasks_are_named_as_nomad_does() -> None:
    """structs.go:4819 and :7215: "redefines" with 1-based indexes."""
    t = Task("app", driver="docker")
    j = Job("web", groups=[Group("api", tasks=[t, t]), Group("api", tasks=[t])])
    assert ("job[web].group[api]", "Job task group 2 redefines 'api' from group 1") in problems(j)
    assert (f"{G}.task[app]", "Task 2 redefines 'app' from task 1") in problems(j)


@pytest.mark.parametrize(("changes", "expected"), [
    # structs.go:7111 TaskGroup.Validate
    ({"group": {"count": -1}}, [(f"{G}.count", "Task group count can't be negative")]),
    ({"group": {"max_run_duration": "1h"}},
     [(f"{G}.max_run_duration", 'Job type "service" does not allow max_run_duration')]),
    ({"job": {"type": "batch"}, "group": {"update": UpdateStrategy(max_parallel=2)}},
     [(f"{G}.update", 'Job type "batch" does not allow update block')]),
    ({"group": {"ephemeral_disk": {"size": 5}}},
     [(f"{G}.ephemeral_disk.size", "minimum DiskMB value is 10; got 5"),
      (f"{T}.logs", "log storage (100 MB) must be less than requested disk capacity (5 MB)")]),
    # structs.go:6565 RestartPolicy.Validate
    ({"group": {"restart": RestartPolicy(mode="delay", attempts=0)}},
     [(f"{G}.restart.attempts", 'Restart policy "delay" with 0 attempts is ambiguous')]),
    ({"group": {"restart": RestartPolicy(attempts=10, delay="5m", interval="10m")}},
     [(f"{G}.restart", "Nomad can't restart the TaskGroup 10 times in an interval of 10m0s with a "
                       "delay of 5m0s")]),
    # structs.go:6647 ReschedulePolicy.Validate
    ({"group": {"reschedule": ReschedulePolicy(attempts=3, interval="1m", unlimited=False,
                                               delay_function="constant", delay="30s")}},
     [(f"{G}.reschedule", "Nomad can only make 2 attempts in 1m0s with initial delay 30s and delay "
                          'function "constant"'),
      (f"{G}.reschedule.interval", "Set the interval to at least 1m30s to accommodate 3 attempts")]),
    # structs.go:5464 UpdateStrategy.Validate
    ({"group": {"update": UpdateStrategy(min_healthy_time="10m", healthy_deadline="5m")}},
     [(f"{G}.update.min_healthy_time",
       "Minimum healthy time must be less than healthy deadline: 10m0s > 5m0s")]),
    ({"group": {"update": UpdateStrategy(auto_promote=True)}},
     [(f"{G}.update.auto_promote", "Auto Promote requires a Canary count greater than zero")]),
    # structs.go:7594 validateScalingPolicy (asserted by Nomad's e2e/scaling/scaling_test.go:87)
    ({"group": {"count": 4, "scaling": Scaling(min=2, max=3)}},
     [(f"{G}.scaling.max", "Scaling policy invalid: task group count must not be greater than "
                           "maximum count in scaling policy")]),
])
def test_group_rules(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    group = changes.get("group", {})
    if isinstance(group.get("ephemeral_disk"), dict):
        from nomadmesh import EphemeralDisk

        group["ephemeral_disk"] = EphemeralDisk(**group["ephemeral_disk"])
    assert problems(job(**changes)) == expected


def test_ports_are_checked_as_nomads_validate_networks() -> None:
    """structs.go:7314: a label twice, a static port twice, a mapping out of range."""
    network = Network(ports=[Port("http", static=80), Port("http"), Port("admin", static=80),
                             Port("x", to=70000)])
    # Reserved ports first, then dynamic ones: Nomad's order (append(ReservedPorts, DynamicPorts)).
    assert problems(job(group={"networks": [network]})) == [
        (f"{G}.network.port[admin].static", "Static port 80 already reserved by taskgroup network:http"),
        (f"{G}.network.port[http]", "Port label http already in use by taskgroup network"),
        (f"{G}.network.port[x].to", 'Port "x" cannot be mapped to a port (70000) greater than 65535'),
    ]


@pytest.mark.parametrize(("changes", "expected"), [
    # structs.go:8202 Task.Validate
    ({"task": {"driver": None}}, [(f"{T}.driver", "Missing task driver")]),
    ({"task": {"kill_timeout": "20m"}, "group": {"update": UpdateStrategy(progress_deadline="10m")}},
     [(f"{T}.kill_timeout", "KillTimout (20m0s) longer than the group's ProgressDeadline (10m0s)")]),
    ({"task": {"lifecycle": Lifecycle(hook="later")}},
     [(G, "Task group api must have at least one main task"),
      (f"{T}.lifecycle.hook", "Lifecycle validation failed: invalid hook: later")]),
    # structs.go:2420 Resources.Validate
    ({"task": {"resources": Resources(cpu=0, memory=5, memory_max=3)}},
     [(f"{T}.resources.cpu", "minimum CPU value is 1; got 0"),
      (f"{T}.resources.memory", "minimum MemoryMB value is 10; got 5"),
      (f"{T}.resources.memory_max", "MemoryMaxMB value (3) should be larger than MemoryMB value (5)")]),
    # structs.go:10021 Constraint.Validate
    ({"task": {"constraints": [Constraint(attribute="${attr.kernel.name}", operator="~=")]}},
     [(f"{T}.constraint[0].operator", 'Unknown constraint type "~="')]),
    ({"task": {"constraints": [Constraint(attribute="${foo.bar}", value="x", operator="=")]}},
     [(f"{T}.constraint[0].attribute", 'unsupported attribute "${foo.bar}"')]),
    ({"task": {"constraints": [Constraint(operator="distinct_hosts")]}},
     [(f"{T}.constraint[0].operator", "Constraint has disallowed Operand at task level: "
                                      "distinct_hosts")]),
    # structs.go:8933 Template.Validate
    ({"task": {"templates": [Template(data="x", destination="../../../etc/passwd")]}},
     [(f"{T}.template[0].destination", "destination escapes allocation directory")]),
    ({"task": {"templates": [Template(data="x", destination="a", change_mode="signal", env=True)]}},
     [(f"{T}.template[0].env", "cannot use signals with env var templates")]),
    # structs.go:9889 TaskArtifact.Validate (checksum rules at :9921)
    ({"task": {"artifacts": [Artifact(source="https://x/y", options={"checksum": "md5:abcd"})]}},
     [(f"{T}.artifact[0].options.checksum", "invalid md5 checksum: abcd")]),
    # structs.go:8370 volume mounts
    ({"task": {"volume_mounts": [VolumeMount(volume="data", destination="/d")]}},
     [(f"{T}.volume_mount[0].volume", "Volume Mount (0) references undefined volume data")]),
    # nomad/structs/workload_id.go:451 WorkloadIdentity.Validate
    ({"task": {"identities": [WorkloadIdentity(name="vault", aud=["x"], change_mode="signal")]}},
     [(f"{T}.identity[vault].change_signal", 'Identity "vault" is invalid: change_signal must be '
                                             'specified when using change_mode="signal"')]),
    # structs.go:10590 Secret.Validate and its task-level checks
    ({"task": {"secrets": [Secret("db", provider="vault", path="kv/db", env={"A": "b"})]}},
     [("job[web].group[api].task[app].secret[db].provider",
       'Secret "db" has provider "vault" but no vault block'),
      ("job[web].group[api].task[app].secret[db].env",
       'Secret "db" is invalid: vault provider cannot use the env block')]),
])
def test_task_rules(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems(job(**changes)) == expected


@pytest.mark.parametrize(("service", "expected"), [
    # nomad/structs/services.go:944 ValidateName (RFC 1123), after ${...} became ENV-VAR
    (Service(name="web_api"), [("service[0].name", "Service name must be valid per RFC 1123 and can "
                                "contain only alphanumeric characters or dashes and must be no longer "
                                'than 63 characters: "web_api"')]),
    (Service(name="${NOMAD_JOB_NAME}-api"), []),
    # services.go:257 validateCommon: the first problem of a check
    (Service(name="web", port="http", checks=[Check(type="http", interval="10s", timeout="1s")]),
     # the server names the check before validating it (services.go:240)
     [("service[0].check[0].path", 'Check service: "web" check invalid: http type must have http '
                                   "path")]),
    (Service(name="web", checks=[Check(type="tcp", interval="10s", timeout="1s")]),
     [("service[0].check[0].port", 'Check service: "web" check invalid: check requires a port but '
                                   'neither check nor service "web" have a port')]),
    (Service(name="web", port="http", provider="nomad", checks=[
        Check(type="grpc", interval="10s", timeout="1s")]),
     [("service[0].check[0].type", 'invalid check type ("grpc"), must be one of tcp, http')]),
    # services.go:1334 ConsulConnect.Validate; the Connect hook treats the service as a sidecar
    # (job_endpoint_hook_connect.go:288 switches on HasSidecar first), so no task is inferred
    # for it and services.go:894 refuses it too
    (Service(name="web", port="http", connect=ConsulConnect(native=True,
                                                            sidecar_service=ConsulSidecarService())),
     [("service[0].connect", "Consul Connect must be exclusively native, make use of a sidecar, or "
                             "represent a Gateway"),
      ("service[0].task", "Service web is Connect Native and requires setting the task")]),
])
def test_group_service_rules(service: Service, expected: list[tuple[str, str]]) -> None:
    network = Network(mode="bridge", ports=[Port("http")])
    found = problems(job(group={"services": [service], "networks": [network]}))
    assert found == [(f"{G}.{path}", message) for path, message in expected]


def test_task_service_ports_must_be_labels_of_the_group_network() -> None:
    """structs.go:8440 validateServices: a numeric port needs address_mode = "driver"."""
    task = {"services": [Service(name="web", port="8080"), Service(name="db", port="5432",
                                                                    address_mode="driver")]}
    assert problems(job(task=task)) == [
        (f"{T}.service", 'port label "8080" referenced by services web does not exist')]


def test_volumes_follow_their_access_modes() -> None:
    """nomad/structs/volumes.go:147 VolumeRequest.Validate."""
    volumes = {"db": VolumeRequest("db", type="csi", source="db", access_mode="single-node-writer",
                                   attachment_mode="file-system")}
    assert problems(job(group={"volumes": volumes, "count": 2})) == [
        (f"{G}.volume[db].access_mode",
         "volume with single-node-writer access mode allows only one reader or writer")]


def test_connect_gateway_groups_need_no_task_because_nomad_injects_it() -> None:
    """nomad/job_endpoint_hook_connect.go:274 adds the gateway task before validation."""
    gateway = Service(name="ingress", port="8080", connect=ConsulConnect(
        gateway=ConsulGateway(ingress=ConsulIngressConfigEntry())))
    j = Job("web", groups=[Group("gw", networks=[Network(mode="bridge")], services=[gateway])])
    assert problems(j) == []


def test_a_connect_native_service_of_a_one_task_group_gets_that_task() -> None:
    """nomad/job_endpoint_hook_connect.go:327 getNamedTaskForNativeService."""
    native = Service(name="api", port="http", connect=ConsulConnect(native=True))
    network = Network(mode="bridge", ports=[Port("http")])
    assert problems(job(group={"services": [native], "networks": [network]})) == []


def test_warnings_are_nomads_and_nomadmeshs_and_never_refuse() -> None:
    """structs.go:7690 TaskGroup.Warnings; nomadmesh's own start with "nomadmesh:"."""
    j = job(group={"count": 2, "update": UpdateStrategy(max_parallel=5),
                   "services": [Service(name="web", port="http")]},
            task={"config": {"big": 2**60 + 1}})
    assert problems(j) == []
    assert [(w.path, w.message) for w in j.warnings()] == [
        (f"{G}.update.max_parallel", "Update max parallel count is greater than task group count "
                                     "(5 > 2). A destructive change would result in the "
                                     "simultaneous replacement of all allocations."),
        (f"{G}.service[0].port", "nomadmesh: port 'http' is not a port label of the group "
                                 "(ports: none declared)"),
        (f"{T}.config.big", "nomadmesh: Nomad keeps task config numbers as float64, so "
                            "1152921504606846977 becomes 1152921504606846976"),
    ]


def test_wrong_python_types_come_first_and_stop_the_rules() -> None:
    j = job(group={"count": "2"}, task={"resources": Resources(cpu=0)})
    assert [p.path for p in j.problems_list()] == [f"{G}.count"]


def test_validate_raises_with_every_problem() -> None:
    j = evolve(job(), groups=[Group("api"), Group("db", count=-1, tasks=[Task("t")])])
    with pytest.raises(ValidationError) as caught:
        j.validate()
    assert [p.path for p in caught.value.problems] == [
        "job[web].group[api]", "job[web].group[db].count", "job[web].group[db].task[t].driver"]


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1_500, "1.5µs"), (250_000_000, "250ms"), (1_500_000_000, "1.5s"),
    (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"), (-5_000_000_000, "-5s"),
])
def test_durations_in_messages_print_as_go_prints_them(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_a_spread_weight_of_zero_is_refused() -> None:
    """structs.go:10290 Spread.Validate."""
    j = job(job={"spreads": [Spread(attribute="${node.datacenter}", weight=0)]})
    assert problems(j) == [("job[web].spread[0].weight",
                            "Spread block must have a positive weight from 0 to 100")]


@pytest.mark.parametrize("zone", ["x" * 300, "America", "../etc", "Mars/Olympus"])
def test_a_bad_time_zone_is_a_problem_not_a_crash(zone: str) -> None:
    """structs.go:5911 PeriodicConfig.Validate: time.LoadLocation fails (fuzzing found zoneinfo's
    OSError for a long name and a directory)."""
    from nomadmesh import Periodic

    j = job(job={"type": "batch", "periodic": Periodic(cron="* * * * *", time_zone=zone)})
    assert problems(j) == [("job[web].periodic.time_zone",
                            f'Invalid time zone "{zone}": unknown time zone {zone}')]
