"""Model codec costs against their bare-JSON baselines, measured in one run.

Run: python benchmarks/bench_model.py [--groups 500] [--repeat 21]
Targets (issue 2): to_api()+dumps <= 3x dumps alone; from_api(loads(s)) <= 5x loads(s) alone;
Job.from_hcl <= 1.2x bare hcl2.loads over the example job files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import hcl2
from _bench import big_job, paired

from nomadmesh import Job

EXAMPLES = Path(__file__).parent.parent / "examples" / "jobs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    job = big_job(args.groups, args.tasks)
    api = job.to_api()
    text = json.dumps(api)

    dumps_only, encode = paired(lambda: json.dumps(api), lambda: json.dumps(job.to_api()),
                                args.repeat)
    loads_only, decode = paired(lambda: json.loads(text),
                                lambda: Job.from_api(json.loads(text)), args.repeat)

    print(f"job: {args.groups} groups x {args.tasks} tasks, {len(text) / 1e6:.2f} MB of JSON")
    print(f"json.dumps(dict)               {dumps_only * 1e3:8.2f} ms")
    print(f"json.dumps(job.to_api())       {encode * 1e3:8.2f} ms   ratio {encode / dumps_only:.2f}x"
          "  (target <= 3x)")
    print(f"json.loads(s)                  {loads_only * 1e3:8.2f} ms")
    print(f"Job.from_api(json.loads(s))    {decode * 1e3:8.2f} ms   ratio {decode / loads_only:.2f}x"
          "  (target <= 5x, validation included)")

    # Files without variables, so both sides parse exactly the same text.
    texts = [p.read_text() for p in sorted(EXAMPLES.rglob("*.nomad.hcl"))
             if "variable" not in p.read_text()]
    bare, ours = paired(lambda: [hcl2.loads(t) for t in texts],
                        lambda: [Job.from_hcl(t) for t in texts], args.repeat)
    print(f"hcl2.loads x {len(texts)} files          {bare * 1e3:8.2f} ms")
    print(f"Job.from_hcl x {len(texts)} files        {ours * 1e3:8.2f} ms   ratio {ours / bare:.2f}x"
          "  (target <= 1.2x, validation included)")


if __name__ == "__main__":
    main()
