"""The cluster verbs against the emulator: `nomad`'s flags, output layout and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from nomadmesh.cli import main
from nomadmesh.testing import NomadEmulator

JOB = """
job "web" {
  group "api" {
    count = 2
    task "app" {
      driver = "docker"
      config {
        image = var.image
      }
    }
  }
}

variable "image" {
  type    = string
  default = "busybox:1.36"
}
"""

PARAMETERIZED = """
job "thumbs" {
  type = "batch"
  parameterized {
    meta_required = ["input"]
  }
  group "run" {
    task "work" {
      driver = "docker"
      config {
        image = "busybox:1.36"
      }
    }
  }
}
"""

UNPLACEABLE = """
job "nowhere" {
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "plan9"
  }
  group "api" {
    task "app" {
      driver = "docker"
      config {
        image = "busybox:1.36"
      }
    }
  }
}
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def nomad_addr(nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI finds the plugin's emulator through NOMAD_ADDR, as it would a cluster."""
    monkeypatch.setenv("NOMAD_ADDR", nomad.url)
    for name in ("NOMAD_CLI_NO_COLOR", "NOMAD_CLI_FORCE_COLOR", "NO_COLOR", "NOMAD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    return path


def nomadmesh(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(exited.value.code or 0)


# --- plan -----------------------------------------------------------------------------------


def test_plan_of_a_new_job_prints_nomads_layout_and_exits_1(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("plan", str(job_file)) == 1
    out = capsys.readouterr().out
    assert out.startswith('+ Job: "web"\n+ Task Group: "api" (2 create)\n'
                          '  + Task: "app" (forces create)\n\n'
                          "Scheduler dry-run:\n- All tasks successfully allocated.\n\n"
                          "Job Modify Index: 0\n"
                          "To submit the job with version verification run:\n\n"
                          f"nomadmesh run -check-index 0 {job_file}\n")


def test_plan_of_a_new_job_lists_its_fields_only_with_verbose(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("plan", str(job_file))
    assert "Priority" not in capsys.readouterr().out
    assert nomadmesh("plan", "-verbose", str(job_file)) == 1
    out = capsys.readouterr().out
    assert re.search(r'^\+ Priority: +"50"$', out, re.M), out
    assert re.search(r'^    \+ KillTimeout: +"5s"$', out, re.M), out


def test_plan_of_an_in_place_edit_shows_the_changed_field_as_a_go_duration_and_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    assert nomadmesh("run", str(path)) == 0
    path.write_text(JOB.replace('driver = "docker"', 'driver = "docker"\n      kill_timeout = "3m"'))
    capsys.readouterr()
    # A kill timeout is updated in place (scheduler/util.go tasksUpdated does not compare it),
    # and in-place updates leave nomad job plan's exit code at 0 (job_plan.go:416).
    assert nomadmesh("plan", str(path)) == 0
    diff = capsys.readouterr().out.split("\n\nScheduler dry-run:")[0]
    assert diff.splitlines() == ['+/- Job: "web"', '+/- Task Group: "api" (2 in-place update)',
                                 '  +/- Task: "app" (forces in-place update)',
                                 '    +/- KillTimeout: "5s" => "3m0s"']


def test_plan_of_a_destructive_edit_shows_the_config_change_in_context_and_exits_1(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file)) == 0
    capsys.readouterr()
    assert nomadmesh("plan", "-var", "image=busybox:1.37", str(job_file)) == 1
    diff = capsys.readouterr().out.split("\n\nScheduler dry-run:")[0]
    assert diff.splitlines() == [
        # max_parallel 1 (the default update block): one replaced now, one left for later
        '+/- Job: "web"', '+/- Task Group: "api" (1 create/destroy update, 1 ignore)',
        '  +/- Task: "app" (forces create/destroy update)', '    +/- Config {',
        '      +/- image: "busybox:1.36" => "busybox:1.37"', '        }']


def test_plan_of_an_unchanged_job_exits_0_and_prints_no_bookkeeping(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file)) == 0
    capsys.readouterr()
    assert nomadmesh("plan", str(job_file)) == 0
    out = capsys.readouterr().out
    assert out.startswith('Job: "web"\nTask Group: "api" (2 ignore)\n  Task: "app"\n\n')
    assert "nomadmesh." not in out


def test_plan_repeats_the_variables_in_the_run_command_it_suggests(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("plan", "-var", "image=busybox:1.37", "-namespace", "default", str(job_file))
    assert ('nomadmesh run -check-index 0 -var="image=busybox:1.37" -namespace="default" '
            f"{job_file}\n") in capsys.readouterr().out


def test_plan_diff_false_prints_only_the_dry_run(job_file: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("plan", "-diff=false", str(job_file)) == 1
    assert capsys.readouterr().out.startswith("Scheduler dry-run:\n")


def test_plan_json_output_is_nomads_plan_response(job_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("plan", "-json-output", str(job_file)) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["Diff"]["Type"] == "Added"
    assert body["Annotations"]["DesiredTGUpdates"]["api"]["Place"] == 2
    assert body["JobModifyIndex"] == 0


def test_plan_against_an_unreachable_server_exits_255(
        job_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with NomadEmulator() as gone:
        url = gone.url
    monkeypatch.setenv("NOMAD_ADDR", url)
    assert nomadmesh("plan", str(job_file)) == 255
    err = capsys.readouterr().err
    assert err.count(url) == 1 and len(err.strip().splitlines()) == 1


def test_plan_exits_255_for_bad_input_and_bad_flags(tmp_path: Path, job_file: Path) -> None:
    assert nomadmesh("plan", str(tmp_path / "missing.nomad.hcl")) == 255
    assert nomadmesh("plan", "-no-such-flag", str(job_file)) == 255


def test_plan_colors_its_markers_only_when_asked(job_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("plan", str(job_file))
    plain = capsys.readouterr().out
    assert not ANSI.search(plain)
    nomadmesh("plan", "-force-color", str(job_file))
    colored = capsys.readouterr().out
    assert "\x1b[32m+\x1b[0m" in colored and ANSI.sub("", colored) == plain
    monkeypatch.setenv("NOMAD_CLI_FORCE_COLOR", "1")
    nomadmesh("plan", str(job_file))
    assert ANSI.search(capsys.readouterr().out)
    monkeypatch.setenv("NOMAD_CLI_NO_COLOR", "1")  # -no-color wins over -force-color
    nomadmesh("plan", "-force-color", str(job_file))
    assert not ANSI.search(capsys.readouterr().out)


# --- run ------------------------------------------------------------------------------------


def test_run_exits_0_when_healthy_and_prints_plain_progress_lines(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file), "-var", "image=busybox:1.37") == 0
    out = capsys.readouterr().out
    assert "[evaluation]" in out
    assert "==> job 'web': healthy" in out


def test_run_exits_1_and_prints_the_diagnosis_when_the_deploy_fails(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomad.script_task("web", "api", "app", fail="driver", message="image not found")
    assert nomadmesh("run", str(job_file)) == 1
    err = capsys.readouterr().err
    assert "group 'api' task 'app'" in err
    assert "driver failure: image not found" in err


def test_run_exits_2_when_allocations_cannot_be_placed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.nomad.hcl"
    path.write_text(UNPLACEABLE)
    assert nomadmesh("run", str(path)) == 2
    assert "==> job 'nowhere' failed:" in capsys.readouterr().err


def test_run_with_a_stale_check_index_exits_1_as_a_conflict(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file)) == 0
    assert nomadmesh("run", str(job_file), "-check-index", "1", "-var", "image=x:2") == 1
    assert "nothing was written" in capsys.readouterr().err


def test_run_takes_the_check_index_that_plan_printed(job_file: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("plan", str(job_file))
    index = re.search(r"Job Modify Index: (\d+)", capsys.readouterr().out)
    assert index is not None
    assert nomadmesh("run", f"-check-index={index.group(1)}", str(job_file)) == 0


def test_run_exits_1_for_bad_input_as_nomad_does(tmp_path: Path, job_file: Path) -> None:
    assert nomadmesh("run", str(tmp_path / "nope.nomad.hcl")) == 1
    assert nomadmesh("run", str(job_file), "--timeout", "soon") == 1
    assert nomadmesh("run", "-check-index", "x", str(job_file)) == 1


def test_run_detach_prints_what_nomad_prints(job_file: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", "-detach", str(job_file)) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Job registration successful" in out
    assert any(re.fullmatch(r"Evaluation ID: [0-9a-f-]{36}", line) for line in out), out


def test_run_detach_false_still_watches(job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", "-detach=false", str(job_file)) == 0
    assert "==> job 'web': healthy" in capsys.readouterr().out


def test_run_output_prints_the_job_and_submits_nothing(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", "-output", str(job_file)) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["Job"]["ID"] == "web"
    assert out.startswith('{\n    "Job": {')  # json.MarshalIndent(req, "", "    ")
    assert requests.get(f"{nomad.url}/v1/jobs?namespace=*", timeout=10).json() == []


def test_run_inject_adds_the_envoy_sidecar_before_submitting(
        nomad: NomadEmulator, tmp_path: Path) -> None:
    path = tmp_path / "a.nomad.hcl"
    path.write_text((Path(__file__).parent.parent / "examples/jobs/service-a.nomad.hcl")
                    .read_text())
    assert nomadmesh("run", str(path), "--inject") == 0
    job = requests.get(f"{nomad.url}/v1/job/service-a", timeout=10).json()
    tasks = [t["Name"] for g in job["TaskGroups"] for t in g["Tasks"]]
    assert any("sidecar" in name or "envoy" in name for name in tasks)


def test_run_on_a_terminal_shows_a_live_table_of_group_progress(
        job_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the captured output as a terminal
    monkeypatch.setenv("COLUMNS", "120")
    assert nomadmesh("run", str(job_file)) == 0
    out = capsys.readouterr().out
    assert "job web" in out
    assert all(column in out for column in ("group", "healthy", "placed", "desired"))
    assert "    [evaluation]" not in out  # no plain lines on a terminal


# --- connection flags -----------------------------------------------------------------------


def test_address_flag_wins_over_nomad_addr(nomad: NomadEmulator, job_file: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", "http://127.0.0.1:9")
    assert nomadmesh("run", "-address", nomad.url, str(job_file)) == 0
    assert nomadmesh("status", f"-address={nomad.url}", "web") == 0


def test_a_token_given_as_a_flag_is_never_printed(
        job_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = "0f9c3a52-5a5e-4bd6-9b0c-token-on-the-command-line"
    monkeypatch.setenv("NOMAD_ADDR", "http://127.0.0.1:9")
    assert nomadmesh("status", "-token", secret, "web") == 1
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert nomadmesh("status", "--help") == 0
    assert secret not in capsys.readouterr().out


# --- status, history, stop, revert, dispatch ------------------------------------------------


def test_status_without_a_job_lists_jobs_as_nomad_does(
        job_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("status") == 0
    assert capsys.readouterr().out == "No running jobs\n"
    nomadmesh("run", str(job_file))
    thumbs = tmp_path / "thumbs.nomad.hcl"
    thumbs.write_text(PARAMETERIZED)
    nomadmesh("run", str(thumbs))
    capsys.readouterr()
    assert nomadmesh("status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert rows["web"] == ["service", "50", "running"]
    assert rows["thumbs"][0] == "batch/parameterized"


def test_status_json_is_nomads_json(job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("run", str(job_file))
    capsys.readouterr()
    assert nomadmesh("status", "-json", "web") == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert set(entry) == {"Summary", "Allocations", "LatestDeployment", "Evaluations"}
    assert entry["Summary"]["JobID"] == "web"
    assert len(entry["Allocations"]) == 2
    assert nomadmesh("status", "-json") == 0
    assert [e["Summary"]["JobID"] for e in json.loads(capsys.readouterr().out)] == ["web"]


def test_status_of_a_job_shows_summary_and_allocations_as_tables(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("run", str(job_file))
    capsys.readouterr()
    assert nomadmesh("status", "web") == 0
    out = capsys.readouterr().out
    assert re.search(r"^ID +\= web$", out, re.M)
    assert re.search(r"^Priority +\= 50$", out, re.M)
    assert re.search(r"^Namespace +\= default$", out, re.M)
    assert re.search(r"^Parameterized +\= false$", out, re.M)
    assert re.search(r"^Owner +\= nomadmesh", out, re.M)
    summary = out.split("\nSummary\n")[1].splitlines()
    assert summary[0].split() == ["Task", "Group", "Queued", "Starting", "Running", "Failed",
                                  "Complete", "Lost", "Unknown"]
    assert summary[1].split() == ["api", "0", "0", "2", "0", "0", "0", "0"]
    allocations = out.split("\nAllocations\n")[1].splitlines()
    assert len(allocations) == 3 and all(len(row.split()[0]) == 8 for row in allocations[1:])


def test_status_of_an_unknown_job_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("status", "nope") == 1
    assert "not found" in capsys.readouterr().err


def test_history_lists_versions_and_takes_json_and_version(
        job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("run", str(job_file))
    nomadmesh("run", str(job_file), "-var", "image=busybox:1.37")
    capsys.readouterr()
    assert nomadmesh("history", "web") == 0
    assert capsys.readouterr().out.startswith("Version 1")
    assert nomadmesh("history", "-json", "web") == 0
    assert [v["Version"] for v in json.loads(capsys.readouterr().out)] == [1, 0]
    assert nomadmesh("history", "-version", "0", "-json", "web") == 0
    assert [v["Version"] for v in json.loads(capsys.readouterr().out)] == [0]
    assert nomadmesh("history", "-p", "web") == 0
    assert '+/- image: "busybox:1.36" => "busybox:1.37"' in capsys.readouterr().out
    assert nomadmesh("history", "-version", "7", "web") == 1


def test_revert_and_stop_purge(job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("run", str(job_file))
    nomadmesh("run", str(job_file), "-var", "image=busybox:1.37")
    assert nomadmesh("revert", "web", "0") == 0
    assert nomadmesh("stop", "-purge", "-yes", "web") == 0
    assert "purged" in capsys.readouterr().out


def test_dispatch_passes_meta_and_prints_the_child_id(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "thumbs.nomad.hcl"
    path.write_text(PARAMETERIZED)
    assert nomadmesh("run", str(path)) == 0
    assert nomadmesh("dispatch", "-meta", "input=a.png", "thumbs") == 0
    assert "==> dispatched thumbs/dispatch-" in capsys.readouterr().out


def test_dispatch_meta_without_equals_is_an_error_exiting_1() -> None:
    assert nomadmesh("dispatch", "thumbs", "-meta", "input") == 1


# --- packs through the job verbs ------------------------------------------------------------


PACKS = Path(__file__).parent.parent / "examples" / "packs"


def test_plan_run_and_stop_take_a_pack_like_a_job_file(capsys: pytest.CaptureFixture[str]) -> None:
    pack = str(PACKS / "redis_cache")
    assert nomadmesh("plan", pack, "--name", "cache") == 1
    out = capsys.readouterr().out
    assert out.startswith("Pack redis-cache 1.0.0, deployment 'cache'\n\n+ Job: \"cache\"")
    assert nomadmesh("run", pack, "--name", "cache") == 0
    assert nomadmesh("plan", pack, "--name", "cache") == 0
    capsys.readouterr()
    assert nomadmesh("stop", pack, "--name", "cache") == 0
    assert "==> job 'cache' stopped" in capsys.readouterr().out


def test_prune_is_refused_for_a_plain_job_file(job_file: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file), "--prune") == 1
    assert "--prune applies to packs only" in capsys.readouterr().err


def test_tls_flags_verify_the_server_against_the_given_ca_and_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("server.global.nomad")  # Nomad's server name, not the address
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    with NomadEmulator(tls=(str(cert), str(key))) as secure:
        monkeypatch.setenv("NOMAD_ADDR", secure.url)
        capsys.readouterr()
        assert nomadmesh("status") == 1  # the system's CAs do not know this one
        assert nomadmesh("status", "-ca-cert", str(ca_file)) == 1  # issued for another name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
        assert nomadmesh("status", "-ca-cert", str(ca_file),
                         "-tls-server-name", "server.global.nomad") == 0
        assert capsys.readouterr().out == "No running jobs\n"


def test_namespace_flag_places_a_job_that_names_none(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", "-namespace", "team-a", "-detach", str(job_file)) == 0
    stubs = requests.get(f"{nomad.url}/v1/jobs?namespace=*", timeout=10).json()
    assert [(s["ID"], s["Namespace"]) for s in stubs] == [("web", "team-a")]
    capsys.readouterr()
    assert nomadmesh("status", "-namespace", "team-a", "web") == 0
    assert nomadmesh("status", "-namespace", "*") == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] == ["web", "team-a"]
