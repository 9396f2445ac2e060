"""Local task execution for the Nomad emulator: `raw_exec` and `exec` tasks as real processes.

`LocalRunner` plugs into the emulator's `TaskRunner` protocol. Each allocation gets a directory
laid out as a Nomad client's (`alloc/`, `alloc/logs/<task>.stdout.0`, `<task>/local`,
`<task>/secrets`); each task runs in its own process group with Nomad's runtime environment,
`${...}` interpolation in config, args and env, and its `template` blocks rendered against the
Consul emulator (re-rendered as Consul changes, honouring `change_mode`). Lifecycle hooks run in
Nomad's order, exits follow the group's restart policy, and the services' HTTP/TCP checks are
executed for real, so deployments turn healthy only when the processes actually answer.

`local_cluster()` starts Consul and Nomad emulators in this mode on one node that offers only
`exec` and `raw_exec`: docker tasks are unplaceable ("missing drivers"), not faked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

from nomadmesh.testing._http import HttpError
from nomadmesh.testing.cluster import LocalCluster
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.scheduler import NodeSpec, TaskHandle, Timings, node_value
from nomadmesh.testing.templates import TemplateError, render

LOCAL_DRIVERS = ("exec", "raw_exec")
_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")
_DEFAULT_KILL_TIMEOUT = 5_000_000_000


def local_node(address: str = "127.0.0.1") -> NodeSpec:
    """The one node of a local cluster: this machine, offering `exec` and `raw_exec` only."""
    return NodeSpec("local", address=address, drivers=LOCAL_DRIVERS)


def local_timings() -> Timings:
    """Delays for real processes: health is decided by checks, within a minute."""
    return Timings(start_delay=0.0, healthy_after=0.2, healthy_deadline=60.0, restart_delay=0.0)


class LocalExecutionCluster(LocalCluster):
    """A local Consul + Nomad pair whose tasks run as processes; stopping it ends them all."""

    def __init__(self, root: Path | str | None = None, *, host: str = "127.0.0.1",
                 nomad_port: int = 0, consul_port: int = 0) -> None:
        self.runner = LocalRunner(root)
        super().__init__(host=host, nomad_port=nomad_port, consul_port=consul_port,
                         nodes=[local_node(host)], timings=local_timings(), runner=self.runner)

    def stop(self) -> None:
        """Kill every task's process group, then stop Nomad and Consul."""
        self.runner.close()
        super().stop()


def local_cluster(root: Path | str | None = None, **options: Any) -> LocalExecutionCluster:
    """Start a local cluster that runs tasks as processes; call `.stop()` when done."""
    cluster = LocalExecutionCluster(root, **options)
    cluster.start()
    return cluster


