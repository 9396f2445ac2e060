"""`nomadmesh logs` against the local runner (real task processes): all, tail, follow, stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from nomadmesh import Group, Job, Task
from nomadmesh.cli import main
from nomadmesh.deploy import NomadClient
from nomadmesh.testing.local import LocalExecutionCluster, local_cluster

# Five stdout lines over about two seconds, one stderr line at the end.
SPEAKER = ("import sys, time\n"
           "for i in range(1, 6):\n"
           "    print(f'line {i}', flush=True)\n"
           "    time.sleep(0.4)\n"
           "print('done', file=sys.stderr, flush=True)\n")


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalExecutionCluster]:
    cluster = local_cluster(tmp_path / "allocs")
    monkeypatch.setenv("NOMAD_ADDR", cluster.nomad.url)
    yield cluster
    cluster.stop()


def speak(cluster: LocalExecutionCluster) -> None:
    job = Job("talk", type="batch", datacenters=["dc1"], groups=[Group("talk", tasks=[
        Task("say", driver="raw_exec", config={"command": sys.executable,
                                               "args": ["-c", SPEAKER]})])])
    with NomadClient(cluster.nomad.url) as client:
        client.run(job, wait=False)


def status(cluster: LocalExecutionCluster) -> str:
    """The job's allocation's client status, through the API."""
    allocs = requests.get(f"{cluster.nomad.url}/v1/job/talk/allocations", timeout=10).json()
    return str(allocs[0]["ClientStatus"]) if allocs else ""


def reaches(cluster: LocalExecutionCluster, wanted: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while (now := status(cluster)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return now == wanted


def nomadmesh(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_follow_prints_what_the_task_writes_until_it_stops(
        local: LocalExecutionCluster, capsys: pytest.CaptureFixture[str]) -> None:
    speak(local)
    assert reaches(local, "running")
    code, out, err = nomadmesh(capsys, "logs", "-f", "-stdout", "talk", "say")
    assert code == 0, err
    assert out.splitlines()[1:] == [f"line {i}" for i in range(1, 6)]
    assert status(local) == "complete"  # it followed to the end, not to what was there at first


def test_follow_without_a_stream_flag_follows_stdout_and_stderr(
        local: LocalExecutionCluster, capsys: pytest.CaptureFixture[str]) -> None:
    speak(local)
    assert reaches(local, "running")
    code, out, err = nomadmesh(capsys, "logs", "-f", "talk", "say")
    assert code == 0
    assert out.splitlines()[0].endswith("say (stdout, stderr)")
    assert "line 5" in out and err == "done\n"


def test_tail_n_and_c_show_the_end_of_the_log(
        local: LocalExecutionCluster, capsys: pytest.CaptureFixture[str]) -> None:
    speak(local)
    assert reaches(local, "complete")
    assert nomadmesh(capsys, "logs", "-n", "2", "talk", "say")[1].splitlines()[1:] == [
        "line 4", "line 5"]
    assert nomadmesh(capsys, "logs", "-tail", "-c", "7", "talk", "say")[1].splitlines()[1:] == [
        "line 5"]
    assert len(nomadmesh(capsys, "logs", "-tail", "talk", "say")[1].splitlines()) == 1 + 5
    code, out, _ = nomadmesh(capsys, "logs", "-stderr", "talk", "-task", "say")
    assert (code, out.splitlines()[1:]) == (0, ["done"])


def test_logs_flags_that_cannot_go_together_are_usage_errors(
        local: LocalExecutionCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh(capsys, "logs", "-stderr", "-stdout", "talk", "say")[0] == 1
    assert nomadmesh(capsys, "logs", "-n", "1", "-c", "1", "talk", "say")[0] == 1
    code, _, err = nomadmesh(capsys, "logs", "nosuch", "say")
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
