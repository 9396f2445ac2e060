"""The job model: immutable values, natural construction, fast copies, side values."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from nomadmesh import (
    Group,
    Job,
    Network,
    Port,
    Resources,
    Service,
    Submission,
    Task,
    ValidationError,
    VolumeRequest,
)
from nomadmesh.model import FrozenDict, evolve, format_duration, parse_duration
from nomadmesh.model._base import MAX_DEPTH


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


def test_wrong_python_types_are_reported_with_paths_not_raised() -> None:
    job = web_job(count="two")
    assert [(p.path, p.message) for p in job.problems_list()] == [
        ("job[web].group[api].count", "expected an integer from -9223372036854775808 to "
                                      "9223372036854775807 (Go int), got str 'two'")]


def test_evolve_is_attrs_evolve_through_the_constructor() -> None:
    task = Task("app", driver="docker")
    fast = evolve(task, env={"A": "1"}, kill_timeout="5s", name="web")
    assert fast == attrs.evolve(task, env={"A": "1"}, kill_timeout="5s", name="web")
    assert isinstance(fast.env, FrozenDict) and fast.kill_timeout == 5_000_000_000
    assert evolve(task) == task and evolve(task) is not task


def test_lists_are_accepted_where_tuples_are_stored() -> None:
    job = Job("web", datacenters=["dc1"], groups=[Group("api", tasks=[Task("t")])])
    assert job.datacenters == ("dc1",) and isinstance(job.groups, tuple)


def test_volumes_are_a_map_and_a_list_of_named_volumes_is_keyed_by_name() -> None:
    volume = VolumeRequest("data", type="host", source="data")
    assert Group("g", volumes=[volume]).volumes == {"data": volume}
    assert Group("g", volumes={"data": volume}) == Group("g", volumes=[volume])


def test_zero_of_a_plain_go_field_is_unset_but_a_pointer_keeps_its_zero() -> None:
    assert Task("t", leader=False, user="", shutdown_delay="0s") == Task("t")
    assert Group("g", count=0).count == 0
    assert Resources(cpu=0).cpu == 0


def test_the_job_carries_its_submission_outside_equality_and_hash() -> None:
    job = web_job()
    sourced = evolve(job, submission=Submission(source="job {}", format="hcl2",
                                                variable_flags={"a": "1"}))
    assert sourced == job and hash(sourced) == hash(job)
    assert sourced.submission is not None and sourced.submission.variable_flags == {"a": "1"}
    assert "submission" not in repr(sourced)


def test_a_config_nested_too_deeply_is_a_nomadmesh_error() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 5):
        deep = {"x": deep}
    with pytest.raises(ValidationError, match="nests more than"):
        Task("t", config=deep)  # type: ignore[arg-type]


def test_static_ports_come_first_so_the_json_round_trip_is_exact() -> None:
    network = Network(ports=[Port("a"), Port("b", static=80)])
    assert [p.label for p in network.ports] == ["b", "a"]
    job = Job("j", groups=[Group("g", networks=[network], tasks=[Task("t", driver="exec")])])
    assert Job.from_api(job.to_api()).groups[0].networks[0] == network


def test_a_static_port_of_zero_means_dynamic_as_in_nomad() -> None:
    assert not Port("http", static=0).is_static
