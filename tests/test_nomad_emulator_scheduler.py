"""The Nomad emulator's simulated scheduler: evaluations, allocations, deployments and failures."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from nomadmesh.testing import ConsulEmulator, NodeSpec, NomadEmulator, Timings
from nomadmesh.testing.jobs import batch_job, service_job


def _settled(nomad: NomadEmulator, job_id: str, status: str = "successful",
             version: int | None = None) -> bool:
    def done() -> bool:
        dep = nomad.snapshot().latest_deployment("default", job_id)
        return dep is not None and dep["Status"] == status and (
            version is None or dep["JobVersion"] == version)

    return nomad.wait_for(done, timeout=5)


def _allocs(nomad_api: Any, job_id: str) -> list[dict[str, Any]]:
    return sorted(nomad_api.job.get_allocations(job_id), key=lambda a: a["CreateIndex"])


def _canaries_healthy(nomad: NomadEmulator, job_id: str, count: int) -> bool:
    dep = nomad.snapshot().latest_deployment("default", job_id)
    if dep is None:
        return False
    ids = [i for state in dep["TaskGroups"].values() for i in state["PlacedCanaries"] or ()]
    snap = nomad.snapshot()
    return len(ids) == count and all((snap.alloc_by_id(i) or {}).get(
        "DeploymentStatus", {}).get("Healthy") for i in ids)


def _live(allocs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in allocs if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"]


# --- evaluations and allocations ----------------------------------------------------------


def test_evaluation_completes_after_register(nomad: NomadEmulator, nomad_api: Any) -> None:
    result = nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"] == "complete")
    ev = nomad_api.evaluation.get_evaluation(result["EvalID"])
    assert (ev["TriggeredBy"], ev["JobID"], ev["FailedTGAllocs"]) == ("job-register", "web", None)


def test_count_allocations_are_placed_and_named_like_nomad(nomad: NomadEmulator,
                                                          nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=3)})
    assert _settled(nomad, "web")
    names = sorted(a["Name"] for a in _allocs(nomad_api, "web"))
    assert names == ["web.app[0]", "web.app[1]", "web.app[2]"]


def test_allocation_runs_with_task_events(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert _settled(nomad, "web")
    alloc = nomad_api.allocation.get_allocation(_allocs(nomad_api, "web")[0]["ID"])
    state = alloc["TaskStates"]["server"]
    assert (alloc["ClientStatus"], state["State"], state["Failed"]) == ("running", "running",
                                                                        False)
    assert [e["Type"] for e in state["Events"]] == ["Received", "Task Setup", "Started"]


def test_allocation_has_dynamic_port_on_the_node_address(nomad: NomadEmulator,
                                                         nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert _settled(nomad, "web")
    alloc = nomad_api.allocation.get_allocation(_allocs(nomad_api, "web")[0]["ID"])
    shared = alloc["AllocatedResources"]["Shared"]
    [port] = shared["Ports"]
    assert (port["Label"], port["To"], port["HostIP"]) == ("http", 8080, "127.0.0.1")
    assert 20000 <= port["Value"] < 32000
    assert shared["Networks"][0]["DynamicPorts"][0]["Value"] == port["Value"]


def test_job_becomes_running_and_summary_counts_allocations(nomad: NomadEmulator,
                                                           nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2)})
    assert _settled(nomad, "web")
    assert nomad_api.job.get_job("web")["Status"] == "running"
    assert nomad_api.job.get_summary("web")["Summary"]["app"]["Running"] == 2


def test_batch_job_runs_to_completion_and_is_dead(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("b", {"Job": batch_job("b")})
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "b")["Status"] == "dead")
    [alloc] = _allocs(nomad_api, "b")
    assert alloc["ClientStatus"] == "complete"
    assert alloc["TaskStates"]["server"]["Events"][-1]["Type"] == "Terminated"


def test_batch_job_has_no_deployment(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("b", {"Job": batch_job("b")})
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "b")["Status"] == "dead")
    assert nomad_api.job.get_deployments("b") == []


def test_stopping_a_job_stops_its_allocations(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2)})
    assert _settled(nomad, "web")
    nomad_api.job.deregister_job("web")
    assert nomad.wait_for(lambda: all(a["ClientStatus"] == "complete"
                                      for a in nomad.snapshot().all("allocs")))
    assert {a["DesiredStatus"] for a in _allocs(nomad_api, "web")} == {"stop"}


def test_scaling_down_stops_the_highest_indexes(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=3)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", count=1)})
    assert _settled(nomad, "web", version=1)
    assert [a["Name"] for a in _live(_allocs(nomad_api, "web"))] == ["web.app[0]"]


# --- deployments ------------------------------------------------------------------------------


def test_service_deployment_goes_running_then_successful(nomad: NomadEmulator,
                                                          nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    first = nomad.wait_for(lambda: nomad.deployment_status("web") is not None)
    assert first
    assert _settled(nomad, "web")
    dep = nomad_api.job.get_deployment("web")
    assert (dep["StatusDescription"], dep["TaskGroups"]["app"]["HealthyAllocs"]) == (
        "Deployment completed successfully", 1)


def test_successful_deployment_marks_the_version_stable(nomad: NomadEmulator,
                                                         nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert _settled(nomad, "web")
    assert nomad_api.job.get_job("web")["Stable"] is True


def test_destructive_update_replaces_allocations(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, image="nginx:2")})
    assert _settled(nomad, "web", version=1)
    live = _live(_allocs(nomad_api, "web"))
    assert sorted((a["Name"], a["JobVersion"]) for a in live) == [
        ("web.app[0]", 1), ("web.app[1]", 1)]


def test_rolling_update_respects_max_parallel(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad.timings.healthy_after = 0.2
    job = service_job("web", count=3, update={"MaxParallel": 1})
    nomad_api.job.register_job("web", {"Job": job})
    assert _settled(nomad, "web")
    changed = service_job("web", count=3, image="nginx:2", update={"MaxParallel": 1})
    nomad_api.job.register_job("web", {"Job": changed})
    assert nomad.wait_for(lambda: any(a["JobVersion"] == 1 for a in nomad.snapshot().all("allocs")))
    new = [a for a in nomad.snapshot().all("allocs") if a["JobVersion"] == 1]
    assert len(new) == 1


def test_metadata_change_on_services_only_updates_in_place(nomad: NomadEmulator,
                                                           nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", service="web")})
    assert _settled(nomad, "web")
    before = {a["ID"] for a in _live(_allocs(nomad_api, "web"))}
    job = service_job("web", service="web")
    job["TaskGroups"][0]["Services"][0]["Tags"] = ["v2"]
    nomad_api.job.register_job("web", {"Job": job})
    assert _settled(nomad, "web", version=1)
    assert {a["ID"] for a in _live(_allocs(nomad_api, "web"))} == before


def test_canary_deployment_waits_for_promotion(nomad: NomadEmulator, nomad_api: Any) -> None:
    update = {"Canary": 1, "MaxParallel": 1}
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, update=update)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, image="v2",
                                                          update=update)})
    assert nomad.wait_for(lambda: _canaries_healthy(nomad, "web", 1))
    dep = nomad_api.job.get_deployment("web")
    assert dep["StatusDescription"] == "Deployment is running but requires manual promotion"
    assert (dep["Status"], dep["TaskGroups"]["app"]["DesiredCanaries"]) == ("running", 1)
    canaries = [a for a in _live(_allocs(nomad_api, "web")) if a["DeploymentStatus"]["Canary"]]
    assert len(canaries) == 1
    # Nomad lists the canaries it placed by allocation ID in the deployment's group state.
    assert dep["TaskGroups"]["app"]["PlacedCanaries"] == [canaries[0]["ID"]]


def test_promote_completes_a_canary_deployment(nomad: NomadEmulator, nomad_api: Any) -> None:
    update = {"Canary": 1, "MaxParallel": 1}
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, update=update)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, image="v2",
                                                          update=update)})
    assert nomad.wait_for(lambda: _canaries_healthy(nomad, "web", 1))
    nomad_api.deployment.promote_deployment_all(nomad_api.job.get_deployment("web")["ID"])
    assert _settled(nomad, "web", version=1)
    assert sorted(a["JobVersion"] for a in _live(_allocs(nomad_api, "web"))) == [1, 1]


def test_auto_promote_needs_no_call(nomad: NomadEmulator, nomad_api: Any) -> None:
    update = {"Canary": 1, "MaxParallel": 1, "AutoPromote": True}
    nomad_api.job.register_job("web", {"Job": service_job("web", update=update)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", image="v2", update=update)})
    assert _settled(nomad, "web", version=1)


def test_promote_before_canaries_are_healthy_is_refused(nomad: NomadEmulator,
                                                        nomad_api: Any) -> None:
    update = {"Canary": 1}
    nomad_api.job.register_job("web", {"Job": service_job("web", update=update)})
    assert _settled(nomad, "web")
    nomad.timings.healthy_after = 5
    nomad_api.job.register_job("web", {"Job": service_job("web", image="v2", update=update)})
    assert nomad.wait_for(lambda: nomad.snapshot().latest_deployment("default", "web")[
        "JobVersion"] == 1)
    dep_id = nomad.snapshot().latest_deployment("default", "web")["ID"]
    r = requests.post(f"{nomad.url}/v1/deployment/promote/{dep_id}",
                      json={"DeploymentID": dep_id, "All": True}, timeout=5)
    # UpdateDeploymentPromotion's multierror (state_store.go:5070), a 500 from the agent.
    assert (r.status_code, r.text) == (
        500, '1 error occurred:\n\t* Task group "app" has 0/1 healthy allocations\n\n')


def test_promote_needs_the_deployment_id_in_the_body(nomad: NomadEmulator,
                                                     nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    # The scheduler creates the deployment after register answers, as Nomad's worker does.
    assert nomad.wait_for(lambda: nomad_api.job.get_deployment("web") is not None)
    dep_id = nomad_api.job.get_deployment("web")["ID"]
    missing = requests.post(f"{nomad.url}/v1/deployment/promote/{dep_id}", json={"All": True},
                            timeout=5)
    other = requests.post(f"{nomad.url}/v1/deployment/promote/{dep_id}",
                          json={"DeploymentID": "x", "All": True}, timeout=5)
    # command/agent/deployment_endpoint.go deploymentPromote
    assert (missing.status_code, missing.text) == (400, "DeploymentID must be specified")
    assert (other.status_code, other.text) == (400, "Deployment ID does not match")


def test_fail_endpoint_marks_the_deployment_failed(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad.timings.healthy_after = 5
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "running")
    nomad_api.deployment.fail_deployment(nomad_api.job.get_deployment("web")["ID"])
    dep = nomad_api.job.get_deployment("web")
    assert (dep["Status"], dep["StatusDescription"]) == ("failed", "Deployment marked as failed")


def test_new_version_cancels_the_running_deployment(nomad: NomadEmulator,
                                                    nomad_api: Any) -> None:
    nomad.timings.healthy_after = 5
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "running")
    nomad_api.job.register_job("web", {"Job": service_job("web", image="v2")})
    assert nomad.wait_for(lambda: nomad.snapshot().count("deployment") == 2)
    statuses = sorted((d["JobVersion"], d["Status"], d["StatusDescription"])
                      for d in nomad_api.job.get_deployments("web"))
    assert statuses[0] == (0, "cancelled", "Cancelled due to newer version of job")


# --- scripted failures -----------------------------------------------------------------------

# Without a progress deadline the deployment watcher fails a deployment on its first unhealthy
# allocation (deployment_watcher.go:701 shouldFailEarly); with one, it lets the allocation be
# rescheduled until the deadline (see the rescheduling tests).
NO_DEADLINE = {"MaxParallel": 1, "ProgressDeadline": 0}


def test_driver_failure_fails_the_allocation_with_the_message(nomad: NomadEmulator,
                                                              nomad_api: Any) -> None:
    nomad.script_task("web", "app", "server", fail="driver",
                      message='Failed to pull `nginx:nope`: manifest unknown')
    nomad_api.job.register_job("web", {"Job": service_job("web", update=NO_DEADLINE)})
    assert _settled(nomad, "web", status="failed")
    [alloc] = _allocs(nomad_api, "web")
    state = alloc["TaskStates"]["server"]
    failure = next(e for e in state["Events"] if e["Type"] == "Driver Failure")
    assert (alloc["ClientStatus"], state["State"], state["Failed"]) == ("failed", "dead", True)
    assert failure["DriverError"] == "Failed to pull `nginx:nope`: manifest unknown"


def test_crashing_task_restarts_then_fails(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad.script_task("web", "app", "server", fail="exit", exit_code=137)
    nomad_api.job.register_job("web", {"Job": service_job("web", update=NO_DEADLINE)})
    assert _settled(nomad, "web", status="failed")
    [alloc] = _allocs(nomad_api, "web")
    state = alloc["TaskStates"]["server"]
    exits = [e["ExitCode"] for e in state["Events"] if e["Type"] == "Terminated"]
    assert (state["Restarts"], exits) == (2, [137, 137, 137])
    assert state["Events"][-1]["DisplayMessage"] == (
        'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"')


def test_unhealthy_task_fails_the_deployment(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad.timings.healthy_deadline = 0.1
    nomad.script_task("web", "app", "server", fail="unhealthy")
    nomad_api.job.register_job("web", {"Job": service_job("web", update=NO_DEADLINE)})
    assert _settled(nomad, "web", status="failed")
    dep = nomad_api.job.get_deployment("web")
    [alloc] = _allocs(nomad_api, "web")
    assert dep["StatusDescription"] == "Failed due to unhealthy allocations"
    assert (alloc["ClientStatus"], alloc["DeploymentStatus"]["Healthy"]) == ("running", False)


def test_auto_revert_rolls_back_to_the_last_stable_version(nomad: NomadEmulator,
                                                           nomad_api: Any) -> None:
    update = {**NO_DEADLINE, "AutoRevert": True}
    nomad_api.job.register_job("web", {"Job": service_job("web", update=update)})
    assert _settled(nomad, "web")
    nomad.script_task("web", "app", "server", fail="exit", version=1)
    nomad_api.job.register_job("web", {"Job": service_job("web", image="bad", update=update)})
    assert _settled(nomad, "web", version=2)
    failed = next(d for d in nomad_api.job.get_deployments("web") if d["JobVersion"] == 1)
    job = nomad_api.job.get_job("web")
    assert failed["StatusDescription"] == (
        "Failed due to unhealthy allocations - rolling back to job version 0")
    assert job["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "nginx:1.27"


def test_script_applies_a_limited_number_of_times(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad.script_task("web", "app", "server", fail="driver", times=1)
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2)})
    assert nomad.wait_for(lambda: sorted(a["ClientStatus"] for a in nomad.snapshot().all("allocs"))
                          == ["failed", "running"])


def test_unknown_failure_kind_is_refused(nomad: NomadEmulator) -> None:
    with pytest.raises(ValueError, match="fail must be one of"):
        nomad.script_task("web", "app", "server", fail="explode")


# --- placement failures -----------------------------------------------------------------------


def test_resource_ask_larger_than_every_node_reports_failed_tg_allocs(
        nomad: NomadEmulator, nomad_api: Any) -> None:
    result = nomad_api.job.register_job("big", {"Job": service_job("big", count=2,
                                                                    memory_mb=100_000)})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"] == "complete")
    ev = nomad_api.evaluation.get_evaluation(result["EvalID"])
    metrics = ev["FailedTGAllocs"]["app"]
    assert (metrics["NodesEvaluated"], metrics["NodesExhausted"],
            metrics["DimensionExhausted"], metrics["CoalescedFailures"]) == (3, 3, {"memory": 3},
                                                                              1)
    assert ev["BlockedEval"]
    assert nomad_api.job.get_summary("big")["Summary"]["app"]["Queued"] == 2


def test_constraint_that_no_node_meets_is_reported(nomad: NomadEmulator, nomad_api: Any) -> None:
    job = service_job("win")
    job["Constraints"] = [{"LTarget": "${attr.kernel.name}", "RTarget": "windows",
                           "Operand": "="}]
    result = nomad_api.job.register_job("win", {"Job": job})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"] == "complete")
    metrics = nomad_api.evaluation.get_evaluation(result["EvalID"])["FailedTGAllocs"]["app"]
    assert metrics["ConstraintFiltered"] == {"${attr.kernel.name} = windows": 3}


def test_missing_driver_is_reported(nomad: NomadEmulator, nomad_api: Any) -> None:
    job = service_job("j")
    job["TaskGroups"][0]["Tasks"][0]["Driver"] = "java"
    result = nomad_api.job.register_job("j", {"Job": job})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"] == "complete")
    metrics = nomad_api.evaluation.get_evaluation(result["EvalID"])["FailedTGAllocs"]["app"]
    assert metrics["ConstraintFiltered"] == {"missing drivers": 3}


def test_custom_nodes_bound_placement() -> None:
    nodes = [NodeSpec("small", memory_mb=128)]
    with NomadEmulator(nodes=nodes) as nomad:
        result = nomad.register(service_job("web", count=2, memory_mb=100))
        assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"]
                              == "complete")
        placed = list(nomad.snapshot().all("allocs"))
        failed = nomad.snapshot().eval_by_id(result["EvalID"])["FailedTGAllocs"]["app"]
    assert (len(placed), failed["DimensionExhausted"]) == (1, {"memory": 1})


# --- Consul registration -----------------------------------------------------------------------


def test_running_allocation_registers_its_service_in_consul(
        nomad: NomadEmulator, consul: ConsulEmulator, nomad_api: Any, consul_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, service="web")})
    assert _settled(nomad, "web")
    _, entries = consul_api.health.service("web", passing=True)
    ports = {a["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
             for a in (nomad_api.allocation.get_allocation(x["ID"])
                       for x in _allocs(nomad_api, "web"))}
    assert {(e["Service"]["Address"], e["Service"]["Port"]) for e in entries} == {
        ("127.0.0.1", p) for p in ports}
    assert all(e["Service"]["ID"].startswith("_nomad-task-") for e in entries)
    assert entries[0]["Service"]["Meta"]["external-source"] == "nomad"


def test_stopped_allocation_deregisters_its_service(nomad: NomadEmulator, consul_api: Any,
                                                    nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web", service="web")})
    assert _settled(nomad, "web")
    nomad_api.job.deregister_job("web")
    assert nomad.wait_for(lambda: all(a["ClientStatus"] == "complete"
                                      for a in nomad.snapshot().all("allocs")))
    _, entries = consul_api.health.service("web")
    assert entries == []


def test_unhealthy_task_registers_critical_checks(nomad: NomadEmulator, consul_api: Any,
                                                  nomad_api: Any) -> None:
    nomad.script_task("web", "app", "server", fail="unhealthy")
    nomad_api.job.register_job("web", {"Job": service_job("web", service="web")})
    assert nomad.wait_for(lambda: any(a["ClientStatus"] == "running"
                                      for a in nomad.snapshot().all("allocs")))
    _, entries = consul_api.health.service("web")
    _, passing = consul_api.health.service("web", passing=True)
    assert (len(entries), passing) == (1, [])


# --- dispatch, periodic, revert, stable ----------------------------------------------------------


def _parameterized(job_id: str) -> dict[str, Any]:
    job = batch_job(job_id)
    job["ParameterizedJob"] = {"Payload": "optional", "MetaRequired": ["customer"],
                               "MetaOptional": []}
    return job


def test_parameterized_job_gets_no_evaluation_until_dispatched(nomad_api: Any) -> None:
    result = nomad_api.job.register_job("p", {"Job": _parameterized("p")})
    assert (result["EvalID"], nomad_api.job.get_job("p")["Status"]) == ("", "running")


def test_dispatch_creates_a_child_job(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("p", {"Job": _parameterized("p")})
    result = nomad_api.job.dispatch_job("p", meta={"customer": "acme"})
    child = nomad_api.job.get_job(result["DispatchedJobID"])
    assert result["DispatchedJobID"].startswith("p/dispatch-")
    assert (child["ParentID"], child["Dispatched"], child["Meta"]) == ("p", True,
                                                                       {"customer": "acme"})


def test_dispatch_without_required_meta_is_refused(nomad_url: str, nomad_api: Any) -> None:
    nomad_api.job.register_job("p", {"Job": _parameterized("p")})
    r = requests.post(f"{nomad_url}/v1/job/p/dispatch", json={}, timeout=5)
    assert (r.status_code, r.text) == (500, "Dispatch did not provide required meta keys: "
                                            "[customer]")  # Go prints a slice so


def test_dispatch_with_the_same_idempotency_token_returns_the_same_child(
        nomad_url: str, nomad_api: Any) -> None:
    nomad_api.job.register_job("p", {"Job": _parameterized("p")})
    body = {"Meta": {"customer": "acme"}, "IdempotencyToken": "once"}
    first = requests.post(f"{nomad_url}/v1/job/p/dispatch", json=body, timeout=5).json()
    second = requests.post(f"{nomad_url}/v1/job/p/dispatch", json=body, timeout=5).json()
    assert first["DispatchedJobID"] == second["DispatchedJobID"]
    assert second["EvalID"] == ""


def test_dispatch_of_a_normal_job_is_refused(nomad_url: str, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    r = requests.post(f"{nomad_url}/v1/job/web/dispatch", json={}, timeout=5)
    assert (r.status_code, r.text) == (500, 'Specified job "web" is not a parameterized job')


def test_periodic_force_launches_a_child(nomad: NomadEmulator, nomad_api: Any) -> None:
    job = batch_job("cron")
    job["Periodic"] = {"Enabled": True, "SpecType": "cron", "Spec": "*/5 * * * *"}
    nomad_api.job.register_job("cron", {"Job": job})
    result = nomad_api.job.periodic_job("cron")
    assert result["EvalID"]
    children = [j["ID"] for j in nomad_api.jobs.get_jobs(prefix="cron/periodic-")]
    assert len(children) == 1


def test_revert_registers_the_old_spec_as_a_new_version(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.register_job("web", {"Job": service_job("web", image="v2")})
    nomad_api.job.revert_job("web", 0)
    job = nomad_api.job.get_job("web")
    assert (job["Version"], job["TaskGroups"][0]["Tasks"][0]["Config"]["image"]) == (
        2, "nginx:1.27")


def test_revert_to_the_current_version_is_refused(nomad_url: str, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    r = requests.post(f"{nomad_url}/v1/job/web/revert", json={"JobVersion": 0}, timeout=5)
    assert (r.status_code, r.text) == (500, "can't revert to current version")  # job_endpoint.go:581


def test_stable_marks_a_version(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.register_job("web", {"Job": service_job("web", image="v2")})
    nomad_api.job.stable_job("web", 0, True)
    versions = {v["Version"]: v["Stable"] for v in nomad_api.job.get_versions("web")["Versions"]}
    assert versions[0] is True


def test_evaluate_creates_a_new_evaluation(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    result = nomad_api.job.evaluate_job("web")
    assert result["EvalID"] in {e["ID"] for e in nomad_api.job.get_evaluations("web")}


def test_slow_timings_are_configurable() -> None:
    with NomadEmulator(timings=Timings(start_delay=0.3)) as nomad:
        nomad.register(service_job("web"))
        early = copy.deepcopy(list(nomad.snapshot().all("allocs")))
        assert nomad.wait_for(lambda: bool(nomad.snapshot().count("allocs")))
        first = next(iter(nomad.snapshot().all("allocs")))["ClientStatus"]
    assert (early, first) == ([], "pending")


def test_batch_job_with_only_unplaceable_allocations_is_pending(nomad: NomadEmulator,
                                                                nomad_api: Any) -> None:
    job = batch_job("big")
    job["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 100_000
    result = nomad_api.job.register_job("big", {"Job": job})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"]
                          == "complete")
    # getJobStatus (state_store.go:5585): no deployment, no allocation, a blocked evaluation.
    assert nomad_api.job.get_job("big")["Status"] == "pending"


def test_unplaceable_service_job_is_running_with_its_deployment(nomad: NomadEmulator,
                                                                nomad_api: Any) -> None:
    result = nomad_api.job.register_job("big", {"Job": service_job("big", memory_mb=100_000)})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(result["EvalID"])["Status"]
                          == "complete")
    # The reconciler creates the deployment before placement fails, and getJobStatus looks at
    # deployments first (state_store.go:5597): the job is "running" with nothing placed.
    deployment = nomad_api.job.get_deployment("big")
    assert (deployment["Status"], deployment["TaskGroups"]["app"]["PlacedAllocs"]) == (
        "running", 0)
    assert nomad_api.job.get_job("big")["Status"] == "running"


def test_a_placeable_version_cancels_the_blocked_evaluation(nomad: NomadEmulator,
                                                            nomad_api: Any) -> None:
    first = nomad_api.job.register_job("big", {"Job": service_job("big", memory_mb=100_000)})
    assert nomad.wait_for(lambda: nomad.snapshot().eval_by_id(first["EvalID"])["Status"] == "complete")
    blocked_id = nomad.snapshot().eval_by_id(first["EvalID"])["BlockedEval"]
    nomad_api.job.register_job("big", {"Job": service_job("big")})
    assert _settled(nomad, "big")
    assert nomad_api.evaluation.get_evaluation(blocked_id)["Status"] == "canceled"
    assert nomad_api.job.get_job("big")["Status"] == "running"


def test_service_job_whose_allocations_all_failed_is_dead(nomad: NomadEmulator,
                                                          nomad_api: Any) -> None:
    nomad.script_task("web", "app", "server", fail="driver")
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert _settled(nomad, "web", status="failed")
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "web")["Status"] == "dead")


def test_paused_deployment_places_nothing_until_resumed(nomad: NomadEmulator,
                                                        nomad_api: Any) -> None:
    nomad.timings.healthy_after = 0.2
    update = {"MaxParallel": 1}
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, update=update)})
    assert _settled(nomad, "web")
    nomad_api.job.register_job("web", {"Job": service_job("web", count=2, image="v2",
                                                          update=update)})
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "running"
                          and nomad.snapshot().latest_deployment("default", "web")["JobVersion"]
                          == 1)
    dep_id = nomad_api.job.get_deployment("web")["ID"]
    nomad_api.deployment.pause_deployment(dep_id, True)
    assert nomad_api.deployment.get_deployment(dep_id)["Status"] == "paused"
    nomad_api.deployment.pause_deployment(dep_id, False)
    assert _settled(nomad, "web", version=1)


def test_stopped_allocation_is_replaced(nomad: NomadEmulator, nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    assert _settled(nomad, "web")
    [alloc] = _allocs(nomad_api, "web")
    nomad_api.allocation.stop_allocation(alloc["ID"])
    assert nomad.wait_for(lambda: len(_live(list(nomad.snapshot().all("allocs")))) == 1
                          and alloc["ID"] not in {a["ID"] for a in
                                                  _live(list(nomad.snapshot().all("allocs")))})
    stopped = nomad_api.allocation.get_allocation(alloc["ID"])
    assert (stopped["DesiredStatus"], stopped["DesiredDescription"]) == (
        "stop", "alloc is being migrated")
