"""The simulated cluster behind the Nomad emulator: nodes, scheduler, deployments, task lifecycle.

State is plain Nomad JSON (dicts with Go field names) held under the emulator's `Store` lock.
The scheduler reconciles each job against its allocations the way Nomad's does (place, stop,
in-place or destructive update, canaries, rolling batches of `MaxParallel`), and hands every task
to a `TaskRunner`. The default `SimulatedRunner` moves tasks through realistic events on a timer,
following the failures scripted with `Cluster.script_task`; another runner (real processes for
`raw_exec`) can be plugged in without touching the scheduler.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from nomadmesh.testing import _jobspec
from nomadmesh.testing._diff import update_kind
from nomadmesh.testing._http import HttpError, Store
from nomadmesh.testing.consul import check_id_for

if TYPE_CHECKING:
    from nomadmesh.testing.consul import ConsulEmulator

FAILURES = ("driver", "exit", "unhealthy")
TRACKED_VERSIONS = 6
ACTIVE_DEPLOYMENT = ("running", "paused", "pending")
_PORT_RANGE = (20000, 32000)


@attrs.define
class NodeSpec:
    """A simulated client node: where allocations can be placed and what it offers."""

    name: str
    datacenter: str = "dc1"
    node_class: str = ""
    node_pool: str = "default"
    cpu: int = 4000
    memory_mb: int = 8192
    disk_mb: int = 50_000
    address: str = "127.0.0.1"
    drivers: tuple[str, ...] = ("docker", "exec", "raw_exec")
    attributes: dict[str, str] = attrs.Factory(dict)
    meta: dict[str, str] = attrs.Factory(dict)
    id: str = attrs.field(default="")

    def __attrs_post_init__(self) -> None:
        if not self.id:
            self.id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.nomad-emulator"))


def default_nodes() -> list[NodeSpec]:
    """Three identical nodes in dc1 (4000 MHz, 8 GiB each)."""
    return [NodeSpec(f"emulated-node-{i}") for i in (1, 2, 3)]


@attrs.define
class Timings:
    """How fast simulated things happen, in seconds (small by default so tests are fast)."""

    start_delay: float = 0.01
    healthy_after: float = 0.05
    healthy_deadline: float = 0.5
    batch_runtime: float = 0.05
    restart_delay: float = 0.01


@attrs.define
class TaskScript:
    """A scripted outcome for one task: how it fails and with what message."""

    fail: str
    exit_code: int = 1
    message: str = ""
    version: int | None = None
    times: int | None = None


# --- time ----------------------------------------------------------------------------------------


def now_ns() -> int:
    """Wall-clock time in nanoseconds, as Nomad's CreateTime/ModifyTime/SubmitTime."""
    return time.time_ns()


def rfc3339(ns: int) -> str:
    """A Go time.Time JSON value."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


ZERO_TIME = "0001-01-01T00:00:00Z"


class Clock:
    """One timer thread per emulator: callbacks run in order, under the store lock."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._running = False

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` after `delay` seconds (or at once when 0)."""
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn))
            self._wake.notify()

    def start(self, name: str) -> None:
        """Start the timer thread; pending timers survive a stop/start."""
        with self._wake:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread and join it."""
        with self._wake:
            self._running = False
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if not self._running:
                    return
                _, _, fn = heapq.heappop(self._heap)
            with self._store.lock:
                fn()


# --- task runners ----------------------------------------------------------------------------------


class TaskHandle:
    """What a runner gets for one task of one allocation: its spec, env, and the ways to report."""

    def __init__(self, cluster: Cluster, alloc_id: str, task: Mapping[str, Any],
                 env: Mapping[str, str], script: TaskScript | None) -> None:
        self.cluster = cluster
        self.alloc_id = alloc_id
        self.task = task
        self.name: str = task["Name"]
        self.env = dict(env)
        self.script = script
        self.cancelled = False

    @property
    def restart_policy(self) -> Mapping[str, Any]:
        """The group's canonical restart policy."""
        return self.cluster.group_of(self.alloc_id).get("RestartPolicy") or {}

    @property
    def job_type(self) -> str:
        """service, batch or system."""
        return str(self.cluster.allocs[self.alloc_id]["Job"]["Type"])

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` later on the emulator's clock unless the task was stopped meanwhile."""
        self.cluster.clock.later(delay, lambda: None if self.cancelled else fn())

    def event(self, kind: str, message: str = "", **fields: Any) -> None:
        """Append a task event (Type, DisplayMessage, ExitCode, DriverError, ...)."""
        self.cluster.task_event(self.alloc_id, self.name, kind, message, fields)

    def running(self) -> None:
        """The task is running."""
        self.cluster.task_state(self.alloc_id, self.name, "running")

    def restarting(self) -> None:
        """The task exited and will be restarted."""
        self.cluster.task_state(self.alloc_id, self.name, "pending", restart=True)

    def dead(self, failed: bool) -> None:
        """The task is finished for good (failed or not)."""
        self.cluster.task_state(self.alloc_id, self.name, "dead", failed=failed)


class TaskRunner(Protocol):
    """Runs the tasks of allocations; report progress through the handle's methods."""

    # True when the runner executes the services' HTTP/TCP checks itself: they are registered
    # critical and an allocation is healthy only once they pass.
    runs_checks: bool

    def start(self, handle: TaskHandle) -> None:
        """Start a task (it is pending with a Received event already)."""

    def stop(self, handle: TaskHandle) -> None:
        """Stop a task because its allocation is being stopped; report it dead."""

    def port_available(self, address: str, port: int) -> bool:
        """Whether a dynamic port may be handed to an allocation."""

    def logs(self, alloc_id: str, task: str, kind: str) -> bytes:
        """What a task wrote to `kind` (stdout or stderr) so far."""


class SimulatedRunner:
    """The default runner: tasks start, run, exit or fail on a timer as scripted."""

    runs_checks = False

    def __init__(self, timings: Timings) -> None:
        self.timings = timings

    def port_available(self, address: str, port: int) -> bool:
        """Every port is free on a simulated node."""
        return True

    def logs(self, alloc_id: str, task: str, kind: str) -> bytes:
        """Simulated tasks write nothing."""
        return b""

    def start(self, handle: TaskHandle) -> None:
        """Set up, then start (or fail) after `start_delay`."""
        handle.later(self.timings.start_delay, lambda: self._setup(handle))

    def stop(self, handle: TaskHandle) -> None:
        """Kill at once: Killing, Killed, dead."""
        timeout = _duration_text(handle.task.get("KillTimeout") or 5_000_000_000)
        handle.event("Killing", f"Sent interrupt. Waiting {timeout} before force killing",
                     KillTimeout=handle.task.get("KillTimeout") or 5_000_000_000)
        handle.event("Killed", "Task successfully killed")
        handle.dead(failed=False)

    def _setup(self, handle: TaskHandle) -> None:
        handle.event("Task Setup", "Building Task Directory")
        script = handle.script
        if script is not None and script.fail == "driver":
            message = script.message or (
                f"failed to create container: image {handle.task.get('Config', {}).get('image', '')!r}"
                " not found")
            handle.event("Driver Failure", message, DriverError=message, FailsTask=True)
            handle.event("Not Restarting", "Error was unrecoverable", FailsTask=True)
            handle.dead(failed=True)
            return
        self._run(handle, attempt=0)

    def _run(self, handle: TaskHandle, attempt: int) -> None:
        handle.event("Started", "Task started by client")
        handle.running()
        script = handle.script
        if script is not None and script.fail == "exit":
            handle.later(self.timings.restart_delay, lambda: self._exit(handle, attempt))
        elif handle.job_type == "batch":
            handle.later(self.timings.batch_runtime, lambda: self._finish(handle))

    def _finish(self, handle: TaskHandle) -> None:
        handle.event("Terminated", "Exit Code: 0", ExitCode=0)
        handle.dead(failed=False)

    def _exit(self, handle: TaskHandle, attempt: int) -> None:
        script = handle.script
        assert script is not None
        message = f"Exit Code: {script.exit_code}"
        if script.message:
            message += f", Exit Message: {script.message!r}"
        handle.event("Terminated", message, ExitCode=script.exit_code, Message=script.message)
        policy = handle.restart_policy
        attempts = int(policy.get("Attempts", 2))
        if attempt < attempts:
            delay = _duration_text(policy.get("Delay") or 15_000_000_000)
            handle.event("Restarting", f"Task restarting in {delay}", RestartReason=(
                "Restart within policy"))
            handle.restarting()
            handle.later(self.timings.restart_delay, lambda: self._run(handle, attempt + 1))
            return
        interval = _duration_text(policy.get("Interval") or 0)
        mode = policy.get("Mode", "fail")
        handle.event("Not Restarting",
                     f'Exceeded allowed attempts {attempts} in interval {interval} and mode is '
                     f'"{mode}"', FailsTask=True)
        handle.dead(failed=True)


