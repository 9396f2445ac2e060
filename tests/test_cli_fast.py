"""The click-free path (cli/_fast.py) of `validate` and `status` prints what the click commands
print, exits with the same codes, and leaves to click every command line it does not plainly
understand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.cli import _terminal
from nomadmesh.cli._fast import fast_path
from nomadmesh.cli._group import run as click_run
from nomadmesh.deploy import NomadClient
from nomadmesh.model import Job
from nomadmesh.testing import NomadEmulator
from tests.test_deploy_cli import UNPLACEABLE as NOWHERE

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "jobs"
ECHO = str(EXAMPLES / "echo-api.json")
REPORT = str(EXAMPLES / "batch-report.nomad.hcl")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("fast")
    made = {
        # Nomad's rules fail: count below zero, no driver.
        "invalid.nomad.hcl": 'job "x" {\n  group "g" {\n    count = -1\n    task "t" {}\n  }\n}\n',
        "syntax.nomad.hcl": 'job "x" {\n  group "g" {\n',
        # A warning: max_parallel above the group's count.
        "warn.nomad.hcl": ('job "w" {\n  group "g" {\n    count = 2\n    update {\n'
                           '      max_parallel = 3\n    }\n    task "t" {\n'
                           '      driver = "docker"\n      config {\n        image = "redis:7"\n'
                           '      }\n    }\n  }\n}\n'),
        "vars.hcl": 'report_date = "2026-12-01"\n',
        "job.json": json.dumps({"Job": {"ID": "j", "Name": "j", "TaskGroups": [
            {"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker",
                                     "Config": {"image": "redis:7"}}]}]}}),
        "escape\x1b[31m.nomad.hcl": 'job "x" {\n',
    }
    for name, text in made.items():
        (base / name).write_text(text)
    (base / "dir.hcl").mkdir()
    return {name: str(base / name) for name in [*made, "dir.hcl"]}


def with_files(argv: list[str], files: dict[str, str]) -> list[str]:
    """`argv` with each `{name}` replaced by the path of the made file `name`."""
    out = []
    for arg in argv:
        for name, path in files.items():
            arg = arg.replace("{" + name + "}", path)
        out.append(arg)
    return out


def both(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[tuple[int, str, str], ...]:
    """(exit code, stdout, stderr) of the fast path and of click's, on the same command line."""
    code = fast_path(argv)
    assert code is not None, f"the fast path declined {argv}"
    fast = (code, *capsys.readouterr())
    try:
        slow_code = click_run(argv)
    except SystemExit as exited:  # the click command exits 1 itself on a failed check
        slow_code = int(exited.code or 0)
    return fast, (slow_code, *capsys.readouterr())


# (command line, exit code, a piece of what it prints) -- so each case checks what it is for.
CASES = [
    (["validate", ECHO], 0, "job 'echo-api' is valid"),
    (["validate", "{invalid.nomad.hcl}"], 1, "Task group count can't be negative"),
    (["validate", "{syntax.nomad.hcl}"], 1, "Unclosed configuration block"),
    (["validate", "{warn.nomad.hcl}"], 0, "Job Warnings:"),
    (["validate", "{escape\x1b[31m.nomad.hcl}"], 1, "escape.nomad.hcl"),
    (["validate", "/no/such/file.nomad.hcl"], 1, "error: "),
    (["validate", REPORT], 0, "is valid"),
    (["validate", REPORT, "-var", "report_date=2026-01-01"], 0, "is valid"),
    (["validate", "-var=nope=x", REPORT], 1, "nope"),
    (["validate", "--var", "report_date=x", REPORT, "--var=other=y"], 1, "other"),
    (["validate", "-var-file", "{vars.hcl}", REPORT], 0, "is valid"),
    (["validate", "--var-file={vars.hcl}", REPORT], 0, "is valid"),
    (["validate", "-var-file", "/no/such/vars.hcl", REPORT], 1, "/no/such/vars.hcl"),
    (["validate", "-json", "{job.json}"], 0, "job 'j' is valid"),
    (["validate", "{job.json}", "--json"], 0, "job 'j' is valid"),
    (["validate", "-json", "-var", "a=b", "{job.json}"], 1, "cannot be used with JSON"),
    (["-no-color", "validate", "{warn.nomad.hcl}"], 0, "Job Warnings:"),
    (["validate", "{invalid.nomad.hcl}", "-force-color"], 1, "\x1b[1;31mJob validation errors"),
    (["-force-color", "validate", "{warn.nomad.hcl}"], 0, "\x1b[33m"),
    (["-force-color", "-no-color", "validate", "/no/such/file"], 1, "error: "),
]


@pytest.mark.parametrize(("argv", "exit_code", "printed"), CASES,
                         ids=[" ".join(a) for a, _, _ in CASES])
