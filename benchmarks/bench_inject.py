"""Sidecar injection cost against the job's own Nomad JSON encoding, measured in one run.

Run: .venv/bin/python benchmarks/bench_inject.py [--groups 500] [--tasks 3] [--repeat 21]
Target (issue 5): inject() on a 500-group job costs at most 0.5x to_api() of the same job.
Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _bench import big_job, paired

from nomadmesh.mesh import Mesh, inject

TARGET = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    job = big_job(args.groups, args.tasks)
    mesh = Mesh()
    encode, injection = paired(job.to_api, lambda: inject(job, mesh), args.repeat)
    ratio = injection / encode
    print(f"job: {args.groups} groups x {args.tasks} tasks; every group meshed")
    print(f"job.to_api()                   {encode * 1e3:8.2f} ms")
    print(f"inject(job, mesh)              {injection * 1e3:8.2f} ms   ratio {ratio:.2f}x"
          f"  (target <= {TARGET}x)")
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
