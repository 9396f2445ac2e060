"""The alloc runner, as client/allocrunner: one allocation's tasks, lifecycle, health, services.

It starts the tasks in lifecycle order (prestart tasks to completion, prestart sidecars, then
the main tasks, then poststart; on stop the main tasks, then sidecars, then poststop), keeps
their `TaskStates` from what the task runner reports, derives the allocation's client status
(`getClientStatus`), registers and deregisters its services, follows its deployment health as
client/allochealth does (tasks running and checks passing for min_healthy_time, before
healthy_deadline) and sends it all to the server as `Node.UpdateAlloc` does, coalesced per
loop turn. Runners may report from any thread; the alloc runner's own work runs on the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing.client import services as svc
from nomadmesh.testing.client.runner import TaskHandle
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.loop import Timer

if TYPE_CHECKING:
    from nomadmesh.testing.client.client import Client

SIBLING_FAILED = "Sibling Task Failed"


def client_status(states: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """getClientStatus (client/allocrunner/alloc_runner.go)."""
    kinds = {("failed" if st["Failed"] else "dead") if st["State"] == "dead" else st["State"]
             for st in states.values()}
    if "failed" in kinds:
        return s.CLIENT_FAILED, "Failed tasks"
    if "running" in kinds:
        return s.CLIENT_RUNNING, "Tasks are running"
    if "pending" in kinds:
        return s.CLIENT_PENDING, "No tasks have started"
    if "dead" in kinds:
        return s.CLIENT_COMPLETE, "All tasks have completed"
    return "", ""


def _lifecycle(task: Mapping[str, Any]) -> tuple[str, bool]:
    lifecycle = task.get("Lifecycle") or {}
    return str(lifecycle.get("Hook") or ""), bool(lifecycle.get("Sidecar"))


class AllocRunner:
    """Runs one allocation on one node."""

    def __init__(self, client: Client, alloc: Mapping[str, Any],
                 node: Mapping[str, Any]) -> None:
        self.client = client
        self.alloc: Mapping[str, Any] = alloc
        self.alloc_id: str = alloc["ID"]
        self.node = node
        self.group: Mapping[str, Any] = s.lookup_group(alloc["Job"], alloc["TaskGroup"]) or {}
        self._lock = threading.RLock()
        ts = s.now_ns()
        self.states: dict[str, dict[str, Any]] = {
            t["Name"]: {"State": "pending", "Failed": False, "Restarts": 0,
                        "LastRestart": s.ZERO_TIME, "StartedAt": None, "FinishedAt": None,
                        "Events": [s.evolve(s.task_event("Received", "Task received by client"),
                                            Time=ts)]}
            for t in self.group.get("Tasks") or ()}
        env = client.task_env(alloc, node)
        self.handles = {t["Name"]: TaskHandle(self, t, env, client.script_for(alloc, t["Name"]))
                        for t in self.group.get("Tasks") or ()}
        self.started: set[str] = set()
        self._main_started = False
        self.stopping = False
        self.destroyed = False
        self.registered: dict[str, svc.Registration] = {}
        self.check_statuses: dict[str, str] = {}
        self._dirty = False
        self._health: dict[str, Any] | None = None
        self._deadline_timer: Timer | None = None
        self._poll_timer: Timer | None = None
        self._healthy_since = 0.0
        self._deployment_id = ""
        self._health_report: dict[str, Any] | None = None

    # --- what the server tells us ---------------------------------------------------------

    def run(self) -> None:
        """Start the allocation: group services, then the first lifecycle phase."""
        self._register("")
        self._watch_health()
        self._advance()
        self._mark()

    def update(self, alloc: Mapping[str, Any]) -> None:
        """A newer version of the allocation from the server (in-place update or stop)."""
        with self._lock:
            previous = self.alloc
            self.alloc = alloc
            self.group = s.lookup_group(alloc["Job"], alloc["TaskGroup"]) or self.group
        if s.server_terminal(alloc):
            self.stop()
            return
        if alloc["Job"] is not previous["Job"] or s.is_canary(alloc) != s.is_canary(previous):
            self._reregister()
        if alloc.get("DeploymentID") != self._deployment_id:
            self._watch_health()

    def stop(self) -> None:
        """Stop every task (main, then sidecars, then poststop tasks) and deregister."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
        self._cancel_health()
        self._deregister(None)
        self._stop_phase()
        self._mark()

    # --- what the task runner tells us (any thread) -----------------------------------------

    def task_event(self, task: str, kind: str, message: str, fields: Mapping[str, Any]) -> None:
        """Record a task event."""
        event = s.task_event(kind, message, **fields)
        with self._lock:
            state = self.states[task]
            self.states[task] = {**state, "Events": [*state["Events"], event][-10:]}
        self._mark()

    def task_state(self, task: str, state: str, *, failed: bool = False,
                   restart: bool = False) -> None:
        """Record a task state change; the lifecycle moves on from it."""
        now = s.rfc3339(s.now_ns())
        with self._lock:
            current = dict(self.states[task])
            current["State"] = state
            if state == "running" and current["StartedAt"] is None:
                current["StartedAt"] = now
            if restart:
                current["Restarts"] += 1
                current["LastRestart"] = now
            if state == "dead":
                current["FinishedAt"] = now
                current["Failed"] = failed
            self.states[task] = current
        self.client.loop.call_soon(lambda: self._on_task_state(task, state, failed))
        self._mark()

    def _on_task_state(self, task: str, state: str, failed: bool) -> None:
        if state == "running":
            self._register(task)
        elif state != "running":
            self._deregister(task)
        if state == "dead" and failed and not self.stopping:
            self._sibling_failed(task)
        self._advance()
        self._check_health()

    # --- lifecycle (client/allocrunner/tasklifecycle) ------------------------------------------

    def _phase(self, hook: str, sidecar: bool | None = None) -> list[str]:
        return [t["Name"] for t in self.group.get("Tasks") or ()
                if _lifecycle(t)[0] == hook and (sidecar is None or _lifecycle(t)[1] == sidecar)]

    def _start(self, names: list[str]) -> None:
        for name in names:
            if name not in self.started:
                self.started.add(name)
                self.client.runner.start(self.handles[name])

    def _state(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self.states[name]

    def _advance(self) -> None:
        """Start the next lifecycle phase once the previous one allows it."""
        main = self._phase("")
        sidecars = self._phase("prestart", True) + self._phase("poststart", True)
        if not self.stopping and self._start_phases(main):
            return
        if self.stopping or (main and self._all_dead(main)):
            if not self.stopping:
                self._kill(sidecars)
            if self._all_dead(main + self._phase("poststart") + sidecars):
                self._start(self._phase("poststop"))

    def _start_phases(self, main: list[str]) -> bool:
        """Prestart, prestart sidecars, main, poststart; True while still starting up."""
        if self._main_started:
            if all(self._state(n)["State"] != "pending" for n in main):
                self._start(self._phase("poststart"))
            return False
        prestart = self._phase("prestart", False)
        self._start(prestart)
        if any(self._state(n)["State"] != "dead" for n in prestart):
            return True
        if any(self._state(n)["Failed"] for n in prestart):
            return True
        sidecars = self._phase("prestart", True)
        self._start(sidecars)
        if any(self._state(n)["State"] != "running" for n in sidecars):
            return True
        self._start(main)
        self._main_started = True
        if all(self._state(n)["State"] != "pending" for n in main):
            self._start(self._phase("poststart"))
        return False

    def _all_dead(self, names: list[str]) -> bool:
        return all(self._state(n)["State"] == "dead" or n not in self.started for n in names)

    def _kill(self, names: list[str]) -> None:
        for name in names:
            handle = self.handles[name]
            if name in self.started and self._state(name)["State"] != "dead":
                if handle.cancelled:
                    continue
                handle.cancelled = True
                self._deregister(name)
                delay = self._shutdown_delay(handle)
                if delay:
                    handle.event("Waiting for shutdown delay", "Waiting for shutdown_delay of "
                                 f"{s.duration_text(delay)} before killing the task")
                    self.client.loop.call_later(self.client.timings.of(delay),
                                                self._stopper(handle))
                else:
                    self.client.runner.stop(handle)
            elif name not in self.started:
                self.started.add(name)
                self.task_state(name, "dead")

    def _stopper(self, handle: TaskHandle) -> Callable[[], None]:
        return lambda: self.client.runner.stop(handle)

    def _shutdown_delay(self, handle: TaskHandle) -> int:
        """The task's shutdown_delay (or the group's), unless the stop asked for none."""
        if (self.alloc.get("DesiredTransition") or {}).get("NoShutdownDelay"):
            return 0
        return int(handle.task.get("ShutdownDelay") or self.group.get("ShutdownDelay") or 0)

    def _stop_phase(self) -> None:
        main = self._phase("") + self._phase("poststart", False)
        self._kill(main)
        self._kill(self._phase("prestart", True) + self._phase("poststart", True))
        self._kill(self._phase("prestart", False))
        self._advance()

    def _sibling_failed(self, task: str) -> None:
        """A failed task kills the others (TaskSiblingFailed)."""
        for name, handle in self.handles.items():
            if name == task or name not in self.started:
                continue
            if self._state(name)["State"] != "dead":
                handle.event(SIBLING_FAILED, f"Task's sibling {task!r} failed",
                             FailedSibling=task)
        others = [n for n in self.handles if n != task and _lifecycle(
            self.handles[n].task)[0] != "poststop"]
        self._kill(others)

    # --- services --------------------------------------------------------------------------

    def _register(self, task: str) -> None:
        if self.stopping:
            return
        regs = svc.registrations(self.alloc, self.group, self.node, task or None)
        critical = self._scripted_unhealthy()
        for reg in regs:
            self.registered[reg.id] = reg
            self.client.register_service(reg, self, critical)

    def _deregister(self, task: str | None) -> None:
        for reg_id, reg in list(self.registered.items()):
            if task is None or reg.task == task:
                del self.registered[reg_id]
                self.client.deregister_service(reg)

    def _reregister(self) -> None:
        running = [n for n in self.handles if self._state(n)["State"] == "running"]
        self._deregister(None)
        self._register("")
        for name in running:
            self._register(name)

    def _scripted_unhealthy(self) -> bool:
        return any(h.script is not None and h.script.fail == "unhealthy"
                   for h in self.handles.values())

    def nomad_checks(self) -> list[tuple[str, str, str, float, float]]:
        """The HTTP/TCP checks of the allocation's Nomad-native services."""
        out = []
        for reg in list(self.registered.values()):
            if reg.provider != "nomad":
                continue
            for check in reg.service.get("Checks") or ():
                kind = check.get("Type")
                if kind not in ("http", "tcp"):
                    continue
                address, port = reg.check_target(check)
                http = (f"{check.get('Protocol') or 'http'}://{address}:{port}"
                        f"{check.get('Path') or '/'}") if kind == "http" else ""
                out.append((svc.check_id(reg.id, check), http,
                            f"{address}:{port}" if kind == "tcp" else "",
                            int(check.get("Interval") or 10 * s.SECOND) / 1e9,
                            int(check.get("Timeout") or 2 * s.SECOND) / 1e9))
        return out

    def set_check_status(self, check_id: str, status: str) -> None:
        """The result of a Nomad-native check."""
        self.check_statuses[check_id] = status

    def checks_passing(self) -> bool:
        """Whether every check of the registered services passes."""
        for reg in self.registered.values():
            for check in reg.service.get("Checks") or ():
                status = self.client.check_status(reg, svc.check_id(reg.id, check), self)
                if status != "passing":
                    return False
        return True

    # --- deployment health (client/allochealth) ------------------------------------------------

    def _watch_health(self) -> None:
        self._cancel_health()
        self._deployment_id = str(self.alloc.get("DeploymentID") or "")
        update = self.group.get("Update") or {}
        if (not self._deployment_id or self.alloc["Job"]["Type"] in ("batch", "sysbatch")
                or update.get("HealthCheck") == "manual" or s.has_health(self.alloc)):
            self._health = None
            return
        timings = self.client.timings
        self._health = {"min": timings.min_healthy(int(update.get("MinHealthyTime") or 0)),
                        "deadline": int(update.get("HealthyDeadline") or 300 * s.SECOND),
                        "checks": (update.get("HealthCheck") or "checks") == "checks",
                        "min_ns": int(update.get("MinHealthyTime") or 0)}
        deadline = timings.deadline(self._health["deadline"])
        self._deadline_timer = self.client.loop.call_later(deadline, self._deadline,
                                                           patient=True)
        self._healthy_since = 0.0
        self._check_health()

    def _cancel_health(self) -> None:
        for timer in (self._deadline_timer, self._poll_timer):
            if timer is not None:
                timer.cancel()
        self._deadline_timer = self._poll_timer = None

    def _poll(self, delay: float) -> None:
        if self._poll_timer is not None:
            self._poll_timer.cancel()
        self._poll_timer = self.client.loop.call_later(delay, self._check_health)

    def _relevant(self) -> list[str]:
        return [t["Name"] for t in self.group.get("Tasks") or () if _lifecycle(t)[0] != "poststop"
                and not (_lifecycle(t)[0] and not _lifecycle(t)[1])]

    def _check_health(self) -> None:
        """setTaskHealth/setCheckHealth: healthy after min_healthy_time of all good."""
        health = self._health
        if health is None or self.stopping:
            return
        states = {n: self._state(n) for n in self.handles}
        if any(st["Failed"] for st in states.values()):
            self._set_health(False, {})
            return
        good = all(states[n]["State"] == "running" for n in self._relevant()) and (
            not health["checks"] or self.checks_passing()) and not self._scripted_unhealthy()
        if not good:
            self._healthy_since = 0.0
            if health["checks"] and all(states[n]["State"] == "running"
                                        for n in self._relevant()):
                self._poll(min(max(health["min"], 0.01), 0.25))
            return
        now = time.monotonic()
        if not self._healthy_since:
            self._healthy_since = now
        remaining = self._healthy_since + health["min"] - now
        if remaining > 0:
            self._poll(remaining)
            return
        self._set_health(True, {})

    def _deadline(self) -> None:
        health = self._health
        if health is None or self.stopping:
            return
        events = {}
        deadline = s.duration_text(health["deadline"])
        minimum = s.duration_text(health["min_ns"])
        for name in self._relevant():
            st = self._state(name)
            if st["State"] == "pending":
                events[name] = f"Task not running by healthy_deadline of {deadline}"
            elif st["State"] == "running" and not self._healthy_since:
                events[name] = (f"Task not running for min_healthy_time of {minimum} by "
                                f"healthy_deadline of {deadline}")
            if name in events:
                continue
            for reg in self.registered.values():
                if reg.task in ("", name) and reg.service.get("Checks") and (
                        not self.checks_passing()):
                    events[name] = f"Services not healthy by deadline: {reg.name}"
        self._set_health(False, events)

    def _set_health(self, healthy: bool, events: Mapping[str, str]) -> None:
        if self._health is None:
            return
        self._health = None
        self._cancel_health()
        for task, message in events.items():
            self.task_event(task, "Alloc Unhealthy", message, {"Message": message})
        with self._lock:
            status = dict(self.alloc.get("DeploymentStatus") or {"Canary": False})
            status.update(Healthy=healthy, Timestamp=s.rfc3339(s.now_ns()))
            self.alloc = s.evolve(self.alloc, DeploymentStatus=status)
            self._health_report = {"Healthy": healthy, "Timestamp": status["Timestamp"]}
        self._mark()

    # --- reporting to the server (Node.UpdateAlloc) ---------------------------------------------

    def _mark(self) -> None:
        with self._lock:
            if self._dirty:
                return
            self._dirty = True
        self.client.loop.call_soon(self._flush)

    def _flush(self) -> None:
        with self._lock:
            self._dirty = False
            states = dict(self.states)
            report, self._health_report = self._health_report, None
        status, description = client_status(states)
        update: dict[str, Any] = {"ID": self.alloc_id, "TaskStates": states,
                                  "ClientStatus": status, "ClientDescription": description}
        if report is not None:
            update["DeploymentStatus"] = report
        self.client.update_alloc(update)
        if status in s.TERMINAL_CLIENT:
            self._deregister(None)
            self._cancel_health()
            if status == s.CLIENT_FAILED and self._health is not None:
                self._set_health(False, {})
