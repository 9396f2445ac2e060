"""Task runners: how an emulated client runs a task, and the simulated one used by default.

A `TaskRunner` gets a `TaskHandle` per task of an allocation and reports through it
(`event`, `running`, `restarting`, `dead`); the alloc runner turns those reports into task
states, the allocation's client status and its deployment health. `SimulatedRunner` moves
tasks through Nomad's events on a timer and fails the ones scripted with `script_task`; the
local runner (`nomadmesh.testing.local`) runs `raw_exec`/`exec` tasks as real processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from nomadmesh.testing.config import Timings
from nomadmesh.testing.server.structs import duration_text

if TYPE_CHECKING:
    from nomadmesh.testing.client.allocrunner import AllocRunner

FAILURES = ("driver", "exit", "unhealthy")
DEFAULT_KILL_TIMEOUT = 5_000_000_000


@attrs.define
class TaskScript:
    """A scripted outcome for one task: how it fails and with what message."""

    fail: str
    exit_code: int = 1
    message: str = ""
    version: int | None = None
    times: int | None = None


class TaskHandle:
    """What a runner gets for one task of one allocation: its spec, env, and ways to report."""

    def __init__(self, runner: AllocRunner, task: Mapping[str, Any], env: Mapping[str, str],
                 script: TaskScript | None) -> None:
        self._alloc_runner = runner
        self.alloc_id: str = runner.alloc_id
        self.task = task
        self.name: str = task["Name"]
        self.env = dict(env)
        self.script = script
        self.cancelled = False

    @property
    def alloc(self) -> Mapping[str, Any]:
        """The allocation as the client last saw it (with its Job)."""
        return self._alloc_runner.alloc

    @property
    def group(self) -> Mapping[str, Any]:
        """The task group the allocation runs."""
        return self._alloc_runner.group

    @property
    def node(self) -> Mapping[str, Any]:
        """The node the allocation runs on (Nomad's Node JSON)."""
        return self._alloc_runner.node

    @property
    def timings(self) -> Timings:
        """How fast emulated time runs."""
        return self._alloc_runner.client.timings

    @property
    def restart_policy(self) -> Mapping[str, Any]:
        """The group's canonical restart policy."""
        policy: Mapping[str, Any] = self.group.get("RestartPolicy") or {}
        return policy

    @property
    def job_type(self) -> str:
        """service, batch, system or sysbatch."""
        return str(self.alloc["Job"]["Type"])

    @property
    def consul(self) -> Any:
        """The Consul emulator the cluster registers services in (None without one)."""
        return self._alloc_runner.client.consul

    @property
    def task_names(self) -> list[str]:
        """Every task of the allocation."""
        return [t["Name"] for t in self.group.get("Tasks") or ()]

    def nomad_checks(self) -> list[tuple[str, str, str, float, float]]:
        """The allocation's Nomad-native checks: (id, http URL, tcp target, interval, timeout)."""
        return self._alloc_runner.nomad_checks()

    def set_check_status(self, check_id: str, status: str) -> None:
        """Report the result of a Nomad-native check the runner executed."""
        self._alloc_runner.set_check_status(check_id, status)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` later on the cluster loop unless the task was stopped meanwhile."""
        self._alloc_runner.client.loop.call_later(
            delay, lambda: None if self.cancelled else fn())

    def event(self, kind: str, message: str = "", **fields: Any) -> None:
        """Append a task event (Type, DisplayMessage, ExitCode, DriverError, ...)."""
        self._alloc_runner.task_event(self.name, kind, message, fields)

    def running(self) -> None:
        """The task is running."""
        self._alloc_runner.task_state(self.name, "running")

    def restarting(self) -> None:
        """The task exited and will be restarted."""
        self._alloc_runner.task_state(self.name, "pending", restart=True)

    def dead(self, failed: bool) -> None:
        """The task is finished for good (failed or not)."""
        self._alloc_runner.task_state(self.name, "dead", failed=failed)


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
        timeout = int(handle.task.get("KillTimeout") or DEFAULT_KILL_TIMEOUT)
        handle.event("Killing", f"Sent interrupt. Waiting {duration_text(timeout)} before "
                                "force killing", KillTimeout=timeout)
        handle.event("Killed", "Task successfully killed")
        handle.dead(failed=False)

    def _setup(self, handle: TaskHandle) -> None:
        handle.event("Task Setup", "Building Task Directory")
        script = handle.script
        if script is not None and script.fail == "driver":
            image = (handle.task.get("Config") or {}).get("image", "")
            message = script.message or f"failed to create container: image {image!r} not found"
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
            handle.later(self.timings.start_delay, lambda: self._exit(handle, attempt))
        elif handle.job_type in ("batch", "sysbatch") or _ephemeral(handle.task):
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
            delay = int(policy.get("Delay") or 15_000_000_000)
            handle.event("Restarting", f"Task restarting in {duration_text(delay)}",
                         RestartReason="Restart within policy", StartDelay=delay)
            handle.restarting()
            handle.later(self.timings.restart(delay), lambda: self._run(handle, attempt + 1))
            return
        interval = duration_text(int(policy.get("Interval") or 0))
        mode = policy.get("Mode", "fail")
        handle.event("Not Restarting",
                     f'Exceeded allowed attempts {attempts} in interval {interval} and mode is '
                     f'"{mode}"', FailsTask=True)
        handle.dead(failed=True)


def _ephemeral(task: Mapping[str, Any]) -> bool:
    """A lifecycle task that is not a sidecar runs to completion."""
    lifecycle = task.get("Lifecycle") or {}
    return bool(lifecycle.get("Hook")) and not lifecycle.get("Sidecar")
