"""The Job RPCs, as nomad/job_endpoint.go: register, deregister, plan, dispatch, revert, scale...

Each function takes decoded request values, checks them as the Go code does (texts and status
codes included), and writes through one state store transaction; the worker picks up the
evaluations it creates. `plan` runs the scheduler on an uncommitted copy of the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nomadmesh.testing import nomad_api as api
from nomadmesh.testing.nomad_api import NomadApiError
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.scheduler import apply_plan, schedule
from nomadmesh.testing.server.state import Txn

if TYPE_CHECKING:
    from nomadmesh.testing.server.server import Server

ENFORCE_PREFIX = "Enforcing job modify index"  # structs.RegisterEnforceIndexErrPrefix
MAX_SOURCE_SIZE = 1024 * 1024  # agent job_max_source_size default (job_endpoint_hooks.go:656)


def _no_eval(job: Mapping[str, Any]) -> bool:
    return s.is_periodic(job) or s.is_parameterized(job)


def enforce_index(existing: Mapping[str, Any] | None, index: int) -> None:
    """structs.Job.EnforceIndex: the lost-update check of a register."""
    if existing is not None:
        if index == 0:
            raise NomadApiError(500, f"{ENFORCE_PREFIX} 0: job already exists")
        if index != existing["JobModifyIndex"]:
            raise NomadApiError(500, f"{ENFORCE_PREFIX} {index}: job exists with conflicting "
                                     f"job modify index: {existing['JobModifyIndex']}")
    elif index != 0:
        raise NomadApiError(500, f"{ENFORCE_PREFIX} {index}: job does not exist")


def _validate_update(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """validateJobUpdate (job_endpoint.go:1946)."""
    if old is None:
        if new.get("Dispatched"):
            raise NomadApiError(500, "job can't be submitted with 'Dispatched' set")
        return
    if old["Type"] != new["Type"]:
        raise NomadApiError(500, f'cannot update job from type "{old["Type"]}" to '
                                 f'"{new["Type"]}"')
    for check, name in ((s.is_periodic, "periodic"), (s.is_parameterized, "parameterized")):
        if check(old) and not check(new):
            raise NomadApiError(500, f"cannot update {name} job to being non-{name}")
        if check(new) and not check(old):
            raise NomadApiError(500, f"cannot update non-{name} job to being {name}")
    if bool(old.get("Dispatched")) != bool(new.get("Dispatched")):
        raise NomadApiError(500, "field 'Dispatched' is read-only")


def register(server: Server, request: api.RegisterRequest, *, path_id: str | None = None,
             query_region: str = "", query_namespace: str = "") -> dict[str, Any]:
    """Job.Register (job_endpoint.go:93) of a decoded register body: admit, then store."""
    api_job = api.check_register(request, path_id)
    admitted = api.admit(api_job, config=server.config, write_region=request.region,
                         write_namespace=request.namespace, query_region=query_region,
                         query_namespace=query_namespace)
    server.check_region(admitted.region)
    warnings = [admitted.warnings_text] if admitted.warnings_text else []
    submission = request.submission
    if submission is not None and len(str(submission.get("Source") or "")) > MAX_SOURCE_SIZE:
        warnings.append(f"job source size of {len(str(submission['Source']))} exceeds maximum "
                        f"of {MAX_SOURCE_SIZE} and will be discarded")
        submission = None
    return register_job(server, admitted.job, enforce=request.enforce_index,
                        job_modify_index=request.job_modify_index,
                        preserve_counts=request.preserve_counts, submission=submission,
                        eval_priority=request.eval_priority, warnings="\n".join(warnings))


def register_job(server: Server, job: Mapping[str, Any], *, enforce: bool = False,
                 job_modify_index: int = 0, preserve_counts: bool = False,
                 submission: Mapping[str, Any] | None = None, eval_priority: int = 0,
                 warnings: str = "", triggered_by: str = s.TRIGGER_JOB_REGISTER
                 ) -> dict[str, Any]:
    """Store an admitted job (a new version when its spec changed) and evaluate it."""

    def apply(txn: Txn) -> dict[str, Any]:
        current = txn.job_by_id(job["Namespace"], job["ID"])
        if enforce:
            enforce_index(current, job_modify_index)
        _validate_update(current, job)
        new = dict(job)
        if preserve_counts and current is not None:
            counts = {g["Name"]: g["Count"] for g in current["TaskGroups"]}
            new["TaskGroups"] = [s.evolve(g, Count=counts.get(g["Name"], g["Count"]))
                                 for g in new["TaskGroups"]]
        new["SubmitTime"] = s.now_ns()
        ev = None
        if not _no_eval(new):
            ev = s.new_eval(new, triggered_by, priority=eval_priority or None)
        if current is not None and not server.spec_changed(current, new):
            if ev is None:
                return _register_reply(current["ModifyIndex"], "", 0, current["ModifyIndex"],
                                       warnings)
            ev["JobModifyIndex"] = current["JobModifyIndex"]
            txn.upsert_eval(ev)
            return _register_reply(current["ModifyIndex"], ev["ID"], txn.index, txn.index,
                                   warnings)
        stored = txn.upsert_job(new, submission=submission)
        if ev is not None:
            ev["JobModifyIndex"] = stored["JobModifyIndex"]
            txn.upsert_eval(ev)
        return _register_reply(txn.index, ev["ID"] if ev else "", txn.index if ev else 0,
                               txn.index, warnings)

    result: dict[str, Any] = server.write(apply)
    return result


def _register_reply(job_modify_index: int, eval_id: str, eval_index: int, index: int,
                    warnings: str) -> dict[str, Any]:
    """structs.JobRegisterResponse."""
    return {"EvalID": eval_id, "EvalCreateIndex": eval_index,
            "JobModifyIndex": job_modify_index, "Warnings": warnings, "Index": index,
            "LastContact": 0, "KnownLeader": False, "NextToken": ""}


def deregister(server: Server, namespace: str, job_id: str, *, purge: bool,
               eval_priority: int = 0) -> dict[str, Any]:
    """Job.Deregister (job_endpoint.go:790): stop (a new version with Stop) or purge."""

    def apply(txn: Txn) -> dict[str, Any]:
        job = txn.job_by_id(namespace, job_id)
        if job is None:
            return {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0,
                    "VolumeEvalID": "", "VolumeEvalIndex": 0, "Index": 0}
        ev = None
        if not _no_eval(job):
            ev = s.new_eval(job, s.TRIGGER_JOB_DEREGISTER, priority=eval_priority or None)
            ev["Type"] = "service"  # as job_endpoint.go:853 does
        if purge:
            txn.delete_job(namespace, job_id)
        else:
            txn.upsert_job(s.evolve(job, Stop=True, SubmitTime=s.now_ns()))
        if ev is not None:
            ev["JobModifyIndex"] = txn.index
            txn.upsert_eval(ev)
        return {"EvalID": ev["ID"] if ev else "", "EvalCreateIndex": txn.index,
                "JobModifyIndex": txn.index, "VolumeEvalID": "", "VolumeEvalIndex": 0,
                "Index": txn.index}

    result: dict[str, Any] = server.write(apply)
    return result


def evaluate(server: Server, namespace: str, job_id: str,
             force_reschedule: bool = False) -> dict[str, Any]:
    """Job.Evaluate (job_endpoint.go:720)."""

    def apply(txn: Txn) -> dict[str, Any]:
        job = txn.job_by_id(namespace, job_id)
        if job is None:
            raise NomadApiError(500, "job not found")
        if s.is_periodic(job):
            raise NomadApiError(500, "can't evaluate periodic job")
        if s.is_parameterized(job):
            raise NomadApiError(500, "can't evaluate parameterized job")
        if force_reschedule:
            for alloc in txn.allocs_by_job(namespace, job_id):
                if (not alloc.get("NextAllocation") and alloc["ClientStatus"] == s.CLIENT_FAILED
                        and not s.transition(alloc, "ForceReschedule")):
                    transition = {**(alloc.get("DesiredTransition") or {}),
                                  "ForceReschedule": True}
                    txn.upsert_alloc(s.evolve(alloc, DesiredTransition=transition))
        ev = s.new_eval(job, s.TRIGGER_JOB_REGISTER)
        ev["JobModifyIndex"] = job["ModifyIndex"]
        txn.upsert_eval(ev)
        return {"EvalID": ev["ID"], "EvalCreateIndex": txn.index,
                "JobModifyIndex": job["ModifyIndex"], "Index": txn.index, "Warnings": ""}

    result: dict[str, Any] = server.write(apply)
    return result


def plan(server: Server, request: api.PlanRequest, *, query_region: str = "",
         query_namespace: str = "") -> dict[str, Any]:
    """Job.Plan (job_endpoint.go:1770): the scheduler on a scratch copy of the state."""
    admitted = api.admit(request.job, config=server.config, query_region=query_region,
                         query_namespace=query_namespace)
    server.check_region(admitted.region)
    job = admitted.job
    old = server.state.snapshot().job_by_id(job["Namespace"], job["ID"])
    scratch = server.state.scratch()
    index = 0
    if old is not None:
        index = old["JobModifyIndex"]
        if server.spec_changed(old, job):
            scratch.upsert_job(s.evolve(job, SubmitTime=s.now_ns()))
    else:
        scratch.upsert_job(s.evolve(job, SubmitTime=s.now_ns()))
    planned = scratch.job_by_id(job["Namespace"], job["ID"])
    assert planned is not None
    ev = s.new_eval(planned, s.TRIGGER_JOB_REGISTER)
    ev["AnnotatePlan"] = True
    scratch.upsert_eval(ev)
    outcome = schedule(ev, scratch, update_kind=server.update_kind,
                       port_free=server.port_free, scale=server.timings.scale)
    apply_plan(scratch, outcome.plan)
    diff = None
    if request.diff:
        diff = api.plan_diff(old, job, outcome.desired_tg_updates, contextual=True)
    next_launch = s.ZERO_TIME
    if s.is_periodic(job):
        when = api.next_launch(job, datetime.now().astimezone())
        if when is not None:
            next_launch = when.isoformat().replace("+00:00", "Z")
    created = [e for e in outcome.new_evals if e["Status"] != s.EVAL_BLOCKED] or None
    return {
        "Annotations": {"DesiredTGUpdates": outcome.desired_tg_updates or None,
                        "PreemptedAllocs": None},
        "FailedTGAllocs": outcome.failed_tg_allocs or None, "JobModifyIndex": index,
        "CreatedEvals": created, "Diff": diff, "NextPeriodicLaunch": next_launch,
        "Warnings": admitted.warnings_text, "Index": index,
    }


def revert(server: Server, namespace: str, job_id: str, version: int,
           enforce_prior: int | None) -> dict[str, Any]:
    """Job.Revert (job_endpoint.go:560)."""
    snap = server.state.snapshot()
    current = snap.job_by_id(namespace, job_id)
    if current is None:
        raise NomadApiError(500, f'job "{job_id}" not found')
    if version == current["Version"]:
        raise NomadApiError(500, "can't revert to current version")
    target = snap.job_by_version(namespace, job_id, version)
    if target is None:
        raise NomadApiError(500, f'job "{job_id}" in namespace "{namespace}" at version '
                                 f"{version} not found")
    if enforce_prior is not None and current["Version"] != enforce_prior:
        raise NomadApiError(500, f"Current job has version {current['Version']}; enforcing "
                                 f"version {enforce_prior}")
    job = s.evolve(target, Stable=False, VersionTag=None)
    return register_job(server, job, enforce=enforce_prior is not None,
                        job_modify_index=current["JobModifyIndex"])


def stable(server: Server, namespace: str, job_id: str, version: int,
           is_stable: bool) -> dict[str, Any]:
    """Job.Stable: mark a version (un)stable."""

    def apply(txn: Txn) -> dict[str, Any]:
        if txn.job_by_version(namespace, job_id, version) is None:
            raise NomadApiError(500, f'job "{job_id}" in namespace "{namespace}" at version '
                                     f"{version} not found")
        txn.update_job_stability(namespace, job_id, version, is_stable)
        return {"Index": txn.index}

    result: dict[str, Any] = server.write(apply)
    return result


def scale(server: Server, namespace: str, job_id: str, *, group: str, count: int | None,
          message: str = "", error: bool = False, meta: Mapping[str, Any] | None = None,
          job_modify_index: int = 0, target_job: str = "") -> dict[str, Any]:
    """Job.Scale (job_endpoint.go:930): a new version with the count, and a scaling event."""
    if target_job and target_job != job_id:
        raise NomadApiError(500, "job ID in payload did not match URL")
    if not group:
        raise NomadApiError(400, "missing task group name for scaling action")
    if count is not None and count < 0:
        raise NomadApiError(400, "scaling action count can't be negative")
    if count is not None and error:
        raise NomadApiError(400, "scaling action should not contain count if error is true")
    snap = server.state.snapshot()
    job = snap.job_by_id(namespace, job_id)
    if job is None:
        raise NomadApiError(404, f'job "{job_id}" not found')
    if job["Type"] == "system" and count is not None and count > 1:
        raise NomadApiError(400, 'jobs of type "system" can only be scaled between 0 and 1')
    target = s.lookup_group(job, group)
    if target is None:
        raise NomadApiError(400, f'task group "{group}" specified for scaling does not exist '
                                 "in job")
    now = s.now_ns()
    event = {"Time": now, "PreviousCount": int(target["Count"]), "Count": count,
             "Message": message, "Error": error, "Meta": dict(meta) if meta else None,
             "EvalID": None}
    reply: dict[str, Any] = {"EvalID": "", "EvalCreateIndex": 0,
                             "JobModifyIndex": job["ModifyIndex"], "Warnings": ""}
    if count is not None:
        policy = target.get("Scaling")
        if policy:
            if count < int(policy.get("Min") or 0):
                raise NomadApiError(400, "group count was less than scaling policy minimum: "
                                         f"{count} < {policy.get('Min')}")
            if int(policy.get("Max") or 0) < count:
                raise NomadApiError(400, "group count was greater than scaling policy "
                                         f"maximum: {count} > {policy.get('Max')}")
        dep = snap.latest_deployment(namespace, job_id)
        if (dep is not None and dep["Status"] in s.ACTIVE_DEPLOYMENT
                and dep["JobCreateIndex"] == job["CreateIndex"]):
            raise NomadApiError(400, "job scaling blocked due to active deployment")
        if job_modify_index and job_modify_index != job["JobModifyIndex"]:
            raise NomadApiError(500, f"{ENFORCE_PREFIX} {job_modify_index}: job exists with "
                                     f"conflicting job modify index: {job['JobModifyIndex']}")
        scaled = s.evolve(job, SubmitTime=now, TaskGroups=[
            s.evolve(g, Count=count) if g["Name"] == group else g for g in job["TaskGroups"]])

        def apply(txn: Txn) -> None:
            enforce_index(txn.job_by_id(namespace, job_id), job["JobModifyIndex"])
            stored = txn.upsert_job(scaled)
            reply["JobModifyIndex"] = txn.index
            if not _no_eval(stored):
                ev = s.new_eval(stored, s.TRIGGER_SCALING)
                ev["JobModifyIndex"] = txn.index
                txn.upsert_eval(ev)
                reply.update(EvalID=ev["ID"], EvalCreateIndex=txn.index)
                event["EvalID"] = ev["ID"]

        server.write(apply)

    def record(txn: Txn) -> None:
        txn.upsert_scaling_event(namespace, job_id, group, event)
        reply["Index"] = txn.index

    server.write(record)
    return reply


def scale_status(snap: Any, namespace: str, job_id: str) -> tuple[int, dict[str, Any] | None]:
    """Job.ScaleStatus (job_endpoint.go:2200): desired, placed, running, healthy per group."""
    job = snap.job_by_id(namespace, job_id)
    if job is None:
        return snap.index, None
    events = snap.scaling_events(namespace, job_id) or {}
    groups = {g["Name"]: {"Desired": g["Count"], "Placed": 0, "Running": 0, "Healthy": 0,
                          "Unhealthy": 0, "Events": events.get(g["Name"])}
              for g in job["TaskGroups"]}
    index = job["ModifyIndex"]
    for group_events in events.values():
        for event in group_events:
            index = max(index, int(event.get("CreateIndex") or 0))
    for alloc in snap.allocs_by_job(namespace, job_id):
        if s.is_canary(alloc) or s.terminal(alloc) or alloc["TaskGroup"] not in groups:
            continue
        status = groups[alloc["TaskGroup"]]
        status["Placed"] += 1
        if alloc["ClientStatus"] == s.CLIENT_RUNNING:
            status["Running"] += 1
        if s.is_healthy(alloc):
            status["Healthy"] += 1
        elif s.is_unhealthy(alloc):
            status["Unhealthy"] += 1
        index = max(index, alloc["ModifyIndex"])
    return index, {"JobID": job["ID"], "Namespace": job["Namespace"],
                   "JobCreateIndex": job["CreateIndex"], "JobModifyIndex": job["ModifyIndex"],
                   "JobStopped": bool(job.get("Stop")), "TaskGroups": groups}


def dispatch(server: Server, namespace: str, request: api.DispatchRequest) -> dict[str, Any]:
    """Job.Dispatch (job_endpoint.go:1984): a child of a parameterized job, evaluated."""
    snap = server.state.snapshot()
    parent = snap.job_by_id(namespace, request.job_id)
    outcome = api.dispatch(parent, request, now=datetime.now().astimezone(),
                           children=snap.children(namespace, request.job_id))
    child = outcome.job
    if not outcome.created:
        return {"Index": snap.index, "JobCreateIndex": child["CreateIndex"], "EvalID": "",
                "EvalCreateIndex": 0, "DispatchedJobID": child["ID"]}

    def apply(txn: Txn) -> dict[str, Any]:
        stored = txn.upsert_job(s.evolve(child, SubmitTime=s.now_ns()))
        ev = s.new_eval(stored, s.TRIGGER_JOB_REGISTER)
        ev["JobModifyIndex"] = stored["JobModifyIndex"]
        txn.upsert_eval(ev)
        return {"Index": txn.index, "JobCreateIndex": stored["CreateIndex"],
                "EvalID": ev["ID"], "EvalCreateIndex": txn.index,
                "DispatchedJobID": stored["ID"]}

    result: dict[str, Any] = server.write(apply)
    return result


def launch_periodic(server: Server, parent: Mapping[str, Any],
                    launch: datetime) -> dict[str, Any]:
    """PeriodicDispatch.createEval: register the child of one launch, with an evaluation."""
    child = api.periodic_child(dict(parent), launch)

    def apply(txn: Txn) -> dict[str, Any]:
        stored = txn.upsert_job(s.evolve(child, SubmitTime=s.now_ns()))
        ev = s.new_eval(stored, s.TRIGGER_PERIODIC)
        ev["JobModifyIndex"] = stored["JobModifyIndex"]
        txn.upsert_eval(ev)
        txn.upsert_periodic_launch(parent["Namespace"], parent["ID"],
                                   int(launch.timestamp() * 1e9))
        return {"EvalID": ev["ID"], "EvalCreateIndex": txn.index, "Index": txn.index}

    result: dict[str, Any] = server.write(apply)
    return result
