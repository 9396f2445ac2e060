"""Rescheduling of failed allocations, as Nomad's reconciler and deployment watcher do it.

Expectations come from Nomad's source: the reschedule policy defaults (structs.go:6219, 30s
exponential unlimited for services; 1 attempt in 24h after 5s for batch), NextDelay and
NextRescheduleTime (alloc.go:505, :626), UpdateRescheduleTracker (generic_sched.go:838), the
allow-replacement path of the deployment watcher (deployment_watcher.go:598) and
Node.UpdateAlloc's alloc-failure evaluation (node_endpoint.go:1604).
"""

from __future__ import annotations

from typing import Any

import pytest

from nomadmesh.testing import NomadEmulator, Timings
from nomadmesh.testing.jobs import batch_job, service_job

SECOND = 1_000_000_000
# A deployment that tolerates failures until its progress deadline (Nomad's default behaviour).
PATIENT = {"MaxParallel": 1, "ProgressDeadline": 600 * SECOND}


@pytest.fixture
def nomad_timings() -> Timings:
    """Nomad's durations 500x faster: a 30s reschedule delay takes 60ms."""
    return Timings(scale=0.002)


def _allocs(nomad: NomadEmulator, job_id: str) -> list[dict[str, Any]]:
    return sorted((a for a in nomad.snapshot().all("allocs") if a["JobID"] == job_id),
                  key=lambda a: a["CreateIndex"])


def _delays(alloc: dict[str, Any]) -> list[int]:
    return [e["Delay"] for e in (alloc["RescheduleTracker"] or {}).get("Events") or ()]


def test_a_failed_allocation_is_replaced_after_the_policys_delay(nomad: NomadEmulator) -> None:
    nomad.script_task("web", "app", "server", fail="driver", times=1)
    nomad.register(service_job("web", update=PATIENT))
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")
    first, second = _allocs(nomad, "web")
    assert (first["ClientStatus"], first["DesiredStatus"], first["DesiredDescription"]) == (
        "failed", "stop", "alloc was rescheduled because it failed")
    assert (first["NextAllocation"], second["PreviousAllocation"]) == (second["ID"],
                                                                       first["ID"])
    assert (second["Name"], second["ClientStatus"], _delays(second)) == (
        "web.app[0]", "running", [30 * SECOND])
    event = second["RescheduleTracker"]["Events"][0]
    assert (event["PrevAllocID"], event["PrevNodeID"]) == (first["ID"], first["NodeID"])


def test_the_exponential_delay_doubles_on_every_reschedule(nomad: NomadEmulator) -> None:
    nomad.script_task("web", "app", "server", fail="driver", times=3)
    nomad.register(service_job("web", update=PATIENT))
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")
    assert [_delays(a) for a in _allocs(nomad, "web")] == [
        [], [30 * SECOND], [30 * SECOND, 60 * SECOND],
        [30 * SECOND, 60 * SECOND, 120 * SECOND]]


def test_a_constant_delay_within_attempts_then_the_deployment_fails_early(
        nomad: NomadEmulator) -> None:
    job = service_job("web", update=PATIENT)
    job["TaskGroups"][0]["ReschedulePolicy"] = {
        "Attempts": 1, "Interval": 3600 * SECOND, "Delay": 10 * SECOND,
        "DelayFunction": "constant", "Unlimited": False}
    nomad.script_task("web", "app", "server", fail="driver")
    nomad.register(job)
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "failed")
    allocs = _allocs(nomad, "web")
    assert [_delays(a) for a in allocs] == [[], [10 * SECOND]]
    # No attempt left: shouldFailEarly fails it long before the progress deadline.
    dep = nomad.snapshot().latest_deployment("default", "web")
    assert dep is not None and dep["StatusDescription"] == "Failed due to unhealthy allocations"


def test_a_deployment_that_keeps_failing_fails_at_its_progress_deadline(
        nomad: NomadEmulator) -> None:
    nomad.script_task("web", "app", "server", fail="driver")
    nomad.register(service_job("web", update={"MaxParallel": 1, "HealthyDeadline": 60 * SECOND,
                                              "ProgressDeadline": 200 * SECOND}))
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "failed")
    dep = nomad.snapshot().latest_deployment("default", "web")
    assert dep is not None and dep["StatusDescription"] == "Failed due to progress deadline"
    assert len(_allocs(nomad, "web")) > 1


def test_a_batch_allocation_is_rescheduled_once_by_default(nomad: NomadEmulator) -> None:
    nomad.script_task("b", "app", "server", fail="exit", exit_code=3)
    nomad.register(batch_job("b"))
    assert nomad.wait_for(lambda: len(_allocs(nomad, "b")) == 2
                          and all(a["ClientStatus"] == "failed" for a in _allocs(nomad, "b")))
    evals = sorted(e["TriggeredBy"] for e in nomad.snapshot().evals_by_job("default", "b"))
    assert evals == ["alloc-failure", "alloc-reschedule", "job-register"]
    assert _delays(_allocs(nomad, "b")[1]) == [5 * SECOND]
    # the one attempt in 24h is used: the second failure creates no evaluation
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "b")["Status"] == "dead")


def test_no_replacement_when_the_policy_allows_no_attempt(nomad: NomadEmulator) -> None:
    job = batch_job("b")
    job["TaskGroups"][0]["ReschedulePolicy"] = {"Attempts": 0, "Unlimited": False}
    nomad.script_task("b", "app", "server", fail="exit")
    nomad.register(job)
    assert nomad.wait_for(lambda: nomad.snapshot().job_by_id("default", "b")["Status"] == "dead")
    assert [a["ClientStatus"] for a in _allocs(nomad, "b")] == ["failed"]
