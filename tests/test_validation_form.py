"""The form Nomad's rules are run on (`validation.stored_for_rules`, nomadmesh.model.server.for_rules)
is the job as the server stores it, but for the two defaults no rule reads: a port's host network
and a task's default workload identity. Checked on every example job and golden register body, on
random jobs that break rules in many ways, and on drawn jobs: the forms differ by exactly those
defaults, and the rules find the same problems, in the same order, on both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from nomadmesh.loader import load_all
from nomadmesh.model import Job, evolve, validation
from nomadmesh.model.server import _DEFAULT_IDENTITY, stored
from tests.example_files import job_files
from tests.model_fixtures import random_job
from tests.strategies import jobs

GOLDEN = Path(__file__).parent / "golden" / "register"


def _with_left_out_defaults(job: Job) -> Job:
    """The rules' form with the two defaults it leaves out put in, as the server's pass puts them."""
    def network(n: Any) -> Any:
        if all(p.host_network for p in n.ports):
            return n
        return evolve(n, ports=[p if p.host_network else evolve(p, host_network="default")
                                for p in n.ports])

    def task(t: Any) -> Any:
        if t.resources is not None and t.resources.networks:
            t = evolve(t, resources=evolve(t.resources, networks=[network(n)
                                                                  for n in t.resources.networks]))
        return t if t.identity is not None else evolve(t, identity=_DEFAULT_IDENTITY)

    return evolve(job, groups=[evolve(g, networks=[network(n) for n in g.networks],
                                      tasks=[task(t) for t in g.tasks]) for g in job.groups])


def _check(job: Job) -> Any:
    """Compare the forms and the rules' outcomes on them; return the outcome."""
    if validation.types(job, job.path):
        return None  # the rules run on well-typed jobs only
    api = job.canonicalize(server=False)
    full = stored(api, zero_fill=False)
    form = validation.stored_for_rules(job)
    assert _with_left_out_defaults(form) == full
    outcome = _outcome(form, job.path)
    assert outcome == _outcome(full, job.path)
    return outcome


def _outcome(form: Job, path: str) -> Any:
    """The rules' problems on `form`."""
    return validation.job_rules(form, path)


def _bodies() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in job_files():
        out += [(f"{path.name}:{j.id}", {"Job": j.to_api()}) for j in load_all(path)]
    for path in sorted(GOLDEN.glob("*.json")):
        out.append((path.name, json.loads(path.read_text())["body"]))
    return out


@pytest.mark.parametrize(("name", "body"), _bodies(), ids=lambda v: v if isinstance(v, str) else "")
def test_examples_and_golden_bodies(name: str, body: dict[str, Any]) -> None:
    _check(Job.from_api(body, validate=False, strict=False))


def test_random_jobs_that_break_many_rules() -> None:
    found = 0
    for seed in range(150):
        outcome = _check(random_job(seed))
        found += isinstance(outcome, list) and bool(outcome)
    assert found > 100  # most break some rule: the comparison covers rules that fire


@settings(max_examples=60, deadline=None)
@given(jobs())
def test_drawn_jobs(job: Job) -> None:
    _check(job)
