"""The deployment watcher, as nomad/deploymentwatcher/deployment_watcher.go.

For every active deployment it follows the health the clients report: a healthy allocation
creates an evaluation so the rollout goes on, an unhealthy one either fails the deployment at
once (no progress deadline, or no reschedule attempts left) or is marked for replacement, and
the progress deadline fails a deployment that stopped making progress. Failing rolls back to
the latest stable version when the group auto-reverts. It also serves the promote, fail, pause
and allocation-health endpoints, with Nomad's errors. Runs on the cluster loop; the progress
deadline and the evaluation batch period follow `Timings.scale`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from nomadmesh.testing.server import reconciler as rec
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.loop import Timer
from nomadmesh.testing.server.state import Snapshot, Txn
from nomadmesh.testing.watch import WatchKey

if TYPE_CHECKING:
    from nomadmesh.testing.server.server import Server

EVAL_BATCH_PERIOD = 1 * s.SECOND  # deploymentwatcher perJobEvalBatchPeriod


class DeploymentError(Exception):
    """A deployment endpoint refused: status and Nomad's text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@attrs.define
class _Watch:
    deadline: Timer | None = None
    deadline_at: int = 0
    deadline_hit: bool = False
    batch: Timer | None = None
    replacements: set[str] = attrs.Factory(set)


