"""Property tests that ask Nomad's own code (nomad-api-oracle; required in CI, see nomad_oracle.py).

Jobs drawn from the whole model (every struct of Nomad's api package, any values of the right Go
types) are sent as register bodies in one `register --batch` process per example: Nomad must
decode each without a 400 or a dropped key, and its `api.Job.Canonicalize()` must be ours.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nomadmesh.model import Job, canonicalize
from nomadmesh.model.job import SERVER_FIELDS
from tests import nomad_oracle
from tests.go_form import job_form
from tests.strategies import any_of, jobs


@pytest.fixture(autouse=True)
def _oracle_required() -> None:
    nomad_oracle.oracle()


# Valid jobs draw many lists of uniquely named blocks; the rejected duplicates trip hypothesis's
# filter_too_much health check, which is about generation speed, not what is checked.
ORACLE = settings(max_examples=8, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.large_base_example,
                                         HealthCheck.filter_too_much])


@ORACLE
@given(st.lists(any_of(Job), min_size=4, max_size=8))
def test_nomad_decodes_every_job_the_model_encodes_and_canonicalizes_it_as_we_do(
        batch: list[Job]) -> None:
    answers = nomad_oracle.register([{"Job": job.to_api()} for job in batch])
    for job, answer in zip(batch, answers, strict=True):
        assert (answer["ok"], answer.get("error", ""), answer.get("unknown", "")) == (True, "", "")
        theirs = {k: v for k, v in answer["job"].items() if k not in SERVER_FIELDS}
        assert job_form(canonicalize(job, server=False).to_api()) == job_form(theirs)


@settings(ORACLE, max_examples=5)
@given(st.lists(jobs(), min_size=2, max_size=4))
def test_valid_jobs_survive_nomads_decoder_and_come_back_equal(batch: list[Job]) -> None:
    answers = nomad_oracle.register([{"Job": job.to_api()} for job in batch])
    for job, answer in zip(batch, answers, strict=True):
        assert answer["ok"] and not answer.get("unknown")
        back = Job.from_api(json.loads(json.dumps(answer["job"])), validate=False, strict=True)
        assert back == canonicalize(job, server=False)
