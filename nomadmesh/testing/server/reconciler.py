"""The allocation reconciler, as scheduler/reconciler/reconcile_cluster.go: pure decisions.

`reconcile(state)` takes a job, its allocations and its current deployment and answers what
to do, without touching the state store: allocations to place (new, rescheduled, canaries,
migrations), to stop, to update in place or destructively, the deployment to create and the
status updates of existing ones, follow-up evaluations for delayed rescheduling, and the
per-group counts Nomad shows as `DesiredTGUpdates`. The scheduler turns these into a plan.

Nodes never go down in the emulator, so the reconnect/disconnect/lost paths of Nomad's
reconciler (tainted nodes, max_client_disconnect) are not here; everything else follows the Go
code function by function (file:line at aa026cc in each docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from nomadmesh.testing.server import structs as s

Alloc = dict[str, Any]
AllocSet = dict[str, Alloc]
# (alloc, job, group) -> (ignore, destructive, in-place updated alloc)
UpdateFn = Callable[[Alloc, Mapping[str, Any], Mapping[str, Any]],
                    tuple[bool, bool, Alloc | None]]

RESCHEDULE_WINDOW = 1 * s.SECOND        # reconcile_cluster.go:34 rescheduleWindowSize
BATCHED_FAILED_WINDOW = 5 * s.SECOND    # reconcile_cluster.go:29 batchedFailedAllocWindowSize
UPDATE_KEYS = ("Ignore", "Place", "Migrate", "Stop", "InPlaceUpdate", "DestructiveUpdate",
               "Canary", "Preemptions", "Disconnect", "Reconnect", "RescheduleNow",
               "RescheduleLater")


def desired_updates() -> dict[str, int]:
    """A zeroed structs.DesiredUpdates."""
    return dict.fromkeys(UPDATE_KEYS, 0)


@attrs.frozen
class Placement:
    """AllocPlaceResult: one allocation to create (allocs.go:62)."""

    name: str
    group: Mapping[str, Any]
    canary: bool = False
    previous: Alloc | None = None
    reschedule: bool = False
    stop_previous: str = ""  # a destructive update stops its previous allocation


@attrs.frozen
class Stop:
    """AllocStopResult: one allocation to stop, why, and its follow-up evaluation."""

    alloc: Alloc
    description: str
    client_status: str = ""
    followup_eval_id: str = ""


@attrs.define
class Results:
    """ReconcileResults (reconcile_cluster.go:90)."""

    deployment: dict[str, Any] | None = None
    deployment_updates: list[dict[str, str]] = attrs.Factory(list)
    place: list[Placement] = attrs.Factory(list)
    destructive: list[Placement] = attrs.Factory(list)
    inplace: list[Alloc] = attrs.Factory(list)
    attribute_updates: list[Alloc] = attrs.Factory(list)
    stop: list[Stop] = attrs.Factory(list)
    desired_tg_updates: dict[str, dict[str, int]] = attrs.Factory(dict)
    followup_evals: list[dict[str, Any]] = attrs.Factory(list)
    name_indexes: dict[str, NameIndex] = attrs.Factory(dict)


@attrs.frozen
class State:
    """What the reconciler reconciles: ReconcilerState + ClusterState."""

    job: Mapping[str, Any] | None
    job_id: str
    is_batch: bool
    deployment: Mapping[str, Any] | None
    allocs: list[Alloc]
    eval_id: str
    eval_priority: int
    now: int
    update_fn: UpdateFn
    scale: float = 1.0  # emulated time: Nomad's durations run this much faster


def reconcile(state: State) -> Results:
    """AllocReconciler.Compute (reconcile_cluster.go:272)."""
    return _Reconciler(state).compute()


# --- reschedule policy (nomad/structs/alloc.go) --------------------------------------------------


def _policy(alloc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    group = s.lookup_group(alloc.get("Job"), alloc["TaskGroup"])
    policy: Mapping[str, Any] | None = None if group is None else group.get("ReschedulePolicy")
    return policy


def last_event_time(alloc: Mapping[str, Any]) -> int:
    """Allocation.LastEventTime (alloc.go:469): the latest FinishedAt, else ModifyTime."""
    latest = 0
    for state in (alloc.get("TaskStates") or {}).values():
        latest = max(latest, s.parse_rfc3339(state.get("FinishedAt")))
    return latest or int(alloc.get("ModifyTime") or 0)


def _events(alloc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((alloc.get("RescheduleTracker") or {}).get("Events") or ())


def next_delay(alloc: Mapping[str, Any]) -> int:
    """Allocation.NextDelay (alloc.go:626): the delay function over past reschedules."""
    policy = _policy(alloc)
    if not policy:
        return 0
    delay = int(policy.get("Delay") or 0)
    events = _events(alloc)
    if not events:
        return delay
    function = policy.get("DelayFunction") or ""
    max_delay = int(policy.get("MaxDelay") or 0)
    if function == "exponential":
        delay = int(events[-1]["Delay"]) * 2
    elif function == "fibonacci":
        if len(events) >= 2:
            n1, n2 = int(events[-1]["Delay"]), int(events[-2]["Delay"])
            delay = n1 if (n2 == max_delay and n1 == int(policy.get("Delay") or 0)) else n1 + n2
    else:
        return delay
    if max_delay > 0 and delay > max_delay:
        delay = max_delay
        if last_event_time(alloc) - int(events[-1]["RescheduleTime"]) > delay:
            delay = int(policy.get("Delay") or 0)
    return delay


def _reschedule_info(alloc: Mapping[str, Any], policy: Mapping[str, Any], fail_time: int,
                     scale: float) -> tuple[int, int]:
    """RescheduleTracker.rescheduleInfo: attempts within the interval, attempts allowed."""
    attempts = int(policy.get("Attempts") or 0)
    interval = int(policy.get("Interval") or 0) * scale
    attempted = 0
    if attempts > 0:
        for event in _events(alloc):
            if fail_time - int(event["RescheduleTime"]) < interval:
                attempted += 1
    return attempted, attempts


def reschedule_eligible(alloc: Mapping[str, Any], fail_time: int, scale: float) -> bool:
    """RescheduleTracker.RescheduleEligible (structs.go:10666)."""
    policy = _policy(alloc)
    if not policy:
        return False
    attempts = int(policy.get("Attempts") or 0)
    if not (attempts > 0 or policy.get("Unlimited")):
        return False
    if policy.get("Unlimited"):
        return True
    if not _events(alloc) and attempts > 0:
        return True
    attempted, _ = _reschedule_info(alloc, policy, fail_time, scale)
    return attempted < attempts


def next_reschedule_time(alloc: Mapping[str, Any], scale: float) -> tuple[int, bool]:
    """Allocation.NextRescheduleTime (alloc.go:505): when, and whether within policy."""
    fail_time = last_event_time(alloc)
    policy = _policy(alloc)
    rescheduled_batch = (alloc["Job"]["Type"] == "batch" and s.transition(alloc, "Reschedule"))
    if not policy or (int(policy.get("Attempts") or 0) == 0 and not policy.get("Unlimited")):
        return 0, False
    if ((alloc["DesiredStatus"] == s.DESIRED_STOP and not _last_reschedule_failed(alloc))
            or (not rescheduled_batch and alloc["ClientStatus"] not in (s.CLIENT_FAILED,
                                                                        s.CLIENT_LOST))
            or not fail_time):
        return 0, False
    delay = next_delay(alloc)
    when = fail_time + int(delay * scale)
    eligible = bool(policy.get("Unlimited")) or (int(policy.get("Attempts") or 0) > 0
                                                 and alloc.get("RescheduleTracker") is None)
    if int(policy.get("Attempts") or 0) > 0 and _events(alloc):
        attempted, attempts = _reschedule_info(alloc, policy, fail_time, scale)
        eligible = attempted < attempts and delay < int(policy.get("Interval") or 0)
    return when, eligible


def _last_reschedule_failed(alloc: Mapping[str, Any]) -> bool:
    tracker = alloc.get("RescheduleTracker") or {}
    return tracker.get("LastReschedule") == "failed"


# --- alloc names (allocs.go:240) -------------------------------------------------------------------


class NameIndex:
    """AllocNameIndex: which `job.group[i]` indexes are taken; picks names to add or remove."""

    def __init__(self, job_id: str, group: str, count: int, allocs: Iterable[Alloc]) -> None:
        self.job_id = job_id
        self.group = group
        self.count = count
        self.used: set[int] = set()
        self.duplicates: dict[int, int] = {}
        allocs = list(allocs)
        self.size = _bitmap_size(allocs, count)
        for alloc in allocs:
            index = s.alloc_index(alloc)
            if index in self.used:
                self.duplicates[index] = self.duplicates.get(index, 0) + 1
            else:
                self.used.add(index)

    def _name(self, index: int) -> str:
        return s.alloc_name(self.job_id, self.group, index)

    def highest(self, n: int) -> set[str]:
        """Remove and return the highest n used names."""
        out: set[str] = set()
        for index in range(self.size - 1, -1, -1):
            if len(out) >= n:
                break
            if index in self.used:
                self.used.discard(index)
                out.add(self._name(index))
        return out

    def is_duplicate(self, index: int) -> bool:
        """Whether that index is taken more than once."""
        return self.duplicates.get(index, 0) > 0

    def unset(self, index: int) -> None:
        """Mark an index free (or one duplicate of it)."""
        if index in self.duplicates:
            self.duplicates[index] -= 1
            if not self.duplicates[index]:
                del self.duplicates[index]
        else:
            self.used.discard(index)

    def next_canaries(self, n: int, existing: AllocSet, destructive: AllocSet) -> list[str]:
        """Names for n canaries: first those of allocations being replaced (allocs.go:362)."""
        names: list[str] = []
        existing_names = {a["Name"] for a in existing.values()}
        replaced = {s.alloc_index(a) for a in destructive.values()}
        for pool in (sorted(i for i in replaced if i < self.count),
                     [i for i in range(self.count) if i not in self.used]):
            for index in pool:
                name = self._name(index)
                if name not in existing_names and name not in names:
                    names.append(name)
                    self.used.add(index)
                    if len(names) == n:
                        return names
        remainder = n - len(names)
        names.extend(self._name(i) for i in range(self.count, self.count + remainder))
        return names

    def next(self, n: int) -> list[str]:
        """Names for n new allocations: free indexes first, then overlapping ones."""
        names: list[str] = []
        for index in range(self.count):
            if len(names) == n:
                return names
            if index not in self.used:
                names.append(self._name(index))
                self.used.add(index)
        for index in range(n - len(names)):
            names.append(self._name(index))
            self.used.add(index)
        return names


def _bitmap_size(allocs: list[Alloc], count: int) -> int:
    """bitmapFrom's size: the larger of count and the highest index, byte aligned."""
    highest = max((s.alloc_index(a) for a in allocs), default=0)
    minimum = max(count, len(allocs))
    if highest < minimum:
        highest = minimum
    elif highest % 8 == 0:
        highest += 1
    if highest == 0:
        highest = 8
    return highest + (8 - highest % 8) % 8


