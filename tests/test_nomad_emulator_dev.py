"""`nomadmesh dev` and `start_local_cluster`: an emulated cluster for humans and notebooks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import consul as python_consul
import pytest
import requests

from nomadmesh.testing import EmulatorError
from nomadmesh.testing.cluster import start_local_cluster
from nomadmesh.testing.jobs import service_job


def test_dev_prints_addresses_serves_both_apis_and_stops_on_sigint() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nomadmesh", "dev", "--nomad-port", "0", "--consul-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    exports = {}
    while len(exports) < 2:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        if line.startswith("export "):
            name, _, value = line[len("export "):].strip().partition("=")
            exports[name] = value
    try:
        nomad_ok = requests.get(f"{exports['NOMAD_ADDR']}/v1/status/leader", timeout=5).ok
        consul_ok = requests.get(f"http://{exports['CONSUL_HTTP_ADDR']}/v1/status/leader",
                                 timeout=5).ok
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    assert (nomad_ok, consul_ok, code) == (True, True, 0)


def test_local_cluster_links_nomad_services_into_consul(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUL_HTTP_ADDR", raising=False)
    cluster = start_local_cluster()
    try:
        cluster.nomad.register(service_job("web", service="web"))
        assert cluster.nomad.wait_for(lambda: cluster.nomad.deployment_status("web")
                                      == "successful")
        host, port = cluster.env["CONSUL_HTTP_ADDR"].split(":")
        _, entries = python_consul.Consul(host=host, port=int(port)).health.service("web")
    finally:
        cluster.stop()
    assert len(entries) == 1


def test_port_in_use_is_an_emulator_error() -> None:
    cluster = start_local_cluster()
    try:
        with pytest.raises(EmulatorError, match="cannot listen"):
            start_local_cluster(nomad_port=cluster.nomad.port)
    finally:
        cluster.stop()


def test_dev_stops_cleanly_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nomadmesh", "dev", "--nomad-port", "0", "--consul-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export CONSUL_HTTP_ADDR="):
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
