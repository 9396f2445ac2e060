"""The fuzz suite (issue 16): 20,000 mutated cases per entry point, none raising anything but a
nomadmesh error, hanging or running out of memory.

Each entry point runs `tests/fuzzing.py` in its own process (memory capped at 3 GiB, 10 s per
case, a fixed seed so that a failure reproduces: `python tests/fuzzing.py TARGET --seed 20261202
--replay N`), two at a time on the machine's two cores; each test waits for its own entry point's
report. The budget: every entry point must finish its 20,000 cases within TARGET_SECONDS (300 s),
a stuck process is killed 120 s later and named with the case it was on; the whole suite took
3.5 to 7 minutes of wall time on the 2-core development machine under varying load. FUZZ_CASES
and FUZZ_SEED change the run (e.g. a longer one with another seed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

FUZZER = Path(__file__).with_name("fuzzing.py")
CASES = int(os.environ.get("FUZZ_CASES", "20000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
TARGET_SECONDS = 300  # each entry point's cases must finish within this (the CI budget)
TARGETS = ("hcl-file", "json-file", "job-from-api", "mesh-settings", "pack-var-file",
           "var-values", "cli-argv", "emulator-http", "xds-snapshot-file")


def run_target(target: str, workdir: Path) -> dict[str, Any]:
    """One entry point's report; a process that had to be killed names the case it was on."""
    progress = workdir / f"{target}.progress"
    command = [sys.executable, str(FUZZER), target, "--cases", str(CASES), "--seed", str(SEED),
               "--budget", str(TARGET_SECONDS), "--json", "--progress", str(progress)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=TARGET_SECONDS + 120)
    except subprocess.TimeoutExpired:
        number = progress.read_text().strip() if progress.exists() else "?"
        return {"target": target, "cases": -1, "crashes": [{
            "signature": "the fuzz process hung", "count": 1,
            "message": f"killed on case {number}",
            "reproducer": f"python {FUZZER} {target} --seed {SEED} --replay {number}"}]}
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"target": target, "cases": -1, "crashes": [{
            "signature": f"the fuzz process died ({done.returncode})", "count": 1,
            "message": done.stderr[-3000:], "reproducer": ""}]}
    report: dict[str, Any] = json.loads(lines[-1])
    return report


@pytest.fixture(scope="session")
def fuzz_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Any]]]:
    """Every entry point started at once, two processes at a time."""
    workdir = tmp_path_factory.mktemp("fuzz")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {t: pool.submit(run_target, t, workdir) for t in TARGETS}


def explain(report: dict[str, Any]) -> str:
    return "\n".join(f"* {c['signature']} ({c['count']}x): {c['message'][:300]}\n"
                     f"  reproducer: {c['reproducer'][:600]}" for c in report["crashes"])


@pytest.mark.timeout(len(TARGETS) * (TARGET_SECONDS + 150))
@pytest.mark.parametrize("target", TARGETS)
def test_no_input_escapes_the_nomadmesh_error_hierarchy(
        fuzz_reports: dict[str, Future[Any]], target: str) -> None:
    report = fuzz_reports[target].result()
    assert not report["crashes"], f"{target}: {len(report['crashes'])} crash group(s)\n" \
        + explain(report)
    assert report["cases"] == CASES, (
        f"{target}: only {report['cases']} of {CASES} cases within {TARGET_SECONDS} s")
