"""What Nomad's validation of a decoded job costs, against json.loads of the same job, in one run.

Run: python benchmarks/bench_validation.py [--groups 500] [--tasks 3] [--repeat 15]
Goal (issue 12, point 6): validation (`validation.refusals`, what `Job.from_api` adds to decoding
by default) <= 3x json.loads(s) on the 500-group job, so that from_api with validation nears 5-6x.
The parts are validation's steps on the decoded job: the agent's canonical form, the form the rules
read (both canonical passes, `stored_for_rules`), the rules on that form.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _bench import big_job, rotated

from nomadmesh import Job
from nomadmesh._gc import collector_paused
from nomadmesh.model import validation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    text = json.dumps(big_job(args.groups, args.tasks).to_api())
    decoded = Job.from_api(json.loads(text), validate=False)
    path = decoded.path
    form = validation.stored_for_rules(decoded)

    def paused(function: Callable[[], object]) -> Callable[[], object]:
        """`function` with the cyclic collector paused, as `refusals` runs its steps."""
        def run() -> object:
            with collector_paused():
                return function()
        return run

    loads, refusals, full, decode_only, api_form, rules_form, rules = rotated([
        lambda: json.loads(text),
        lambda: validation.refusals(decoded, path),
        lambda: Job.from_api(json.loads(text)),
        lambda: Job.from_api(json.loads(text), validate=False),
        paused(lambda: decoded.canonicalize(server=False)),
        paused(lambda: validation.stored_for_rules(decoded)),
        paused(lambda: validation.job_rules(form, path)),
    ], args.repeat)
    print(f"job: {args.groups} groups x {args.tasks} tasks, {len(text) / 1e6:.2f} MB of JSON")
    print(f"json.loads(s)                          {loads * 1e3:8.2f} ms")
    print(f"validation.refusals(decoded job)       {refusals * 1e3:8.2f} ms   ratio "
          f"{refusals / loads:.2f}x  (goal <= 3x)")
    print(f"Job.from_api(json.loads(s))            {full * 1e3:8.2f} ms   ratio {full / loads:.2f}x")
    print(f"Job.from_api(loads(s), validate=False) {decode_only * 1e3:8.2f} ms   ratio "
          f"{decode_only / loads:.2f}x")
    print("validation's parts (each / json.loads):")
    print(f"  job.canonicalize(server=False)       {api_form * 1e3:8.2f} ms   {api_form / loads:.2f}x")
    print(f"  stored_for_rules (both passes)       {rules_form * 1e3:8.2f} ms   "
          f"{rules_form / loads:.2f}x")
    print(f"  job_rules on that form               {rules * 1e3:8.2f} ms   {rules / loads:.2f}x")


if __name__ == "__main__":
    main()
