"""Property tests: every job survives Nomad's JSON unchanged, through text too."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from nomadmesh.model import Job
from tests.strategies import any_of, jobs

ROUND_TRIP = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.filter_too_much])


@ROUND_TRIP
@given(jobs())
def test_generated_jobs_are_valid(job: Job) -> None:
    assert job.problems_list() == []


@ROUND_TRIP
@given(jobs())
def test_api_json_round_trip_returns_the_same_job(job: Job) -> None:
    assert Job.from_api(job.to_api()) == job


@ROUND_TRIP
@given(any_of(Job))
def test_any_job_of_the_whole_model_survives_json_text(job: Job) -> None:
    assert Job.from_api(json.loads(json.dumps(job.to_api())), validate=False) == job


@ROUND_TRIP
@given(any_of(Job))
def test_any_job_hashes_like_an_equal_copy(job: Job) -> None:
    copy = Job.from_api(job.to_api(), validate=False)
    assert hash(copy) == hash(job)
