"""What an update does to running allocations, periodic launches and dispatches, as Nomad does.

Update kinds follow scheduler/util.go (genericAllocUpdateFn :805, tasksUpdated): a count-only
change updates the allocations in place, any job/group/task Meta change replaces them. Counts
from scaling.min follow api.TaskGroup.Canonicalize; periodic launches nomad/periodic.go;
dispatch nomad/job_endpoint.go Dispatch.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import batch_job, service_job
from nomadmesh.testing.nomad_api import snappy_decode


def _live(nomad: NomadEmulator, job_id: str) -> list[dict[str, Any]]:
    return sorted((a for a in nomad.snapshot().all("allocs") if a["JobID"] == job_id
                   and a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"),
                  key=lambda a: a["Name"])


def _settled(nomad: NomadEmulator, job_id: str, version: int) -> bool:
    def done() -> bool:
        dep = nomad.snapshot().latest_deployment("default", job_id)
        return dep is not None and (dep["JobVersion"], dep["Status"]) == (version, "successful")

    return nomad.wait_for(done)


def test_a_count_change_updates_the_running_allocations_in_place(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web", count=2))
    assert _settled(nomad, "web", 0)
    before = {a["ID"] for a in _live(nomad, "web")}
    nomad.register(service_job("web", count=3))
    assert _settled(nomad, "web", 1)
    after = _live(nomad, "web")
    assert before < {a["ID"] for a in after} and len(after) == 3
    assert {a["JobVersion"] for a in after} == {1}
    assert not any(a["DesiredDescription"] for a in nomad.snapshot().all("allocs"))


def test_a_meta_change_replaces_every_allocation(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web", count=2, update={"MaxParallel": 2}))
    assert _settled(nomad, "web", 0)
    before = {a["ID"] for a in _live(nomad, "web")}
    nomad.register(service_job("web", count=2, update={"MaxParallel": 2},
                               meta={"nomadmesh.digest": "changed"}))
    assert _settled(nomad, "web", 1)
    after = {a["ID"] for a in _live(nomad, "web")}
    replaced = [nomad.snapshot().alloc_by_id(i) for i in before]
    assert not before & after and len(after) == 2
    assert {a["DesiredDescription"] for a in replaced if a} == {
        "alloc is being updated due to job update"}


def test_a_count_change_plans_in_place_and_a_meta_change_destructive(
        nomad: NomadEmulator) -> None:
    nomad.register(service_job("web", count=2))
    assert _settled(nomad, "web", 0)

    def plan(job: dict[str, Any]) -> dict[str, int]:
        answer = requests.post(f"{nomad.url}/v1/job/web/plan", json={"Job": job}, timeout=5)
        updates: dict[str, int] = answer.json()["Annotations"]["DesiredTGUpdates"]["app"]
        return updates

    count = plan(service_job("web", count=3))
    meta = plan(service_job("web", count=2, meta={"k": "v"}))
    assert (count["InPlaceUpdate"], count["Place"], count["DestructiveUpdate"]) == (2, 1, 0)
    assert (meta["InPlaceUpdate"], meta["DestructiveUpdate"]) == (0, 1)


def test_the_count_comes_from_scaling_min_when_not_set(nomad: NomadEmulator) -> None:
    job = service_job("web")
    del job["TaskGroups"][0]["Count"]
    job["TaskGroups"][0]["Scaling"] = {"Min": 3, "Max": 5, "Enabled": True}
    nomad.register(job)
    assert _settled(nomad, "web", 0)
    assert len(_live(nomad, "web")) == 3


def _periodic(job_id: str, spec: str, **periodic: Any) -> dict[str, Any]:
    job = batch_job(job_id)
    job["Periodic"] = {"Enabled": True, "SpecType": "cron", "Spec": spec, **periodic}
    return job


def test_a_periodic_job_launches_children_on_its_schedule(nomad: NomadEmulator) -> None:
    nomad.register(_periodic("tick", "* * * * * * *"))  # cronexpr: seconds first
    assert nomad.wait_for(lambda: len(nomad.snapshot().children("default", "tick")) >= 2,
                          timeout=10)
    children = nomad.snapshot().children("default", "tick")
    assert all(c["ID"].startswith("tick/periodic-") and c["Periodic"] is None for c in children)
    launch = nomad.snapshot().get("periodic_launch", ("default", "tick"))
    assert launch is not None and launch["ID"] == "tick"
    evals = [e["TriggeredBy"] for c in children
             for e in nomad.snapshot().evals_by_job("default", c["ID"])]
    assert set(evals) == {"periodic-job"}


def test_a_periodic_plan_tells_the_next_launch(nomad: NomadEmulator) -> None:
    answer = requests.post(f"{nomad.url}/v1/job/nightly/plan", timeout=5,
                           json={"Job": _periodic("nightly", "0 3 * * *")})
    assert answer.json()["NextPeriodicLaunch"].endswith(("03:00:00Z", "03:00:00+00:00"))


def test_prohibit_overlap_skips_a_launch_while_a_child_runs(nomad: NomadEmulator) -> None:
    nomad.timings.batch_runtime = 60.0
    nomad.register(_periodic("slow", "* * * * * * *", ProhibitOverlap=True))
    assert nomad.wait_for(lambda: bool(nomad.snapshot().children("default", "slow")),
                          timeout=10)
    first = nomad.snapshot().children("default", "slow")
    assert not nomad.wait_for(lambda: len(nomad.snapshot().children("default", "slow")) > 1,
                              timeout=2.5)
    assert len(first) == 1


def test_a_dispatched_child_carries_the_payload_and_meta(nomad: NomadEmulator) -> None:
    job = batch_job("work")
    job["ParameterizedJob"] = {"Payload": "optional", "MetaRequired": ["customer"]}
    nomad.register(job)
    answer = requests.post(f"{nomad.url}/v1/job/work/dispatch", timeout=5, json={
        "Payload": base64.b64encode(b"hello").decode(), "Meta": {"customer": "acme"},
        "IdempotencyToken": "once"}).json()
    again = requests.post(f"{nomad.url}/v1/job/work/dispatch", timeout=5, json={
        "Meta": {"customer": "acme"}, "IdempotencyToken": "once"}).json()
    child = nomad.snapshot().job_by_id("default", answer["DispatchedJobID"])
    assert child is not None and child["ParentID"] == "work" and child["Dispatched"]
    assert (snappy_decode(child["Payload"]), child["Meta"]["customer"]) == (b"hello", "acme")
    assert (again["DispatchedJobID"], again["EvalID"]) == (answer["DispatchedJobID"], "")
    assert nomad.wait_for(lambda: nomad.snapshot().job_summary("default", "work")[
        "Children"]["Dead"] == 1)


def test_a_blocked_evaluation_is_placed_when_capacity_is_freed(nomad: NomadEmulator) -> None:
    nomad.register(service_job("hog", count=3, memory_mb=6000))
    assert _settled(nomad, "hog", 0)
    result = nomad.register(service_job("late", memory_mb=6000))
    assert nomad.wait_for(lambda: (nomad.snapshot().eval_by_id(result["EvalID"]) or {}).get(
        "BlockedEval", "") != "")
    blocked = nomad.snapshot().eval_by_id(result["EvalID"])["BlockedEval"]
    requests.delete(f"{nomad.url}/v1/job/hog", timeout=5)
    assert _settled(nomad, "late", 0)
    assert nomad.snapshot().eval_by_id(blocked)["Status"] == "complete"
