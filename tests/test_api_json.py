"""The Nomad API JSON codec: Go field names, nanoseconds, split ports, strict keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
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
    Task,
    Template,
    ValidationError,
)
from nomadmesh.codec import canonicalize

DATA = Path(__file__).parent / "data"


def sample_job() -> Job:
    return Job(
        "web",
        datacenters=["dc1"],
        constraints=[Constraint(attribute="${attr.kernel.name}", value="linux")],
        groups=[Group(
            "api",
            count=2,
            networks=[Network(mode="bridge", ports=[Port("http", to=8080),
                                                    Port("admin", static=9000)])],
            services=[Service(name="web", port="http", checks=[
                Check(type="http", path="/health", interval="10s", timeout="2s")])],
            tasks=[Task("app", driver="docker", config={"image": "nginx", "ports": ["http"]},
                        resources=Resources(cpu=200, memory=128), kill_timeout="10s",
                        templates=[Template(data="x={{ env \"A\" }}", destination="local/x")])],
        )],
    )


def group_json(job: Job) -> dict[str, Any]:
    return job.to_api()["TaskGroups"][0]  # type: ignore[no-any-return]


def test_field_names_are_nomads_go_names() -> None:
    api = sample_job().to_api()
    task = api["TaskGroups"][0]["Tasks"][0]
    assert task["Resources"] == {"CPU": 200, "MemoryMB": 128}
    assert api["Constraints"] == [{"LTarget": "${attr.kernel.name}", "RTarget": "linux"}]
    assert task["Templates"] == [{"EmbeddedTmpl": "x={{ env \"A\" }}", "DestPath": "local/x"}]
    assert api["TaskGroups"][0]["Services"][0]["PortLabel"] == "http"


def test_durations_are_integer_nanoseconds() -> None:
    group = group_json(sample_job())
    assert group["Tasks"][0]["KillTimeout"] == 10_000_000_000
    assert group["Services"][0]["Checks"][0]["Interval"] == 10_000_000_000


def test_ports_split_into_reserved_and_dynamic() -> None:
    network = group_json(sample_job())["Networks"][0]
    assert network["ReservedPorts"] == [{"Label": "admin", "Value": 9000}]
    assert network["DynamicPorts"] == [{"Label": "http", "To": 8080}]


def test_unset_fields_are_left_out_for_the_server_to_default() -> None:
    task = group_json(sample_job())["Tasks"][0]
    assert "User" not in task and "Env" not in task and "Leader" not in task


def test_to_api_returns_plain_json_types() -> None:
    api = sample_job().to_api()
    assert json.loads(json.dumps(api)) == api


def test_round_trip_through_json_text_is_exact() -> None:
    job = sample_job()
    assert Job.from_api(json.loads(json.dumps(job.to_api()))) == job


def test_register_body_wraps_the_job() -> None:
    body = sample_job().to_register_body(EnforceIndex=True, JobModifyIndex=7)
    assert body["EnforceIndex"] is True and body["Job"]["ID"] == "web"
    assert Job.from_api(body) == sample_job()


def test_unknown_keys_are_errors_with_their_path_unlike_nomad() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Tasks"][0]["Resources"]["Memory"] = 256
    with pytest.raises(ValidationError) as caught:
        Job.from_api(api)
    [problem] = caught.value.problems
    assert problem.path == "job[web].group[api].task[app].resources.Memory"
    assert "did you mean 'MemoryMB'" in problem.message


def test_wrong_types_are_reported_with_hcl_vocabulary_paths() -> None:
    api = sample_job().to_api()
    api["TaskGroups"][0]["Count"] = "2"
    api["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = "10s"
    with pytest.raises(ValidationError) as caught:
        Job.from_api(api)
    assert [p.path for p in caught.value.problems] == [
        "job[web].group[api].count", "job[web].group[api].task[app].kill_timeout"]
    assert "integer nanoseconds" in caught.value.problems[1].message


def test_meta_values_must_be_strings() -> None:
    api = sample_job().to_api()
    api["Meta"] = {"replicas": 3}
    with pytest.raises(ValidationError, match=r"job\[web\]\.meta\.replicas: expected a string"):
        Job.from_api(api)


def test_rule_violations_are_reported_after_decoding() -> None:
    api = sample_job().to_api()
    api["Priority"] = 0
    with pytest.raises(ValidationError, match=r"job\[web\]\.priority: priority 0 must be 1 to 100"):
        Job.from_api(api)


def test_a_non_object_job_is_rejected() -> None:
    with pytest.raises(ValidationError, match="expected a JSON object"):
        Job.from_api(["not", "a", "job"])  # type: ignore[arg-type]


def test_a_job_without_id_is_rejected() -> None:
    with pytest.raises(ValidationError, match="missing 'ID'"):
        Job.from_api({"TaskGroups": []})


def test_what_get_job_returns_is_accepted_with_server_fields_kept_aside() -> None:
    data = json.loads((DATA / "nomad_get_job.json").read_text())
    job = Job.from_api(data)
    assert job.server["Version"] == 0 and job.server["Status"] == "running"
    assert job.group("cache").task("redis").extra["Identity"]["Name"] == "default"  # type: ignore[union-attr]
    assert "Version" not in job.to_api()


def test_server_fields_do_not_affect_equality() -> None:
    data = json.loads((DATA / "nomad_get_job.json").read_text())
    without = {k: v for k, v in data.items() if k not in ("Version", "Status", "ModifyIndex")}
    assert Job.from_api(data) == Job.from_api(without)


def test_a_local_job_equals_the_servers_copy_once_both_are_canonical() -> None:
    local = Job("example", datacenters=["dc1"], groups=[Group(
        "cache",
        networks=[Network(ports=[Port("db", to=6379)])],
        tasks=[Task("redis", driver="docker", config={"image": "redis:7", "ports": ["db"]},
                    resources=Resources(cpu=500, memory=256))],
    )])
    server = Job.from_api(json.loads((DATA / "nomad_get_job.json").read_text()))
    local_group = canonicalize(local).groups[0]
    server_group = canonicalize(server).groups[0]
    # The server adds a workload identity and a Consul block of its own to what it stores.
    server_task = attrs.evolve(server_group.tasks[0], extra={})
    assert attrs.evolve(server_group, tasks=(server_task,), extra={}) == local_group