class DeploymentWatcher:
    """Watches every active deployment; one `_Watch` each."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._watches: dict[str, _Watch] = {}

    def on_commit(self, keys: set[WatchKey], index: int) -> None:
        """Commit listener: deployments whose state or allocations changed."""
        ids = {k[1] for k in keys if len(k) == 2 and k[0] == "deployment"}
        ids |= {k[2] for k in keys if len(k) == 3 and k[:2] == ("allocs", "deployment")}
        if ids:
            self.server.loop.call_soon(lambda: self.check(ids))

    def restore(self) -> None:
        """Watch the active deployments of the state (after a restart)."""
        self.check(d["ID"] for d in self.server.state.snapshot().all("deployment"))

    def check(self, deployment_ids: Iterable[str]) -> None:
        """Look at these deployments again (handleAllocUpdate and the deadline timer)."""
        snap = self.server.state.snapshot()
        for dep_id in deployment_ids:
            dep = snap.deployment_by_id(dep_id)
            if dep is None or dep["Status"] not in s.ACTIVE_DEPLOYMENT:
                self._unwatch(dep_id)
                continue
            watch = self._watches.setdefault(dep_id, _Watch())
            self._reset_deadline(dep, watch, snap)
            self._handle_allocs(dep, watch, snap)

    def _unwatch(self, dep_id: str) -> None:
        watch = self._watches.pop(dep_id, None)
        if watch is not None:
            for timer in (watch.deadline, watch.batch):
                if timer is not None:
                    timer.cancel()

    # --- progress deadline ---------------------------------------------------------------------

    def _reset_deadline(self, dep: Mapping[str, Any], watch: _Watch, snap: Snapshot) -> None:
        """getDeploymentProgressCutoff (deployment_watcher.go:728), in emulated time."""
        done = _done_groups(dep, snap)
        cutoff = 0
        scale = self.server.timings.scale
        for name, state in dep["TaskGroups"].items():
            by = s.parse_rfc3339(state.get("RequireProgressBy"))
            if done.get(name) or not by:
                continue
            progress = int(state.get("ProgressDeadline") or 0)
            emulated = by - progress + int(progress * scale)
            cutoff = emulated if not cutoff else min(cutoff, emulated)
        if cutoff == watch.deadline_at:
            return
        if watch.deadline is not None:
            watch.deadline.cancel()
            watch.deadline = None
        watch.deadline_at = cutoff
        if cutoff:
            dep_id = dep["ID"]
            watch.deadline = self.server.loop.call_later(
                (cutoff - s.now_ns()) / 1e9, lambda: self._deadline_hit(dep_id), patient=True)

    def _deadline_hit(self, dep_id: str) -> None:
        watch = self._watches.get(dep_id)
        snap = self.server.state.snapshot()
        dep = snap.deployment_by_id(dep_id)
        if watch is None or dep is None or dep["Status"] not in s.ACTIVE_DEPLOYMENT:
            return
        watch.deadline = None
        watch.deadline_hit = True
        fail, rollback = _should_fail(dep, snap)
        if fail:
            self._fail(dep, s.DESC_PROGRESS_DEADLINE, rollback)

    # --- allocation health -------------------------------------------------------------------

    def _handle_allocs(self, dep: Mapping[str, Any], watch: _Watch, snap: Snapshot) -> None:
        """handleAllocUpdate (deployment_watcher.go:598) and what watch() does with it."""
        job = snap.job_by_id(dep["Namespace"], dep["JobID"])
        if job is None:
            return
        latest_eval = _job_eval_index(snap, dep["Namespace"], dep["JobID"])
        create_eval = fail = rollback = False
        replacements: list[str] = []
        allocs = snap.allocs_by_deployment(dep["ID"])
        for alloc in allocs:
            state = dep["TaskGroups"].get(alloc["TaskGroup"])
            if state is None:
                continue
            fail_early = self._should_fail_early(dep, alloc, state, job)
            if (s.is_unhealthy(alloc) and not fail_early
                    and not s.transition(alloc, "Reschedule")):
                replacements.append(alloc["ID"])
                continue
            if s.is_healthy(alloc) and int(alloc["DeploymentStatus"].get("ModifyIndex") or 0) > (
                    latest_eval):
                create_eval = True
            if fail_early:
                rollback = rollback or bool(state.get("AutoRevert"))
                fail = True
        if fail:
            desc = s.DESC_PROGRESS_DEADLINE if watch.deadline_hit else s.DESC_FAILED_ALLOCATIONS
            self._fail(dep, desc, rollback)
            return
        if self._auto_promote(dep, allocs):
            return
        if create_eval or replacements:
            self._batched_update(dep, watch, replacements)

    def _should_fail_early(self, dep: Mapping[str, Any], alloc: Mapping[str, Any],
                           state: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
        """shouldFailEarly (deployment_watcher.go:701)."""
        if not s.is_unhealthy(alloc):
            return False
        if not int(state.get("ProgressDeadline") or 0):
            return True
        with_job = s.evolve(alloc, Job=job)
        return not rec.reschedule_eligible(with_job, s.now_ns(), self.server.timings.scale)

    def _auto_promote(self, dep: Mapping[str, Any], allocs: list[dict[str, Any]]) -> bool:
        """autoPromoteDeployment (deployment_watcher.go:283)."""
        groups = dep["TaskGroups"]
        if not any(g.get("PlacedCanaries") for g in groups.values()) or not _requires_promotion(
                dep):
            return False
        healthy = {a["ID"] for a in allocs if s.is_healthy(a)}
        for state in groups.values():
            if state["DesiredCanaries"] < 1:
                continue
            placed = state.get("PlacedCanaries") or ()
            if not state.get("AutoPromote") or len(placed) < state["DesiredCanaries"]:
                return False
            if sum(1 for c in placed if c in healthy) != state["DesiredCanaries"]:
                return False
        self.promote(dep["ID"], groups=None)
        return True

    def _batched_update(self, dep: Mapping[str, Any], watch: _Watch,
                        replacements: list[str]) -> None:
        """createBatchedUpdate: one evaluation per batch period, replacements allowed."""
        watch.replacements.update(replacements)
        if watch.batch is not None:
            return
        dep_id = dep["ID"]

        def fire() -> None:
            current = self._watches.get(dep_id)
            if current is None:
                return
            current.batch = None
            allowed, current.replacements = current.replacements, set()
            self.server.write(lambda txn: self._create_update(txn, dep_id, allowed))

        watch.batch = self.server.loop.call_later(
            EVAL_BATCH_PERIOD / 1e9 * self.server.timings.scale, fire)

    def _create_update(self, txn: Txn, dep_id: str, allowed: set[str]) -> None:
        """createUpdate: DesiredTransition.Reschedule on the allowed allocations + an eval."""
        dep = txn.deployment_by_id(dep_id)
        if dep is None or dep["Status"] not in s.ACTIVE_DEPLOYMENT:
            return
        for alloc_id in allowed:
            alloc = txn.alloc_by_id(alloc_id)
            if alloc is not None:
                transition = {**(alloc.get("DesiredTransition") or {}), "Reschedule": True}
                txn.upsert_alloc(s.evolve(alloc, DesiredTransition=transition,
                                          ModifyTime=s.now_ns()))
        self._eval(txn, dep)

    def _eval(self, txn: Txn, dep: Mapping[str, Any]) -> dict[str, Any] | None:
        """getEval: an evaluation triggered by the deployment watcher."""
        job = txn.job_by_id(dep["Namespace"], dep["JobID"])
        if job is None:
            return None
        return txn.upsert_eval(s.new_eval(
            job, s.TRIGGER_DEPLOYMENT_WATCHER, deployment_id=dep["ID"],
            priority=int(dep.get("EvalPriority") or job.get("Priority") or 50)))

    # --- failing and rolling back --------------------------------------------------------------

    def _fail(self, dep: Mapping[str, Any], description: str, rollback: bool) -> None:
        self._unwatch(dep["ID"])
        with contextlib.suppress(DeploymentError):  # someone else ended it meanwhile
            self.server.write(lambda txn: self._apply_failure(txn, dep["ID"], description,
                                                              rollback))

    def _apply_failure(self, txn: Txn, dep_id: str, description: str,
                       rollback: bool) -> dict[str, Any]:
        """The end of watch() / FailDeployment: status, rollback job, evaluation."""
        dep = txn.deployment_by_id(dep_id)
        assert dep is not None
        if dep["Status"] not in s.ACTIVE_DEPLOYMENT:  # it ended meanwhile
            raise DeploymentError(500, "can't fail terminal deployment")
        target = None
        if rollback:
            target = _latest_stable(txn, dep)
            if target is None:
                description += " - no stable job version to auto revert to"
            else:
                job = txn.job_by_id(dep["Namespace"], dep["JobID"])
                if job is not None and self.server.spec_changed(job, target):
                    description += f" - rolling back to job version {target['Version']}"
                else:
                    description += (f" - not rolling back to stable job version "
                                    f"{target['Version']} as current job has same "
                                    "specification")
                    target = None
        txn.update_deployment_status(dep_id, s.DEPLOYMENT_FAILED, description)
        reverted = None
        if target is not None:
            reverted = txn.upsert_job(s.evolve(target, SubmitTime=s.now_ns()))
        ev = self._eval(txn, dep)
        return {"EvalID": ev["ID"] if ev else "", "EvalCreateIndex": txn.index,
                "DeploymentModifyIndex": txn.index, "Index": txn.index,
                "RevertedJobVersion": target["Version"] if target is not None else None,
                "RevertedJob": reverted}

    # --- endpoints (nomad/deployment_endpoint.go) -------------------------------------------------

    def _active(self, deployment_id: str, error: str) -> dict[str, Any]:
        dep = self.server.state.snapshot().deployment_by_id(deployment_id)
        if dep is None:
            raise DeploymentError(500, "deployment not found")
        if dep["Status"] not in s.ACTIVE_DEPLOYMENT:
            raise DeploymentError(500, error)
        return dep

    def promote(self, deployment_id: str, groups: list[str] | None) -> dict[str, Any]:
        """Deployment.Promote + UpdateDeploymentPromotion (state_store.go:4990)."""
        self._active(deployment_id, "can't promote terminal deployment")

        def apply(txn: Txn) -> dict[str, Any]:
            dep = txn.deployment_by_id(deployment_id)
            assert dep is not None
            if dep["Status"] not in s.ACTIVE_DEPLOYMENT:  # it ended meanwhile (state_store.go)
                raise DeploymentError(500, f'Deployment "{deployment_id}" has terminal status '
                                           f'"{dep["Status"]}":')
            chosen = set(dep["TaskGroups"]) if groups is None else set(groups)
            canaries = {c for st in dep["TaskGroups"].values()
                        for c in st.get("PlacedCanaries") or ()}
            healthy: dict[str, int] = {}
            promotable = []
            for alloc in txn.allocs_by_deployment(deployment_id):
                if (alloc["ID"] in canaries and alloc["TaskGroup"] in chosen
                        and not s.terminal(alloc) and s.is_healthy(alloc)):
                    healthy[alloc["TaskGroup"]] = healthy.get(alloc["TaskGroup"], 0) + 1
                    promotable.append(alloc)
            errors = [f'Task group "{tg}" has {healthy.get(tg, 0)}/{st["DesiredCanaries"]} '
                      "healthy allocations"
                      for tg, st in sorted(dep["TaskGroups"].items())
                      if tg in chosen and st["DesiredCanaries"]
                      and healthy.get(tg, 0) < st["DesiredCanaries"]]
            if errors:
                raise DeploymentError(500, self.server.multierror(errors))
            states = {}
            for tg, st in dep["TaskGroups"].items():
                if tg in chosen:
                    st = dict(st, Promoted=True)
                    if int(st.get("ProgressDeadline") or 0) and s.parse_rfc3339(
                            st.get("RequireProgressBy")):
                        st["RequireProgressBy"] = s.rfc3339(
                            s.now_ns() + int(st["ProgressDeadline"]))
                states[tg] = st
            promoted = s.evolve(dep, TaskGroups=states, ModifyTime=s.now_ns())
            if not _requires_promotion(promoted) and promoted["Status"] == s.DEPLOYMENT_RUNNING:
                promoted["StatusDescription"] = s.DESC_RUNNING
            txn.upsert_deployment(promoted)
            ev = self._eval(txn, dep)
            for alloc in promotable:
                status = {**alloc["DeploymentStatus"], "Canary": False,
                          "ModifyIndex": txn.index}
                txn.put("allocs", alloc["ID"], s.evolve(
                    alloc, DeploymentStatus=status, ModifyIndex=txn.index,
                    AllocModifyIndex=txn.index))
            return _update_response(txn, ev)

        result: dict[str, Any] = self.server.write(apply)
        return result

    def fail(self, deployment_id: str) -> dict[str, Any]:
        """Deployment.Fail (rolls back when a group auto-reverts)."""
        dep = self._active(deployment_id, "can't fail terminal deployment")
        rollback = any(st.get("AutoRevert") for st in dep["TaskGroups"].values())
        self._unwatch(deployment_id)
        result: dict[str, Any] = self.server.write(
            lambda txn: self._apply_failure(txn, deployment_id, s.DESC_FAILED_BY_USER, rollback))
        result.pop("RevertedJob", None)
        return result

    def pause(self, deployment_id: str, pause: bool) -> dict[str, Any]:
        """Deployment.Pause: pause, or resume with an evaluation."""
        self._active(deployment_id, "can't pause terminal deployment" if pause
                     else "can't resume terminal deployment")

        def apply(txn: Txn) -> dict[str, Any]:
            current = txn.deployment_by_id(deployment_id)
            if current is None or current["Status"] not in s.ACTIVE_DEPLOYMENT:
                raise DeploymentError(500, "can't pause terminal deployment" if pause
                                      else "can't resume terminal deployment")
            status, desc = ((s.DEPLOYMENT_PAUSED, s.DESC_PAUSED) if pause
                            else (s.DEPLOYMENT_RUNNING, s.DESC_RUNNING))
            dep = txn.update_deployment_status(deployment_id, status, desc)
            ev = None if pause or dep is None else self._eval(txn, dep)
            return _update_response(txn, ev)

        result: dict[str, Any] = self.server.write(apply)
        return result

    def set_alloc_health(self, deployment_id: str, healthy: list[str],
                         unhealthy: list[str]) -> dict[str, Any]:
        """Deployment.SetAllocHealth: manual health (health_check = "manual")."""
        dep = self._active(deployment_id,
                           "can't set health of allocations for a terminal deployment")
        rollback = bool(unhealthy) and any(
            dep["TaskGroups"].get(a["TaskGroup"], {}).get("AutoRevert")
            for a in self.server.state.snapshot().allocs_by_deployment(deployment_id)
            if a["ID"] in unhealthy)

        def apply(txn: Txn) -> dict[str, Any]:
            ts = s.now_ns()
            for alloc_id, value in [*((a, True) for a in healthy),
                                    *((a, False) for a in unhealthy)]:
                alloc = txn.alloc_by_id(alloc_id)
                if alloc is None or alloc.get("DeploymentID") != deployment_id:
                    raise DeploymentError(500, f"Deployment {deployment_id} does not contain "
                                               f"allocation {alloc_id}")
                txn.upsert_alloc(s.evolve(alloc, DeploymentStatus={
                    **(alloc.get("DeploymentStatus") or {"Canary": False}),
                    "Healthy": value, "Timestamp": s.rfc3339(ts)}))
            if unhealthy:
                result = self._apply_failure(txn, deployment_id, s.DESC_FAILED_ALLOCATIONS,
                                             rollback)
                result.pop("RevertedJob", None)
                return result
            current = txn.deployment_by_id(deployment_id)
            ev = self._eval(txn, current) if current is not None else None
            return _update_response(txn, ev)

        result: dict[str, Any] = self.server.write(apply)
        return result


def _update_response(txn: Txn, ev: Mapping[str, Any] | None) -> dict[str, Any]:
    """structs.DeploymentUpdateResponse."""
    return {"EvalID": ev["ID"] if ev else "", "EvalCreateIndex": txn.index if ev else 0,
            "DeploymentModifyIndex": txn.index, "RevertedJobVersion": None,
            "Index": txn.index}


def _done_groups(dep: Mapping[str, Any], snap: Snapshot) -> dict[str, bool]:
    """doneGroups (deployment_watcher.go:753)."""
    healthy: dict[str, int] = {}
    for alloc in snap.allocs_by_deployment(dep["ID"]):
        if not s.terminal(alloc) and s.is_healthy(alloc):
            healthy[alloc["TaskGroup"]] = healthy.get(alloc["TaskGroup"], 0) + 1
    out = {}
    for name, state in dep["TaskGroups"].items():
        if state["DesiredCanaries"] and not state["Promoted"]:
            out[name] = False
        else:
            out[name] = healthy.get(name, 0) >= state["DesiredTotal"]
    return out


def _should_fail(dep: Mapping[str, Any], snap: Snapshot) -> tuple[bool, bool]:
    """shouldFail (deployment_watcher.go:655): at the deadline, fail? roll back?"""
    if dep["Status"] == s.DEPLOYMENT_PAUSED:
        return False, False
    job = snap.job_by_id(dep["Namespace"], dep["JobID"])
    fail = False
    for name, state in dep["TaskGroups"].items():
        if state["DesiredCanaries"] > 0 and not state["Promoted"]:
            if state["HealthyAllocs"] >= state["DesiredCanaries"]:
                continue
        elif state["HealthyAllocs"] >= state["DesiredTotal"]:
            continue
        fail = True
        group = s.lookup_group(job, name) or {}
        if (group.get("Update") or {}).get("AutoRevert"):
            return True, True
    return fail, False


def _job_eval_index(snap: Snapshot, namespace: str, job_id: str) -> int:
    """jobEvalStatus (deployment_watcher.go:979): what the scheduler has last seen."""
    latest = 0
    for ev in snap.evals_by_job(namespace, job_id):
        if ev["Status"] == s.EVAL_CANCELLED:
            continue
        latest = max(latest, int(ev.get("SnapshotIndex") or 0) or int(ev["CreateIndex"]))
    return latest


def _latest_stable(snap: Snapshot, dep: Mapping[str, Any]) -> dict[str, Any] | None:
    """latestStableJob: the newest version marked stable."""
    return next((v for v in snap.job_versions(dep["Namespace"], dep["JobID"]) if v["Stable"]),
                None)


def _requires_promotion(dep: Mapping[str, Any]) -> bool:
    return dep["Status"] == s.DEPLOYMENT_RUNNING and any(
        g["DesiredCanaries"] > 0 and not g["Promoted"] for g in dep["TaskGroups"].values())
