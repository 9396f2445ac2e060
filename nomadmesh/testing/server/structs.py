"""Vocabulary of the emulated Nomad server: statuses, descriptions, names and times (nomad/structs).

State objects are plain dicts shaped as Nomad's `structs` JSON. Once a dict is in the state
store it is never mutated: writers build a new one (`evolve`), so a snapshot stays consistent
while others write.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from nomadmesh.testing.nomad_api.validate import go_duration

ZERO_TIME = "0001-01-01T00:00:00Z"
SECOND = 1_000_000_000

# nomad/structs/alloc.go (AllocDesiredStatus*, AllocClientStatus*)
DESIRED_RUN, DESIRED_STOP, DESIRED_EVICT = "run", "stop", "evict"
CLIENT_PENDING, CLIENT_RUNNING, CLIENT_COMPLETE = "pending", "running", "complete"
CLIENT_FAILED, CLIENT_LOST, CLIENT_UNKNOWN = "failed", "lost", "unknown"
TERMINAL_CLIENT = (CLIENT_COMPLETE, CLIENT_FAILED, CLIENT_LOST)

# nomad/structs/deployment.go
DEPLOYMENT_RUNNING, DEPLOYMENT_PAUSED = "running", "paused"
DEPLOYMENT_FAILED, DEPLOYMENT_SUCCESSFUL = "failed", "successful"
DEPLOYMENT_CANCELLED, DEPLOYMENT_PENDING = "cancelled", "pending"
DEPLOYMENT_INITIALIZING, DEPLOYMENT_BLOCKED = "initializing", "blocked"
DEPLOYMENT_UNBLOCKING = "unblocking"
ACTIVE_DEPLOYMENT = (DEPLOYMENT_RUNNING, DEPLOYMENT_PAUSED, DEPLOYMENT_PENDING,
                     DEPLOYMENT_BLOCKED, DEPLOYMENT_UNBLOCKING, DEPLOYMENT_INITIALIZING)
DESC_RUNNING = "Deployment is running"
DESC_NEEDS_PROMOTION = "Deployment is running but requires manual promotion"
DESC_AUTO_PROMOTION = "Deployment is running pending automatic promotion"
DESC_PAUSED = "Deployment is paused"
DESC_SUCCESSFUL = "Deployment completed successfully"
DESC_STOPPED_JOB = "Cancelled because job is stopped"
DESC_NEWER_JOB = "Cancelled due to newer version of job"
DESC_FAILED_ALLOCATIONS = "Failed due to unhealthy allocations"
DESC_PROGRESS_DEADLINE = "Failed due to progress deadline"
DESC_FAILED_BY_USER = "Deployment marked as failed"

# scheduler/structs (StatusAlloc*), the DesiredDescription of stopped allocations
ALLOC_NOT_NEEDED = "alloc not needed due to job update"
ALLOC_MIGRATING = "alloc is being migrated"
ALLOC_RESCHEDULED = "alloc was rescheduled because it failed"
ALLOC_UPDATING = "alloc is being updated due to job update"
ALLOC_LOST = "alloc is lost since its node is down"
ALLOC_IN_PLACE = "alloc updating in-place"

# nomad/structs/structs.go (EvalStatus*, EvalTrigger*)
EVAL_BLOCKED, EVAL_PENDING, EVAL_COMPLETE = "blocked", "pending", "complete"
EVAL_FAILED, EVAL_CANCELLED = "failed", "canceled"
TERMINAL_EVAL = (EVAL_COMPLETE, EVAL_FAILED, EVAL_CANCELLED)
TRIGGER_JOB_REGISTER = "job-register"
TRIGGER_JOB_DEREGISTER = "job-deregister"
TRIGGER_PERIODIC = "periodic-job"
TRIGGER_ALLOC_STOP = "alloc-stop"
TRIGGER_DEPLOYMENT_WATCHER = "deployment-watcher"
TRIGGER_QUEUED_ALLOCS = "queued-allocs"
TRIGGER_RETRY_FAILED_ALLOC = "alloc-failure"
TRIGGER_ALLOC_RESCHEDULE = "alloc-reschedule"
TRIGGER_SCALING = "job-scaling"
DESC_RESCHEDULING_FOLLOWUP = "created for delayed rescheduling"
DESC_BLOCKED_FAILED_PLACEMENTS = "created to place remaining allocations"


def now_ns() -> int:
    """Wall-clock time in nanoseconds, as Nomad's CreateTime/ModifyTime/SubmitTime."""
    return time.time_ns()


def rfc3339(ns: int) -> str:
    """A Go time.Time JSON value."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str | None) -> int:
    """A Go time.Time JSON value in nanoseconds (0 for the zero time)."""
    if not text or text.startswith("0001-"):
        return 0
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


_IDS = random.Random(int.from_bytes(os.urandom(16), "big"))
_IDS_LOCK = threading.Lock()


def new_id() -> str:
    """A Nomad UUID (random v4; not a secret, so no entropy read per ID)."""
    with _IDS_LOCK:
        bits = _IDS.getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


def evolve(obj: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a state object with some fields replaced (the original is left untouched)."""
    out = dict(obj)
    out.update(changes)
    return out


def duration_text(ns: int | float) -> str:
    """A duration as Go's time.Duration.String prints it ("30m0s", "15s", "1.5s", "100ms")."""
    return go_duration(int(ns))