class LocalRunner:
    """Runs `raw_exec`/`exec` tasks as local processes, one process group per task."""

    runs_checks = True

    def __init__(self, root: Path | str | None = None, *, check_interval_cap: float = 1.0,
                 watch_interval: float = 0.25) -> None:
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix="nomadmesh-local-"))
        self.check_interval_cap = check_interval_cap
        self.watch_interval = watch_interval
        self.consul: ConsulEmulator | None = None
        self._allocs: dict[str, _Alloc] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._checks_due: dict[str, float] = {}
        self._http = requests.Session()
        self._http.trust_env = False

    # --- TaskRunner protocol -----------------------------------------------------------------

    def start(self, handle: TaskHandle) -> None:
        """Collect the allocation's tasks; once all are here, run them in lifecycle order."""
        if self._closed.is_set():
            handle.event("Driver Failure", "the local runner is closed", FailsTask=True)
            handle.dead(failed=True)
            return
        with self._lock:
            if self.consul is None:
                self.consul = handle.cluster.consul
            alloc = self._allocs.get(handle.alloc_id)
            if alloc is None:
                alloc = self._allocs[handle.alloc_id] = _Alloc(self, handle)
            alloc.tasks[handle.name] = _Task(alloc, handle)
            complete = len(alloc.tasks) == len(handle.cluster.handles[handle.alloc_id])
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, daemon=True,
                                                 name="nomadmesh-local-watch")
                self._watcher.start()
        if complete:
            alloc.launch()

    def stop(self, handle: TaskHandle) -> None:
        """Stop the task's allocation: main tasks, then sidecars, then poststop tasks."""
        alloc = self._allocs.get(handle.alloc_id)
        if alloc is not None:
            alloc.request_stop()

    def port_available(self, address: str, port: int) -> bool:
        """Whether nothing on this machine listens on `address:port` now."""
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
        return True

    def logs(self, alloc_id: str, task: str, kind: str) -> bytes:
        """The task's stdout or stderr so far (empty before it first started)."""
        path = self.root / alloc_id / "alloc" / "logs" / f"{task}.{kind}.0"
        return path.read_bytes() if path.exists() else b""

    # --- the runner's own API ----------------------------------------------------------------

    def process_groups(self) -> list[int]:
        """Process group ids of the task processes started and not yet reaped."""
        with self._lock:
            tasks = [t for a in self._allocs.values() for t in a.tasks.values()]
        return [t.pgid for t in tasks if t.pgid is not None]

    def close(self) -> None:
        """Kill every task's process group at once and stop watching; nothing keeps running."""
        self._closed.set()
        with self._lock:
            allocs = list(self._allocs.values())
        for alloc in allocs:
            alloc.closing = True
            alloc.stopping.set()
        killers = [threading.Thread(target=task.kill, args=(2.0,))
                   for alloc in allocs for task in alloc.tasks.values()]
        for killer in killers:
            killer.start()
        for killer in killers:
            killer.join()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._http.close()

    # --- checks and template changes -----------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed.wait(self.watch_interval):
            self._run_checks()
            with self._lock:
                tasks = [t for a in self._allocs.values() for t in a.tasks.values()]
            for task in tasks:
                task.refresh_templates()

    def _run_checks(self) -> None:
        consul = self.consul
        if consul is None:
            return
        now = time.monotonic()
        for check in consul.check_definitions():
            target = check.get("HTTP") or check.get("TCP")
            if not target or self._checks_due.get(check["CheckID"], 0.0) > now:
                continue
            interval = min(_seconds(check.get("Interval") or "10s"), self.check_interval_cap)
            self._checks_due[check["CheckID"]] = now + interval
            timeout = min(_seconds(check.get("Timeout") or "2s"), self.check_interval_cap)
            status, output = (self._http_check(str(target), timeout) if check.get("HTTP")
                              else _tcp_check(str(target), timeout))
            if status != check["Status"]:
                try:
                    consul.set_check_status(check["CheckID"], status, output)
                except HttpError as exc:
                    if exc.status != 404:  # 404: the service was deregistered meanwhile
                        raise

    def _http_check(self, url: str, timeout: float) -> tuple[str, str]:
        try:
            response = self._http.get(url, timeout=timeout)
        except requests.RequestException as exc:
            return "critical", f"Get {url!r}: {type(exc).__name__}"
        output = f"HTTP GET {url}: {response.status_code} {response.reason}"
        if 200 <= response.status_code < 300:
            return "passing", output
        return ("warning" if response.status_code == 429 else "critical"), output


