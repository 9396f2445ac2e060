"""Long-running commands stop on SIGTERM/SIGINT whichever of their threads the kernel picks.

The kernel gives a process-directed signal to any thread; these tests send it to one chosen
non-main thread (tgkill), which is what made `xds serve` ignore SIGTERM now and then (CI run 5,
stop 18): its main thread slept in `Event.wait()`, which a signal taken by another thread never
wakes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
import yaml

from nomadmesh.testing.envoy import eventually, free_port

LIBC = ctypes.CDLL(None, use_errno=True)


def thread_kill(pid: int, tid: int, signum: int) -> None:
    """Send `signum` to the one thread `tid` of process `pid` (tgkill(2), glibc >= 2.30)."""
    if LIBC.tgkill(pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill {pid} {tid}")


def other_threads(pid: int) -> list[int]:
    """The process's threads other than the main one, oldest first."""
    return sorted(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}


def healthz_ok(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def xds_serve(tmp_path: Path) -> subprocess.Popen[str]:
    snapshot = tmp_path / "s.yaml"
    snapshot.write_text(yaml.safe_dump(
        {"version_info": "1", "node": {"service_name": "x"}, "resources": []}))
    metrics = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nomadmesh", "xds", "serve", "--snapshot", str(snapshot),
         "--listen", f"127.0.0.1:{free_port()}", "--metrics", f"127.0.0.1:{metrics}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        eventually(lambda: healthz_ok(metrics), timeout=20, what="/healthz")
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process


def stop_through(process: subprocess.Popen[str], which: int, signum: int) -> str:
    """Signal the `which`th non-main thread of `process`; its stderr once it exited."""
    try:
        threads = other_threads(process.pid)
        assert threads, "the command runs threads besides the main one"
        thread_kill(process.pid, threads[which], signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return stderr


@pytest.mark.parametrize("which", [0, -1], ids=["oldest-thread", "newest-thread"])
def test_xds_serve_stops_on_sigterm_taken_by_another_thread(
        xds_serve: subprocess.Popen[str], which: int) -> None:
    # The event loop, gRPC's poller, the source's watch and the metrics server are threads.
    stderr = stop_through(xds_serve, which, signal.SIGTERM)
    assert xds_serve.returncode == 0, stderr


def test_xds_serve_stops_on_sigint_taken_by_another_thread(
        xds_serve: subprocess.Popen[str]) -> None:
    stderr = stop_through(xds_serve, 0, signal.SIGINT)
    assert xds_serve.returncode == 0, stderr


def test_dev_stops_on_sigterm_taken_by_another_thread() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "nomadmesh", "dev", "--nomad-port", "0", "--consul-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export CONSUL_HTTP_ADDR="):
            break
    stop_through(process, -1, signal.SIGTERM)
    assert process.returncode == 0


def test_a_sigint_before_the_wait_interrupts_interruptible_work_as_python_does(
        tmp_path: Path) -> None:
    # The demo's minute of set-up must stay interruptible by Ctrl+C.
    script = tmp_path / "work.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from nomadmesh.cli._signals import StopSignals
        with StopSignals(interruptible=True) as signals:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**7):
                    pass
            except KeyboardInterrupt:
                print("interrupted")
            os.kill(os.getpid(), signal.SIGTERM)
            print("woke on", signal.Signals(signals.wait()).name)
        print("default SIGINT handler back:", signal.getsignal(signal.SIGINT)
              is signal.default_int_handler)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "interrupted", "woke on SIGTERM", "default SIGINT handler back: True"]


def test_a_sigint_before_the_wait_is_kept_for_it_by_default(tmp_path: Path) -> None:
    # `xds serve` is ready (healthz 200) a moment before it waits: a Ctrl+C then is a clean stop.
    script = tmp_path / "work.py"
    script.write_text(textwrap.dedent("""
        import os, signal
        from nomadmesh.cli._signals import StopSignals
        with StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):
                pass
            print("woke on", signal.Signals(signals.wait()).name)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env())
    assert (done.returncode, done.stdout) == (0, "woke on SIGINT\n"), done.stderr
