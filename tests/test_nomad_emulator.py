"""The Nomad emulator's job API: register, read, versions, errors and blocking queries."""

from __future__ import annotations

import threading
import time
from typing import Any

import nomad as python_nomad
import pytest
import requests

from nomadmesh.cli.dev import hcl_parser
from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import batch_job, service_job


def _register(nomad_url: str, job: dict[str, Any], **options: Any) -> requests.Response:
    return requests.post(f"{nomad_url}/v1/jobs", json={"Job": job, **options}, timeout=5)


# --- register and read back ----------------------------------------------------------------


@pytest.mark.real_cluster
def test_register_answers_eval_and_modify_index(nomad_api: Any) -> None:
    result = nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert result["EvalID"]
    assert result["JobModifyIndex"] > 0


@pytest.mark.real_cluster
def test_registered_job_reads_back_canonicalized(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    job = nomad_api.job.get_job("web")
    assert (job["Namespace"], job["Region"], job["Priority"], job["Version"]) == (
        "default", "global", 50, 0)
    assert job["TaskGroups"][0]["RestartPolicy"]["Attempts"] == 2


def test_register_via_job_path_is_accepted(nomad_url: str) -> None:
    r = requests.put(f"{nomad_url}/v1/job/web", json={"Job": service_job("web")}, timeout=5)
    assert r.status_code == 200


def test_changed_spec_gets_a_new_version(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.register_job("web", {"Job": service_job("web", image="nginx:2")})
    assert nomad_api.job.get_job("web")["Version"] == 1


def test_unchanged_spec_keeps_version_but_gets_an_evaluation(nomad_api: Any) -> None:
    first = nomad_api.job.register_job("web", {"Job": service_job("web")})
    second = nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert second["EvalID"] and second["EvalID"] != first["EvalID"]
    job = nomad_api.job.get_job("web")
    assert (job["Version"], job["JobModifyIndex"]) == (0, first["JobModifyIndex"])
    # An unchanged register answers the job's ModifyIndex (nomad/job_endpoint.go:327), which
    # status changes move on; the spec's JobModifyIndex stays.
    assert first["JobModifyIndex"] <= second["JobModifyIndex"] <= job["ModifyIndex"]


def test_versions_are_listed_newest_first(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.register_job("web", {"Job": service_job("web", image="nginx:2")})
    versions = nomad_api.job.get_versions("web")["Versions"]
    assert [v["Version"] for v in versions] == [1, 0]


def test_preserve_counts_keeps_the_running_count(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=3)})
    nomad_api.job.register_job("web", {"Job": service_job("web", count=1, image="x"),
                                       "PreserveCounts": True})
    assert nomad_api.job.get_job("web")["TaskGroups"][0]["Count"] == 3


def test_jobs_list_filters_by_prefix(nomad_api: Any) -> None:
    for job_id in ("web", "worker", "db"):
        nomad_api.job.register_job(job_id, {"Job": service_job(job_id)})
    assert sorted(j["ID"] for j in nomad_api.jobs.get_jobs(prefix="w")) == ["web", "worker"]


def test_jobs_list_filters_on_meta(nomad_url: str) -> None:
    _register(nomad_url, service_job("a", meta={"owner": "nomadmesh"}))
    _register(nomad_url, service_job("b", meta={"owner": "levant"}))
    r = requests.get(f"{nomad_url}/v1/jobs", timeout=5,
                     params={"filter": 'Meta.owner == "nomadmesh"', "meta": "true"})
    assert [(j["ID"], j["Meta"]) for j in r.json()] == [("a", {"owner": "nomadmesh"})]


def test_jobs_are_kept_per_namespace(nomad_url: str) -> None:
    job = {**service_job("web"), "Namespace": "prod"}
    _register(nomad_url, job)
    default = requests.get(f"{nomad_url}/v1/jobs", timeout=5).json()
    prod = requests.get(f"{nomad_url}/v1/jobs", params={"namespace": "prod"}, timeout=5).json()
    assert (default, [j["ID"] for j in prod]) == ([], ["web"])


def test_job_in_another_namespace_is_not_found_in_default(nomad_url: str) -> None:
    _register(nomad_url, {**service_job("web"), "Namespace": "prod"})
    assert requests.get(f"{nomad_url}/v1/job/web", timeout=5).status_code == 404


def test_unknown_region_is_refused(nomad_url: str) -> None:
    r = requests.get(f"{nomad_url}/v1/jobs", params={"region": "mars"}, timeout=5)
    assert (r.status_code, r.text) == (500, "No path to region")


# --- errors exactly as Nomad ---------------------------------------------------------------


@pytest.mark.real_cluster
def test_unknown_job_is_404_job_not_found(nomad_url: str) -> None:
    r = requests.get(f"{nomad_url}/v1/job/does-not-exist", timeout=5)
    assert (r.status_code, r.text) == (404, "job not found")
    assert r.headers["Content-Type"].startswith("text/plain")


@pytest.mark.real_cluster
def test_bad_json_is_400(nomad_url: str) -> None:
    r = requests.post(f"{nomad_url}/v1/jobs", data=b"{not json", timeout=5)
    assert r.status_code == 400


@pytest.mark.real_cluster
def test_missing_job_is_400(nomad_url: str) -> None:
    r = requests.post(f"{nomad_url}/v1/jobs", json={"EnforceIndex": True}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job must be specified")


@pytest.mark.real_cluster
def test_id_mismatch_with_the_url_is_400(nomad_url: str) -> None:
    r = requests.post(f"{nomad_url}/v1/job/other", json={"Job": service_job("web")}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job ID does not match name")


def test_invalid_job_is_500_with_multierror_text(nomad_url: str) -> None:
    job = service_job("web")
    job["TaskGroups"][0]["Tasks"][0]["Driver"] = ""
    r = _register(nomad_url, job)
    assert r.status_code == 500
    assert r.text.startswith("1 error occurred:\n\t* ")
    assert "driver" in r.text


def test_enforce_index_conflict_is_500_with_nomad_wording(nomad_url: str) -> None:
    first = _register(nomad_url, service_job("web")).json()
    r = _register(nomad_url, service_job("web", image="x"), EnforceIndex=True,
                  JobModifyIndex=first["JobModifyIndex"] + 100)
    assert (r.status_code, r.text) == (
        500, f"Enforcing job modify index {first['JobModifyIndex'] + 100}: job exists with "
             f"conflicting job modify index: {first['JobModifyIndex']}")


def test_enforce_index_zero_on_existing_job_fails(nomad_url: str) -> None:
    _register(nomad_url, service_job("web"))
    r = _register(nomad_url, service_job("web"), EnforceIndex=True, JobModifyIndex=0)
    assert (r.status_code, r.text) == (500, "Enforcing job modify index 0: job already exists")


def test_enforce_index_on_missing_job_fails(nomad_url: str) -> None:
    r = _register(nomad_url, service_job("web"), EnforceIndex=True, JobModifyIndex=7)
    assert (r.status_code, r.text) == (500, "Enforcing job modify index 7: job does not exist")


def test_enforce_index_with_the_right_index_succeeds(nomad_url: str) -> None:
    first = _register(nomad_url, service_job("web")).json()
    r = _register(nomad_url, service_job("web", image="x"), EnforceIndex=True,
                  JobModifyIndex=first["JobModifyIndex"])
    assert r.status_code == 200


def test_type_change_is_refused(nomad_url: str) -> None:
    _register(nomad_url, service_job("web"))
    r = _register(nomad_url, batch_job("web"))
    assert (r.status_code, r.text) == (500, 'cannot update job from type "service" to "batch"')


def test_python_nomad_raises_its_not_found_exception(nomad_api: Any) -> None:
    with pytest.raises(python_nomad.api.exceptions.URLNotFoundNomadException):
        nomad_api.job.get_job("nope")


# --- validate and parse ----------------------------------------------------------------------


def test_validate_reports_errors_with_200(nomad_url: str) -> None:
    job = service_job("web")
    job["TaskGroups"][0]["Tasks"] = []
    r = requests.post(f"{nomad_url}/v1/validate/job", json={"Job": job}, timeout=5)
    assert r.status_code == 200
    assert r.json()["ValidationErrors"] and r.json()["Error"].startswith("1 error occurred")


def test_validate_valid_job_has_no_errors(nomad_url: str) -> None:
    r = requests.post(f"{nomad_url}/v1/validate/job", json={"Job": service_job("web")},
                      timeout=5)
    assert (r.json()["ValidationErrors"], r.json()["Error"]) == (None, "")


def test_parse_without_an_hcl_parser_is_not_emulated(nomad_url: str) -> None:
    r = requests.post(f"{nomad_url}/v1/jobs/parse", json={"JobHCL": 'job "x" {}'}, timeout=5)
    assert (r.status_code, r.text.startswith("/v1/jobs/parse is not emulated")) == (501, True)


def test_dev_parses_hcl_with_nomadmeshs_parser() -> None:
    hcl = 'job "web" {\n  group "app" {\n    count = var.n\n    task "server" {\n' \
          '      driver = "docker"\n    }\n  }\n}\nvariable "n" {\n  type = number\n}\n'
    with NomadEmulator(hcl_parser=hcl_parser) as nomad:
        # the first parse imports and compiles the parser: a generous timeout under load
        ok = requests.post(f"{nomad.url}/v1/jobs/parse", json={
            "JobHCL": hcl, "Variables": "n = 2\n", "Canonicalize": True}, timeout=60)
        bad = requests.post(f"{nomad.url}/v1/jobs/parse", json={"JobHCL": "job {"}, timeout=60)
    job = ok.json()
    assert (job["ID"], job["Name"], job["TaskGroups"][0]["Count"], job["Namespace"]) == (
        "web", "web", 2, "default")  # the name defaults to the ID (jobspec2/parse_job.go:15)
    assert (bad.status_code, bad.text.startswith("Failed to parse job: ")) == (400, True)


# --- stop, purge --------------------------------------------------------------------------------


def test_stop_keeps_the_job_as_dead(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.deregister_job("web")
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "web")["Status"] == "dead")
    job = nomad_api.job.get_job("web")
    assert (job["Stop"], job["Status"]) == (True, "dead")


def test_purge_removes_the_job(nomad_api: Any, nomad_url: str) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.deregister_job("web", purge=True)
    assert requests.get(f"{nomad_url}/v1/job/web", timeout=5).status_code == 404


def test_registering_a_stopped_job_again_starts_it(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.deregister_job("web")
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    job = nomad_api.job.get_job("web")
    assert (job["Stop"], job["Version"]) == (False, 2)


# --- blocking queries ------------------------------------------------------------------------------


def test_responses_carry_nomad_index_headers(nomad_url: str) -> None:
    r = requests.get(f"{nomad_url}/v1/jobs", timeout=5)
    assert int(r.headers["X-Nomad-Index"]) > 0
    assert r.headers["X-Nomad-KnownLeader"] == "true"
    assert r.headers["X-Nomad-LastContact"] == "0"


def test_blocking_job_read_wakes_on_register(nomad: NomadEmulator) -> None:
    requests.post(f"{nomad.url}/v1/jobs", json={"Job": service_job("web")}, timeout=5)
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")
    r = requests.get(f"{nomad.url}/v1/job/web", timeout=5)
    index = r.headers["X-Nomad-Index"]
    threading.Timer(0.05, nomad.register, (service_job("web", image="v2"),)).start()
    started = time.monotonic()
    r = requests.get(f"{nomad.url}/v1/job/web", params={"index": index, "wait": "5s"},
                     timeout=10)
    assert int(r.headers["X-Nomad-Index"]) > int(index)
    assert r.json()["Version"] == 1
    assert time.monotonic() - started < 1


def test_blocking_query_times_out_after_wait(nomad_url: str) -> None:
    index = requests.get(f"{nomad_url}/v1/jobs", timeout=5).headers["X-Nomad-Index"]
    started = time.monotonic()
    r = requests.get(f"{nomad_url}/v1/jobs", params={"index": index, "wait": "150ms"},
                     timeout=5)
    assert r.headers["X-Nomad-Index"] == index
    assert 0.1 < time.monotonic() - started < 1.5


def test_job_read_does_not_wake_on_allocation_changes(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web"))
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")
    r = requests.get(f"{nomad.url}/v1/job/web", timeout=5)
    index = r.headers["X-Nomad-Index"]
    nomad.register(service_job("other"))
    r = requests.get(f"{nomad.url}/v1/job/web", params={"index": index, "wait": "100ms"},
                     timeout=5)
    assert r.headers["X-Nomad-Index"] == index


# --- status, agent, nodes ------------------------------------------------------------------------


def test_status_regions_and_agent(nomad_api: Any) -> None:
    assert nomad_api.status.leader.get_leader().endswith(":4647")
    assert nomad_api.regions.get_regions() == ["global"]
    assert nomad_api.agent.get_agent()["config"]["Region"] == "global"


def test_nodes_are_listed_ready(nomad_api: Any) -> None:
    nodes = nomad_api.nodes.get_nodes()
    assert [(n["Name"], n["Status"]) for n in nodes] == [
        (f"emulated-node-{i}", "ready") for i in (1, 2, 3)]


def test_node_detail_has_resources(nomad_api: Any) -> None:
    node_id = nomad_api.nodes.get_nodes()[0]["ID"]
    node = nomad_api.node.get_node(node_id)
    assert node["NodeResources"]["Memory"]["MemoryMB"] == 8192


def test_node_list_fields_resources_and_os(nomad_url: str) -> None:
    # NodeStubFields (command/agent/http.go:1132, structs.go:2296)
    plain = requests.get(f"{nomad_url}/v1/nodes", timeout=5).json()[0]
    full = requests.get(f"{nomad_url}/v1/nodes", params={"resources": "true", "os": "true"},
                        timeout=5).json()[0]
    assert "NodeResources" not in plain and "Attributes" not in plain
    assert full["NodeResources"]["Memory"]["MemoryMB"] == 8192
    assert "ReservedResources" in full and full["Attributes"] == {"os.name": "ubuntu"}
    bad = requests.get(f"{nomad_url}/v1/nodes", params={"os": "yes"}, timeout=5)
    assert bad.status_code == 400


def test_allocation_list_fields_resources_and_task_states(nomad: NomadEmulator) -> None:
    # AllocStubFields (alloc_endpoint.go:42, structs/alloc.go:757)
    nomad.register(service_job("web"))
    assert nomad.wait_for(lambda: len(nomad.snapshot().all("allocs")) == 1)
    url = f"{nomad.url}/v1/allocations"
    plain = requests.get(url, timeout=5).json()[0]
    full = requests.get(url, params={"resources": "true", "task_states": "false"},
                        timeout=5).json()[0]
    assert "AllocatedResources" not in plain and "TaskStates" in plain
    assert full["AllocatedResources"]["Tasks"]["server"]["Memory"]["MemoryMB"] == 64
    assert full["TaskStates"] is None


def test_unknown_path_is_404(nomad_url: str) -> None:
    assert requests.get(f"{nomad_url}/v1/bogus", timeout=5).status_code == 404
