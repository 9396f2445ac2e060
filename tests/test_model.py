"""The job model: immutable values, natural construction, and validation with paths."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from nomadmesh import (
    Check,
    Constraint,
    Group,
    Job,
    Lifecycle,
    Network,
    Port,
    Resources,
    Service,
    Task,
    Template,
    UpdateStrategy,
    ValidationError,
    VolumeMount,
)
from nomadmesh.model import FrozenDict, format_duration, parse_duration


def web_job(**group_changes: object) -> Job:
    group = Group(
        "api",
        count=2,
        networks=[Network(ports=[Port("http", to=8080)])],
        services=[Service(name="web", port="http")],
        tasks=[Task("app", driver="docker", config={"image": "nginx"})],
    )
    return Job("web", groups=[attrs.evolve(group, **group_changes)])


def paths(job: Job) -> list[str]:
    return [p.path for p in job.problems_list()]


def test_a_job_reads_naturally_with_positional_names() -> None:
    job = Job("service-a", groups=[Group("api", count=2, tasks=[
        Task("app", driver="docker", config={"image": "service-a"})])])
    assert job.id == "service-a"
    assert job.group("api").count == 2  # type: ignore[union-attr]
    assert job.group("api").task("app").config["image"] == "service-a"  # type: ignore[union-attr]


def test_model_objects_are_immutable() -> None:
    job = web_job()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        job.groups[0].tasks[0].config["image"] = "other"  # type: ignore[index]


def test_lists_become_tuples_and_maps_become_frozen() -> None:
    task = Task("app", driver="docker", config={"args": ["-v"]}, env={"A": "1"})
    assert task.config["args"] == ("-v",)
    assert isinstance(task.env, FrozenDict)
    assert hash(task) == hash(Task("app", driver="docker", config={"args": ["-v"]}, env={"A": "1"}))


def test_evolve_returns_a_changed_copy() -> None:
    job = web_job()
    changed = attrs.evolve(job, priority=80)
    assert changed.priority == 80
    assert job.priority is None


@pytest.mark.parametrize(("given", "ns"), [
    ("10s", 10_000_000_000),
    ("1h30m", 5_400_000_000_000),
    ("1.5s", 1_500_000_000),
    ("250ms", 250_000_000),
    (timedelta(minutes=2), 120_000_000_000),
    (7, 7),
])
def test_durations_accept_go_strings_timedeltas_and_nanoseconds(given: object, ns: int) -> None:
    assert Task("t", driver="exec", kill_timeout=given).kill_timeout == ns


@pytest.mark.parametrize(("ns", "text"), [
    (10_000_000_000, "10s"), (5_400_000_000_000, "1h30m"), (1_500_000_000, "1500ms"),
    (0, "0s"), (3_600_000_000_000, "1h"),
])
def test_durations_format_as_compact_go_strings(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_duration(text) == ns


def test_a_bad_duration_is_reported_with_its_path() -> None:
    job = web_job(tasks=[Task("app", driver="docker", kill_timeout="ten seconds")])
    problems = job.problems_list()
    assert [p.path for p in problems] == ["job[web].group[api].task[app].kill_timeout"]
    assert "not a duration" in problems[0].message


def test_a_valid_job_validates_to_itself() -> None:
    job = web_job()
    assert job.validate() is job


def test_validation_reports_every_problem_at_once_with_paths() -> None:
    job = web_job(count=-1, tasks=[Task("app", driver="docker", resources=Resources(memory=5)),
                                   Task("app", driver="docker")])
    with pytest.raises(ValidationError) as caught:
        job.validate()
    assert {p.path for p in caught.value.problems} == {
        "job[web].group[api].count",
        "job[web].group[api].task[app]",
        "job[web].group[api].task[app].resources.memory",
    }
    assert "job[web].group[api].task[app].resources.memory: memory 5 MB is below" in str(caught.value)


def test_wrong_python_types_are_reported_not_raised() -> None:
    job = web_job(count="two")
    assert paths(job) == ["job[web].group[api].count"]


def test_job_id_may_not_contain_spaces() -> None:
    job = attrs.evolve(web_job(), id="my job")
    assert "job[my job]" in paths(job)


def test_priority_must_be_between_1_and_100() -> None:
    assert paths(attrs.evolve(web_job(), priority=101)) == ["job[web].priority"]


def test_service_port_must_name_a_group_port() -> None:
    job = web_job(services=[Service(name="web", port="htp")])
    [problem] = job.problems_list()
    assert problem.path == "job[web].group[api].service[0].port"
    assert "ports: http" in problem.message


def test_numeric_service_ports_need_no_label() -> None:
    assert paths(web_job(services=[Service(name="web", port="9001")])) == []


def test_a_port_label_declared_twice_is_an_error() -> None:
    job = web_job(networks=[Network(ports=[Port("http"), Port("http", static=80)])])
    assert "job[web].group[api].network.port[http]" in paths(job)


def test_cpu_must_be_at_least_1_and_memory_at_least_10() -> None:
    job = web_job(tasks=[Task("app", driver="docker", resources=Resources(cpu=0, memory=9))])
    assert paths(job) == ["job[web].group[api].task[app].resources.cpu",
                          "job[web].group[api].task[app].resources.memory"]


def test_lifecycle_hook_must_be_known() -> None:
    job = web_job(tasks=[Task("app", driver="docker"),
                         Task("side", driver="docker", lifecycle=Lifecycle(hook="before"))])
    assert paths(job) == ["job[web].group[api].task[side].lifecycle.hook"]


def test_a_template_needs_a_destination_and_content() -> None:
    job = web_job(tasks=[Task("app", driver="docker", templates=[Template()])])
    assert paths(job) == ["job[web].group[api].task[app].template[0]",
                          "job[web].group[api].task[app].template[0].destination"]


def test_signal_change_mode_needs_a_signal() -> None:
    t = Template(data="x", destination="local/x", change_mode="signal")
    job = web_job(tasks=[Task("app", driver="docker", templates=[t])])
    assert paths(job) == ["job[web].group[api].task[app].template[0].change_signal"]


def test_constraint_operator_must_be_known() -> None:
    job = attrs.evolve(web_job(), constraints=[Constraint(attribute="${attr.os}", operator="~",
                                                          value="linux")])
    assert paths(job) == ["job[web].constraint[0].operator"]


def test_volume_mount_must_reference_a_group_volume() -> None:
    job = web_job(tasks=[Task("app", driver="docker",
                              volume_mounts=[VolumeMount(volume="data", destination="/d")])])
    assert paths(job) == ["job[web].group[api].task[app].volume_mount[0].volume"]


def test_http_check_needs_a_path_interval_and_timeout() -> None:
    job = web_job(services=[Service(name="web", port="http", checks=[Check(type="http")])])
    assert sorted(paths(job)) == [
        "job[web].group[api].service[0].check[0].interval",
        "job[web].group[api].service[0].check[0].path",
        "job[web].group[api].service[0].check[0].timeout",
    ]


def test_periodic_and_parameterized_need_batch_jobs() -> None:
    from nomadmesh import Parameterized, Periodic

    job = attrs.evolve(web_job(), periodic=Periodic(crons=["@daily"]),
                       parameterized=Parameterized())
    assert paths(job) == ["job[web].periodic", "job[web].parameterized"]


def test_batch_jobs_take_no_update_strategy() -> None:
    job = attrs.evolve(web_job(update=UpdateStrategy(max_parallel=1)), type="batch")
    assert paths(job) == ["job[web].group[api].update"]


def test_update_min_healthy_time_must_be_below_healthy_deadline() -> None:
    job = attrs.evolve(web_job(), update=UpdateStrategy(min_healthy_time="5m",
                                                        healthy_deadline="1m"))
    assert paths(job) == ["job[web].update.min_healthy_time"]


def test_static_ports_come_first_so_the_json_round_trip_is_exact() -> None:
    network = Network(ports=[Port("http"), Port("admin", static=9000)])
    assert [p.label for p in network.ports] == ["admin", "http"]


def test_a_static_port_of_zero_means_dynamic_as_in_nomad() -> None:
    port = Port("http", static=0)
    assert port.static is None
    network = Network(ports=[port])
    assert Job.from_api(Job("j", groups=[Group("g", networks=[network], tasks=[
        Task("t", driver="exec")])]).to_api()).groups[0].networks[0] == network