# --- the reconciler ---------------------------------------------------------------------------


def _union(*sets: AllocSet) -> AllocSet:
    out: AllocSet = {}
    for one in sets:
        out.update(one)
    return out


def _difference(base: AllocSet, *others: AllocSet) -> AllocSet:
    return {k: v for k, v in base.items() if not any(k in o for o in others)}


def _name_order(allocs: AllocSet) -> list[Alloc]:
    return sorted(allocs.values(), key=lambda a: (s.alloc_index(a), a["ID"]))


def _mark_stop(allocs: AllocSet, client_status: str, description: str,
               followups: Mapping[str, str] | None = None) -> list[Stop]:
    return [Stop(a, description, client_status, (followups or {}).get(a["ID"], ""))
            for a in _name_order(allocs)]


def _update_strategy(group: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The group's update block, None when empty (UpdateStrategy.IsEmpty: MaxParallel 0)."""
    update: Mapping[str, Any] | None = group.get("Update")
    if not update or not int(update.get("MaxParallel") or 0):
        return None
    return update


class _Reconciler:
    def __init__(self, state: State) -> None:
        self.state = state
        self.job = state.job
        self.current: dict[str, Any] | None = _copy_deployment(state.deployment)
        self.old: dict[str, Any] | None = None
        self.paused = False
        self.failed = False

    def _stopped(self) -> bool:
        return self.job is None or bool(self.job.get("Stop"))

    def compute(self) -> Results:
        result = Results()
        matrix: dict[str, AllocSet] = {}
        for alloc in self.state.allocs:
            matrix.setdefault(alloc["TaskGroup"], {})[alloc["ID"]] = alloc
        if self.job is not None:
            for group in self.job.get("TaskGroups") or ():
                matrix.setdefault(group["Name"], {})
        result.deployment_updates.extend(self._cancel_unneeded_deployments())
        if self._stopped():
            for name, allocs in matrix.items():
                live = {k: a for k, a in allocs.items() if not s.terminal(a)}
                result.desired_tg_updates[name] = {**desired_updates(), "Stop": len(live)}
                result.stop.extend(_mark_stop(live, "", s.ALLOC_NOT_NEEDED))
            return result
        if self.current is not None:
            status = self.current["Status"]
            self.paused = status in (s.DEPLOYMENT_PAUSED, s.DEPLOYMENT_PENDING,
                                     s.DEPLOYMENT_INITIALIZING)
            self.failed = status == s.DEPLOYMENT_FAILED
        complete = True
        for name in sorted(matrix):
            group_complete = self._compute_group(name, matrix[name], result)
            complete = complete and group_complete
        result.deployment_updates.extend(self._status_updates(complete, result.deployment))
        return result

    def _cancel_unneeded_deployments(self) -> list[dict[str, str]]:
        """cancelUnneededServiceDeployments (reconcile_cluster.go:575)."""
        dep = self.current
        if self._stopped():
            self.old, self.current = dep, None
            if dep is not None and dep["Status"] in s.ACTIVE_DEPLOYMENT:
                return [_status_update(dep["ID"], s.DEPLOYMENT_CANCELLED, s.DESC_STOPPED_JOB)]
            return []
        if dep is None:
            return []
        assert self.job is not None
        if (dep["JobCreateIndex"] != self.job["CreateIndex"]
                or dep["JobVersion"] != self.job["Version"]):
            self.old, self.current = dep, None
            if dep["Status"] in s.ACTIVE_DEPLOYMENT:
                return [_status_update(dep["ID"], s.DEPLOYMENT_CANCELLED, s.DESC_NEWER_JOB)]
            return []
        if dep["Status"] == s.DEPLOYMENT_SUCCESSFUL:
            self.old, self.current = dep, None
        return []

    def _status_updates(self, complete: bool,
                        created: dict[str, Any] | None) -> list[dict[str, str]]:
        """setDeploymentStatusAndUpdates (reconcile_cluster.go:619)."""
        updates = []
        if self.current is not None and complete:
            updates.append(_status_update(self.current["ID"], s.DEPLOYMENT_SUCCESSFUL,
                                          s.DESC_SUCCESSFUL))
        if created is not None and _requires_promotion(created):
            created["StatusDescription"] = (s.DESC_AUTO_PROMOTION if _has_auto_promote(created)
                                            else s.DESC_NEEDS_PROMOTION)
        return updates

    # --- one group ------------------------------------------------------------------------

    def _compute_group(self, name: str, all_allocs: AllocSet, result: Results) -> bool:
        """computeGroup (reconcile_cluster.go:383)."""
        desired = result.desired_tg_updates.setdefault(name, desired_updates())
        assert self.job is not None
        group = s.lookup_group(self.job, name)
        all_allocs = {k: a for k, a in all_allocs.items() if not s.server_terminal(a) or (
            a["Job"]["Type"] == "batch" and not s.transition(a, "Reschedule"))}
        if group is None or not group.get("Count"):
            untainted, migrate, _ = _classify(all_allocs)
            desired["Stop"] += len(all_allocs)
            result.stop.extend(_mark_stop(_union(untainted, migrate), "", s.ALLOC_NOT_NEEDED))
            return True
        dstate, existing_deployment = self._deployment_state(name, group)
        all_allocs, ignore = self._old_terminal(all_allocs)
        desired["Ignore"] += len(ignore)
        canaries, all_allocs = self._cancel_unneeded_canaries(all_allocs, desired, result)
        untainted, migrate, ignore = _classify(all_allocs)
        desired["Ignore"] += len(ignore)
        untainted, reschedule_now, reschedule_later = self._reschedulable(untainted)
        _, migrate_now, migrate_later = self._reschedulable(migrate)
        reschedule_now = _union(reschedule_now, migrate_now)
        reschedule_later = reschedule_later + migrate_later
        if reschedule_later:
            self._reschedule_later_evals(reschedule_later, all_allocs, migrate, name, desired,
                                         result)
        names = NameIndex(self.state.job_id, name, int(group["Count"]),
                          _union(untainted, migrate, reschedule_now).values())
        result.name_indexes[name] = names
        canarying = bool(dstate.get("DesiredCanaries")) and not dstate.get("Promoted")
        untainted = self._compute_stop(group, names, untainted, migrate, canaries, canarying,
                                       desired, result)
        inplace, destructive = self._compute_updates(untainted, group, desired, result)
        if not existing_deployment:
            dstate["DesiredTotal"] += len(destructive) + len(inplace)
        if canarying:
            untainted = _difference(untainted, canaries)
        needs_canaries = _requires_canaries(group, dstate, destructive, canaries)
        if needs_canaries:
            self._compute_canaries(group, dstate, destructive, canaries, names, desired,
                                   result)
        canarying = bool(dstate.get("DesiredCanaries")) and not dstate.get("Promoted")
        under = self._under_provisioned_by(group, untainted, destructive, migrate, canarying)
        place = _compute_placements(group, names, untainted, migrate, reschedule_now)
        if not existing_deployment:
            dstate["DesiredTotal"] += len(place)
        place_ready = not self.paused and not self.failed and not canarying
        under = self._place_allocs(place_ready, desired, place, migrate, reschedule_now,
                                   under, result)
        if place_ready:
            result.destructive.extend(self._destructive_updates(destructive, under, desired,
                                                                group))
        else:
            desired["Ignore"] += len(destructive)
        self._compute_migrations(migrate, group, desired, result)
        created = self._create_deployment(name, group, existing_deployment, dstate,
                                          all_allocs, destructive, desired["InPlaceUpdate"])
        if created is not None:
            result.deployment = created
        count = int(group["Count"])
        group_places = [p for p in result.place if p.group["Name"] == name]
        if len(group_places) > count:
            keep = set(map(id, group_places[:count]))
            result.place = [p for p in result.place
                            if p.group["Name"] != name or id(p) in keep]
            desired["Place"] = count
        return self._deployment_complete(name, destructive, inplace, migrate, reschedule_now,
                                         [p for p in result.place if p.group["Name"] == name],
                                         reschedule_later, needs_canaries)

    def _deployment_state(self, name: str,
                          group: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """initializeDeploymentState (reconcile_cluster.go:668)."""
        if self.current is not None and name in self.current["TaskGroups"]:
            state: dict[str, Any] = self.current["TaskGroups"][name]
            return state, True
        update = _update_strategy(group) or {}
        return {"AutoRevert": bool(update.get("AutoRevert")),
                "AutoPromote": bool(update.get("AutoPromote")),
                "ProgressDeadline": int(update.get("ProgressDeadline") or 0),
                "RequireProgressBy": s.ZERO_TIME, "Promoted": False, "PlacedCanaries": None,
                "DesiredCanaries": 0, "DesiredTotal": 0, "PlacedAllocs": 0,
                "HealthyAllocs": 0, "UnhealthyAllocs": 0}, False

    def _old_terminal(self, allocs: AllocSet) -> tuple[AllocSet, AllocSet]:
        """filterOldTerminalAllocs (filters.go:93): batch allocs of older versions, done."""
        if not self.state.is_batch:
            return allocs, {}
        assert self.job is not None
        remain: AllocSet = {}
        ignore: AllocSet = {}
        for key, alloc in allocs.items():
            older = (alloc["Job"]["Version"] < self.job["Version"]
                     or alloc["Job"]["CreateIndex"] < self.job["CreateIndex"])
            (ignore if older and s.terminal(alloc) else remain)[key] = alloc
        return remain, ignore

    def _cancel_unneeded_canaries(self, allocs: AllocSet, desired: dict[str, int],
                                  result: Results) -> tuple[AllocSet, AllocSet]:
        """cancelUnneededCanaries (reconcile_cluster.go:730)."""
        stop_ids: list[str] = []
        for dep in (self.old, self.current if self.current is not None and (
                self.current["Status"] == s.DEPLOYMENT_FAILED) else None):
            if dep is None:
                continue
            for state in dep["TaskGroups"].values():
                if not state.get("Promoted"):
                    stop_ids.extend(state.get("PlacedCanaries") or ())
        stop = {k: allocs[k] for k in stop_ids if k in allocs}
        result.stop.extend(_mark_stop(stop, "", s.ALLOC_NOT_NEEDED))
        desired["Stop"] += len(stop)
        allocs = _difference(allocs, stop)
        canaries: AllocSet = {}
        if self.current is not None:
            ids = [i for st in self.current["TaskGroups"].values()
                   for i in st.get("PlacedCanaries") or ()]
            found = {k: allocs[k] for k in ids if k in allocs}
            untainted, migrate, _ = _classify(found)
            result.stop.extend(_mark_stop(migrate, "", s.ALLOC_MIGRATING))
            canaries = untainted
            allocs = _difference(allocs, migrate)
        return canaries, allocs

    def _reschedulable(self, allocs: AllocSet) -> tuple[AllocSet, AllocSet,
                                                          list[tuple[str, Alloc, int]]]:
        """filterByRescheduleable (filters.go:395)."""
        untainted: AllocSet = {}
        now_set: AllocSet = {}
        later: list[tuple[str, Alloc, int]] = []
        for key, alloc in allocs.items():
            if alloc.get("NextAllocation") and s.terminal(alloc):
                continue
            is_untainted, ignore = _should_filter(alloc, self.state.is_batch)
            if is_untainted:
                untainted[key] = alloc
                continue
            if ignore:
                continue
            now, eligible_later, when = self._by_reschedulable(alloc)
            if now:
                now_set[key] = alloc
                continue
            untainted[key] = alloc
            if eligible_later:
                later.append((key, alloc, when))
        return untainted, now_set, later

    def _by_reschedulable(self, alloc: Alloc) -> tuple[bool, bool, int]:
        """updateByReschedulable (filters.go:527)."""
        dep = self.current
        if (dep is not None and alloc.get("DeploymentID") == dep["ID"]
                and dep["Status"] in s.ACTIVE_DEPLOYMENT
                and not s.transition(alloc, "Reschedule")):
            return False, False, 0
        now = s.transition(alloc, "ForceReschedule") and s.client_terminal(alloc)
        when, eligible = next_reschedule_time(alloc, self.state.scale)
        window = RESCHEDULE_WINDOW * self.state.scale
        if eligible and (alloc.get("FollowupEvalID") == self.state.eval_id
                         or when - self.state.now <= window):
            return True, False, when
        return now, eligible and not alloc.get("FollowupEvalID"), when

    def _reschedule_later_evals(self, later: list[tuple[str, Alloc, int]], allocs: AllocSet,
                                migrate: AllocSet, group: str, desired: dict[str, int],
                                result: Results) -> None:
        """createRescheduleLaterEvals + createLaterEvals (reconcile_cluster.go:1412, 1488)."""
        assert self.job is not None
        later = sorted(later, key=lambda item: item[2])
        evals: list[dict[str, Any]] = []
        followup: dict[str, str] = {}
        batch_start = later[0][2]
        window = BATCHED_FAILED_WINDOW * self.state.scale
        ev = s.new_eval(self.job, s.TRIGGER_ALLOC_RESCHEDULE, wait_until=batch_start,
                        description=s.DESC_RESCHEDULING_FOLLOWUP,
                        priority=self.state.eval_priority)
        evals.append(ev)
        for alloc_id, _, when in later:
            if when - batch_start >= window:
                batch_start = when
                ev = s.new_eval(self.job, s.TRIGGER_RETRY_FAILED_ALLOC, wait_until=when,
                                priority=self.state.eval_priority)
                evals.append(ev)
            followup[alloc_id] = ev["ID"]
        for alloc_id, alloc, _ in later:
            if alloc_id not in migrate:
                result.attribute_updates.append(
                    s.evolve(allocs.get(alloc_id, alloc), FollowupEvalID=followup[alloc_id]))
        result.followup_evals.extend(evals)
        desired["RescheduleLater"] = len(later)

    def _compute_stop(self, group: Mapping[str, Any], names: NameIndex, untainted: AllocSet,
                      migrate: AllocSet, canaries: AllocSet, canarying: bool,
                      desired: dict[str, int], result: Results) -> AllocSet:
        """computeStop (reconcile_cluster.go:1101): the allocations above the count."""
        stop: AllocSet = {}
        working = dict(untainted)
        if canarying:
            working = _difference(working, canaries)
        remove = len(working) + len(migrate) - int(group["Count"])

        def take(alloc: Alloc) -> bool:
            nonlocal remove
            stop[alloc["ID"]] = alloc
            result.stop.append(Stop(alloc, s.ALLOC_NOT_NEEDED))
            working.pop(alloc["ID"], None)
            remove -= 1
            return remove == 0

        if remove > 0:
            working = {k: a for k, a in working.items() if not s.server_terminal(a)}
            done = False
            if not canarying and canaries:
                canary_names = {a["Name"] for a in canaries.values()}
                for alloc in _name_order(_difference(working, canaries)):
                    if alloc["Name"] in canary_names and take(alloc):
                        done = True
                        break
            if not done and migrate:
                migrating = NameIndex(self.state.job_id, group["Name"], int(group["Count"]),
                                      migrate.values())
                highest = migrating.highest(remove)
                for alloc in _name_order(dict(migrate)):
                    if alloc["Name"] in highest:
                        migrate.pop(alloc["ID"])
                        names.unset(s.alloc_index(alloc))
                        if take(alloc):
                            done = True
                            break
            if not done:
                highest = names.highest(remove)
                for alloc in _name_order(working):
                    if alloc["Name"] in highest and take(alloc):
                        done = True
                        break
            if not done:
                for alloc in _name_order(working):
                    if take(alloc):
                        break
        desired["Stop"] += len(stop)
        return _difference(untainted, stop)

    def _compute_updates(self, untainted: AllocSet, group: Mapping[str, Any],
                         desired: dict[str, int],
                         result: Results) -> tuple[AllocSet, AllocSet]:
        """computeUpdates (reconcile_cluster.go:1382): ignore, in-place or destructive."""
        assert self.job is not None
        inplace: AllocSet = {}
        destructive: AllocSet = {}
        for key, alloc in untainted.items():
            ignore, is_destructive, updated = self.state.update_fn(alloc, self.job, group)
            if ignore:
                desired["Ignore"] += 1
            elif is_destructive:
                destructive[key] = alloc
            else:
                assert updated is not None
                inplace[key] = updated
        result.inplace.extend(inplace.values())
        desired["InPlaceUpdate"] += len(inplace)
        return inplace, destructive

    def _compute_canaries(self, group: Mapping[str, Any], dstate: dict[str, Any],
                          destructive: AllocSet, canaries: AllocSet, names: NameIndex,
                          desired: dict[str, int], result: Results) -> None:
        """computeCanaries (reconcile_cluster.go:699)."""
        update = _update_strategy(group) or {}
        dstate["DesiredCanaries"] = int(update.get("Canary") or 0)
        if self.paused or self.failed:
            return
        wanted = int(update.get("Canary") or 0) - len(canaries)
        desired["Canary"] += wanted
        for name in names.next_canaries(wanted, canaries, destructive):
            result.place.append(Placement(name, group, canary=True))

    def _under_provisioned_by(self, group: Mapping[str, Any], untainted: AllocSet,
                              destructive: AllocSet, migrate: AllocSet,
                              canarying: bool) -> int:
        """computeUnderProvisionedBy (reconcile_cluster.go:791)."""
        update = _update_strategy(group)
        if update is None or not (destructive or migrate):
            return int(group["Count"])
        if self.current is None:
            return int(update["MaxParallel"])
        if self.paused or self.failed or canarying:
            return 0
        under = int(update["MaxParallel"])
        for alloc in untainted.values():
            if alloc.get("DeploymentID") != self.current["ID"]:
                continue
            if s.is_unhealthy(alloc):
                return 0
            if not s.is_healthy(alloc):
                under -= 1
        return max(under, 0)

    def _place_allocs(self, ready: bool, desired: dict[str, int], place: list[Placement],
                      migrate: AllocSet, reschedule_now: AllocSet, under: int,
                      result: Results) -> int:
        """placeAllocs (reconcile_cluster.go:899)."""
        failed = {k: a for k, a in reschedule_now.items()
                  if k not in migrate and a["ClientStatus"] != s.CLIENT_UNKNOWN}
        if ready:
            desired["Place"] += len(place)
            result.place.extend(place)
            result.stop.extend(_mark_stop(failed, "", s.ALLOC_RESCHEDULED))
            desired["Stop"] += len(failed)
            return under - min(len(place), under)
        if not reschedule_now or not place:
            return under
        for placement in place:
            prev = placement.previous
            in_failed = (self.failed and prev is not None and self.current is not None
                         and self.current["ID"] == prev.get("DeploymentID"))
            if not in_failed and placement.reschedule and prev is not None:
                result.place.append(placement)
                desired["Place"] += 1
                result.stop.append(Stop(prev, s.ALLOC_RESCHEDULED))
                desired["Stop"] += 1
        return under

    def _destructive_updates(self, destructive: AllocSet, under: int,
                             desired: dict[str, int],
                             group: Mapping[str, Any]) -> list[Placement]:
        """computeDestructiveUpdates (reconcile_cluster.go:979)."""
        n = min(len(destructive), under)
        desired["DestructiveUpdate"] += n
        desired["Ignore"] += len(destructive) - n
        return [Placement(a["Name"], group, previous=a, stop_previous=s.ALLOC_UPDATING)
                for a in _name_order(destructive)[:n]]

    def _compute_migrations(self, migrate: AllocSet, group: Mapping[str, Any], desired: dict[str, int],
                            result: Results) -> None:
        """computeMigrations (reconcile_cluster.go:1002)."""
        desired["Migrate"] += len(migrate)
        for alloc in _name_order(migrate):
            result.stop.append(Stop(alloc, s.ALLOC_MIGRATING))
            if alloc["Job"]["Type"] == "batch" and s.transition(alloc, "Reschedule"):
                continue
            result.place.append(Placement(alloc["Name"], group, canary=s.is_canary(alloc),
                                          previous=alloc))

    def _create_deployment(self, name: str, group: Mapping[str, Any], existing: bool,
                           dstate: dict[str, Any], allocs: AllocSet, destructive: AllocSet,
                           inplace: int) -> dict[str, Any] | None:
        """createDeployment (reconcile_cluster.go:1037)."""
        assert self.job is not None
        if existing or _update_strategy(group) is None or dstate["DesiredTotal"] == 0:
            return None
        updating = bool(destructive) or inplace != 0
        had_running = any(a["Job"]["Version"] == self.job["Version"]
                          and a["Job"]["CreateIndex"] == self.job["CreateIndex"]
                          for a in allocs.values())
        if had_running and not updating:
            return None
        created = None
        if self.current is None:
            self.current = _new_deployment(self.job, self.state.eval_priority, self.state.now)
            created = self.current
        self.current["TaskGroups"][name] = dstate
        return created

    def _deployment_complete(self, name: str, destructive: AllocSet, inplace: AllocSet,
                             migrate: AllocSet, reschedule_now: AllocSet,
                             place: list[Placement], later: list[tuple[str, Alloc, int]],
                             needs_canaries: bool) -> bool:
        """isDeploymentComplete (reconcile_cluster.go:1076)."""
        complete = not (destructive or inplace or place or migrate or reschedule_now or later
                        or needs_canaries)
        if not complete or self.current is None:
            return False
        state = self.current["TaskGroups"].get(name)
        return state is None or not (
            state["HealthyAllocs"] < max(state["DesiredTotal"], state["DesiredCanaries"])
            or (state["DesiredCanaries"] > 0 and not state["Promoted"]))


def _classify(allocs: AllocSet) -> tuple[AllocSet, AllocSet, AllocSet]:
    """classifyAllocs (filters.go:305) on ready nodes: untainted, migrate, ignore."""
    untainted: AllocSet = {}
    migrate: AllocSet = {}
    ignore: AllocSet = {}
    for key, alloc in allocs.items():
        if s.terminal(alloc) and s.server_terminal(alloc):
            ignore[key] = alloc
        elif s.terminal(alloc) and s.is_canary(alloc) and s.transition(alloc, "Migrate"):
            migrate[key] = alloc
        elif s.terminal(alloc):
            untainted[key] = alloc
        elif s.transition(alloc, "Migrate"):
            migrate[key] = alloc
        else:
            untainted[key] = alloc
    return untainted, migrate, ignore


def _should_filter(alloc: Mapping[str, Any], is_batch: bool) -> tuple[bool, bool]:
    """shouldFilter (filters.go:461): (untainted, ignore)."""
    if is_batch:
        if s.transition(alloc, "Reschedule"):
            return False, False
        if alloc["DesiredStatus"] == s.DESIRED_STOP:
            if _ran_successfully(alloc):
                return True, False
            if _last_reschedule_failed(alloc):
                return False, False
            return False, True
        if alloc["DesiredStatus"] == s.DESIRED_EVICT:
            return False, True
        if alloc["ClientStatus"] == s.CLIENT_FAILED:
            return False, False
        return True, False
    if alloc["DesiredStatus"] in (s.DESIRED_STOP, s.DESIRED_EVICT):
        return False, not _last_reschedule_failed(alloc)
    if alloc["ClientStatus"] in (s.CLIENT_COMPLETE, s.CLIENT_LOST):
        return False, True
    return False, False


def _ran_successfully(alloc: Mapping[str, Any]) -> bool:
    """Allocation.RanSuccessfully: every task finished without failing."""
    states = (alloc.get("TaskStates") or {}).values()
    return bool(states) and all(t.get("State") == "dead" and not t.get("Failed")
                                for t in states)


def _requires_canaries(group: Mapping[str, Any], dstate: Mapping[str, Any],
                       destructive: AllocSet, canaries: AllocSet) -> bool:
    """requiresCanaries (reconcile_cluster.go:689)."""
    update = group.get("Update") or {}
    return (bool(group.get("Update")) and bool(destructive)
            and len(canaries) < int(update.get("Canary") or 0)
            and not dstate.get("Promoted"))


def _compute_placements(group: Mapping[str, Any], names: NameIndex, untainted: AllocSet,
                        migrate: AllocSet, reschedule: AllocSet) -> list[Placement]:
    """computePlacements (reconcile_cluster.go:836)."""
    place = [Placement(a["Name"], group, canary=s.is_canary(a), previous=a, reschedule=True)
             for a in _name_order(reschedule)]
    existing = len(untainted) + len(migrate) + len(reschedule)
    count = int(group["Count"])
    if existing < count:
        place.extend(Placement(name, group) for name in names.next(count - existing))
    return place


def _new_deployment(job: Mapping[str, Any], priority: int, now: int) -> dict[str, Any]:
    """structs.NewDeployment (deployment.go:124)."""
    return {
        "ID": s.new_id(), "Namespace": job["Namespace"], "JobID": job["ID"],
        "JobVersion": job["Version"], "JobModifyIndex": job["ModifyIndex"],
        "JobSpecModifyIndex": job["JobModifyIndex"], "JobCreateIndex": job["CreateIndex"],
        "IsMultiregion": False, "TaskGroups": {}, "Status": s.DEPLOYMENT_RUNNING,
        "StatusDescription": s.DESC_RUNNING, "EvalPriority": priority,
        "CreateIndex": 0, "ModifyIndex": 0, "CreateTime": now, "ModifyTime": now,
    }


def _copy_deployment(dep: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if dep is None:
        return None
    return {**dep, "TaskGroups": {k: dict(v) for k, v in dep["TaskGroups"].items()}}


def _requires_promotion(dep: Mapping[str, Any]) -> bool:
    """Deployment.RequiresPromotion."""
    return dep["Status"] == s.DEPLOYMENT_RUNNING and any(
        g["DesiredCanaries"] > 0 and not g["Promoted"] for g in dep["TaskGroups"].values())


def _has_auto_promote(dep: Mapping[str, Any]) -> bool:
    """Deployment.HasAutoPromote."""
    return dep["Status"] == s.DEPLOYMENT_RUNNING and bool(dep["TaskGroups"]) and all(
        g["AutoPromote"] for g in dep["TaskGroups"].values() if g["DesiredCanaries"] > 0)


def _status_update(deployment_id: str, status: str, description: str) -> dict[str, str]:
    return {"DeploymentID": deployment_id, "Status": status, "StatusDescription": description}
