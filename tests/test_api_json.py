"""Nomad's API JSON, both ways: Go field names and shapes, nanoseconds, split ports, strict keys,
and what Go's decoder refuses (a wrong shape is the agent's 400)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from nomadmesh import (
    Check,
    Constraint,
    Group,
    Job,
    Network,
    Port,
    Resources,
    Service,
    Submission,
    Task,
    Template,
    ValidationError,
    VolumeRequest,
    WorkloadIdentity,
    canonicalize,
    evolve,
)
from nomadmesh.model._base import MAX_DEPTH

DATA = Path(__file__).parent / "data"


def sample_job() -> Job:
    return Job(
        "web",
        datacenters=["dc1"],
        constraints=[Constraint(attribute="${attr.kernel.name}", value="linux", operator="=")],
        groups=[Group(
            "api",
            count=2,
            networks=[Network(mode="bridge", ports=[Port("http", to=8080),
                                                    Port("admin", static=9000)])],
            services=[Service(name="web", port="http", checks=[
                Check(type="http", path="/health", interval="10s", timeout="2s")])],
            volumes=[VolumeRequest("data", type="host", source="data")],
            tasks=[Task("app", driver="docker", config={"image": "nginx", "ports": ["http"]},
                        resources=Resources(cpu=200, memory=128), kill_timeout="10s",
                        templates=[Template(data="x={{ env \"A\" }}", destination="local/x")])],
        )],
    )


def group_json(job: Job) -> dict[str, Any]:
    return job.to_api()["TaskGroups"][0]  # type: ignore[no-any-return]


def problems_of(data: Any, **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Job.from_api(data, **options)
    return [(p.path, p.message) for p in caught.value.problems]


def test_field_names_are_nomads_go_names() -> None:
    api = sample_job().to_api()
    task = api["TaskGroups"][0]["Tasks"][0]
    assert task["Resources"] == {"CPU": 200, "MemoryMB": 128}
    assert api["Constraints"] == [{"LTarget": "${attr.kernel.name}", "RTarget": "linux",
                                   "Operand": "="}]
    assert task["Templates"] == [{"EmbeddedTmpl": "x={{ env \"A\" }}", "DestPath": "local/x"}]
    assert api["TaskGroups"][0]["Services"][0]["PortLabel"] == "http"


def test_group_volumes_are_an_object_keyed_by_name_both_ways() -> None:
    """api.TaskGroup.Volumes is map[string]*VolumeRequest: a list is the agent's 400."""
    group = group_json(sample_job())
    assert group["Volumes"] == {"data": {"Name": "data", "Type": "host", "Source": "data"}}
    assert Job.from_api(sample_job().to_api()).groups[0].volumes["data"].source == "data"
    api = sample_job().to_api()
    api["TaskGroups"][0]["Volumes"] = [group["Volumes"]["data"]]
    assert problems_of(api) == [("job[web].group[api].volume",
                                 "expected a JSON object keyed by name, got list [{'Name': 'data', "
                                 "'Source': 'data', 'Type': 'host'}]")]


def test_durations_are_integer_nanoseconds() -> None:
    group = group_json(sample_job())
    assert group["Tasks"][0]["KillTimeout"] == 10_000_000_000
    assert group["Services"][0]["Checks"][0]["Interval"] == 10_000_000_000


def test_ports_split_into_reserved_and_dynamic() -> None:
    network = group_json(sample_job())["Networks"][0]
    assert network["ReservedPorts"] == [{"Label": "admin", "Value": 9000}]
    assert network["DynamicPorts"] == [{"Label": "http", "To": 8080}]


def test_a_value_nomad_reports_on_a_dynamic_port_is_not_part_of_the_job() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Networks"][0]["DynamicPorts"][0]["Value"] = 23456
    assert Job.from_api(api) == sample_job()


def test_unset_fields_are_left_out_for_the_server_to_default() -> None:
    task = group_json(sample_job())["Tasks"][0]
    assert "User" not in task and "Env" not in task and "Leader" not in task