# --- jobs and allocations ----------------------------------------------------------------------


def lookup_group(job: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    """The job's task group of that name (structs.Job.LookupTaskGroup)."""
    if job is None:
        return None
    for group in job.get("TaskGroups") or ():
        if group.get("Name") == name:
            return dict(group)
    return None


def is_periodic(job: Mapping[str, Any]) -> bool:
    """structs.Job.IsPeriodic."""
    return bool(job.get("Periodic")) and bool((job.get("Periodic") or {}).get("Enabled", True))


def is_parameterized(job: Mapping[str, Any]) -> bool:
    """structs.Job.IsParameterized (a dispatched child is not)."""
    return bool(job.get("ParameterizedJob")) and not job.get("Dispatched")


_NAME_INDEX = re.compile(r"\[(\d+)\]$")


def alloc_name(job_id: str, group: str, index: int) -> str:
    """structs.AllocName: `<job>.<group>[<index>]`."""
    return f"{job_id}.{group}[{index}]"


def alloc_index(alloc: Mapping[str, Any]) -> int:
    """structs.Allocation.Index: the number in the allocation's name."""
    match = _NAME_INDEX.search(str(alloc.get("Name", "")))
    return int(match.group(1)) if match else 0


def server_terminal(alloc: Mapping[str, Any]) -> bool:
    """structs.Allocation.ServerTerminalStatus: the server wants it stopped or evicted."""
    return alloc.get("DesiredStatus") in (DESIRED_STOP, DESIRED_EVICT)


def client_terminal(alloc: Mapping[str, Any]) -> bool:
    """structs.Allocation.ClientTerminalStatus: complete, failed or lost on its client."""
    return alloc.get("ClientStatus") in TERMINAL_CLIENT


def terminal(alloc: Mapping[str, Any]) -> bool:
    """structs.Allocation.TerminalStatus."""
    return server_terminal(alloc) or client_terminal(alloc)


def deployment_status(alloc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The allocation's DeploymentStatus ({} when it has none)."""
    return alloc.get("DeploymentStatus") or {}


def is_canary(alloc: Mapping[str, Any]) -> bool:
    """AllocDeploymentStatus.IsCanary."""
    return bool(deployment_status(alloc).get("Canary"))


def is_healthy(alloc: Mapping[str, Any]) -> bool:
    """AllocDeploymentStatus.IsHealthy."""
    return deployment_status(alloc).get("Healthy") is True


def is_unhealthy(alloc: Mapping[str, Any]) -> bool:
    """AllocDeploymentStatus.IsUnhealthy."""
    return deployment_status(alloc).get("Healthy") is False


def has_health(alloc: Mapping[str, Any]) -> bool:
    """AllocDeploymentStatus.HasHealth."""
    return deployment_status(alloc).get("Healthy") is not None


def transition(alloc: Mapping[str, Any], name: str) -> bool:
    """DesiredTransition.Should<name>: Migrate, Reschedule or ForceReschedule is set."""
    return bool((alloc.get("DesiredTransition") or {}).get(name))


def new_eval(job: Mapping[str, Any], triggered_by: str, *, status: str = EVAL_PENDING,
             deployment_id: str = "", description: str = "", wait_until: int = 0,
             priority: int | None = None) -> dict[str, Any]:
    """A new evaluation of a job (structs.Evaluation), indexes set when it is stored."""
    ts = now_ns()
    return {
        "ID": new_id(), "Namespace": job["Namespace"],
        "Priority": job.get("Priority", 50) if priority is None else priority,
        "Type": job.get("Type", "service"), "TriggeredBy": triggered_by, "JobID": job["ID"],
        "JobModifyIndex": job.get("JobModifyIndex", 0), "NodeID": "", "NodeModifyIndex": 0,
        "DeploymentID": deployment_id, "Status": status, "StatusDescription": description,
        "Wait": 0, "WaitUntil": rfc3339(wait_until) if wait_until else ZERO_TIME,
        "NextEval": "", "PreviousEval": "", "BlockedEval": "", "RelatedEvals": None,
        "FailedTGAllocs": None, "PlanAnnotations": None, "ClassEligibility": None,
        "EscapedComputedClass": False, "QuotaLimitReached": "", "AnnotatePlan": False,
        "QueuedAllocations": None, "LeaderACL": "", "SnapshotIndex": 0,
        "CreateIndex": 0, "ModifyIndex": 0, "CreateTime": ts, "ModifyTime": ts,
    }


def task_event(kind: str, message: str = "", **fields: Any) -> dict[str, Any]:
    """A structs.TaskEvent with Nomad's zero values for the fields not given."""
    event: dict[str, Any] = {
        "Type": kind, "Time": now_ns(), "Message": "", "DisplayMessage": message,
        "Details": {}, "FailsTask": False, "RestartReason": "", "SetupError": "",
        "DriverError": "", "DriverMessage": "", "ExitCode": 0, "Signal": 0, "KillReason": "",
        "KillTimeout": 0, "KillError": "", "StartDelay": 0, "DownloadError": "",
        "ValidationError": "", "DiskLimit": 0, "FailedSibling": "", "VaultError": "",
        "TaskSignalReason": "", "TaskSignal": "", "GenericSource": "",
    }
    event.update(fields)
    event["Details"] = {k: str(v) for k, v in fields.items()}
    return event
