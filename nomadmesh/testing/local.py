"""Local task execution for the Nomad emulator: `raw_exec` and `exec` tasks as real processes.

`LocalRunner` plugs into the emulator's `TaskRunner` protocol; the alloc runner decides when
each task starts and stops (lifecycle order), this module runs it. Each allocation gets a
directory laid out as a Nomad client's (`alloc/`, `alloc/logs/<task>.stdout.0`, `<task>/local`,
`<task>/secrets`); each task runs in its own process group with Nomad's runtime environment,
`${...}` interpolation in config, args and env, its artifacts fetched and its `template` blocks
rendered against the Consul emulator (re-rendered as Consul changes, honouring `change_mode`).
Like a Nomad client it keeps what it writes for a task inside the task and alloc directories
(client/taskenv ClientPath, helper/escapingfs), fails a task whose template cannot render with
"Template failed: ...", kills with the task's `kill_signal` (SIGKILL after `kill_timeout`) and
waits `shutdown_delay` after deregistering its services. Exits follow the group's restart
policy, and the services' HTTP/TCP checks are executed for real, so deployments turn healthy
only when the processes actually answer.

`local_cluster()` starts Consul and Nomad emulators in this mode on one node that offers only
`exec` and `raw_exec`: docker tasks are unplaceable ("missing drivers"), not faked.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from nomadmesh.testing._http import HttpError
from nomadmesh.testing.client.runner import DEFAULT_KILL_TIMEOUT, TaskHandle
from nomadmesh.testing.cluster import LocalCluster
from nomadmesh.testing.config import NodeSpec, Timings
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.server.feasible import resolve_target
from nomadmesh.testing.server.structs import duration_text
from nomadmesh.testing.templates import TemplateError, render

LOCAL_DRIVERS = ("exec", "raw_exec")
_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")
_MAX_ARTIFACT = 512 * 1024 * 1024
GROUP_EXIT_WAIT = 2.0  # seconds a killed task waits for the processes it forked


class SandboxError(Exception):
    """A path written for a task would leave its task and alloc directories."""


def local_node(address: str = "127.0.0.1") -> NodeSpec:
    """The one node of a local cluster: this machine, offering `exec` and `raw_exec` only, and
    no bridge networking (tasks share the host's network)."""
    return NodeSpec("local", address=address, drivers=LOCAL_DRIVERS, cni=False)


def local_timings() -> Timings:
    """Real time for real processes, with health decided by checks within a minute."""
    return Timings(scale=1.0, start_delay=0.0, healthy_after=0.2, healthy_deadline=60.0)


class LocalExecutionCluster(LocalCluster):
    """A local Consul + Nomad pair whose tasks run as processes; stopping it ends them all."""

    def __init__(self, root: Path | str | None = None, *, host: str = "127.0.0.1",
                 nomad_port: int = 0, consul_port: int = 0) -> None:
        self.runner = LocalRunner(root)
        super().__init__(host=host, nomad_port=nomad_port, consul_port=consul_port,
                         nodes=[local_node(host)], timings=local_timings(), runner=self.runner)
        self.runner.consul = self.consul

    def stop(self) -> None:
        """Kill every task's process group, then stop Nomad and Consul."""
        self.runner.close()
        super().stop()


def local_cluster(root: Path | str | None = None, **options: Any) -> LocalExecutionCluster:
    """Start a local cluster that runs tasks as processes; call `.stop()` when done."""
    cluster = LocalExecutionCluster(root, **options)
    cluster.start()
    return cluster


def client_path(task_dir: Path, alloc_dir: Path, raw: str, join_escape: bool) -> Path:
    """TaskEnv.ClientPath: a path for a task, refused when it leaves the task and alloc dirs.

    Relative paths (and, with `join_escape`, absolute ones outside the sandbox) are joined to
    the task directory; the result must stay inside the task or the shared alloc directory,
    also once symlinks are resolved (helper/escapingfs PathEscapesAllocDir).
    """
    path = Path(raw)
    if not path.is_absolute() or (join_escape and _escapes(path, task_dir, alloc_dir)):
        path = task_dir / raw.lstrip("/") if path.is_absolute() else task_dir / path
    path = Path(os.path.normpath(path))
    if _escapes(path, task_dir, alloc_dir) or _escapes(_resolved(path), task_dir.resolve(),
                                                       alloc_dir.resolve()):
        raise SandboxError(raw)
    return path


def _escapes(path: Path, task_dir: Path, alloc_dir: Path) -> bool:
    return not any(path == base or base in path.parents for base in (task_dir, alloc_dir))


def _resolved(path: Path) -> Path:
    """The path with the symlinks of its existing part resolved."""
    existing = path
    rest: list[str] = []
    while not existing.exists() and existing != existing.parent:
        rest.insert(0, existing.name)
        existing = existing.parent
    return existing.resolve().joinpath(*rest)


class LocalRunner:
    """Runs `raw_exec`/`exec` tasks as local processes, one process group per task."""

    runs_checks = True

    def __init__(self, root: Path | str | None = None, *, check_interval_cap: float = 1.0,
                 watch_interval: float = 0.25) -> None:
        self.root = (Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix="nomadmesh-local-"))).resolve()
        self.check_interval_cap = check_interval_cap
        self.watch_interval = watch_interval
        self.consul: ConsulEmulator | None = None
        self._tasks: dict[tuple[str, str], _Task] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._checks_due: dict[str, float] = {}
        self._http = requests.Session()
        self._http.trust_env = False

    # --- TaskRunner protocol -----------------------------------------------------------------

    def start(self, handle: TaskHandle) -> None:
        """Run the task in its own thread: set up, fetch, render, run, restart per policy."""
        if self._closed.is_set():
            handle.event("Driver Failure", "the local runner is closed", FailsTask=True)
            handle.dead(failed=True)
            return
        task = _Task(self, handle)
        with self._lock:
            self._tasks[(handle.alloc_id, handle.name)] = task
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, daemon=True,
                                                 name="nomadmesh-local-watch")
                self._watcher.start()
        task.start()

    def stop(self, handle: TaskHandle) -> None:
        """Stop the task (kill_signal, kill_timeout, SIGKILL) without blocking the caller."""
        with self._lock:
            task = self._tasks.get((handle.alloc_id, handle.name))
        if task is None:
            handle.dead(failed=False)
            return
        threading.Thread(target=task.stop, daemon=True, name=f"stop-{handle.name}").start()

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
            tasks = list(self._tasks.values())
        return [t.pgid for t in tasks if t.pgid is not None]

    def close(self) -> None:
        """Kill every task's process group at once and stop watching; nothing keeps running."""
        self._closed.set()
        with self._lock:
            tasks = list(self._tasks.values())
        killers = [threading.Thread(target=task.kill, args=(2.0,)) for task in tasks]
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
            with self._lock:
                tasks = list(self._tasks.values())
            self._run_consul_checks()
            for task in tasks:
                try:
                    self._run_nomad_checks(task)
                    task.refresh_templates()
                except Exception as exc:  # one task's trouble must not stop the others'
                    task.fail(f"Template failed: {exc}")
                    traceback.print_exc()

    def _due(self, check_id: str, interval: float) -> bool:
        now = time.monotonic()
        if self._checks_due.get(check_id, 0.0) > now:
            return False
        self._checks_due[check_id] = now + min(interval, self.check_interval_cap)
        return True

    def _probe(self, http: str, tcp: str, timeout: float) -> tuple[str, str]:
        timeout = min(timeout, self.check_interval_cap)
        return self._http_check(http, timeout) if http else _tcp_check(tcp, timeout)

    def _run_consul_checks(self) -> None:
        consul = self.consul
        if consul is None:
            return
        for check in consul.check_definitions():
            target = check.get("HTTP") or check.get("TCP")
            if not target or not self._due(check["CheckID"],
                                           _seconds(check.get("Interval") or "10s")):
                continue
            status, output = self._probe(str(check.get("HTTP") or ""),
                                         str(check.get("TCP") or ""),
                                         _seconds(check.get("Timeout") or "2s"))
            if status != check["Status"]:
                try:
                    consul.set_check_status(check["CheckID"], status, output)
                except HttpError as exc:
                    if exc.status != 404:  # 404: the service was deregistered meanwhile
                        raise

    def _run_nomad_checks(self, task: _Task) -> None:
        for check_id, http, tcp, interval, timeout in task.handle.nomad_checks():
            if self._due(check_id, interval):
                status, _ = self._probe(http, tcp, timeout)
                task.handle.set_check_status(check_id, status)

    def _http_check(self, url: str, timeout: float) -> tuple[str, str]:
        try:
            response = self._http.get(url, timeout=timeout)
        except requests.RequestException as exc:
            return "critical", f"Get {url!r}: {type(exc).__name__}"
        output = f"HTTP GET {url}: {response.status_code} {response.reason}"
        if 200 <= response.status_code < 300:
            return "passing", output
        return ("warning" if response.status_code == 429 else "critical"), output


