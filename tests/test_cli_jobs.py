"""The offline CLI verbs: render and validate, with Nomad's flag spellings and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "jobs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_render_prints_the_registration_payload(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "echo-api.json"))
    assert code == 0
    assert json.loads(out)["Job"]["TaskGroups"][0]["Count"] == 2


@pytest.mark.parametrize("spelling", [["-var", "count=5"], ["-var=count=5"], ["--var", "count=5"],
                                      ["--var=count=5"]])
def test_variables_take_nomads_single_dash_and_the_long_spelling(
        capsys: pytest.CaptureFixture[str], spelling: list[str]) -> None:
    code, out, err = run(capsys, "render", str(EXAMPLES / "service_a.py"), *spelling)
    assert code == 0, err
    assert json.loads(out)["Job"]["TaskGroups"][0]["Count"] == 5


def test_a_var_file_takes_the_go_form_with_equals(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    var_file = tmp_path / "prod.hcl"
    var_file.write_text('report_date = "2026-12-01"\n')
    code, out, err = run(capsys, "render", f"-var-file={var_file}",
                         str(EXAMPLES / "batch-report.nomad.hcl"))
    assert code == 0, err
    assert json.loads(out)["Job"]["TaskGroups"][0]["Tasks"][0]["Meta"]["report_date"] == \
        "2026-12-01"


def test_a_malformed_var_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "service_a.py"), "-var", "count")
    assert code == 2
    assert "'count' is not KEY=VALUE" in err


def test_render_format_hcl_loads_back_as_the_same_job(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "web-canary.nomad.hcl"), "--format", "hcl")
    assert code == 0
    written = tmp_path / "web.nomad.hcl"
    written.write_text(out)
    from nomadmesh import load

    assert load(written) == load(EXAMPLES / "web-canary.nomad.hcl")


def test_render_has_no_output_switch_because_output_means_print_instead_of_submit(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--output", "hcl")
    assert code == 2
    assert "--output" in err


def test_render_inject_adds_the_sidecar_and_egress_env(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "service-b.nomad.hcl"), "--inject")
    assert code == 0
    tasks = json.loads(out)["Job"]["TaskGroups"][0]["Tasks"]
    assert [t["Name"] for t in tasks] == ["service-b-app", "service-b-sidecar"]
    assert tasks[0]["Env"]["SERVICE_A_URL"].endswith("/hi_a")


def test_render_takes_a_pack_and_ties_jobs_to_the_deployment_name(
        capsys: pytest.CaptureFixture[str]) -> None:
    pack = ROOT / "examples" / "packs" / "batch_report"
    code, out, _ = run(capsys, "render", str(pack), "--name", "nightly")
    assert code == 0
    job = json.loads(out)["Job"]
    assert job["ID"] == "nightly"
    assert job["Meta"]["nomadmesh.deployment"] == "nightly"


def test_a_deployment_name_for_a_plain_job_file_is_an_input_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--name", "x")
    assert code == 2
    assert "a deployment name only applies to packs" in err


def test_render_out_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "job.json"
    code, out, _ = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--out", str(out_file))
    assert (code, out) == (0, "")
    assert json.loads(out_file.read_text())["Job"]["ID"] == "echo-api"


def test_an_output_file_in_a_missing_directory_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nope" / "job.json"
    code, _, err = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--out", str(target))
    assert code == 2
    assert err == (f"error: {target}: cannot write: directory {str(target.parent)!r} "
                   "does not exist\n")


def nomadmesh_as_a_user(*argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess that file modes apply to: under root, without the capabilities
    that bypass them (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    command = [sys.executable, "-m", "nomadmesh", *argv]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs setpriv (util-linux) to test file permissions"
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_an_unwritable_output_file_is_one_error_line(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_text("")
    target.chmod(0o444)
    done = nomadmesh_as_a_user("render", str(EXAMPLES / "echo-api.json"), "--out", str(target))
    assert (done.returncode, done.stderr) == (
        2, f"error: {target}: cannot write: permission denied: the file is not writable\n")


def test_an_output_path_in_an_unsearchable_directory_is_one_error_line(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o600)  # it may be listed, not entered
    target = closed / "inner" / "job.json"
    try:
        done = nomadmesh_as_a_user("render", str(EXAMPLES / "echo-api.json"), "--out",
                                   str(target))
    finally:
        closed.chmod(0o700)
    assert (done.returncode, done.stderr) == (
        2, f"error: {target}: cannot write: permission denied: directory {str(closed)!r} "
           "cannot be searched\n")


def test_an_output_path_that_is_a_directory_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--out", str(tmp_path))
    assert code == 2
    assert err == f"error: {tmp_path}: cannot write: it is a directory\n"


# --- validate: exit 1 on any invalid file, as `nomad job validate` ---------------------------


def test_validate_says_valid_as_nomad_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLES / "echo-api.json"))
    assert code == 0
    assert out.splitlines()[-1] == "Job validation successful"
    assert "job 'echo-api' is valid" in out


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ID": "x", "Priority": 500, "TaskGroups": [
        {"Name": "g", "Count": -1, "Tasks": [{"Name": "t", "Driver": "exec"}]}]}))
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0] == "Job validation errors:"
    # Nomad's own messages (nomad/job_endpoint_hooks.go:518, nomad/structs/structs.go:7121).
    assert f"{bad}: job[x].priority: job priority must be between [1, 100]" in lines
    assert f"{bad}: job[x].group[g].count: Task group count can't be negative" in lines
    assert lines[-1] == "2 problem(s) found"


@pytest.mark.parametrize("content", ['job "x" {', '{"Job": {"ID": 3}', "\x00\x01binary"])
def test_validate_exits_1_for_a_file_that_does_not_parse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    bad = tmp_path / ("bad.json" if content.startswith("{") else "bad.nomad.hcl")
    bad.write_text(content)
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_validate_exits_1_for_a_missing_file_and_a_bad_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", str(tmp_path / "missing.json"))[0] == 1
    assert run(capsys, "validate", "-no-such-flag", str(EXAMPLES / "echo-api.json"))[0] == 1


def test_an_unreadable_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(tmp_path / "missing.json"))
    assert code == 2
    assert err.strip() == f"error: {tmp_path / 'missing.json'}: no such file"


def test_bad_input_never_shows_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Job": {"ID": 3}')
    done = subprocess.run([sys.executable, "-m", "nomadmesh", "render", str(bad)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {bad}:1:")


def test_json_input_reads_api_json_whatever_the_file_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job_file = tmp_path / "job.txt"
    job_file.write_text((EXAMPLES / "echo-api.json").read_text())
    code, out, err = run(capsys, "validate", "-json", str(job_file))
    assert code == 0, err
    assert "job 'echo-api' is valid" in out


def test_json_input_refuses_variables_as_nomad_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "-json", "-var", "a=b", str(EXAMPLES / "echo-api.json"))
    assert code == 1
    assert "cannot be used with JSON job files" in err


def test_a_job_file_dash_is_read_from_standard_input() -> None:
    done = subprocess.run([sys.executable, "-m", "nomadmesh", "validate", "-"],
                          input=(EXAMPLES / "web-canary.nomad.hcl").read_text(),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Job validation successful" in done.stdout


# --- the command line itself ----------------------------------------------------------------


def test_an_unknown_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "launch")
    assert code == 2
    assert err.startswith("error: no such command 'launch'; the commands are: render, validate")


def test_go_style_boolean_values_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "-json=true", str(EXAMPLES / "echo-api.json"))[0] == 0
    code, _, err = run(capsys, "validate", "-json=maybe", str(EXAMPLES / "echo-api.json"))
    assert code == 1
    assert 'invalid boolean value "maybe" for -json' in err


def test_every_verb_in_the_table_has_its_own_help_as_summary() -> None:
    import click

    from nomadmesh.cli import COMMANDS, _load_commands, cli

    _load_commands()
    # every command a module registers has a row, so that --help lists it and it loads by name
    assert set(cli.commands) == {entry.name for entry in COMMANDS}
    for entry in COMMANDS:
        command = cli.commands[entry.name]
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert entry.summary == first_paragraph, entry.name
        assert isinstance(command, click.Command)


def test_help_and_version_load_no_verb_module() -> None:
    code = ("import sys; from nomadmesh.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(('nomadmesh.', 'click')))\n"
            "print(loaded, file=sys.stderr)")
    for flag in ("--help", "--version"):
        done = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True,
                              check=True)
        assert done.stderr.strip() == "['nomadmesh.cli']", done.stderr


def test_the_package_root_loads_names_on_first_use() -> None:
    code = ("import sys, nomadmesh\n"
            "before = 'nomadmesh.model' in sys.modules\n"
            "job = nomadmesh.Job\n"
            "print(before, 'nomadmesh.model' in sys.modules, 'nomadmesh.deploy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "False"]


def test_every_public_name_of_the_package_root_resolves() -> None:
    import nomadmesh

    for name in nomadmesh.__all__:  # the model's names and nomadmesh's own
        assert getattr(nomadmesh, name) is not None, name
    assert "Job" in dir(nomadmesh)
    with pytest.raises(AttributeError):
        _ = nomadmesh.NoSuchName  # type: ignore[attr-defined]


def test_the_lazy_exports_and_the_type_checking_imports_name_the_same_objects() -> None:
    import ast
    import importlib

    import nomadmesh
    import nomadmesh.model

    tree = ast.parse(Path(nomadmesh.__file__).read_text())
    [block] = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) ==
               "TYPE_CHECKING"]
    eager = {a.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
             for a in node.names if a.name != "*"}
    assert sorted(eager) == sorted(nomadmesh._EXPORTS)
    assert set(nomadmesh.__all__) == set(eager) | set(nomadmesh.model.__all__)
    for name, module in eager.items():
        assert getattr(importlib.import_module(str(module)), name) is getattr(nomadmesh, name)


def test_star_import_gives_the_model_and_the_client() -> None:
    namespace: dict[str, object] = {}
    exec("from nomadmesh import *", namespace)
    assert {"Job", "Group", "NomadClient", "load", "canonicalize"} <= set(namespace)


def test_validate_prints_warnings_and_still_exits_0(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "web.nomad.hcl"
    job.write_text('job "web" {\n  group "api" {\n    count = 2\n    update {\n'
                   '      max_parallel = 3\n    }\n    task "app" {\n      driver = "docker"\n'
                   '      config {\n        image = "busybox:1.36"\n      }\n    }\n  }\n}\n')
    code, out, _ = run(capsys, "validate", str(job))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Job Warnings:"
    assert lines[1].startswith(f"{job}: job[web].group[api].update.max_parallel: Update max "
                               "parallel count is greater than task group count (3 > 2).")
    assert lines[-1] == "Job validation successful"


@pytest.mark.parametrize("name", ["web.job", "webjob", "web.txt"])
def test_any_file_name_is_read_as_hcl2_as_nomad_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    job = tmp_path / name
    job.write_text((EXAMPLES / "web-canary.nomad.hcl").read_text())
    code, out, err = run(capsys, "validate", str(job))
    assert code == 0, err
    assert "job 'web' is valid" in out
