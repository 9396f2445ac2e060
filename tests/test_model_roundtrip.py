"""Property tests: every generated job survives the JSON and HCL codecs unchanged."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from nomadmesh.model import Job
from tests.strategies import jobs

ROUND_TRIP = settings(max_examples=50, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUND_TRIP
@given(jobs())
def test_generated_jobs_are_valid(job: Job) -> None:
    assert job.problems_list() == []


@ROUND_TRIP
@given(jobs())
def test_api_json_round_trip_returns_the_same_job(job: Job) -> None:
    assert Job.from_api(job.to_api()) == job


@ROUND_TRIP
@given(jobs())
def test_api_json_survives_serialization_to_text(job: Job) -> None:
    assert Job.from_api(json.loads(json.dumps(job.to_api()))) == job


@ROUND_TRIP
@given(jobs())
def test_hcl_round_trip_returns_the_same_job(job: Job) -> None:
    assert Job.from_hcl(job.to_hcl()) == job


@ROUND_TRIP
@given(jobs())
def test_hcl_and_json_agree_on_every_job(job: Job) -> None:
    from_hcl = Job.from_hcl(job.to_hcl())
    assert Job.from_api(json.loads(json.dumps(from_hcl.to_api()))).to_hcl() == job.to_hcl()
