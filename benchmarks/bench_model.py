"""Model codec and copy costs against their bare baselines, measured in one run.

Run: python benchmarks/bench_model.py [--groups 500] [--tasks 3] [--repeat 21]
Targets (issue 12): from_api(json.loads(s)) <= 3x json.loads(s); json.dumps(to_api()) <= 2x
json.dumps of the same dict; copies cheap enough for inject <= 0.5x to_api on 500 groups.
Decoding is also timed on what `GET /v1/job/<id>` returns for the same job (the Nomad emulator's
answer: every structs field present), which is what `from_api` reads in use, and on the job with
every string and integer made distinct, so that no two of its blocks are equal (the decoder shares
equal blocks of scalar fields within a job; this is its cost when nothing repeats), and
validation (`validation.refusals`) on that job, whose blocks validation cannot share either.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _bench import big_job, rotated

from nomadmesh import Job
from nomadmesh.model import evolve, validation
from nomadmesh.testing import NomadEmulator


def got_text(job: Job) -> str:
    """The body of `GET /v1/job/<id>` once `job` is registered with the Nomad emulator."""
    with NomadEmulator() as nomad:
        nomad.register(job.to_api())
        with urllib.request.urlopen(f"{nomad.url}/v1/job/{job.id}", timeout=60) as reply:
            return reply.read().decode()


def all_distinct(value: Any, counter: Iterator[int]) -> Any:
    """`value` (JSON) with every string and integer value changed to one no other has."""
    if isinstance(value, dict):
        return {k: all_distinct(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [all_distinct(v, counter) for v in value]
    if type(value) is str:
        return f"{value}~{next(counter)}"
    if type(value) is int:
        return value + next(counter)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    job = big_job(args.groups, args.tasks)
    api = job.to_api()
    text = json.dumps(api)
    groups = job.groups

    decoded = Job.from_api(json.loads(text), validate=False)
    stored = validation.stored_for_rules(decoded)
    # The inputs above stay alive through every rotation: out of the collector's generations, a
    # full collection (which lands on whichever call crosses its threshold, different from one
    # tree to another) does not walk them, so no call is charged ~50 ms for them on some runs.
    gc.collect()
    gc.freeze()

    def copy_every_group_and_task() -> object:
        return evolve(job, groups=[evolve(g, tasks=[evolve(t, user="x") for t in g.tasks])
                                   for g in groups])

    dumps, encode, loads, decode, decode_only, to_api, copies, api_form, stored_form, rules = rotated([
        lambda: json.dumps(api),
        lambda: json.dumps(job.to_api()),
        lambda: json.loads(text),
        lambda: Job.from_api(json.loads(text)),
        lambda: Job.from_api(json.loads(text), validate=False),
        job.to_api,
        copy_every_group_and_task,
        # The parts of validation: the agent's canonical form, the stored form built from the
        # job (both canonical passes), Nomad's rules on the stored form.
        lambda: decoded.canonicalize(server=False),
        lambda: validation.stored_for_rules(decoded),
        lambda: validation.job_rules(stored, decoded.path),
    ], args.repeat)
    # A rotation of its own: in the one above, which call pays the collector's full collections
    # (one every few rounds, ~30 ms with these objects alive) depends on the order, and adding
    # these calls there moved them onto others.
    got = got_text(job)
    gc.collect()
    got_loads, got_decode = rotated([
        lambda: json.loads(got),
        lambda: Job.from_api(json.loads(got), validate=False),
    ], args.repeat)
    distinct = json.dumps(all_distinct(api, itertools.count(1)))
    # Its values break rules (from_api would raise): validation is timed as `refusals`, what
    # from_api adds to decoding, finding every problem.
    distinct_job = Job.from_api(json.loads(distinct), validate=False)
    gc.collect()
    distinct_loads, distinct_decode, distinct_rules = rotated([
        lambda: json.loads(distinct),
        lambda: Job.from_api(json.loads(distinct), validate=False),
        lambda: validation.refusals(distinct_job, distinct_job.path),
    ], args.repeat)
    objects = args.groups * (1 + args.tasks)
    print(f"job: {args.groups} groups x {args.tasks} tasks, {len(text) / 1e6:.2f} MB of JSON")
    print(f"json.dumps(dict)                     {dumps * 1e3:8.2f} ms")
    print(f"json.dumps(job.to_api())             {encode * 1e3:8.2f} ms   ratio {encode / dumps:.2f}x"
          "  (target <= 2x)")
    print(f"json.loads(s)                        {loads * 1e3:8.2f} ms")
    print(f"Job.from_api(json.loads(s))          {decode * 1e3:8.2f} ms   ratio {decode / loads:.2f}x"
          "  (target <= 3x, validation included)")
    print(f"Job.from_api(loads(s), validate=False){decode_only * 1e3:7.2f} ms   ratio "
          f"{decode_only / loads:.2f}x  (target <= 3x, decoding alone)")
    print(f"the job as GET /v1/job/<id> returns it: {len(got) / 1e6:.2f} MB of JSON")
    print(f"  json.loads(got)                    {got_loads * 1e3:8.2f} ms")
    print(f"  Job.from_api(loads(got), validate=False) {got_decode * 1e3:6.2f} ms   ratio "
          f"{got_decode / got_loads:.2f}x")
    print(f"the job with no two blocks equal: {len(distinct) / 1e6:.2f} MB of JSON")
    print(f"  json.loads(distinct)               {distinct_loads * 1e3:8.2f} ms")
    print(f"  Job.from_api(loads(distinct), validate=False) {distinct_decode * 1e3:6.2f} ms   ratio "
          f"{distinct_decode / distinct_loads:.2f}x")
    print(f"  validation.refusals (decoded job) {distinct_rules * 1e3:8.2f} ms   ratio "
          f"{distinct_rules / distinct_loads:.2f}x  "
          f"({len(validation.refusals(distinct_job, distinct_job.path))} problems)")
    print(f"job.to_api()                         {to_api * 1e3:8.2f} ms")
    print(f"evolve() of the job, each group, each task ({objects + 1} copies) "
          f"{copies * 1e3:8.2f} ms   {copies / to_api:.2f}x to_api, "
          f"{copies / (objects + 1) * 1e6:.2f} us per copy")
    print("validation's parts, on the decoded job (each / json.loads):")
    print(f"  job.canonicalize(server=False)     {api_form * 1e3:8.2f} ms   {api_form / loads:.2f}x")
    print(f"  stored_for_rules (both passes)     {stored_form * 1e3:8.2f} ms   {stored_form / loads:.2f}x")
    print(f"  job_rules on the stored job        {rules * 1e3:8.2f} ms   {rules / loads:.2f}x")


if __name__ == "__main__":
    main()