class _Alloc:
    """One allocation's tasks and the thread that runs them in lifecycle order."""

    def __init__(self, runner: LocalRunner, handle: TaskHandle) -> None:
        self.runner = runner
        self.id = handle.alloc_id
        self.dir = runner.root / handle.alloc_id
        self.tasks: dict[str, _Task] = {}
        self.stopping = threading.Event()
        self.closing = False
        cluster = handle.cluster
        alloc = cluster.allocs[handle.alloc_id]
        self.node = next(n for n in cluster.nodes if n.id == alloc["NodeID"])
        self.meta = {**(alloc["Job"].get("Meta") or {}), **(cluster.group_of(self.id).get(
            "Meta") or {})}

    def launch(self) -> None:
        """Start the lifecycle thread."""
        (self.dir / "alloc" / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "alloc" / "data").mkdir(exist_ok=True)
        (self.dir / "alloc" / "tmp").mkdir(exist_ok=True)
        threading.Thread(target=self._run, daemon=True, name=f"alloc-{self.id[:8]}").start()

    def request_stop(self) -> None:
        """Ask the lifecycle thread to stop the allocation (idempotent)."""
        self.stopping.set()

    def phase(self, hook: str, sidecar: bool | None = None) -> list[_Task]:
        """The tasks of one lifecycle hook ("" for main tasks)."""
        return [t for t in self.tasks.values() if t.hook == hook
                and (sidecar is None or t.sidecar == sidecar)]

    def _run(self) -> None:
        for task in self.phase("prestart", sidecar=False):
            task.start()
            if not self._until(task.finished.is_set) or task.failed:
                return self._shutdown()
        sidecars = self.phase("prestart", sidecar=True)
        for task in sidecars:
            task.start()
        if not self._until(lambda: all(t.started.is_set() for t in sidecars)):
            return self._shutdown()
        main = self.phase("")
        for task in main:
            task.start()
        if self._until(lambda: all(t.started.is_set() for t in main)):
            for task in self.phase("poststart"):
                task.start()
            self._until(lambda: all(t.finished.is_set() for t in main))
        return self._shutdown()

    def _until(self, condition: Callable[[], bool]) -> bool:
        """Wait for `condition`; False when the allocation is stopped first."""
        while not condition():
            if self.stopping.wait(0.05):
                return False
        return True

    def _shutdown(self) -> None:
        if self.closing:
            return
        for group in (self.phase("") + self.phase("poststart"), self.phase("prestart")):
            threads = [threading.Thread(target=t.stop) for t in group]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for task in self.phase("poststop"):
            if not self.closing:
                task.start()
                task.finished.wait()