class _Task:
    """One task of an allocation: its directory, environment, templates and process."""

    def __init__(self, runner: LocalRunner, handle: TaskHandle) -> None:
        self.runner = runner
        self.handle = handle
        self.spec = handle.task
        self.alloc_dir = runner.root / handle.alloc_id
        self.dir = self.alloc_dir / handle.name
        self.env: dict[str, str] = {}
        self.rendered: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._restart_signaled = False

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Supervise the task in its own thread."""
        threading.Thread(target=self._supervise_safely, daemon=True,
                         name=f"task-{self.handle.name}").start()

    def stop(self) -> None:
        """Kill the process (kill_signal, kill_timeout, SIGKILL) and report the task dead."""
        self.stopping.set()
        with self._lock:
            running = self.process is not None
        if running:
            timeout = int(self.spec.get("KillTimeout") or DEFAULT_KILL_TIMEOUT)
            self.handle.event("Killing", f"Sent interrupt. Waiting {duration_text(timeout)} "
                              "before force killing", KillTimeout=timeout)
            self.kill(timeout / 1e9)
            self.handle.event("Killed", "Task successfully killed")
        self._finish(failed=False)

    def fail(self, message: str) -> None:
        """Kill the task because of an error outside its process (Lifecycle.Kill, FailsTask)."""
        if self.finished.is_set():
            return
        self.stopping.set()
        self.handle.event("Killing", message, FailsTask=True, KillReason=message)
        self.kill(int(self.spec.get("KillTimeout") or DEFAULT_KILL_TIMEOUT) / 1e9)
        self._finish(failed=True)

    def kill(self, timeout: float) -> None:
        """Signal the process group, wait up to `timeout`, then kill it; reap the process."""
        self.stopping.set()
        with self._lock:
            process, pgid = self.process, self.pgid
        if process is None or pgid is None:
            return
        sig = _kill_signal(self.spec)
        if sig is not None:
            _signal_group(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        _signal_group(pgid, signal.SIGKILL)
        process.wait()
        _await_group_exit(pgid, GROUP_EXIT_WAIT)
        with self._lock:
            self.pgid = None

    def _finish(self, failed: bool) -> None:
        with self._lock:
            if self.finished.is_set():
                return
            self.finished.set()
        self.handle.dead(failed=failed)

    def _supervise_safely(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # an error of the runner itself still ends the task visibly
            traceback.print_exc()
            message = f"failed to run task: {exc}"
            self.handle.event("Driver Failure", message, DriverError=message, FailsTask=True)
            self.kill(0.0)
            self._finish(failed=True)

    def _supervise(self) -> None:
        self.handle.event("Task Setup", "Building Task Directory")
        self._directories()
        try:
            self._fetch_artifacts()
        except SandboxError:
            message = 'prestart hook "artifacts" failed: failed to download artifact: ' \
                      "artifact destination path escapes alloc directory"
            self.handle.event("Task hook failed", message, Message=message)
            self.handle.event("Not Restarting", "Error was unrecoverable", FailsTask=True)
            return self._finish(failed=True)
        except _DownloadError as exc:
            self.handle.event("Failed Artifact Download", str(exc), DownloadError=str(exc))
            self.handle.event("Not Restarting", "Error was unrecoverable", FailsTask=True)
            return self._finish(failed=True)
        try:
            self._setup()
        except SandboxError as exc:
            message = f"template: template {exc.args[1]} path escapes alloc directory"
            self.handle.event("Task hook failed", message, Message=message)
            self.handle.event("Not Restarting", "Error was unrecoverable", FailsTask=True)
            return self._finish(failed=True)
        except TemplateError as exc:
            message = f"Template failed: {exc}"
            self.handle.event("Killing", message, FailsTask=True, KillReason=message)
            return self._finish(failed=True)
        policy = self.handle.restart_policy
        restarts: list[float] = []
        while True:
            code, error = self._run_once()
            if code is None and error is None:
                return None  # stopped: the stopper reports the task dead
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
                interval = duration_text(int(policy.get("Interval") or 0))
                mode = policy.get("Mode") or "fail"
                self.handle.event("Not Restarting", f"Exceeded allowed attempts {attempts} in "
                                  f'interval {interval} and mode is "{mode}"', FailsTask=True)
                return self._finish(failed=True)
            self.handle.event("Restarting", f"Task restarting in {duration_text(delay * 1e9)}",
                              RestartReason="Restart within policy")
            self.handle.restarting()
            if self.stopping.wait(self.handle.timings.restart(int(delay * 1e9))):
                return None

    def _restarts_on_success(self) -> bool:
        lifecycle = self.spec.get("Lifecycle") or {}
        return self.handle.job_type in ("service", "system") and (
            not lifecycle.get("Hook") or bool(lifecycle.get("Sidecar")))

    @staticmethod
    def _restart_delay(policy: Mapping[str, Any], restarts: list[float]) -> float | None:
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
        logs = self.alloc_dir / "alloc" / "logs"
        with self._lock:
            if self.stopping.is_set():
                return None, None
            try:
                with open(logs / f"{self.handle.name}.stdout.0", "ab") as out, \
                        open(logs / f"{self.handle.name}.stderr.0", "ab") as err:
                    process = subprocess.Popen(
                        [_resolve(command, self.dir), *args], cwd=self.dir, env=self.env,
                        stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                        start_new_session=True)
            except (OSError, ValueError) as exc:
                return None, f"failed to launch command with executor: {exc}"
            self.process, self.pgid = process, process.pid
        self.handle.event("Started", "Task started by client")
        self.handle.running()
        code = process.wait()
        # Children the task left behind die with it, as in Nomad's executor.
        _signal_group(process.pid, signal.SIGKILL)
        with self._lock:
            self.process = None
            self.pgid = None
        if self.stopping.is_set():
            return None, None
        return code, None

    # --- directories, artifacts, environment and templates -----------------------------------

    def _directories(self) -> None:
        for sub in ("logs", "data", "tmp"):
            (self.alloc_dir / "alloc" / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("local", "secrets", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        resources = self.spec.get("Resources") or {}
        self.env = {**os.environ, **self.handle.env,
                    "NOMAD_TASK_NAME": self.handle.name,
                    "NOMAD_ALLOC_DIR": str(self.alloc_dir / "alloc"),
                    "NOMAD_TASK_DIR": str(self.dir / "local"),
                    "NOMAD_SECRETS_DIR": str(self.dir / "secrets"),
                    "NOMAD_CPU_LIMIT": str(resources.get("CPU") or 100),
                    "NOMAD_MEMORY_LIMIT": str(resources.get("MemoryMB") or 300)}
        self.env.update({k: self.interpolate(str(v))
                         for k, v in (self.spec.get("Env") or {}).items()})

    def path(self, raw: str, join_escape: bool) -> Path:
        """A path for this task (interpolated), kept inside the task and alloc directories."""
        return client_path(self.dir, self.alloc_dir / "alloc", self.interpolate(raw),
                           join_escape)

    def _fetch_artifacts(self) -> None:
        artifacts = self.spec.get("Artifacts") or []
        if not artifacts:
            return
        self.handle.event("Downloading Artifacts", "Client is downloading artifacts")
        for artifact in artifacts:
            source = self.interpolate(str(artifact.get("GetterSource") or ""))
            dest = self.path(str(artifact.get("RelativeDest") or "local/"), True)
            try:
                _fetch(source, dest, artifact.get("GetterOptions") or {},
                       str(artifact.get("GetterMode") or "any"), self.runner._http)
            except (OSError, requests.RequestException, tarfile.TarError,
                    zipfile.BadZipFile) as exc:
                raise _DownloadError(f'failed to download artifact "{source}": {exc}') from None

    def _setup(self) -> None:
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
            if name.startswith("meta."):
                meta = f"NOMAD_META_{name[5:]}"
                if meta in self.handle.env:
                    return self.handle.env[meta]
            found, ok = resolve_target(match.group(0), self.handle.node)
            return found if ok else match.group(0)

        return _INTERPOLATION.sub(one, value)

    def _render(self, template: Mapping[str, Any]) -> str:
        text = template.get("EmbeddedTmpl")
        if text is None and template.get("SourcePath"):
            try:
                source = self.path(str(template["SourcePath"]), False)
            except SandboxError as exc:
                raise SandboxError(exc.args[0], "source") from None
            text = source.read_text(errors="surrogateescape")
        return render(str(text or ""), self.env, self.runner.consul)

    def _destination(self, template: Mapping[str, Any]) -> Path:
        try:
            return self.path(str(template.get("DestPath") or "local/template"), True)
        except SandboxError as exc:
            raise SandboxError(exc.args[0], "destination") from None

    def _write(self, template: Mapping[str, Any], text: str) -> None:
        dest = self._destination(template)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Never follow a symlink planted at the destination out of the sandbox.
        if dest.is_symlink():
            dest.unlink()
        dest.write_bytes(text.encode("utf-8", "surrogateescape"))
        perms = str(template.get("Perms") or "0644")
        dest.chmod(int(perms, 8) if re.fullmatch(r"[0-7]{3,4}", perms) else 0o644)
        self.rendered[str(dest)] = text

    def refresh_templates(self) -> None:
        """Re-render templates of a running task; apply `change_mode` to those that changed."""
        if self.finished.is_set() or self.process is None:
            return
        for template in self.spec.get("Templates") or []:
            try:
                text = self._render(template)
            except TemplateError as exc:
                self.fail(f"Template failed: {exc}")
                return
            dest = str(self._destination(template))
            if self.rendered.get(dest) == text:
                continue
            self._write(template, text)
            self._on_change(template, text)

    def _on_change(self, template: Mapping[str, Any], text: str) -> None:
        mode = template.get("ChangeMode") or "restart"
        if mode == "signal":
            name = str(template.get("ChangeSignal") or "SIGHUP")
            self.handle.event("Signaling", f"Template re-rendered; sending {name}")
            sig = _signal(name)
            with self._lock:
                if self.pgid is not None and sig is not None:
                    _signal_group(self.pgid, sig)
        elif mode == "restart":
            if template.get("Envvars"):
                self.env.update(_env_file(text))
            self.handle.event("Restart Signaled", "Template with change_mode restart re-rendered")
            self._restart_signaled = True
            with self._lock:
                pgid = self.pgid
            if pgid is not None:
                _signal_group(pgid, _kill_signal(self.spec) or signal.SIGKILL)


class _DownloadError(Exception):
    """An artifact could not be fetched."""


def _fetch(source: str, dest: Path, options: Mapping[str, Any], mode: str,
           http: requests.Session) -> None:
    """go-getter for the local runner: file:// and http(s):// sources, archives unpacked."""
    url = urlsplit(source)
    name = Path(url.path).name or "artifact"
    if url.scheme in ("", "file"):
        data = Path(url.path).read_bytes()
    elif url.scheme in ("http", "https"):
        response = http.get(source, timeout=30, stream=True)
        response.raise_for_status()
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > _MAX_ARTIFACT:
                raise OSError(f"artifact larger than {_MAX_ARTIFACT} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    else:
        raise OSError(f"unsupported artifact source scheme {url.scheme!r}")
    archive = str(options.get("archive", "")).lower() != "false"
    if archive and name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
        dest.mkdir(parents=True, exist_ok=True)
        _unpack(name, data, dest)
        return
    target = dest / name if mode != "file" else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _unpack(name: str, data: bytes, dest: Path) -> None:
    """Unpack an archive; a member that would land outside `dest` is refused."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                if not (dest / member).resolve().is_relative_to(dest.resolve()):
                    raise OSError(f"archive member {member!r} escapes the destination")
            archive.extractall(dest)
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(dest, filter="data")


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


def _signal(name: str) -> signal.Signals | None:
    """A signal by name ("SIGTERM", "TERM"); None when it is not one."""
    name = name.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    return signal.Signals.__members__.get(name)


def _kill_signal(spec: Mapping[str, Any]) -> signal.Signals | None:
    """The task's kill_signal (SIGINT by default); None when it names no signal (then the
    process is killed with SIGKILL, never left running)."""
    return _signal(str(spec.get("KillSignal") or "SIGINT"))


def _await_group_exit(pgid: int, timeout: float) -> None:
    """Wait until no process of the group is left (children the task forked are reaped by
    init, not by us), up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except OSError:
            return
        time.sleep(0.01)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, sig)


def _tcp_check(target: str, timeout: float) -> tuple[str, str]:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return "passing", f"TCP connect {target}: Success"
    except (OSError, ValueError) as exc:
        return "critical", f"dial tcp {target}: {getattr(exc, 'strerror', None) or exc}"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if match is None:
        return 10.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * scale

