"""The emulator's client endpoints: stats, signals, GC (gaps python-nomad's suite found).

Shapes and texts follow Nomad at aa026cc: client/hoststats/host.go:21,
client/structs/structs.go:344, client/allocrunner/alloc_runner.go:1476,
drivers/docker/handle.go:129, nomad/structs/errors.go:136.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import service_job


@pytest.fixture
def running() -> Iterator[tuple[NomadEmulator, dict[str, Any]]]:
    with NomadEmulator() as nomad:
        nomad.register(service_job("web", count=1))
        assert nomad.wait_for(lambda: any(a["ClientStatus"] == "running"
                                          for a in nomad.snapshot().all("allocs")), 10)
        yield nomad, next(iter(nomad.snapshot().all("allocs")))


def _call(nomad: NomadEmulator, method: str, url_path: str, body: Any = None,
          **params: str) -> requests.Response:
    return requests.request(method, f"{nomad.url}{url_path}", json=body, params=params,
                            timeout=5)


def test_host_and_allocation_stats(running: tuple[NomadEmulator, dict[str, Any]]) -> None:
    nomad, alloc = running
    host = _call(nomad, "GET", "/v1/client/stats", node_id=alloc["NodeID"]).json()
    assert host["Memory"]["Total"] == 8192 * 1024 * 1024 and host["CPUTicksConsumed"] == 0.0
    unknown = _call(nomad, "GET", "/v1/client/stats", node_id="nope")
    assert unknown.status_code == 404
    stats = _call(nomad, "GET", f"/v1/client/allocation/{alloc['ID']}/stats").json()
    assert list(stats["Tasks"]) == ["server"]
    assert stats["ResourceUsage"]["MemoryStats"]["RSS"] == 0
    missing = _call(nomad, "GET", "/v1/client/allocation/nope/stats")
    assert (missing.status_code, missing.text) == (404, 'Unknown allocation "nope"')


def test_signal_records_the_event_and_docker_refuses_unknown_names(
        running: tuple[NomadEmulator, dict[str, Any]]) -> None:
    nomad, alloc = running
    path = f"/v1/client/allocation/{alloc['ID']}/signal"
    assert _call(nomad, "POST", path, {"Signal": "SIGUSR1", "Task": "server"}).status_code == 200
    assert nomad.wait_for(lambda: any(
        e["Type"] == "Signaling" and e["DisplayMessage"] == "Task being sent signal SIGUSR1"
        for e in nomad.snapshot().alloc_by_id(alloc["ID"])["TaskStates"]["server"]["Events"]), 10)
    bad = _call(nomad, "POST", path, {"Signal": "INVALID-SIGNAL"})
    assert (bad.status_code, bad.text) == (500, (
        "1 error occurred:\n\t* Failed to signal task: server, err: failed to parse signal: "
        "invalid signal: INVALID-SIGNAL\n\n"))
    no_task = _call(nomad, "POST", path, {"Signal": "SIGHUP", "Task": "nope"})
    assert (no_task.status_code, no_task.text) == (500, "Task not found")


def test_garbage_collection(running: tuple[NomadEmulator, dict[str, Any]]) -> None:
    nomad, alloc = running
    assert _call(nomad, "GET", f"/v1/client/allocation/{alloc['ID']}/gc").status_code == 200
    assert _call(nomad, "GET", "/v1/client/gc", node_id=alloc["NodeID"]).status_code == 200
    assert _call(nomad, "GET", "/v1/client/gc").status_code == 200
    assert _call(nomad, "GET", "/v1/client/allocation/nope/gc").status_code == 404


def test_alloc_dir_ls_stat_stream(running: tuple[NomadEmulator, dict[str, Any]]) -> None:
    """client/allocdir/alloc_dir.go:383 List, :413 Stat; client/fs_endpoint.go:230 stream."""
    nomad, alloc = running
    alloc_id = alloc["ID"]
    top = _call(nomad, "GET", f"/v1/client/fs/ls/{alloc_id}", path="/").json()
    assert [(f["Name"], f["IsDir"]) for f in top] == [("alloc", True), ("server", True)]
    logs = _call(nomad, "GET", f"/v1/client/fs/ls/{alloc_id}", path="alloc/logs").json()
    assert [f["Name"] for f in logs] == ["server.stderr.0", "server.stdout.0"]
    root = _call(nomad, "GET", f"/v1/client/fs/stat/{alloc_id}", path="/").json()
    assert (root["Name"], root["IsDir"]) == (alloc_id, True)
    missing = _call(nomad, "GET", f"/v1/client/fs/stat/{alloc_id}", path="/nope")
    assert missing.status_code == 404 and missing.text.endswith("no such file or directory")
    escape = _call(nomad, "GET", f"/v1/client/fs/ls/{alloc_id}", path="../..")
    assert (escape.status_code, escape.text) == (500, "Path escapes the alloc directory")
    stream = _call(nomad, "GET", f"/v1/client/fs/stream/{alloc_id}", path="/server/executor",
                   offset="1", origin="start")
    assert stream.status_code == 400 and "no such file or directory" in stream.text
    directory = _call(nomad, "GET", f"/v1/client/fs/stream/{alloc_id}", path="/alloc")
    assert (directory.status_code, directory.text) == (400, 'file "/alloc" is a directory')
    assert _call(nomad, "GET", f"/v1/client/fs/ls/{alloc_id}").text == "must provide a file path"
