"""HCL job files: nomadmesh.hcl and nomadmesh.load against Nomad's own parser process.

Run: python benchmarks/bench_hcl.py [--groups 1,10,100,1000] [--repeat 5]

For each size, a job file of that many groups (benchmarks/_bench.big_job, 3 tasks a group,
written with nomadmesh.hcl.write_job) is timed, in rotation so load affects all alike:
  oracle  - `nomad-api-oracle parse FILE`, a process: Nomad's jobspec2 + JSON output
  parse   - nomadmesh.hcl.parse(text): HCL -> API JSON (our part)
  load    - nomadmesh.load(FILE): read + parse + Job.from_api + validation (the whole)
Target (issue 12): load <= 2x the oracle process at every size. Prints the medians and ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._bench import big_job, rotated  # noqa: E402
from nomadmesh.hcl import parse, write_job  # noqa: E402
from nomadmesh.loader import load  # noqa: E402
from tests.nomad_oracle import oracle_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="1,10,100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    binary = oracle_path()
    if not binary.is_file():
        sys.exit(f"nomad-api-oracle not found at {binary} (set NOMAD_API_ORACLE)")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for groups in (int(g) for g in args.groups.split(",")):
            path = Path(tmp) / f"big-{groups}.nomad.hcl"
            path.write_text(write_job(big_job(groups, 3).to_api()))
            text = path.read_text()

            def oracle(path: Path = path) -> object:
                return subprocess.run(
                    [str(binary), "parse", path.name], cwd=path.parent, check=True, capture_output=True
                )

            def ours(text: str = text, path: Path = path) -> object:
                return parse(text, filename=path.name, environ={})

            def whole(path: Path = path) -> object:
                return load(path)

            repeat = args.repeat if groups <= 100 else max(3, args.repeat // 2)
            t_oracle, t_parse, t_load = rotated([oracle, ours, whole], repeat)
            ratio = t_load / t_oracle
            worst = max(worst, ratio)
            print(
                f"{groups:5d} groups {len(text) / 1e3:9.1f} kB   oracle {t_oracle * 1e3:8.1f} ms   "
                f"parse {t_parse * 1e3:8.1f} ms ({t_parse / t_oracle:4.2f}x)   "
                f"load {t_load * 1e3:8.1f} ms ({ratio:4.2f}x)"
            )
    print(f"worst load/oracle ratio {worst:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
