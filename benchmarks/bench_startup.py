"""How long the `nomadmesh` command takes to start and finish, against the bare minimum (issue 15).

Each case is a fresh process, timed against a baseline process of the same kind, in rotation so
that machine load affects both alike (median of N rounds); each is reported in wall time (what
the targets are about) and in CPU time (user + system), which a loaded machine disturbs less:

1. `nomadmesh --help`                 vs `python -c pass`                       target <= 2x
2. `nomadmesh validate F` (offline)   vs the bare parse of F in a fresh python    target <= 1.3x
   `nomadmesh render F`               vs the same bare parse                      (reported)
3. `nomadmesh status JOB` (online)    vs `import nomad` + python-nomad's get_job  target <= 1.3x

The bare parse is nomadmesh's own HCL parser (`nomadmesh.hcl`) when it is installed, else
python-hcl2's `hcl2.loads`; both only parse, they build no job and check nothing.

Run: `.venv/bin/python benchmarks/bench_startup.py [--rounds N]`; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NOMADMESH = str(Path(PYTHON).with_name("nomadmesh"))
JOB_FILE = ROOT / "examples" / "jobs" / "web-canary.nomad.hcl"
Times = tuple[float, float]  # wall, CPU (seconds)


def bare_parse_code(path: Path) -> tuple[str, str]:
    """Python source that only parses `path` as HCL, and the parser's name."""
    if importlib.util.find_spec("nomadmesh.hcl") is not None:
        return (f"from nomadmesh.hcl import parse\nparse(open({str(path)!r}).read(), "
                f"filename={str(path)!r})", "nomadmesh.hcl.parse")
    return f"import hcl2\nhcl2.loads(open({str(path)!r}).read())", "hcl2.loads"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: Sequence[str], env: dict[str, str]) -> Times:
    """Wall time and CPU time (user + system) of one run of `argv`."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return elapsed, _children_cpu() - cpu


def rotated(cases: list[Sequence[str]], rounds: int, env: dict[str, str]) -> list[Times]:
    """Median wall and CPU time of each command, run in rotation (one warm-up round first)."""
    for argv in cases:
        timed(argv, env)
    samples: list[list[Times]] = [[] for _ in cases]
    for _ in range(rounds):
        for argv, out in zip(cases, samples, strict=True):
            out.append(timed(argv, env))
    return [(statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
            for s in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    rows: list[tuple[str, Times, str, Times, float | None]] = []

    base, help_ = rotated([[PYTHON, "-c", "pass"], [NOMADMESH, "--help"]], args.rounds, env)
    rows.append(("python -c pass", base, "nomadmesh --help", help_, 2.0))

    code, parser_name = bare_parse_code(JOB_FILE)
    base, validate, render = rotated([[PYTHON, "-c", code],
                                      [NOMADMESH, "validate", str(JOB_FILE)],
                                      [NOMADMESH, "render", str(JOB_FILE)]], args.rounds, env)
    rows.append((f"bare {parser_name}(F)", base, "nomadmesh validate F", validate, 1.3))
    rows.append((f"bare {parser_name}(F)", base, "nomadmesh render F", render, None))

    from nomadmesh.deploy import NomadClient
    from nomadmesh.loader import load
    from nomadmesh.testing import NodeSpec, NomadEmulator

    # F runs in node pool "web": the emulated nodes must be in it for the register to be admitted.
    nodes = [NodeSpec(f"web-node-{i}", node_pool="web") for i in (1, 2, 3)]
    with NomadEmulator(nodes=nodes) as nomad, NomadClient(nomad.url) as client:
        client.run(load(JOB_FILE), wait=False)
        env_online = {**env, "NOMAD_ADDR": nomad.url}
        python_nomad = ("import nomad\nnomad.Nomad(address="
                        f"{nomad.url!r}, timeout=10).job.get_job('web')")
        base, status = rotated([[PYTHON, "-c", python_nomad], [NOMADMESH, "status", "web"]],
                               args.rounds, env_online)
    rows.append(("python-nomad get_job", base, "nomadmesh status JOB", status, 1.3))

    missed = 0
    print(f"{len(rows)} cases, median of {args.rounds} rounds each, in rotation; F = "
          f"{JOB_FILE.relative_to(ROOT)}; wall time (the target) and CPU time (user + system, "
          "which other processes on the machine disturb less)")
    print(_generated_code_state(env))
    for base_name, (base_t, base_cpu), name, (t, cpu), target in rows:
        ratio = t / base_t
        verdict = "" if target is None else (
            f"(target <= {target}x) " + ("met" if ratio <= target else "MISSED"))
        missed += target is not None and ratio > target
        print(f"{base_name:<28} {base_t * 1e3:7.1f} ms   {name:<22} {t * 1e3:7.1f} ms   "
              f"ratio {ratio:4.2f}x {verdict}")
        print(f"{'':<28} {base_cpu * 1e3:7.1f} ms   {'(CPU)':<22} {cpu * 1e3:7.1f} ms   "
              f"ratio {cpu / base_cpu:4.2f}x")
    return 1 if missed else 0


def _generated_code_state(env: dict[str, str]) -> str:
    """Whether the model's generated code came compiled from its cache (`_base.compile_generated`):
    the runs above write it as Python writes byte code, so not under PYTHONDONTWRITEBYTECODE."""
    from nomadmesh.model import _base

    writes = "not written: PYTHONDONTWRITEBYTECODE is set" if env.get("PYTHONDONTWRITEBYTECODE") \
        else "written by the first run"
    entries = len(_base._read_generated())
    return f"generated-code cache: {entries} entries in {_base._CACHE_FILE} ({writes})"


if __name__ == "__main__":
    sys.exit(main())