def test_zero_values_of_plain_go_fields_are_unset_and_pointer_zeros_are_kept() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0].update({"Leader": False, "User": "", "ShutdownDelay": 0})
    api["TaskGroups"][0]["Count"] = 0
    job = Job.from_api(api)
    task = job.groups[0].tasks[0]
    assert (task.leader, task.user, task.shutdown_delay, job.groups[0].count) == (None, None, None, 0)
    assert Task("t", leader=False) == Task("t")


def test_to_api_returns_plain_json_types() -> None:
    api = sample_job().to_api()
    assert json.loads(json.dumps(api)) == api


def test_round_trip_through_json_text_is_exact() -> None:
    job = sample_job()
    assert Job.from_api(json.loads(json.dumps(job.to_api()))) == job


def test_register_body_wraps_the_job_and_its_submission() -> None:
    job = evolve(sample_job(), submission=Submission(source='job "web" {}', format="hcl2",
                                                     variable_flags={"image": "nginx:1 2%"}))
    body = job.to_register_body(EnforceIndex=True, JobModifyIndex=7)
    assert body["EnforceIndex"] is True and body["Job"]["ID"] == "web"
    # api/jobs.go:1072: variable flags are query-escaped; the agent unescapes them on read.
    assert body["Submission"] == {"Source": 'job "web" {}', "Format": "hcl2",
                                  "VariableFlags": {"image": "nginx:1 2%"}}
    back = Job.from_api(body)
    assert back == sample_job() and back.submission is not None
    assert back.submission.format == "hcl2"


def test_the_submission_is_not_part_of_the_job() -> None:
    job = sample_job()
    other = evolve(job, submission=Submission(source="x", format="json"))
    assert job == other and hash(job) == hash(other)


def test_unknown_keys_are_errors_with_their_path_unlike_nomad() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0]["Resources"]["Memory"] = 256
    [(path, message)] = problems_of(api)
    assert path == "job[web].group[api].task[app].resources.Memory"
    assert message.startswith("nomadmesh: unknown field 'Memory'")
    assert "did you mean 'MemoryMB'" in message


def test_unknown_keys_can_be_dropped_as_nomad_does() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0]["Resources"]["Memory"] = 256
    assert Job.from_api(api, strict=False) == sample_job()


def test_wrong_types_are_reported_with_hcl_vocabulary_paths() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Count"] = "2"
    api["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = "10s"
    assert problems_of(api) == [
        ("job[web].group[api].count",
         "expected an integer from -9223372036854775808 to 9223372036854775807 (Go int), got str '2'"),
        ("job[web].group[api].task[app].kill_timeout", "expected integer nanoseconds, got str '10s'")]


def test_integers_are_checked_against_their_go_type() -> None:
    """Affinity.Weight is *int8 and SpreadTarget.Percent uint8: Go's decoder refuses 300 and -1."""
    api = sample_job().to_api()
    api["Affinities"] = [{"LTarget": "a", "RTarget": "b", "Weight": 300}]
    api["Spreads"] = [{"Attribute": "a", "SpreadTarget": [{"Value": "x", "Percent": -1}]}]
    api["Priority"] = 1.0
    paths = [p for p, _ in problems_of(api)]
    assert paths == ["job[web].priority", "job[web].affinity[0].weight",
                     "job[web].spread[0].target[x].percent"]


def test_meta_values_must_be_strings() -> None:
    api = sample_job().to_api()
    api["Meta"] = {"replicas": 3}
    assert problems_of(api) == [("job[web].meta.replicas", "expected a string, got int 3")]


def test_free_form_config_refuses_what_is_not_json() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0]["Config"] = {"a": math.nan, "b": 10**400, "c": {1: "x"}}
    paths = [p for p, _ in problems_of(api)]
    assert paths == ["job[web].group[api].task[app].config.a",
                     "job[web].group[api].task[app].config.b",
                     "job[web].group[api].task[app].config.c.1"]


