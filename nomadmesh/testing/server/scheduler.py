"""The schedulers, as scheduler/generic_sched.go and scheduler_system.go: an evaluation -> a plan.

`schedule(eval, snapshot, ...)` reads the job, its allocations and latest deployment from a
snapshot, asks the reconciler what to do, places what must be placed through the feasibility
stack, and returns a `Plan` plus the evaluation's outcome (status, `FailedTGAllocs`,
`QueuedAllocations`, blocked and follow-up evaluations). It writes nothing: the worker applies
the plan (`apply_plan`) in one state store transaction, and `/v1/job/<id>/plan` runs the same
code on an uncommitted transaction to answer a dry run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from nomadmesh.testing.server import feasible
from nomadmesh.testing.server import reconciler as rec
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.state import Snapshot, Txn

MAX_PAST_RESCHEDULE_EVENTS = 5  # generic_sched.go maxPastRescheduleEvents

# (old job, new job, group name) -> "ignore" | "inplace" | "destructive" (scheduler/util.go)
UpdateKind = Callable[[Mapping[str, Any], Mapping[str, Any], str], str]
PortFree = Callable[[str, int], bool]


@attrs.define
class Plan:
    """structs.Plan: what an evaluation changes, applied atomically."""

    eval_id: str
    job: dict[str, Any] | None
    stopped: dict[str, dict[str, Any]] = attrs.Factory(dict)
    allocations: dict[str, dict[str, Any]] = attrs.Factory(dict)
    deployment: dict[str, Any] | None = None
    deployment_updates: list[dict[str, str]] = attrs.Factory(list)

    def stop(self, alloc: Mapping[str, Any], description: str, client_status: str = "",
             followup_eval_id: str = "") -> None:
        """AppendStoppedAlloc."""
        stopped = s.evolve(alloc, DesiredStatus=s.DESIRED_STOP,
                           DesiredDescription=description)
        if client_status:
            stopped["ClientStatus"] = client_status
        if followup_eval_id:
            stopped["FollowupEvalID"] = followup_eval_id
        self.stopped[alloc["ID"]] = stopped

    def place(self, alloc: dict[str, Any]) -> None:
        """AppendAlloc: a new allocation or an in-place update of an existing one."""
        self.allocations[alloc["ID"]] = alloc

    def is_noop(self) -> bool:
        """Plan.IsNoOp."""
        return not (self.stopped or self.allocations or self.deployment
                    or self.deployment_updates)


@attrs.define
class Outcome:
    """What processing one evaluation produced."""

    plan: Plan
    eval: dict[str, Any]
    new_evals: list[dict[str, Any]] = attrs.Factory(list)
    desired_tg_updates: dict[str, dict[str, int]] = attrs.Factory(dict)
    failed_tg_allocs: dict[str, dict[str, Any]] = attrs.Factory(dict)


def schedule(ev: Mapping[str, Any], snap: Snapshot, *, update_kind: UpdateKind,
             port_free: PortFree, scale: float) -> Outcome:
    """Process one evaluation against a snapshot (GenericScheduler/SystemScheduler.Process)."""
    job = snap.job_by_id(ev["Namespace"], ev["JobID"])
    kind = ev.get("Type") or (job or {}).get("Type") or "service"
    scheduler = _Scheduler(ev, snap, job, update_kind, port_free, scale)
    if kind in ("system", "sysbatch"):
        return scheduler.process_system()
    return scheduler.process_generic(batch=kind == "batch")


class _Scheduler:
    def __init__(self, ev: Mapping[str, Any], snap: Snapshot, job: dict[str, Any] | None,
                 update_kind: UpdateKind, port_free: PortFree, scale: float) -> None:
        self.eval = dict(ev)
        self.snap = snap
        self.job = job
        self.update_kind = update_kind
        self.port_free = port_free
        self.scale = scale
        self.plan = Plan(ev["ID"], job)
        self.failed: dict[str, dict[str, Any]] = {}
        self.queued: dict[str, int] = {}
        self.stack: feasible.Stack | None = None
        if job is not None and not job.get("Stop"):
            self.stack = feasible.Stack(job, snap.nodes(), self.usage, port_free)

    def usage(self, node_id: str) -> feasible.Usage:
        """EvalContext.ProposedAllocs, summed: the node's live allocations (kept by the state
        store per node) as the plan leaves them."""
        base = self.snap.node_usage(node_id)
        if not (self.plan.stopped or self.plan.allocations):
            return base
        usage = base.copy()
        for alloc in self.plan.stopped.values():
            before = self.snap.alloc_by_id(alloc["ID"])
            if alloc["NodeID"] == node_id and before is not None and not s.terminal(before):
                usage.add(before, -1)
        for alloc in self.plan.allocations.values():
            if alloc["NodeID"] == node_id and self.snap.alloc_by_id(alloc["ID"]) is None:
                usage.add(alloc)
        return usage

    # --- service and batch -------------------------------------------------------------------

    def process_generic(self, batch: bool) -> Outcome:
        """GenericScheduler.process + computeJobAllocs (generic_sched.go:204, 329)."""
        ns, job_id = self.eval["Namespace"], self.eval["JobID"]
        deployment = None if batch else self.snap.latest_deployment(ns, job_id)
        result = rec.reconcile(rec.State(
            job=self.job, job_id=job_id, is_batch=batch, deployment=deployment,
            allocs=self.snap.allocs_by_job(ns, job_id), eval_id=self.eval["ID"],
            eval_priority=int(self.eval.get("Priority") or 50), now=s.now_ns(),
            update_fn=self._alloc_update, scale=self.scale))
        self.plan.deployment = result.deployment
        self.plan.deployment_updates = result.deployment_updates
        current = result.deployment or deployment
        for stop in result.stop:
            self.plan.stop(stop.alloc, stop.description, stop.client_status,
                           stop.followup_eval_id)
        current_id = current["ID"] if current is not None else ""
        for update in result.inplace:
            if update.get("DeploymentID") != current_id:
                update = s.evolve(update, DeploymentID=current_id, DeploymentStatus=None)
            self.plan.place(update)
        for update in result.attribute_updates:
            self.plan.place(update)
        if self.job is not None:
            for group in self.job.get("TaskGroups") or ():
                self.queued[group["Name"]] = 0
        if result.place or result.destructive:
            for placement in [*result.destructive, *result.place]:
                self.queued[placement.group["Name"]] = self.queued.get(
                    placement.group["Name"], 0) + 1
            self._place(result.destructive + result.place, result.name_indexes, current)
        new_evals = []
        if self.failed and self.eval["Status"] != s.EVAL_BLOCKED and (
                not result.followup_evals
                or s.now_ns() > s.parse_rfc3339(self.eval.get("WaitUntil"))):
            new_evals.append(self._blocked_eval())
        if result.followup_evals and s.parse_rfc3339(self.eval.get("WaitUntil")) == 0:
            for followup in result.followup_evals:
                followup["PreviousEval"] = self.eval["ID"]
                self.eval["NextEval"] = followup["ID"]
                new_evals.append(followup)
        return self._finish(new_evals, result.desired_tg_updates, current)

    def _alloc_update(self, alloc: rec.Alloc, job: Mapping[str, Any],
                      group: Mapping[str, Any]) -> tuple[bool, bool, rec.Alloc | None]:
        """genericAllocUpdateFn (scheduler/util.go:805)."""
        if alloc["Job"]["JobModifyIndex"] == job["JobModifyIndex"]:
            return True, False, None
        if self.update_kind(alloc["Job"], job, group["Name"]) == "destructive":
            return False, True, None
        if s.terminal(alloc):
            return True, False, None
        node = self.snap.node_by_id(alloc["NodeID"])
        if node is None or not feasible.in_datacenters(node, job.get("Datacenters") or ["*"]):
            return False, True, None
        if node.get("NodePool", "default") != (job.get("NodePool") or "default"):
            return False, True, None
        return False, False, s.evolve(alloc, EvalID=self.eval["ID"], Job=job,
                                      JobVersion=job["Version"])

    def _place(self, placements: list[rec.Placement], names: Mapping[str, rec.NameIndex],
               deployment: Mapping[str, Any] | None) -> None:
        """GenericScheduler.computePlacements (generic_sched.go:487)."""
        assert self.job is not None and self.stack is not None
        deployment_id = deployment["ID"] if deployment is not None and (
            deployment["Status"] in s.ACTIVE_DEPLOYMENT) else ""
        now = s.now_ns()
        for placement in placements:
            group = placement.group
            name = group["Name"]
            if name in self.failed:
                self.failed[name]["CoalescedFailures"] += 1
                feasible.exhaust_resources(self.failed[name], group)
                continue
            previous = placement.previous
            if placement.stop_previous and previous is not None:
                self.plan.stop(previous, placement.stop_previous)
            penalty = frozenset({previous["NodeID"]}) if (
                previous is not None and placement.reschedule) else frozenset()
            started = time.perf_counter_ns()
            option = self.stack.select(group, feasible.SelectOptions(placement.name, penalty))
            metric = self.stack.metric
            metric["AllocationTime"] = time.perf_counter_ns() - started
            if option is None:
                feasible.exhaust_resources(metric, group)
                self.failed[name] = metric
                if placement.stop_previous and previous is not None:
                    self.plan.stopped.pop(previous["ID"], None)
                if previous is not None and placement.reschedule:
                    tracker = dict(previous.get("RescheduleTracker") or {"Events": None})
                    tracker["LastReschedule"] = "failed"
                    self.plan.place(s.evolve(previous, RescheduleTracker=tracker))
                continue
            alloc_name = placement.name
            index_tracker = names.get(name)
            index = s.alloc_index({"Name": alloc_name})
            if index_tracker is not None and index_tracker.is_duplicate(index):
                alloc_name = index_tracker.next(1)[0]
                index_tracker.unset(index)
            alloc = self._new_alloc(group, alloc_name, option, metric, deployment_id)
            if previous is not None:
                alloc["PreviousAllocation"] = previous["ID"]
                if placement.reschedule:
                    alloc["RescheduleTracker"] = _reschedule_tracker(previous, now)
                    tracker = dict(previous.get("RescheduleTracker") or {"Events": None})
                    tracker["LastReschedule"] = "ok"
                    if previous["ID"] in self.plan.stopped:
                        self.plan.stopped[previous["ID"]]["RescheduleTracker"] = tracker
            if placement.canary and deployment is not None:
                alloc["DeploymentStatus"] = {"Healthy": None, "Canary": True,
                                             "Timestamp": s.ZERO_TIME, "ModifyIndex": 0}
            self.plan.place(alloc)

    def _new_alloc(self, group: Mapping[str, Any], name: str, option: feasible.Option,
                   metric: Mapping[str, Any], deployment_id: str) -> dict[str, Any]:
        assert self.job is not None
        ts = s.now_ns()
        return {
            "ID": s.new_id(), "Namespace": self.job["Namespace"], "EvalID": self.eval["ID"],
            "Name": name, "NodeID": option.node["ID"], "NodeName": option.node["Name"],
            "JobID": self.job["ID"], "Job": self.job, "JobVersion": self.job["Version"],
            "TaskGroup": group["Name"], "AllocatedResources": option.resources,
            "DesiredStatus": s.DESIRED_RUN, "DesiredDescription": "",
            "DesiredTransition": {"Migrate": None, "Reschedule": None,
                                  "ForceReschedule": None, "NoShutdownDelay": None},
            "ClientStatus": s.CLIENT_PENDING, "ClientDescription": "",
            "TaskStates": None, "AllocStates": None, "DeploymentID": deployment_id,
            "DeploymentStatus": None, "RescheduleTracker": None, "NetworkStatus": None,
            "FollowupEvalID": "", "PreviousAllocation": "", "NextAllocation": "",
            "PreemptedAllocations": None, "PreemptedByAllocation": "",
            "Metrics": dict(metric), "CreateIndex": 0, "ModifyIndex": 0,
            "AllocModifyIndex": 0, "CreateTime": ts, "ModifyTime": ts,
        }

    def _blocked_eval(self) -> dict[str, Any]:
        """Evaluation.CreateBlockedEval (structs.go) with DescBlockedEvalFailedPlacements."""
        assert self.job is not None
        blocked = s.new_eval(self.job, self.eval["TriggeredBy"], status=s.EVAL_BLOCKED,
                             description=s.DESC_BLOCKED_FAILED_PLACEMENTS,
                             priority=int(self.eval.get("Priority") or 50))
        blocked.update(PreviousEval=self.eval["ID"], FailedTGAllocs=dict(self.failed),
                       JobModifyIndex=self.eval.get("JobModifyIndex", 0))
        self.eval["BlockedEval"] = blocked["ID"]
        return blocked

    def _finish(self, new_evals: list[dict[str, Any]],
                desired: dict[str, dict[str, int]],
                deployment: Mapping[str, Any] | None) -> Outcome:
        """setStatus: the evaluation completes (a blocked one that still fails stays blocked)."""
        ts = s.now_ns()
        status = s.EVAL_COMPLETE
        if self.eval["Status"] == s.EVAL_BLOCKED and self.failed:
            status = s.EVAL_BLOCKED
        queued = {name: max(0, count - _placed(self.plan, name))
                  for name, count in self.queued.items()}
        self.eval.update(Status=status, FailedTGAllocs=dict(self.failed) or None,
                         QueuedAllocations=queued, ModifyTime=ts,
                         DeploymentID=deployment["ID"] if deployment is not None else "",
                         PlanAnnotations=None, SnapshotIndex=self.snap.index)
        return Outcome(self.plan, self.eval, new_evals, desired, dict(self.failed))

    # --- system and sysbatch ---------------------------------------------------------------

    def process_system(self) -> Outcome:
        """SystemScheduler.computeJobAllocs, simplified: one allocation per feasible node."""
        ns, job_id = self.eval["Namespace"], self.eval["JobID"]
        allocs = self.snap.allocs_by_job(ns, job_id)
        live = [a for a in allocs if not s.terminal(a)]
        desired: dict[str, dict[str, int]] = {}
        stopped = self.job is None or bool(self.job.get("Stop"))
        if stopped:
            for alloc in live:
                desired.setdefault(alloc["TaskGroup"], rec.desired_updates())["Stop"] += 1
                self.plan.stop(alloc, s.ALLOC_NOT_NEEDED)
            return self._finish([], desired, None)
        assert self.job is not None and self.stack is not None
        sysbatch = self.job["Type"] == "sysbatch"
        for group in self.job.get("TaskGroups") or ():
            name = group["Name"]
            counts = desired.setdefault(name, rec.desired_updates())
            mine = [a for a in live if a["TaskGroup"] == name]
            finished = {a["NodeID"] for a in allocs if a["TaskGroup"] == name and sysbatch
                        and a["ClientStatus"] == s.CLIENT_COMPLETE
                        and a["Job"]["JobModifyIndex"] == self.job["JobModifyIndex"]}
            by_node = {a["NodeID"]: a for a in mine}
            self.queued[name] = 0
            for node in self.stack.nodes:
                metric = feasible.new_metric()
                if not self.stack.feasible(node, group, metric):
                    existing = by_node.pop(node["ID"], None)
                    if existing is not None:
                        counts["Stop"] += 1
                        self.plan.stop(existing, s.ALLOC_NOT_NEEDED)
                    continue
                existing = by_node.pop(node["ID"], None)
                if existing is not None:
                    ignore, destructive, updated = self._alloc_update(existing, self.job, group)
                    if ignore:
                        counts["Ignore"] += 1
                        continue
                    if not destructive and updated is not None:
                        counts["InPlaceUpdate"] += 1
                        self.plan.place(updated)
                        continue
                    counts["DestructiveUpdate"] += 1
                    self.plan.stop(existing, s.ALLOC_UPDATING)
                elif node["ID"] in finished:
                    counts["Ignore"] += 1
                    continue
                else:
                    counts["Place"] += 1
                self._place_on(node, group, counts, existing)
            for orphan in by_node.values():
                counts["Stop"] += 1
                self.plan.stop(orphan, s.ALLOC_NOT_NEEDED)
        for alloc in live:
            if s.lookup_group(self.job, alloc["TaskGroup"]) is None:
                desired.setdefault(alloc["TaskGroup"], rec.desired_updates())["Stop"] += 1
                self.plan.stop(alloc, s.ALLOC_NOT_NEEDED)
        new_evals = [self._blocked_eval()] if self.failed and (
            self.eval["Status"] != s.EVAL_BLOCKED) else []
        return self._finish(new_evals, desired, None)

    def _place_on(self, node: dict[str, Any], group: Mapping[str, Any],
                  counts: dict[str, int], previous: Mapping[str, Any] | None) -> None:
        assert self.job is not None and self.stack is not None
        name = group["Name"]
        self.queued[name] += 1
        metric = self.stack.fresh_metric()
        metric["NodesEvaluated"] = 1
        fitted = self.stack.fit(node, group, metric)
        if fitted is None:
            feasible.exhaust_resources(metric, group)
            if name in self.failed:
                self.failed[name]["CoalescedFailures"] += 1
            else:
                self.failed[name] = metric
            if previous is not None:
                self.plan.stopped.pop(previous["ID"], None)
            return
        alloc = self._new_alloc(group, s.alloc_name(self.job["ID"], name, 0),
                                feasible.Option(node, fitted, 0.0), metric, "")
        if previous is not None:
            alloc["PreviousAllocation"] = previous["ID"]
        self.plan.place(alloc)


def _placed(plan: Plan, group: str) -> int:
    return sum(1 for a in plan.allocations.values()
               if a["TaskGroup"] == group and a["CreateIndex"] == 0)


def _reschedule_tracker(prev: Mapping[str, Any], now: int) -> dict[str, Any]:
    """UpdateRescheduleTracker (generic_sched.go:838)."""
    group = s.lookup_group(prev.get("Job"), prev["TaskGroup"]) or {}
    policy = group.get("ReschedulePolicy") or {}
    events: list[dict[str, Any]] = []
    past = list((prev.get("RescheduleTracker") or {}).get("Events") or ())
    if int(policy.get("Attempts") or 0) > 0:
        interval = int(policy.get("Interval") or 0)
        events = [dict(e) for e in past if interval > 0
                  and now - int(e["RescheduleTime"]) <= interval]
    else:
        events = [dict(e) for e in past[-MAX_PAST_RESCHEDULE_EVENTS:]]
    events.append({"RescheduleTime": now, "PrevAllocID": prev["ID"],
                   "PrevNodeID": prev["NodeID"], "Delay": rec.next_delay(prev)})
    return {"Events": events, "LastReschedule": "ok"}


def apply_plan(txn: Txn, plan: Plan) -> None:
    """UpsertPlanResults: the deployment, its status updates, stops, placements, in a txn."""
    if plan.deployment is not None:
        txn.upsert_deployment(plan.deployment)
    for update in plan.deployment_updates:
        txn.update_deployment_status(update["DeploymentID"], update["Status"],
                                     update["StatusDescription"])
    ts = s.now_ns()
    for stopped in plan.stopped.values():
        _upsert_from_plan(txn, s.evolve(stopped, ModifyTime=ts))
    for alloc in plan.allocations.values():
        if alloc["ID"] in plan.stopped:
            continue
        _upsert_from_plan(txn, s.evolve(alloc, ModifyTime=ts))


def _upsert_from_plan(txn: Txn, alloc: dict[str, Any]) -> None:
    """upsertAllocsImpl (state_store.go:4261): server fields from the plan, client from state."""
    existing = txn.alloc_by_id(alloc["ID"])
    if existing is None:
        job = txn.job_by_id(alloc["Namespace"], alloc["JobID"])
        if job is None or job.get("Stop"):
            return
        if alloc.get("DeploymentStatus") is not None:
            alloc["DeploymentStatus"] = {**alloc["DeploymentStatus"], "ModifyIndex": txn.index}
    else:
        alloc["AllocModifyIndex"] = txn.index
        if existing.get("NextAllocation"):
            alloc["NextAllocation"] = existing["NextAllocation"]
        alloc["TaskStates"] = existing.get("TaskStates")
        if alloc["ClientStatus"] not in (s.CLIENT_LOST, s.CLIENT_UNKNOWN):
            alloc["ClientStatus"] = existing["ClientStatus"]
            alloc["ClientDescription"] = existing["ClientDescription"]
        if existing.get("DeploymentID") == alloc.get("DeploymentID"):
            # The client owns the health of an allocation; the plan's copy may be stale.
            alloc["DeploymentStatus"] = existing.get("DeploymentStatus")
    txn.upsert_alloc(alloc)
    previous = alloc.get("PreviousAllocation")
    prev = txn.alloc_by_id(previous) if previous else None
    if prev is not None and prev.get("NextAllocation") != alloc["ID"]:
        txn.put("allocs", prev["ID"], s.evolve(prev, NextAllocation=alloc["ID"],
                                                ModifyIndex=txn.index))