class _Task:
    """One task of an allocation: its directory, environment, templates and process."""

    def __init__(self, alloc: _Alloc, handle: TaskHandle) -> None:
        self.alloc = alloc
        self.handle = handle
        self.spec = handle.task
        lifecycle = self.spec.get("Lifecycle") or {}
        self.hook: str = lifecycle.get("Hook") or ""
        self.sidecar = bool(lifecycle.get("Sidecar"))
        self.dir = alloc.dir / handle.name
        self.env: dict[str, str] = {}
        self.rendered: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self.started = threading.Event()
        self.finished = threading.Event()
        self.failed = False
        self._lock = threading.Lock()
        self._killing = False
        self._restart_signaled = False

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Supervise the task in its own thread: set up, run, restart per policy."""
        threading.Thread(target=self._supervise, daemon=True,
                         name=f"task-{self.handle.name}").start()

    def stop(self) -> None:
        """Kill the process (interrupt, kill_timeout, kill) and report the task dead."""
        with self._lock:
            if self.finished.is_set():
                return
            self._killing = True
            running = self.process is not None
        if running:
            timeout = int(self.spec.get("KillTimeout") or _DEFAULT_KILL_TIMEOUT)
            self.handle.event("Killing", f"Sent interrupt. Waiting {_duration(timeout)} before "
                              "force killing", KillTimeout=timeout)
            self.kill(timeout / 1e9)
            self.handle.event("Killed", "Task successfully killed")
        self._finish(failed=False)

    def kill(self, timeout: float) -> None:
        """Interrupt the process group, wait up to `timeout`, then kill it; reap the process."""
        with self._lock:
            self._killing = True
            process, pgid = self.process, self.pgid
        if process is None or pgid is None:
            return
        _signal_group(pgid, _kill_signal(self.spec))
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        _signal_group(pgid, signal.SIGKILL)
        process.wait()
        with self._lock:
            self.pgid = None

    def _finish(self, failed: bool) -> None:
        with self._lock:
            if self.finished.is_set():
                return
            self.finished.set()
            self.started.set()
            self.failed = failed
        self.handle.dead(failed=failed)

    def _supervise(self) -> None:
        self.handle.event("Task Setup", "Building Task Directory")
        try:
            self._setup()
        except TemplateError as exc:
            message = f"Template failed: {exc}"
            self.handle.event("Setup Failure", message, SetupError=message, FailsTask=True)
            return self._finish(failed=True)
        policy = self.handle.restart_policy
        restarts: list[float] = []
        while True:
            code, error = self._run_once()
            if code is None and error is None:
                return
            if error is not None:
                self.handle.event("Driver Failure", error, DriverError=error)
            else:
                self.handle.event("Terminated", f"Exit Code: {code}", ExitCode=code)
            if self._restart_signaled:
                self._restart_signaled = False
                self.handle.event("Restarting", "Task restarting in 0s",
                                  RestartReason="Restart signaled")
                self.handle.restarting()
                continue
            if code == 0 and not self._restarts_on_success():
                return self._finish(failed=False)
            delay = self._restart_delay(policy, restarts)
            if delay is None:
                attempts = int(policy.get("Attempts", 2))
                interval = _duration(int(policy.get("Interval") or 0))
                self.handle.event("Not Restarting", f"Exceeded allowed attempts {attempts} in "
                                  f'interval {interval} and mode is "fail"', FailsTask=True)
                return self._finish(failed=True)
            self.handle.event("Restarting", f"Task restarting in {_duration(int(delay * 1e9))}",
                              RestartReason="Restart within policy")
            self.handle.restarting()
            if self.alloc.stopping.wait(delay):
                return None

    def _was_killed(self) -> bool:
        with self._lock:
            return self._killing

    def _restarts_on_success(self) -> bool:
        job_type = self.handle.job_type
        return job_type in ("service", "system") and (self.hook == "" or self.sidecar)

    def _restart_delay(self, policy: Mapping[str, Any], restarts: list[float]) -> float | None:
        now = time.monotonic()
        interval = int(policy.get("Interval") or 0) / 1e9
        restarts[:] = [t for t in restarts if now - t < interval]
        delay = int(policy.get("Delay") or 15_000_000_000) / 1e9
        if len(restarts) < int(policy.get("Attempts", 2)):
            restarts.append(now)
            return delay
        if policy.get("Mode") == "delay":
            return max(delay, restarts[0] + interval - now)
        return None

    def _run_once(self) -> tuple[int | None, str | None]:
        """Start the process and wait for it; (exit code, None), (None, driver error), or
        (None, None) when the task was stopped."""
        config = self.spec.get("Config") or {}
        command = self.interpolate(str(config.get("command") or ""))
        args = [self.interpolate(str(a)) for a in config.get("args") or []]
        stdout_path = self.alloc.dir / "alloc" / "logs" / f"{self.handle.name}.stdout.0"
        stderr_path = self.alloc.dir / "alloc" / "logs" / f"{self.handle.name}.stderr.0"
        with self._lock:
            if self._killing or (self.alloc.stopping.is_set() and self.hook != "poststop"):
                return None, None
            try:
                with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
                    process = subprocess.Popen(
                        [_resolve(command, self.dir), *args], cwd=self.dir, env=self.env,
                        stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                        start_new_session=True)
            except OSError as exc:
                return None, f"failed to launch command with executor: {exc}"
            self.process, self.pgid = process, process.pid
        self.handle.event("Started", "Task started by client")
        self.handle.running()
        self.started.set()
        code = process.wait()
        # Children the task left behind die with it, as in Nomad's executor.
        _signal_group(process.pid, signal.SIGKILL)
        with self._lock:
            self.process = None
            self.pgid = None
        if self._was_killed():
            return None, None
        return code, None

    # --- environment and templates -----------------------------------------------------------

    def _setup(self) -> None:
        for sub in ("local", "secrets", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        resources = self.spec.get("Resources") or {}
        env = {**os.environ, **self.handle.env,
               "NOMAD_TASK_NAME": self.handle.name,
               "NOMAD_ALLOC_DIR": str(self.alloc.dir / "alloc"),
               "NOMAD_TASK_DIR": str(self.dir / "local"),
               "NOMAD_SECRETS_DIR": str(self.dir / "secrets"),
               "NOMAD_CPU_LIMIT": str(resources.get("CPU") or 100),
               "NOMAD_MEMORY_LIMIT": str(resources.get("MemoryMB") or 300)}
        self.env = env
        env.update({k: self.interpolate(str(v)) for k, v in (self.spec.get("Env") or {}).items()})
        for template in self.spec.get("Templates") or []:
            text = self._render(template)
            self._write(template, text)
            if template.get("Envvars"):
                self.env.update(_env_file(text))

    def interpolate(self, value: str) -> str:
        """Replace `${NOMAD_*}`, `${env_var}`, `${attr.*}`, `${meta.*}` and `${node.*}`."""
        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in self.env:
                return self.env[name]
            if name.startswith("meta.") and name[5:] in self.alloc.meta:
                return str(self.alloc.meta[name[5:]])
            found = node_value(self.alloc.node, match.group(0))
            return match.group(0) if found is None else found

        return _INTERPOLATION.sub(one, value)

    def _render(self, template: Mapping[str, Any]) -> str:
        text = template.get("EmbeddedTmpl")
        if text is None and template.get("SourcePath"):
            text = (self.dir / self.interpolate(str(template["SourcePath"]))).read_text()
        return render(str(text or ""), self.env, self.alloc.runner.consul)

    def _write(self, template: Mapping[str, Any], text: str) -> None:
        dest = self.dir / self.interpolate(str(template.get("DestPath") or "local/template"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        perms = str(template.get("Perms") or "0644")
        dest.chmod(int(perms, 8))
        self.rendered[str(dest)] = text

    def refresh_templates(self) -> None:
        """Re-render templates of a running task; apply `change_mode` to those that changed."""
        if not self.started.is_set() or self.finished.is_set() or self.process is None:
            return
        for template in self.spec.get("Templates") or []:
            dest = str(self.dir / self.interpolate(str(template.get("DestPath") or "")))
            try:
                text = self._render(template)
            except TemplateError:
                continue
            if self.rendered.get(dest) == text:
                continue
            self._write(template, text)
            self._on_change(template, text)

    def _on_change(self, template: Mapping[str, Any], text: str) -> None:
        mode = template.get("ChangeMode") or "restart"
        if mode == "signal":
            name = str(template.get("ChangeSignal") or "SIGHUP")
            self.handle.event("Signaling", f"Template re-rendered; sending {name}")
            with self._lock:
                if self.pgid is not None:
                    _signal_group(self.pgid, getattr(signal, name, signal.SIGHUP))
        elif mode == "restart":
            if template.get("Envvars"):
                self.env.update(_env_file(text))
            self.handle.event("Restart Signaled", "Template with change_mode restart re-rendered")
            self._restart_signaled = True
            with self._lock:
                process, pgid = self.process, self.pgid
            if process is not None and pgid is not None:
                _signal_group(pgid, _kill_signal(self.spec))


def _resolve(command: str, task_dir: Path) -> str:
    """A relative command is looked up in the task directory first, then on PATH."""
    if os.sep in command and not os.path.isabs(command):
        return str(task_dir / command)
    return shutil.which(command) or command


def _env_file(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def _kill_signal(spec: Mapping[str, Any]) -> signal.Signals:
    return getattr(signal, str(spec.get("KillSignal") or "SIGINT"), signal.SIGINT)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tcp_check(target: str, timeout: float) -> tuple[str, str]:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return "passing", f"TCP connect {target}: Success"
    except OSError as exc:
        return "critical", f"dial tcp {target}: {exc.strerror or exc}"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if match is None:
        return 10.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * scale


def _duration(ns: int) -> str:
    seconds = ns / 1e9
    return f"{seconds:g}s"