def test_the_fast_path_prints_what_click_prints(argv: list[str], exit_code: int, printed: str,
                                                files: dict[str, str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_files(argv, files)
    fast, slow = both(capsys, argv)
    assert fast == slow
    assert fast[0] == exit_code
    assert printed in fast[1] + fast[2]


DECLINED = [
    ["validate"],
    ["validate", "-h"],
    ["validate", "--help", ECHO],
    ["validate", "-no-such-flag", ECHO],
    ["validate", ECHO, ECHO],
    ["validate", "-json=true", ECHO],
    ["validate", "--", ECHO],
    ["validate", ECHO, "-var"],
    ["validate", ECHO, "-var", "novalue"],
    ["validate", ECHO, "-var", "=v"],
    ["validate", ECHO, "-var", "-json"],
    ["validate", "-var-file", "{dir.hcl}", ECHO],
    ["render", ECHO],
    ["status", "-address", "http://127.0.0.1:1"],
    ["status", "-namespace=*"],
    ["status", "web", "other"],
    ["status", "-json=true"],
    ["status", "-"],
    ["status", "--help"],
]


@pytest.mark.parametrize("argv", DECLINED, ids=[" ".join(a) for a in DECLINED])
def test_other_command_lines_are_left_to_click(argv: list[str], files: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_files(argv, files)
    assert fast_path(argv) is None
    assert capsys.readouterr() == ("", "")


def test_shell_completion_and_ascii_streams_are_left_to_click(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("_NOMADMESH_COMPLETE", "bash_complete")
    assert fast_path(["validate", ECHO]) is None
    monkeypatch.delenv("_NOMADMESH_COMPLETE")
    with open(os.devnull, "w", encoding="ascii") as ascii_out:
        monkeypatch.setattr(sys, "stdout", ascii_out)
        assert fast_path(["validate", ECHO]) is None
    assert capsys.readouterr() == ("", "")


def click_imported(argv: list[str], env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Whether `nomadmesh ARGV` imported click, and what it printed, in a fresh process."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: sys.__stderr__.write('click' in sys.modules and 'CLICK' "
            "or 'NOCLICK'))\n"
            "from nomadmesh.cli import main\n"
            f"main({argv!r})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return not done.stderr.endswith("NOCLICK"), done.stdout


def test_validate_and_status_run_without_importing_click(cluster: NomadEmulator) -> None:
    assert click_imported(["validate", ECHO]) == (False, f"{ECHO}: job 'echo-api' is valid "
                                                  "(1 group(s), 1 task(s))\n"
                                                  "Job validation successful\n")
    imported, out = click_imported(["status", "nowhere"], {"NOMAD_ADDR": cluster.url})
    assert not imported
    assert out.startswith("ID            = nowhere\n")
    assert click_imported(["validate", "--help"])[0]  # the control: click's path imports it


def test_a_reader_that_leaves_early_gets_exit_1_and_no_traceback(files: dict[str, str]) -> None:
    # `nomadmesh validate F | true`: the pipe is closed before the report is written.
    done = subprocess.run(
        [sys.executable, "-c", "import os, sys\nos.close(1)\nr, w = os.pipe()\nos.close(r)\n"
         "os.dup2(w, 1)\nfrom nomadmesh.cli import main\n"
         f"main(['validate', {ECHO!r}])\n"],
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr == ""


# NOWHERE cannot be placed: its status stays what it is while both paths read it.
STATUS_CASES = [
    (["status"], 0, "nowhere"),
    (["status", "nowhere"], 0, "Latest Deployment"),
    (["status", "-json", "nowhere"], 0, '"Summary"'),
    (["status", "--json"], 0, '"Evaluations"'),
    (["status", "nowhere", "-short"], 0, "Parameterized = false"),
    (["status", "-verbose", "nowhere"], 0, "Deployed"),
    (["status", "nope"], 1, "error: "),
    (["-force-color", "status", "nope"], 1, "\x1b[31merror: "),
]


@pytest.fixture
def cluster(nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> NomadEmulator:
    """The emulator with the unplaceable job, found through NOMAD_ADDR as a cluster would be."""
    monkeypatch.setenv("NOMAD_ADDR", nomad.url)
    for name in ("NOMAD_CLI_NO_COLOR", "NOMAD_CLI_FORCE_COLOR", "NO_COLOR", "NOMAD_TOKEN",
                 "NOMAD_NAMESPACE", "NOMAD_REGION"):
        monkeypatch.delenv(name, raising=False)
    with NomadClient(nomad.url) as client:
        client.run(Job.from_hcl(NOWHERE), wait=False)
    return nomad


@pytest.mark.parametrize(("argv", "exit_code", "printed"), STATUS_CASES,
                         ids=[" ".join(a) for a, _, _ in STATUS_CASES])
def test_status_on_the_fast_path_prints_what_click_prints(
        cluster: NomadEmulator, argv: list[str], exit_code: int, printed: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    fast, slow = both(capsys, argv)
    assert fast == slow
    assert fast[0] == exit_code
    assert printed in fast[1] + fast[2]


def test_status_of_an_empty_cluster_on_both_paths(nomad: NomadEmulator,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad.url)
    fast, slow = both(capsys, ["status"])
    assert fast == slow == (0, "No running jobs\n", "")


@pytest.fixture(autouse=True)
def _colors_reset() -> object:
    yield None
    _terminal.configure([], {})