def test_deeply_nested_config_is_an_error_not_a_crash() -> None:
    deep: Any = "leaf"
    for _ in range(3000):
        deep = {"x": deep}
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0]["Config"] = deep
    [(path, message)] = problems_of(api)
    assert message == f"nomadmesh: nested more than {MAX_DEPTH} levels deep"
    assert path.startswith("job[web].group[api].task[app].config.x.x")


def test_a_huge_job_decodes() -> None:
    job = evolve(sample_job(), groups=[evolve(sample_job().groups[0], name=f"g{i}")
                                       for i in range(2000)])
    assert Job.from_api(json.loads(json.dumps(job.to_api()))) == job


def test_a_non_object_job_is_rejected() -> None:
    assert problems_of(["not", "a", "job"]) == [("job", "expected a JSON object, got list "
                                                 "['not', 'a', 'job']")]


def test_a_job_without_id_is_rejected() -> None:
    assert problems_of({"TaskGroups": []}) == [("job", "missing ID")]


def test_null_list_items_are_reported() -> None:
    api = sample_job().to_api()
    api["TaskGroups"].append(None)
    assert problems_of(api) == [("job[web].group[1]", "expected a JSON object, got NoneType None")]


def test_what_get_job_returns_is_accepted_with_server_fields_kept_aside() -> None:
    """tests/data/nomad_get_job.json is structs.Job JSON as Nomad 2.0.6 stores and returns it."""
    data = json.loads((DATA / "nomad_get_job.json").read_text())
    job = Job.from_api(data)
    assert job.server["Version"] == 0 and job.server["Status"] == "running"
    task = job.groups[0].tasks[0]
    assert task.identity == WorkloadIdentity(name="default", aud=["nomadproject.io"])
    assert "Version" not in job.to_api()


def test_server_fields_do_not_affect_equality() -> None:
    data = json.loads((DATA / "nomad_get_job.json").read_text())
    without = {k: v for k, v in data.items() if k not in ("Version", "Status", "ModifyIndex")}
    assert Job.from_api(data) == Job.from_api(without)


def test_a_decoded_job_hashes_and_its_maps_are_frozen() -> None:
    """Issue 16: a job decoded with every kind of field is an immutable, hashable value."""
    data = json.loads((DATA / "nomad_get_job.json").read_text())
    job = Job.from_api(data)
    assert hash(job) == hash(Job.from_api(data))
    with pytest.raises(TypeError):
        job.groups[0].tasks[0].config["image"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        job.server["Version"] = 3  # type: ignore[index]


def test_a_local_job_equals_the_servers_copy_once_both_are_canonical() -> None:
    local = Job("example", datacenters=["dc1"], groups=[Group(
        "cache",
        networks=[Network(ports=[Port("db", to=6379)])],
        tasks=[Task("redis", driver="docker", config={"image": "redis:7", "ports": ["db"]},
                    resources=Resources(cpu=500, memory=256))],
    )])
    server = Job.from_api(json.loads((DATA / "nomad_get_job.json").read_text()))
    # The recorded server added a Consul block to the group (an admission hook the model does not
    # apply, see nomadmesh/model/server.py); everything else the server sets, canonicalize sets.
    server = evolve(server, groups=[evolve(server.groups[0], consul=None)])
    assert canonicalize(server) == canonicalize(local)


def test_a_lone_surrogate_becomes_u_fffd_as_in_gos_decoder() -> None:
    """Python's JSON reads "\\ud800" into a lone surrogate; Go's decoder replaces it (found by the
    cli helper's fuzzing: it crashed validation)."""
    api = sample_job().to_api()
    api["TaskGroups"][0]["Networks"][0]["Hostname"] = "\ud800"
    api["TaskGroups"][0]["Tasks"][0]["Config"] = {"k\udc00": ["\ud800x"]}
    job = Job.from_api(api)
    assert job.groups[0].networks[0].hostname == "\ufffd"
    assert job.groups[0].tasks[0].config == {"k\ufffd": ("\ufffdx",)}
