"""`nomadmesh xds serve` as a user runs it: a real process, signals, exit codes, messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.envoy import eventually, free_port


def serve(*args: str, consul_env: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_HTTP")}
    if consul_env is not None:
        env["CONSUL_HTTP_ADDR"] = consul_env
    return subprocess.Popen(
        [sys.executable, "-m", "nomadmesh", "xds", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def healthz_ok(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    return stderr


def test_serving_a_snapshot_file_answers_healthz_and_stops_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"version_info": "1", "node": {"service_name": "x"}, "resources": []}))
    metrics = free_port()
    process = serve(
        "--snapshot", str(path), "--listen", f"127.0.0.1:{free_port()}", "--metrics", f"127.0.0.1:{metrics}"
    )
    try:
        eventually(lambda: healthz_ok(metrics), timeout=20, what="/healthz")
    finally:
        stderr = stop(process)
    assert process.returncode == 0, stderr


def test_serving_consul_answers_healthz_and_logs_key_value_lines() -> None:
    with ConsulEmulator() as consul:
        consul.register("service-a", service_id="a1", address="127.0.0.1", port=7001)
        metrics = free_port()
        process = serve(
            "--consul",
            consul.address,
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--metrics",
            f"127.0.0.1:{metrics}",
        )
        try:
            eventually(lambda: healthz_ok(metrics), timeout=20, what="/healthz")
        finally:
            stderr = stop(process)
    assert process.returncode == 0, stderr
    assert "level=INFO logger=nomadmesh.xds serving listen=127.0.0.1:" in stderr


def test_a_bad_snapshot_file_is_reported_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    cluster = {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": "service-a",
        "connect_timeout": "soon",
    }
    path.write_text(
        yaml.safe_dump({"version_info": "1", "node": {"service_name": "x"}, "resources": [cluster]})
    )
    process = serve("--snapshot", str(path), "--listen", f"127.0.0.1:{free_port()}")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert stderr.startswith(f"error: snapshot file {path}, resource 0 (Cluster 'service-a')")
    assert "Traceback" not in stderr


def test_serving_without_a_source_is_refused() -> None:
    process = serve("--listen", f"127.0.0.1:{free_port()}")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert stderr == (
        "error: nothing to serve: give --consul ADDR (or set CONSUL_HTTP_ADDR) or --snapshot FILE\n"
    )


def test_without_consul_or_snapshot_consul_http_addr_is_used() -> None:
    with ConsulEmulator() as consul:
        metrics = free_port()
        process = serve(
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--metrics",
            f"127.0.0.1:{metrics}",
            consul_env=consul.address,
        )
        try:
            eventually(lambda: healthz_ok(metrics), timeout=20, what="/healthz")
        finally:
            stderr = stop(process)
    assert process.returncode == 0, stderr
    assert "source=consul" in stderr


def test_an_address_in_use_is_reported_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"version_info": "1", "node": {"service_name": "x"}, "resources": []}))
    port = free_port()
    first = serve(
        "--snapshot",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics",
        f"127.0.0.1:{(metrics := free_port())}",
    )
    try:
        eventually(lambda: healthz_ok(metrics), timeout=20, what="the first server")
        second = serve("--snapshot", str(path), "--listen", f"127.0.0.1:{port}")
        _, stderr = second.communicate(timeout=30)
    finally:
        stop(first)
    assert second.returncode == 1
    assert stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