def _duration_text(ns: int) -> str:
    seconds = ns / 1e9
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h0m0s"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m0s"
    return f"{seconds:g}s"


# --- the cluster ---------------------------------------------------------------------------------


@attrs.define
class Placement:
    """A scheduling outcome for one group: how many were placed, queued, and why not."""

    placed: int = 0
    failed: dict[str, Any] | None = None
    queued: int = 0


class Cluster:
    """Jobs, evaluations, allocations and deployments, and the scheduler that moves them."""

    def __init__(self, store: Store, *, nodes: Iterable[NodeSpec] | None = None,
                 timings: Timings | None = None, runner: TaskRunner | None = None,
                 consul: ConsulEmulator | None = None, region: str = "global") -> None:
        self.store = store
        self.region = region
        self.timings = timings or Timings()
        self.runner: TaskRunner = runner or SimulatedRunner(self.timings)
        self.consul = consul
        self.clock = Clock(store)
        self.nodes = list(nodes) if nodes is not None else default_nodes()
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.evals: dict[str, dict[str, Any]] = {}
        self.allocs: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.tables = {"jobs": 1, "evals": 1, "allocs": 1, "deployment": 1, "nodes": 1}
        self.scripts: dict[tuple[str, str, str, str], TaskScript] = {}
        self.handles: dict[str, dict[str, TaskHandle]] = {}
        self.dispatch_tokens: dict[tuple[str, str, str], str] = {}
        self._next_port = _PORT_RANGE[0]
        self._health_generation: dict[str, int] = {}
        self._allocs_by_job: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._evals_by_job: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._node_index = 1

    # --- scripting ---------------------------------------------------------------------------

    def script_task(self, job_id: str, group: str, task: str, *, fail: str, exit_code: int = 1,
                    message: str = "", version: int | None = None, times: int | None = None,
                    namespace: str = "default") -> None:
        """Make a task fail: "driver" (never starts), "exit" (crashes), "unhealthy" (checks)."""
        if fail not in FAILURES:
            raise ValueError(f"fail must be one of {', '.join(FAILURES)}, not {fail!r}")
        with self.store.lock:
            self.scripts[(namespace, job_id, group, task)] = TaskScript(
                fail, exit_code, message, version, times)

    def clear_scripts(self) -> None:
        """Forget every scripted failure."""
        with self.store.lock:
            self.scripts.clear()

    def _script_for(self, alloc: Mapping[str, Any], task: str) -> TaskScript | None:
        key = (alloc["Namespace"], alloc["JobID"], alloc["TaskGroup"], task)
        script = self.scripts.get(key)
        if script is None or (script.version is not None and script.version != alloc["JobVersion"]):
            return None
        if script.times is not None:
            if script.times <= 0:
                return None
            script.times -= 1
        return script

    # --- lookups ----------------------------------------------------------------------------

    def job(self, namespace: str, job_id: str) -> dict[str, Any]:
        """The stored job or 404 `job not found`."""
        job = self.jobs.get((namespace, job_id))
        if job is None:
            raise HttpError(404, "job not found")
        return job

    def group_of(self, alloc_id: str) -> Mapping[str, Any]:
        """The task group spec an allocation runs."""
        alloc = self.allocs[alloc_id]
        return _group(alloc["Job"], alloc["TaskGroup"]) or {}

    def job_allocs(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """All allocations of a job, oldest first."""
        return list(self._allocs_by_job.get((namespace, job_id), ()))

    def job_evals(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """All evaluations of a job, oldest first."""
        return list(self._evals_by_job.get((namespace, job_id), ()))

    def latest_deployment(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """The job's most recent deployment."""
        deps = [d for d in self.deployments.values()
                if d["JobID"] == job_id and d["Namespace"] == namespace]
        return max(deps, key=lambda d: d["CreateIndex"]) if deps else None

    # --- register / deregister ------------------------------------------------------------

    def register(self, job_in: Mapping[str, Any], *, enforce_index: bool = False,
                 job_modify_index: int = 0, preserve_counts: bool = False,
                 triggered_by: str = "job-register") -> dict[str, Any]:
        """Validate, canonicalize, store (new version on spec change) and evaluate a job."""
        errors = _jobspec.problems(job_in)
        if errors:
            raise HttpError(500, _jobspec.multierror(errors))
        job = _jobspec.canonical(job_in)
        key = (job["Namespace"], job["ID"])
        with self.store.lock:
            existing = self.jobs.get(key)
            _check_enforce_index(existing, enforce_index, job_modify_index)
            if existing is not None and existing["Type"] != job["Type"]:
                raise HttpError(500, f'cannot update job from type "{existing["Type"]}" to '
                                     f'"{job["Type"]}"')
            if existing is not None and preserve_counts:
                for group in job["TaskGroups"]:
                    old = _group(existing, group["Name"])
                    if old is not None:
                        group["Count"] = old["Count"]
            index = self.store.bump()
            changed = existing is None or existing["Stop"] or (
                _jobspec.spec_of(existing) != _jobspec.spec_of(job))
            if changed:
                job["Stop"] = False
                stored = self._store_version(key, job, existing, index)
            else:
                assert existing is not None
                stored = existing
            eval_id, eval_index = "", 0
            if not (stored.get("Periodic") or stored.get("ParameterizedJob")) or stored["Dispatched"]:
                ev = self.create_eval(stored, triggered_by, index)
                eval_id, eval_index = ev["ID"], ev["CreateIndex"]
            else:
                stored["Status"] = "running"
            return {"EvalID": eval_id, "EvalCreateIndex": eval_index,
                    "JobModifyIndex": stored["JobModifyIndex"], "Warnings": "", "Index": index,
                    "LastContact": 0, "KnownLeader": False, "NextToken": ""}

    def _store_version(self, key: tuple[str, str], job: dict[str, Any],
                       existing: dict[str, Any] | None, index: int) -> dict[str, Any]:
        history = self.versions.setdefault(key, [])
        job.update({
            "Stop": bool(job.get("Stop")), "Status": "pending", "StatusDescription": "", "Stable": False,
            "Version": existing["Version"] + 1 if existing else 0, "SubmitTime": now_ns(),
            "CreateIndex": existing["CreateIndex"] if existing else index, "ModifyIndex": index,
            "JobModifyIndex": index,
        })
        self.jobs[key] = job
        history.append(copy.deepcopy(job))
        del history[:-TRACKED_VERSIONS]
        self.tables["jobs"] = index
        return job

    def deregister(self, namespace: str, job_id: str, purge: bool) -> dict[str, Any]:
        """Stop a job (new version with Stop=true) or purge it; its allocations are stopped."""
        with self.store.lock:
            key = (namespace, job_id)
            job = self.jobs.get(key)
            index = self.store.bump()
            if job is None:
                return {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0,
                        "VolumeEvalID": "", "VolumeEvalIndex": 0, "Index": index}
            if purge:
                del self.jobs[key]
                self.versions.pop(key, None)
                stopped = copy.deepcopy(job)
            else:
                stopped = copy.deepcopy(job)
                stopped["Stop"] = True
                self._store_version(key, stopped, job, index)
                stopped["Status"] = "dead"
            self.tables["jobs"] = index
            for dep in self.deployments.values():
                if dep["JobID"] == job_id and dep["Namespace"] == namespace and (
                        dep["Status"] in ACTIVE_DEPLOYMENT):
                    self._set_deployment(dep, "cancelled", "Cancelled because job is stopped",
                                         index)
            ev = self.create_eval(stopped, "job-deregister", index)
            return {"EvalID": ev["ID"], "EvalCreateIndex": ev["CreateIndex"],
                    "JobModifyIndex": stopped.get("JobModifyIndex", index), "VolumeEvalID": "",
                    "VolumeEvalIndex": 0, "Index": index}

    # --- evaluations -------------------------------------------------------------------------

    def create_eval(self, job: Mapping[str, Any], triggered_by: str, index: int,
                    status: str = "pending", deployment_id: str = "") -> dict[str, Any]:
        """A new evaluation for a job, processed by the scheduler on the clock."""
        ts = now_ns()
        ev = {
            "ID": str(uuid.uuid4()), "Namespace": job["Namespace"], "Priority": job["Priority"],
            "Type": job["Type"], "TriggeredBy": triggered_by, "JobID": job["ID"],
            "JobModifyIndex": job.get("JobModifyIndex", 0), "NodeID": "", "NodeModifyIndex": 0,
            "DeploymentID": deployment_id, "Status": status, "StatusDescription": "",
            "Wait": 0, "WaitUntil": ZERO_TIME, "NextEval": "", "PreviousEval": "",
            "BlockedEval": "", "RelatedEvals": None, "FailedTGAllocs": None,
            "ClassEligibility": None, "EscapedComputedClass": False, "QuotaLimitReached": "",
            "AnnotatePlan": False, "QueuedAllocations": None, "LeaderACL": "",
            "SnapshotIndex": 0, "CreateIndex": index, "ModifyIndex": index,
            "CreateTime": ts, "ModifyTime": ts,
        }
        self.evals[ev["ID"]] = ev
        self._evals_by_job.setdefault((ev["Namespace"], ev["JobID"]), []).append(ev)
        self.tables["evals"] = index
        if status == "pending":
            self.clock.later(0, lambda: self._process_eval(ev["ID"]))
        return ev

    def _process_eval(self, eval_id: str) -> None:
        ev = self.evals[eval_id]
        if ev["Status"] != "pending":
            return
        key = (ev["Namespace"], ev["JobID"])
        job = self.jobs.get(key)
        index = self.store.bump()
        failed: dict[str, Any] = {}
        queued: dict[str, int] = {}
        for older in self.job_evals(*key):
            if older["Status"] == "blocked":
                # This evaluation re-plans every queued allocation, so the older one is moot.
                older.update(Status="canceled", ModifyIndex=index, ModifyTime=now_ns(),
                             StatusDescription="superseded by a newer evaluation of the job")
        if job is None or job["Stop"]:
            for alloc in self.job_allocs(*key):
                self._stop_alloc(alloc, "alloc not needed as job is stopped", index)
        else:
            dep = self._ensure_deployment(job, index)
            ev["DeploymentID"] = dep["ID"] if dep else ""
            for group in job["TaskGroups"]:
                placement = self._reconcile_group(job, group, dep, ev, index)
                queued[group["Name"]] = placement.queued
                if placement.failed:
                    failed[group["Name"]] = placement.failed
            if dep is not None:
                self._check_deployment(dep, index)
        ev.update(Status="complete", QueuedAllocations=queued, SnapshotIndex=index,
                  ModifyIndex=index, ModifyTime=now_ns(), FailedTGAllocs=failed or None)
        if failed and job is not None:
            blocked = self.create_eval(job, "queued-allocs", index, status="blocked")
            blocked["PreviousEval"] = ev["ID"]
            blocked["StatusDescription"] = "created to place remaining allocations"
            ev["BlockedEval"] = blocked["ID"]
        self.tables["evals"] = index
        if job is not None:
            self._update_job_status(job, index)

    # --- deployments -------------------------------------------------------------------------

    def _ensure_deployment(self, job: dict[str, Any], index: int) -> dict[str, Any] | None:
        if job["Type"] != "service" or not any(
                (g.get("Update") or {}).get("MaxParallel", 0) > 0 for g in job["TaskGroups"]):
            return None
        latest = self.latest_deployment(job["Namespace"], job["ID"])
        if latest is not None and latest["JobVersion"] == job["Version"] and (
                latest["JobCreateIndex"] == job["CreateIndex"]):
            return latest if latest["Status"] in ACTIVE_DEPLOYMENT else None
        for dep in self.deployments.values():
            if dep["JobID"] == job["ID"] and dep["Namespace"] == job["Namespace"] and (
                    dep["Status"] in ACTIVE_DEPLOYMENT):
                self._set_deployment(dep, "cancelled", "Cancelled due to newer version of job",
                                     index)
        has_old = any(a["DesiredStatus"] == "run" and not _terminal(a)
                      for a in self.job_allocs(job["Namespace"], job["ID"]))
        ts = now_ns()
        groups = {}
        for group in job["TaskGroups"]:
            update = group.get("Update") or {}
            canaries = int(update.get("Canary", 0)) if has_old else 0
            groups[group["Name"]] = {
                "AutoRevert": bool(update.get("AutoRevert")),
                "AutoPromote": bool(update.get("AutoPromote")),
                "ProgressDeadline": update.get("ProgressDeadline", 0),
                "RequireProgressBy": rfc3339(ts + int(update.get("ProgressDeadline", 0))),
                "Promoted": False, "PlacedCanaries": None, "DesiredCanaries": canaries,
                "DesiredTotal": group["Count"], "PlacedAllocs": 0, "HealthyAllocs": 0,
                "UnhealthyAllocs": 0,
            }
        dep = {
            "ID": str(uuid.uuid4()), "Namespace": job["Namespace"], "JobID": job["ID"],
            "JobVersion": job["Version"], "JobModifyIndex": job["JobModifyIndex"],
            "JobSpecModifyIndex": job["JobModifyIndex"], "JobCreateIndex": job["CreateIndex"],
            "IsMultiregion": False, "TaskGroups": groups, "Status": "running",
            "StatusDescription": "Deployment is running", "EvalPriority": job["Priority"],
            "CreateIndex": index, "ModifyIndex": index, "CreateTime": ts, "ModifyTime": ts,
        }
        self.deployments[dep["ID"]] = dep
        self.tables["deployment"] = index
        return dep

    def _set_deployment(self, dep: dict[str, Any], status: str, description: str,
                        index: int) -> None:
        dep.update(Status=status, StatusDescription=description, ModifyIndex=index,
                   ModifyTime=now_ns())
        self.tables["deployment"] = index

    def promote(self, deployment_id: str, groups: list[str] | None) -> dict[str, Any]:
        """Promote a deployment's canaries (all groups, or the named ones)."""
        with self.store.lock:
            dep = self._deployment(deployment_id)
            if dep["Status"] not in ACTIVE_DEPLOYMENT:
                raise HttpError(500, f"can't promote terminal deployment with status "
                                     f"{dep['Status']!r}")
            names = groups or [g for g, s in dep["TaskGroups"].items() if s["DesiredCanaries"]]
            if not any(dep["TaskGroups"][g]["DesiredCanaries"] for g in names
                       if g in dep["TaskGroups"]):
                raise HttpError(500, "no canaries to promote")
            for name in names:
                state = dep["TaskGroups"].get(name)
                if state is None:
                    raise HttpError(500, f'task group "{name}" not in deployment')
                healthy_canaries = sum(
                    1 for a in self.job_allocs(dep["Namespace"], dep["JobID"])
                    if a["DeploymentID"] == dep["ID"] and a["TaskGroup"] == name
                    and (a["DeploymentStatus"] or {}).get("Canary")
                    and (a["DeploymentStatus"] or {}).get("Healthy"))
                if healthy_canaries < state["DesiredCanaries"]:
                    raise HttpError(500, f'Task group "{name}" has {healthy_canaries}/'
                                         f'{state["DesiredCanaries"]} healthy allocations')
            index = self.store.bump()
            for name in names:
                dep["TaskGroups"][name]["Promoted"] = True
            self._set_deployment(dep, dep["Status"], "Deployment is running", index)
            return self._deployment_eval(dep, index)

    def fail_deployment(self, deployment_id: str) -> dict[str, Any]:
        """Mark a deployment failed (rolling back when its groups auto-revert)."""
        with self.store.lock:
            dep = self._deployment(deployment_id)
            if dep["Status"] not in ACTIVE_DEPLOYMENT:
                raise HttpError(500, f"can't fail terminal deployment with status "
                                     f"{dep['Status']!r}")
            index = self.store.bump()
            self._fail(dep, "Deployment marked as failed", index)
            return self._deployment_eval(dep, index)

    def pause_deployment(self, deployment_id: str, pause: bool) -> dict[str, Any]:
        """Pause (no more placements) or resume a running deployment."""
        with self.store.lock:
            dep = self._deployment(deployment_id)
            if dep["Status"] not in ("running", "paused"):
                raise HttpError(500, f"can't pause terminal deployment with status "
                                     f"{dep['Status']!r}")
            index = self.store.bump()
            if pause:
                self._set_deployment(dep, "paused", "Deployment is paused", index)
                return {"EvalID": "", "EvalCreateIndex": 0, "DeploymentModifyIndex": index,
                        "RevertedJobVersion": None, "Index": index}
            self._set_deployment(dep, "running", "Deployment is running", index)
            return self._deployment_eval(dep, index)

    def stop_allocation(self, alloc_id: str) -> dict[str, Any]:
        """Stop one allocation (it is migrated: the scheduler places a replacement)."""
        with self.store.lock:
            alloc = self.allocs.get(alloc_id)
            if alloc is None:
                raise HttpError(404, "alloc not found")
            index = self.store.bump()
            alloc["DesiredTransition"]["Migrate"] = True
            self._stop_alloc(alloc, "alloc is being migrated", index)
            job = self.jobs.get((alloc["Namespace"], alloc["JobID"]))
            eval_id = ""
            if job is not None:
                eval_id = self.create_eval(job, "alloc-stop", index)["ID"]
            return {"EvalID": eval_id, "Index": index}

    def _deployment(self, deployment_id: str) -> dict[str, Any]:
        dep = self.deployments.get(deployment_id)
        if dep is None:
            raise HttpError(404, "deployment not found")
        return dep

    def _deployment_eval(self, dep: Mapping[str, Any], index: int) -> dict[str, Any]:
        job = self.jobs.get((dep["Namespace"], dep["JobID"]))
        ev_id, ev_index = "", 0
        if job is not None:
            ev = self.create_eval(job, "deployment-watcher", index, deployment_id=dep["ID"])
            ev_id, ev_index = ev["ID"], ev["CreateIndex"]
        return {"EvalID": ev_id, "EvalCreateIndex": ev_index, "DeploymentModifyIndex": index,
                "RevertedJobVersion": None, "Index": index}

    def _fail(self, dep: dict[str, Any], reason: str, index: int) -> None:
        revert = any(s["AutoRevert"] for s in dep["TaskGroups"].values())
        key = (dep["Namespace"], dep["JobID"])
        target = None
        if revert:
            target = next((v for v in reversed(self.versions.get(key, []))
                           if v["Stable"] and v["Version"] < dep["JobVersion"]), None)
            reason += (f" - rolling back to job version {target['Version']}" if target else
                       " - no stable job version to auto revert to")
        self._set_deployment(dep, "failed", reason, index)
        if target is not None:
            self.clock.later(0, lambda: self._revert_to(key, target))

    def _revert_to(self, key: tuple[str, str], target: Mapping[str, Any]) -> None:
        spec = _jobspec.spec_of(target)
        if key in self.jobs:
            self.register(spec)

    def revert(self, namespace: str, job_id: str, version: int,
               enforce_prior: int | None) -> dict[str, Any]:
        """Register an older version's spec as a new version."""
        with self.store.lock:
            job = self.job(namespace, job_id)
            if enforce_prior is not None and job["Version"] != enforce_prior:
                raise HttpError(500, f"Current job has version {job['Version']}; enforcing "
                                     f"version {enforce_prior}")
            if version == job["Version"]:
                raise HttpError(500, f"can't revert to current version {version}")
            target = next((v for v in self.versions.get((namespace, job_id), [])
                           if v["Version"] == version), None)
            if target is None:
                raise HttpError(500, f'job "{job_id}" in namespace "{namespace}" at version '
                                     f"{version} not found")
            spec = _jobspec.spec_of(target)
            spec["Stop"] = False
            return self.register(spec)

    def set_stable(self, namespace: str, job_id: str, version: int, stable: bool) -> int:
        """Mark a job version (un)stable; returns the job modify index."""
        with self.store.lock:
            job = self.job(namespace, job_id)
            target = next((v for v in self.versions.get((namespace, job_id), [])
                           if v["Version"] == version), None)
            if target is None:
                raise HttpError(500, f'job "{job_id}" in namespace "{namespace}" at version '
                                     f"{version} not found")
            index = self.store.bump()
            target["Stable"] = stable
            if job["Version"] == version:
                job["Stable"] = stable
                job["ModifyIndex"] = index
            self.tables["jobs"] = index
            return int(job["JobModifyIndex"])

    def _check_deployment(self, dep: dict[str, Any], index: int) -> None:
        if dep["Status"] != "running":
            return
        done = True
        waiting_promotion = False
        for name, state in dep["TaskGroups"].items():
            if state["DesiredCanaries"] and not state["Promoted"]:
                done = False
                canaries = [a for a in self.job_allocs(dep["Namespace"], dep["JobID"])
                            if a["DeploymentID"] == dep["ID"] and a["TaskGroup"] == name
                            and (a["DeploymentStatus"] or {}).get("Canary")]
                if len(canaries) >= state["DesiredCanaries"] and all(
                        a["DeploymentStatus"].get("Healthy") for a in canaries):
                    if state["AutoPromote"]:
                        state["Promoted"] = True
                        self.clock.later(0, lambda: self._after_promotion(dep["ID"]))
                    else:
                        waiting_promotion = True
            elif state["HealthyAllocs"] < state["DesiredTotal"]:
                done = False
        if done:
            self._set_deployment(dep, "successful", "Deployment completed successfully", index)
            key = (dep["Namespace"], dep["JobID"])
            job = self.jobs.get(key)
            for version in self.versions.get(key, []):
                if version["Version"] == dep["JobVersion"]:
                    version["Stable"] = True
            if job is not None and job["Version"] == dep["JobVersion"]:
                job["Stable"] = True
                job["ModifyIndex"] = index
                self.tables["jobs"] = index
        elif waiting_promotion:
            self._set_deployment(dep, "running",
                                 "Deployment is running but requires manual promotion", index)

    def _after_promotion(self, deployment_id: str) -> None:
        dep = self.deployments[deployment_id]
        self._deployment_eval(dep, self.store.bump())

    # --- reconcile -----------------------------------------------------------------------------

    def _reconcile_group(self, job: dict[str, Any], group: dict[str, Any],
                         dep: dict[str, Any] | None, ev: Mapping[str, Any],
                         index: int) -> Placement:
        name = group["Name"]
        live = [a for a in self.job_allocs(job["Namespace"], job["ID"])
                if a["TaskGroup"] == name and a["DesiredStatus"] == "run" and not _terminal(a)]
        current: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for alloc in live:
            if alloc["JobVersion"] == job["Version"] and alloc["Job"]["CreateIndex"] == (
                    job["CreateIndex"]):
                current.append(alloc)
                continue
            kind = update_kind(_group(alloc["Job"], name), group)
            if kind == "destructive" or alloc["Job"]["CreateIndex"] != job["CreateIndex"]:
                old.append(alloc)
            else:
                self._update_in_place(alloc, job, dep, index)
                current.append(alloc)
        count = group["Count"]
        if job["Type"] == "system":
            count = len(self._eligible(job, group)[0])
        state = dep["TaskGroups"].get(name) if dep else None
        outcome = Placement()
        if dep is not None and dep["Status"] != "running":
            return outcome
        if state is not None and old and state["DesiredCanaries"] and not state["Promoted"]:
            canaries = [a for a in current if (a["DeploymentStatus"] or {}).get("Canary")]
            need = state["DesiredCanaries"] - len(canaries)
            return self._place(job, group, max(need, 0), ev, dep, index, canary=True)
        if len(current) > count:
            by_index = sorted(current, key=_alloc_index)
            for alloc in by_index[count:]:
                self._stop_alloc(alloc, "alloc not needed due to job update", index)
            current = by_index[:count]
        need = count - len(current)
        if need > 0:
            budget = need
            if state is not None and old:
                max_parallel = int((group.get("Update") or {}).get("MaxParallel", 1)) or need
                in_flight = sum(1 for a in current
                                if (a["DeploymentStatus"] or {}).get("Healthy") is None)
                budget = max(0, min(need, max_parallel - in_flight))
            replacing = sorted(old, key=_alloc_index)
            outcome = self._place(job, group, budget, ev, dep, index, replacing=replacing)
            for alloc in replacing[: outcome.placed]:
                self._stop_alloc(alloc, "alloc is being updated due to job update", index)
        keep_old = max(0, count - len(current) - outcome.placed)
        survivors = [a for a in old if a["DesiredStatus"] == "run"]
        for alloc in sorted(survivors, key=_alloc_index, reverse=True)[: max(0, len(survivors)
                                                                             - keep_old)]:
            self._stop_alloc(alloc, "alloc is being updated due to job update", index)
        return outcome

    def _update_in_place(self, alloc: dict[str, Any], job: Mapping[str, Any],
                         dep: Mapping[str, Any] | None, index: int) -> None:
        alloc["Job"] = copy.deepcopy(job)
        alloc["JobVersion"] = job["Version"]
        if dep is not None:
            alloc["DeploymentID"] = dep["ID"]
            healthy = alloc["ClientStatus"] == "running"
            alloc["DeploymentStatus"] = {"Healthy": healthy, "Canary": False,
                                         "Timestamp": rfc3339(now_ns()), "ModifyIndex": index}
            state = dep["TaskGroups"].get(alloc["TaskGroup"])
            if state is not None:
                state["PlacedAllocs"] += 1
                state["HealthyAllocs"] += 1 if healthy else 0
        self._touch_alloc(alloc, index)

    def _eligible(self, job: Mapping[str, Any],
                  group: Mapping[str, Any]) -> tuple[list[NodeSpec], dict[str, Any]]:
        dcs = job.get("Datacenters") or ["*"]
        in_dc = [n for n in self.nodes if any(_glob(dc, n.datacenter) for dc in dcs)
                 and n.node_pool == job.get("NodePool", "default")]
        metrics: dict[str, Any] = {
            "NodesEvaluated": len(in_dc), "NodesFiltered": 0, "NodesInPool": len(self.nodes),
            "NodesAvailable": {dc: sum(1 for n in in_dc if n.datacenter == dc)
                               for dc in sorted({n.datacenter for n in in_dc})
                               } or {dc: 0 for dc in dcs if "*" not in dc},
            "ClassFiltered": None, "ConstraintFiltered": None, "NodesExhausted": 0,
            "ClassExhausted": None, "DimensionExhausted": None, "QuotaExhausted": None,
            "ResourcesExhausted": None, "Scores": None, "ScoreMetaData": None,
            "AllocationTime": 25_000, "CoalescedFailures": 0,
        }
        constraints = [*(job.get("Constraints") or []), *(group.get("Constraints") or [])]
        for task in group.get("Tasks") or []:
            constraints.extend(task.get("Constraints") or [])
        out = []
        for node in in_dc:
            reason = None
            for task in group.get("Tasks") or []:
                if task.get("Driver") not in node.drivers:
                    reason = "missing drivers"
            for c in constraints:
                if reason is None and not _satisfies(node, c):
                    reason = f"{c.get('LTarget', '')} {c.get('Operand', '=')} " \
                             f"{c.get('RTarget', '')}".strip()
            if reason is None:
                out.append(node)
                continue
            metrics["NodesFiltered"] += 1
            filtered = metrics["ConstraintFiltered"] or {}
            filtered[reason] = filtered.get(reason, 0) + 1
            metrics["ConstraintFiltered"] = filtered
            if node.node_class:
                classes = metrics["ClassFiltered"] or {}
                classes[node.node_class] = classes.get(node.node_class, 0) + 1
                metrics["ClassFiltered"] = classes
        return out, metrics

    def _place(self, job: dict[str, Any], group: dict[str, Any], n: int, ev: Mapping[str, Any],
               dep: dict[str, Any] | None, index: int, *, canary: bool = False,
               replacing: list[dict[str, Any]] | None = None) -> Placement:
        outcome = Placement()
        if n <= 0:
            return outcome
        nodes, metrics = self._eligible(job, group)
        used = {_alloc_index(a) for a in self.job_allocs(job["Namespace"], job["ID"])
                if a["TaskGroup"] == group["Name"] and a["DesiredStatus"] == "run"
                and not _terminal(a)}
        reusable = [_alloc_index(a) for a in replacing or []]
        taken_nodes = {a["NodeID"] for a in self.job_allocs(job["Namespace"], job["ID"])
                       if a["TaskGroup"] == group["Name"] and not _terminal(a)}
        for _ in range(n):
            node = self._pick_node(job, group, nodes, metrics, taken_nodes)
            if node is None:
                outcome.queued += 1
                metrics["NodesExhausted"] = metrics["NodesExhausted"] or 0
                outcome.failed = metrics
                continue
            if canary:
                alloc_index = _free_index(used)
            elif reusable:
                alloc_index = reusable.pop(0)
            else:
                alloc_index = _free_index(used)
            used.add(alloc_index)
            if job["Type"] == "system":
                taken_nodes.add(node.id)
            alloc = self._create_alloc(job, group, node, alloc_index, ev, dep, index, canary)
            outcome.placed += 1
            if canary and dep is not None:
                state = dep["TaskGroups"][group["Name"]]
                state["PlacedCanaries"] = [*(state["PlacedCanaries"] or ()), alloc["ID"]]
        if outcome.failed is not None:
            outcome.failed["CoalescedFailures"] = max(0, outcome.queued - 1)
            outcome.failed["ResourcesExhausted"] = {
                t["Name"]: {"CPU": t["Resources"].get("CPU", 0),
                            "MemoryMB": t["Resources"].get("MemoryMB", 0)}
                for t in group["Tasks"]} if outcome.failed["NodesExhausted"] else None
        if dep is not None and outcome.placed:
            state = dep["TaskGroups"][group["Name"]]
            state["PlacedAllocs"] += outcome.placed
            dep["ModifyIndex"] = index
            self.tables["deployment"] = index
        return outcome

    def _pick_node(self, job: Mapping[str, Any], group: Mapping[str, Any],
                   nodes: list[NodeSpec], metrics: dict[str, Any],
                   taken: set[str]) -> NodeSpec | None:
        cpu = sum(int(t["Resources"].get("CPU") or 0) for t in group["Tasks"])
        memory = sum(int(t["Resources"].get("MemoryMB") or 0) for t in group["Tasks"])
        static = [p["Value"] for p in _group_ports(group, "ReservedPorts")]
        best: NodeSpec | None = None
        best_free = -1
        exhausted: dict[str, int] = {}
        for node in nodes:
            if job["Type"] == "system" and node.id in taken:
                continue
            used_cpu, used_mem, used_ports = self._node_usage(node)
            dimension = None
            if used_cpu + cpu > node.cpu:
                dimension = "cpu"
            elif used_mem + memory > node.memory_mb:
                dimension = "memory"
            elif any(p in used_ports for p in static):
                dimension = "network: reserved port collision"
            if dimension is not None:
                exhausted[dimension] = exhausted.get(dimension, 0) + 1
                continue
            free = node.memory_mb - used_mem
            if free > best_free:
                best, best_free = node, free
        if best is None:
            metrics["NodesExhausted"] = sum(exhausted.values())
            metrics["DimensionExhausted"] = exhausted or None
        return best

    def _node_usage(self, node: NodeSpec) -> tuple[int, int, set[int]]:
        cpu = memory = 0
        ports: set[int] = set()
        for alloc in self.allocs.values():
            if alloc["NodeID"] != node.id or _terminal(alloc) or alloc["DesiredStatus"] != "run":
                continue
            for task in alloc["AllocatedResources"]["Tasks"].values():
                cpu += task["Cpu"]["CpuShares"]
                memory += task["Memory"]["MemoryMB"]
            ports.update(p["Value"] for p in alloc["AllocatedResources"]["Shared"]["Ports"])
        return cpu, memory, ports

    def _alloc_port(self, node: NodeSpec) -> int:
        _, _, used = self._node_usage(node)
        while True:
            port = self._next_port
            self._next_port = port + 1 if port + 1 < _PORT_RANGE[1] else _PORT_RANGE[0]
            if port not in used and self.runner.port_available(node.address, port):
                return port

    def _create_alloc(self, job: dict[str, Any], group: dict[str, Any], node: NodeSpec,
                      alloc_index: int, ev: Mapping[str, Any], dep: dict[str, Any] | None,
                      index: int, canary: bool) -> dict[str, Any]:
        ts = now_ns()
        reserved = [{"Label": p["Label"], "Value": p["Value"], "To": p.get("To", 0)}
                    for p in _group_ports(group, "ReservedPorts")]
        dynamic = [{"Label": p["Label"], "Value": self._alloc_port(node), "To": p.get("To", 0)}
                   for p in _group_ports(group, "DynamicPorts")]
        ports = [{**p, "HostIP": node.address} for p in reserved + dynamic]
        networks = [{
            "Mode": group["Networks"][0].get("Mode") or "host", "Device": "", "CIDR": "",
            "IP": node.address, "MBits": 0, "DNS": None,
            "ReservedPorts": [{**p, "HostNetwork": "default"} for p in reserved] or None,
            "DynamicPorts": [{**p, "HostNetwork": "default"} for p in dynamic] or None,
        }] if group.get("Networks") else None
        tasks_resources = {
            t["Name"]: {"Cpu": {"CpuShares": int(t["Resources"].get("CPU") or 0),
                                "ReservedCores": None},
                        "Memory": {"MemoryMB": int(t["Resources"].get("MemoryMB") or 0),
                                   "MemoryMaxMB": int(t["Resources"].get("MemoryMaxMB") or 0)},
                        "Networks": None, "Devices": None}
            for t in group["Tasks"]}
        alloc = {
            "ID": str(uuid.uuid4()), "Namespace": job["Namespace"], "EvalID": ev["ID"],
            "Name": f"{job['ID']}.{group['Name']}[{alloc_index}]", "NodeID": node.id,
            "NodeName": node.name, "JobID": job["ID"], "Job": copy.deepcopy(job),
            "JobVersion": job["Version"], "TaskGroup": group["Name"],
            "AllocatedResources": {
                "Tasks": tasks_resources,
                "TaskLifecycles": {t["Name"]: t.get("Lifecycle") for t in group["Tasks"]},
                "Shared": {"DiskMB": (group.get("EphemeralDisk") or {}).get("SizeMB", 300),
                           "Networks": networks, "Ports": ports},
            },
            "DesiredStatus": "run", "DesiredDescription": "",
            "DesiredTransition": {"Migrate": None, "Reschedule": None, "ForceReschedule": None},
            "ClientStatus": "pending", "ClientDescription": "No tasks have started",
            "TaskStates": {t["Name"]: {
                "State": "pending", "Failed": False, "Restarts": 0, "LastRestart": None,
                "StartedAt": None, "FinishedAt": None,
                "Events": [_event("Received", "Task received by client", {}, ts)],
            } for t in group["Tasks"]},
            "DeploymentID": dep["ID"] if dep else "",
            "DeploymentStatus": {"Healthy": None, "Canary": canary, "Timestamp": ZERO_TIME,
                                 "ModifyIndex": 0} if dep else None,
            "RescheduleTracker": None, "NetworkStatus": None, "FollowupEvalID": "",
            "PreviousAllocation": "", "NextAllocation": "",
            "Metrics": {"NodesEvaluated": len(self.nodes), "NodesFiltered": 0,
                        "NodesExhausted": 0, "AllocationTime": 25_000, "CoalescedFailures": 0},
            "CreateIndex": index, "ModifyIndex": index, "AllocModifyIndex": index,
            "CreateTime": ts, "ModifyTime": ts,
        }
        self.allocs[alloc["ID"]] = alloc
        self._allocs_by_job.setdefault((alloc["Namespace"], alloc["JobID"]), []).append(alloc)
        self.tables["allocs"] = index
        env = self._task_env(alloc, node, alloc_index)
        handles = {}
        for task in group["Tasks"]:
            script = self._script_for(alloc, task["Name"])
            handles[task["Name"]] = TaskHandle(self, alloc["ID"], task, env, script)
        self.handles[alloc["ID"]] = handles
        for handle in handles.values():
            self.runner.start(handle)
        return alloc

    def _task_env(self, alloc: Mapping[str, Any], node: NodeSpec,
                  alloc_index: int) -> dict[str, str]:
        job = alloc["Job"]
        env = {
            "NOMAD_ALLOC_ID": alloc["ID"], "NOMAD_ALLOC_NAME": alloc["Name"],
            "NOMAD_ALLOC_INDEX": str(alloc_index), "NOMAD_JOB_ID": job["ID"],
            "NOMAD_JOB_NAME": job["Name"], "NOMAD_GROUP_NAME": alloc["TaskGroup"],
            "NOMAD_NAMESPACE": job["Namespace"], "NOMAD_REGION": job["Region"],
            "NOMAD_DC": node.datacenter, "NOMAD_JOB_PARENT_ID": job.get("ParentID") or "",
        }
        for port in alloc["AllocatedResources"]["Shared"]["Ports"]:
            label = port["Label"]
            env[f"NOMAD_PORT_{label}"] = str(port["To"] or port["Value"])
            env[f"NOMAD_HOST_PORT_{label}"] = str(port["Value"])
            env[f"NOMAD_IP_{label}"] = port["HostIP"]
            env[f"NOMAD_ADDR_{label}"] = f"{port['HostIP']}:{port['Value']}"
        for key, value in (job.get("Meta") or {}).items():
            env[f"NOMAD_META_{key}"] = str(value)
        return env

    # --- allocation lifecycle ------------------------------------------------------------------

    def _touch_alloc(self, alloc: dict[str, Any], index: int) -> None:
        alloc["ModifyIndex"] = index
        alloc["ModifyTime"] = now_ns()
        self.tables["allocs"] = index

    def _stop_alloc(self, alloc: dict[str, Any], reason: str, index: int) -> None:
        if alloc["DesiredStatus"] != "run":
            return
        alloc["DesiredStatus"] = "stop"
        alloc["DesiredDescription"] = reason
        alloc["AllocModifyIndex"] = index
        self._touch_alloc(alloc, index)
        self._deregister_services(alloc)
        for handle in self.handles.get(alloc["ID"], {}).values():
            if alloc["TaskStates"][handle.name]["State"] != "dead":
                handle.cancelled = True
                self.runner.stop(handle)

    def task_event(self, alloc_id: str, task: str, kind: str, message: str,
                   fields: Mapping[str, Any]) -> None:
        """Record a task event reported by a runner."""
        with self.store.lock:
            alloc = self.allocs[alloc_id]
            alloc["TaskStates"][task]["Events"].append(_event(kind, message, fields, now_ns()))
            self._touch_alloc(alloc, self.store.bump())

    def task_state(self, alloc_id: str, task: str, state: str, *, failed: bool = False,
                   restart: bool = False) -> None:
        """Record a task state change reported by a runner and update the allocation."""
        with self.store.lock:
            index = self.store.bump()
            alloc = self.allocs[alloc_id]
            ts = alloc["TaskStates"][task]
            ts["State"] = state
            if state == "running" and ts["StartedAt"] is None:
                ts["StartedAt"] = rfc3339(now_ns())
            if restart:
                ts["Restarts"] += 1
                ts["LastRestart"] = rfc3339(now_ns())
            if state == "dead":
                ts["FinishedAt"] = rfc3339(now_ns())
                ts["Failed"] = failed
            self._touch_alloc(alloc, index)
            self._alloc_status(alloc, index)

    def _alloc_status(self, alloc: dict[str, Any], index: int) -> None:
        states = [s for s in alloc["TaskStates"].values()]
        before = alloc["ClientStatus"]
        if any(s["Failed"] for s in states):
            status, description = "failed", "Failed tasks"
        elif all(s["State"] == "dead" for s in states):
            status, description = "complete", "All tasks have completed"
        elif all(s["State"] == "running" for s in states):
            status, description = "running", "Tasks are running"
        else:
            status, description = "pending", "No tasks have started"
        if status == before:
            return
        alloc["ClientStatus"] = status
        alloc["ClientDescription"] = description
        self._health_generation[alloc["ID"]] = self._health_generation.get(alloc["ID"], 0) + 1
        if status == "running":
            self._register_services(alloc)
            self._watch_health(alloc)
        elif status in ("failed", "complete"):
            self._deregister_services(alloc)
            for handle in self.handles.get(alloc["ID"], {}).values():
                if alloc["TaskStates"][handle.name]["State"] != "dead" and status == "failed":
                    handle.cancelled = True
                    self.runner.stop(handle)
            if status == "failed":
                self._set_health(alloc, healthy=False, index=index)
        job = self.jobs.get((alloc["Namespace"], alloc["JobID"]))
        if job is not None:
            self._update_job_status(job, index)

    def _watch_health(self, alloc: dict[str, Any]) -> None:
        if alloc["DeploymentStatus"] is None or alloc["DeploymentStatus"]["Healthy"] is not None:
            return
        unhealthy = any(h.script is not None and h.script.fail == "unhealthy"
                        for h in self.handles.get(alloc["ID"], {}).values())
        alloc_id = alloc["ID"]
        generation = self._health_generation.get(alloc_id, 0)

        deadline = time.monotonic() + self.timings.healthy_deadline

        def decide() -> None:
            current = self.allocs.get(alloc_id)
            if current is None or self._health_generation.get(alloc_id, 0) != generation:
                return
            passing = not self.runner.runs_checks or self._checks_passing(current)
            if not passing and time.monotonic() < deadline:
                self.clock.later(self.timings.healthy_after, decide)
                return
            self._set_health(current, healthy=passing and not unhealthy, index=self.store.bump())

        delay = self.timings.healthy_deadline if unhealthy else self.timings.healthy_after
        self.clock.later(delay, decide)

    def _checks_passing(self, alloc: Mapping[str, Any]) -> bool:
        if self.consul is None:
            return True
        return all(self.consul.check_status(check_id) == "passing"
                   for service_id, _, _ in self._service_ids(alloc)
                   for check_id in self.consul.checks_of(service_id))

    def _set_health(self, alloc: dict[str, Any], healthy: bool, index: int) -> None:
        status = alloc["DeploymentStatus"]
        if status is None or status["Healthy"] is not None:
            return
        status.update(Healthy=healthy, Timestamp=rfc3339(now_ns()), ModifyIndex=index)
        self._touch_alloc(alloc, index)
        dep = self.deployments.get(alloc["DeploymentID"])
        if dep is None or dep["Status"] != "running":
            return
        state = dep["TaskGroups"].get(alloc["TaskGroup"])
        if state is None:
            return
        if not healthy:
            state["UnhealthyAllocs"] += 1
            if alloc["ClientStatus"] == "running":
                deadline = _duration_text(int((self.group_of(alloc["ID"]).get("Update") or {})
                                              .get("HealthyDeadline", 300_000_000_000)))
                for task in alloc["TaskStates"]:
                    alloc["TaskStates"][task]["Events"].append(_event(
                        "Alloc Unhealthy", f"Task not running for min_healthy_time of "
                        f"{deadline} by healthy_deadline", {}, now_ns()))
            self._fail(dep, "Failed due to unhealthy allocations", index)
            return
        state["HealthyAllocs"] += 1
        dep["ModifyIndex"] = index
        self.tables["deployment"] = index
        self._check_deployment(dep, index)
        if dep["Status"] == "running":
            self._deployment_eval(dep, index)

    def _update_job_status(self, job: dict[str, Any], index: int) -> None:
        allocs = self.job_allocs(job["Namespace"], job["ID"])
        evals = self.job_evals(job["Namespace"], job["ID"])
        if job["Stop"]:
            status = "dead"
        elif (job["Type"] == "system" or job.get("Periodic") or job.get("ParameterizedJob")
              or any(a["DesiredStatus"] == "run" and not _terminal(a) for a in allocs)):
            status = "running"
        elif any(e["Status"] in ("pending", "blocked") for e in evals):
            status = "pending"
        else:
            status = "dead" if allocs or evals else "pending"
        if job["Status"] != status:
            job["Status"] = status
            job["ModifyIndex"] = index
            self.tables["jobs"] = index

    # --- Consul registration, as a Nomad client does --------------------------------------------

    def _service_ids(self, alloc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
        group = self.group_of(alloc["ID"])
        out = []
        for service in group.get("Services") or []:
            out.append((f"_nomad-task-{alloc['ID']}-group-{group['Name']}-"
                        f"{self._service_name(alloc, service, '')}-{service.get('PortLabel', '')}",
                        service, ""))
        for task in group.get("Tasks") or []:
            for service in task.get("Services") or []:
                out.append((f"_nomad-task-{alloc['ID']}-{task['Name']}-"
                            f"{self._service_name(alloc, service, task['Name'])}-"
                            f"{service.get('PortLabel', '')}", service, task["Name"]))
        return [x for x in out if (x[1].get("Provider") or "consul") == "consul"]

    def _service_name(self, alloc: Mapping[str, Any], service: Mapping[str, Any],
                      task: str) -> str:
        name = service.get("Name") or f"{alloc['JobID']}-{alloc['TaskGroup']}" + (
            f"-{task}" if task else "")
        values = {"JOB": alloc["JobID"], "TASKGROUP": alloc["TaskGroup"], "TASK": task,
                  "NOMAD_JOB_NAME": alloc["Job"]["Name"], "NOMAD_JOB_ID": alloc["JobID"],
                  "NOMAD_GROUP_NAME": alloc["TaskGroup"], "NOMAD_TASK_NAME": task,
                  "BASE": f"{alloc['JobID']}-{alloc['TaskGroup']}-{task}"}
        return re.sub(r"\$\{([A-Za-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)),
                      str(name))

    def _register_services(self, alloc: Mapping[str, Any]) -> None:
        if self.consul is None:
            return
        unhealthy = any(h.script is not None and h.script.fail == "unhealthy"
                        for h in self.handles.get(alloc["ID"], {}).values())
        ports = {p["Label"]: p for p in alloc["AllocatedResources"]["Shared"]["Ports"]}
        node = next((n for n in self.nodes if n.id == alloc["NodeID"]), None)
        for service_id, service, task in self._service_ids(alloc):
            label = service.get("PortLabel") or ""
            port = ports.get(label)
            address = port["HostIP"] if port else (node.address if node else "127.0.0.1")

            def check_port(c: Mapping[str, Any], service_port: Any = port) -> Any:
                # A check's own port wins over its service's
                # (command/agent/consul/service_client.go:1507 at aa026cc).
                return ports.get(c.get("PortLabel") or "") or service_port

            checks = [{
                "CheckID": check_id_for(service_id, c.get("Name") or c.get("Type", "check")),
                "Name": c.get("Name") or f"service: \"{service.get('Name')}\" check",
                "Status": "critical" if unhealthy or (
                    self.runner.runs_checks and c.get("Type") in ("http", "tcp")) else "passing",
                **({"HTTP": f"http://{address}:{_port_value(check_port(c))}"
                            f"{c.get('Path', '/')}"} if c.get("Type") == "http" else
                   {"TCP": f"{address}:{_port_value(check_port(c))}"} if c.get("Type") == "tcp"
                   else {"TTL": "30s"}),
                "Interval": _duration_text(int(c.get("Interval") or 10_000_000_000)),
                "Timeout": _duration_text(int(c.get("Timeout") or 2_000_000_000)),
            } for c in service.get("Checks") or []]
            self.consul.register_definition({
                "ID": service_id, "Name": self._service_name(alloc, service, task),
                "Tags": list(service.get("Tags") or []), "Address": address,
                "Port": int(port["Value"]) if port else 0,
                "Meta": {"external-source": "nomad", **(service.get("Meta") or {})},
                "Checks": checks,
            })

    def _deregister_services(self, alloc: Mapping[str, Any]) -> None:
        if self.consul is None:
            return
        existing = set(self.consul.service_ids())
        for service_id, _, _ in self._service_ids(alloc):
            if service_id in existing:
                self.consul.deregister(service_id)

    # --- read models ---------------------------------------------------------------------------

    def summary(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Nomad's JobSummary: per-group allocation counts by client status."""
        groups = {}
        allocs = self.job_allocs(job["Namespace"], job["ID"])
        queued = self._queued(job)
        for group in job["TaskGroups"]:
            mine = [a for a in allocs if a["TaskGroup"] == group["Name"]]
            groups[group["Name"]] = {
                "Queued": queued.get(group["Name"], 0),
                "Complete": sum(1 for a in mine if a["ClientStatus"] == "complete"),
                "Failed": sum(1 for a in mine if a["ClientStatus"] == "failed"),
                "Running": sum(1 for a in mine if a["ClientStatus"] == "running"),
                "Starting": sum(1 for a in mine if a["ClientStatus"] == "pending"),
                "Lost": 0, "Unknown": 0,
            }
        children = [j for j in self.jobs.values()
                    if j.get("ParentID") == job["ID"] and j["Namespace"] == job["Namespace"]]
        return {
            "JobID": job["ID"], "Namespace": job["Namespace"], "Summary": groups,
            "Children": {"Pending": sum(1 for c in children if c["Status"] == "pending"),
                         "Running": sum(1 for c in children if c["Status"] == "running"),
                         "Dead": sum(1 for c in children if c["Status"] == "dead")},
            "CreateIndex": job["CreateIndex"], "ModifyIndex": max(
                [job["ModifyIndex"], *(a["ModifyIndex"] for a in allocs)]),
        }

    def _queued(self, job: Mapping[str, Any]) -> dict[str, int]:
        evals = [e for e in self.job_evals(job["Namespace"], job["ID"])
                 if e["Status"] == "complete"]
        if not evals:
            return {}
        latest = max(evals, key=lambda e: e["ModifyIndex"])
        return dict(latest.get("QueuedAllocations") or {})

    def node_json(self, node: NodeSpec) -> dict[str, Any]:
        """A node as `GET /v1/node/<id>` shows it."""
        attributes = {"kernel.name": "linux", "cpu.arch": "amd64", "os.name": "ubuntu",
                      "unique.network.ip-address": node.address, "nomad.version": "1.8.0",
                      **{f"driver.{d}": "1" for d in node.drivers}, **node.attributes}
        return {
            "ID": node.id, "Name": node.name, "Datacenter": node.datacenter,
            "NodeClass": node.node_class, "NodePool": node.node_pool, "Drain": False,
            "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "",
            "HTTPAddr": f"{node.address}:4646", "TLSEnabled": False, "Attributes": attributes,
            "Meta": dict(node.meta),
            "Drivers": {d: {"Detected": True, "Healthy": True, "HealthDescription": "Healthy",
                            "Attributes": None} for d in node.drivers},
            "NodeResources": {"Cpu": {"CpuShares": node.cpu},
                              "Memory": {"MemoryMB": node.memory_mb},
                              "Disk": {"DiskMB": node.disk_mb}, "Networks": None},
            "ReservedResources": {"Cpu": {"CpuShares": 0}, "Memory": {"MemoryMB": 0},
                                  "Disk": {"DiskMB": 0}},
            "CreateIndex": self._node_index, "ModifyIndex": self._node_index,
        }

    def plan(self, job_in: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any],
                                                        dict[str, Any], dict[str, Any]]:
        """Dry-run: (stored job, canonical submitted job, DesiredTGUpdates, FailedTGAllocs)."""
        errors = _jobspec.problems(job_in)
        if errors:
            raise HttpError(500, _jobspec.multierror(errors))
        job = _jobspec.canonical(job_in)
        with self.store.lock:
            stored = self.jobs.get((job["Namespace"], job["ID"]))
            updates: dict[str, Any] = {}
            failed: dict[str, Any] = {}
            live_all = [a for a in self.job_allocs(job["Namespace"], job["ID"])
                        if a["DesiredStatus"] == "run" and not _terminal(a)]
            for group in job["TaskGroups"]:
                counts = dict.fromkeys(("Ignore", "Place", "Migrate", "Stop", "InPlaceUpdate",
                                        "DestructiveUpdate", "Canary", "Preemptions"), 0)
                live = [a for a in live_all if a["TaskGroup"] == group["Name"]]
                kinds = [update_kind(_group(a["Job"], group["Name"]), group) for a in live]
                kept = min(len(live), group["Count"])
                counts["Stop"] = max(0, len(live) - group["Count"])
                destructive = sum(1 for k in kinds[:kept] if k == "destructive")
                update = group.get("Update") or {}
                if destructive and update.get("Canary"):
                    counts["Canary"] = int(update["Canary"])
                    counts["Ignore"] = kept
                else:
                    batch = min(destructive, int(update.get("MaxParallel") or destructive)
                                ) if stored else destructive
                    counts["DestructiveUpdate"] = batch
                    counts["InPlaceUpdate"] = sum(1 for k in kinds[:kept] if k == "inplace")
                    counts["Ignore"] = kept - batch - counts["InPlaceUpdate"]
                counts["Place"] = max(0, group["Count"] - len(live))
                updates[group["Name"]] = counts
                if counts["Place"]:
                    nodes, metrics = self._eligible(job, group)
                    node = self._pick_node(job, group, nodes, metrics, set())
                    if node is None:
                        metrics["CoalescedFailures"] = counts["Place"] - 1
                        failed[group["Name"]] = metrics
            if stored is not None:
                for group in stored["TaskGroups"]:
                    if _group(job, group["Name"]) is None:
                        stops = sum(1 for a in live_all if a["TaskGroup"] == group["Name"])
                        updates[group["Name"]] = {**dict.fromkeys((
                            "Ignore", "Place", "Migrate", "InPlaceUpdate", "DestructiveUpdate",
                            "Canary", "Preemptions"), 0), "Stop": stops}
            return (copy.deepcopy(stored) if stored else None), job, updates, failed


def _check_enforce_index(existing: Mapping[str, Any] | None, enforce: bool, jmi: int) -> None:
    if not enforce:
        return
    prefix = "Enforcing job modify index"
    if existing is not None:
        if jmi == 0:
            raise HttpError(500, f"{prefix} 0: job already exists")
        if jmi != existing["JobModifyIndex"]:
            raise HttpError(500, f"{prefix} {jmi}: job exists with conflicting job modify "
                                 f"index: {existing['JobModifyIndex']}")
    elif jmi != 0:
        raise HttpError(500, f"{prefix} {jmi}: job does not exist")


def _event(kind: str, message: str, fields: Mapping[str, Any], ts: int) -> dict[str, Any]:
    event = {
        "Type": kind, "Time": ts, "Message": "", "DisplayMessage": message, "Details": {},
        "FailsTask": False, "RestartReason": "", "SetupError": "", "DriverError": "",
        "DriverMessage": "", "ExitCode": 0, "Signal": 0, "KillReason": "", "KillTimeout": 0,
        "KillError": "", "StartDelay": 0, "DownloadError": "", "ValidationError": "",
        "DiskLimit": 0, "FailedSibling": "", "VaultError": "", "TaskSignalReason": "",
        "TaskSignal": "", "GenericSource": "",
    }
    event.update(fields)
    event["Details"] = {k: str(v) for k, v in fields.items()}
    return event


def _group(job: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    return next((g for g in job.get("TaskGroups") or [] if g["Name"] == name), None)


def _group_ports(group: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for network in group.get("Networks") or []:
        out.extend(network.get(kind) or [])
    return out


def _terminal(alloc: Mapping[str, Any]) -> bool:
    return alloc["ClientStatus"] in ("complete", "failed", "lost")


def _alloc_index(alloc: Mapping[str, Any]) -> int:
    match = re.search(r"\[(\d+)\]$", alloc["Name"])
    return int(match.group(1)) if match else 0


def _free_index(used: set[int]) -> int:
    i = 0
    while i in used:
        i += 1
    return i


def _glob(pattern: str, value: str) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*") + "$"
    return re.match(regex, value) is not None


def node_value(node: NodeSpec, target: str) -> str | None:
    """A `${attr.*}`, `${meta.*}` or `${node.*}` value of a node (None when unset)."""
    match = re.fullmatch(r"\$\{(.+)\}", target.strip())
    if match is None:
        return target
    name = match.group(1)
    attributes = {"kernel.name": "linux", "cpu.arch": "amd64", "os.name": "ubuntu",
                  "unique.network.ip-address": node.address, **node.attributes}
    if name.startswith("attr."):
        return attributes.get(name[5:])
    if name.startswith("meta."):
        return node.meta.get(name[5:])
    return {"node.datacenter": node.datacenter, "node.class": node.node_class,
            "node.unique.name": node.name, "node.unique.id": node.id,
            "node.pool": node.node_pool}.get(name)


def _satisfies(node: NodeSpec, constraint: Mapping[str, Any]) -> bool:
    operand = constraint.get("Operand") or "="
    left = node_value(node, str(constraint.get("LTarget") or ""))
    right = str(constraint.get("RTarget") or "")
    if operand in ("distinct_hosts", "distinct_property", "version", "semver"):
        return True
    if operand == "is_set":
        return left is not None
    if operand == "is_not_set":
        return left is None
    if operand in ("=", "==", "is"):
        return left == right
    if operand in ("!=", "not"):
        return left != right
    if operand == "regexp":
        return left is not None and re.search(right, left) is not None
    if operand in ("set_contains", "set_contains_all"):
        have = {x.strip() for x in (left or "").split(",")}
        return all(x.strip() in have for x in right.split(","))
    if operand == "set_contains_any":
        have = {x.strip() for x in (left or "").split(",")}
        return any(x.strip() in have for x in right.split(","))
    return True


def _port_value(port: Mapping[str, Any] | None) -> int:
    return int(port["Value"]) if port else 0
