"""Periodic launches and dispatch as Nomad computes and checks them.

Cron cases reproduce hashicorp/cronexpr v1.1.3's cronexpr_test.go (crontests, TestZero,
TestPeriodicConfig_DSTChange_Transitions), the cron library Nomad 2.0.6 uses; dispatch cases follow
nomad/job_endpoint.go:1984 Job.Dispatch and :2132 validateDispatchRequest.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nomadmesh.testing.nomad_api import (
    NomadApiError,
    admit,
    check_register,
    decode_dispatch,
    decode_register,
    dispatch,
    next_launch,
    periodic_child,
    snappy_decode,
)
from nomadmesh.testing.nomad_api.periodic import CronError, cron_next, parse_cron

UTC = timezone.utc
LA = ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(("spec", "start", "expected"), [
    ("* * * * * * *", "2013-01-01 00:00:59", "2013-01-01 00:01:00"),
    ("*/5 * * * * * *", "2013-01-01 00:00:00", "2013-01-01 00:00:05"),
    ("* * * * *", "2016-02-28 23:59:00", "2016-02-29 00:00:00"),
    ("17-43/5 * * * *", "2013-01-01 00:30:00", "2013-01-01 00:32:00"),
    ("15-30/4,55 * * * *", "2013-01-01 00:16:00", "2013-01-01 00:19:00"),
    ("0 0 * * MON", "2013-12-30 00:30:00", "2014-01-06 00:00:00"),
    ("0 0 * * friday", "2013-01-28 00:00:00", "2013-02-01 00:00:00"),
    ("0 0 * * 6,7", "2013-01-01 00:00:00", "2013-01-05 00:00:00"),
    ("0 0 * * 5-7", "2013-12-30 00:30:00", "2014-01-03 00:00:00"),
    ("0 0 * * 6#5", "2013-09-02 00:00:00", "2013-11-30 00:00:00"),
    ("0 0 14W * *", "2013-08-31 00:00:00", "2013-09-13 00:00:00"),
    ("0 0 30W * *", "2013-06-02 00:00:00", "2013-06-28 00:00:00"),
    ("0 0 L * *", "2014-02-01 00:00:00", "2014-02-28 00:00:00"),
    ("0 0 LW * *", "2013-11-02 00:00:00", "2013-11-29 00:00:00"),
    ("0 0 * 04 * *", "2014-08-15 00:00:00", "2015-04-01 00:00:00"),
])
def test_cron_next_matches_cronexprs_tests(spec: str, start: str, expected: str) -> None:
    got = cron_next(parse_cron(spec), datetime.fromisoformat(start).replace(tzinfo=UTC))
    assert got == datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_a_year_in_the_past_never_runs() -> None:
    # cronexpr_test.go TestZero
    assert cron_next(parse_cron("* * * * * 1980"), datetime(2013, 8, 31, tzinfo=UTC)) is None
    assert cron_next(parse_cron("* * * * * 2050"), datetime(2013, 8, 31, tzinfo=UTC)) is not None


def _run(spec: str, start: datetime, n: int) -> list[datetime]:
    out, moment = [], start
    for _ in range(n):
        moment = cron_next(parse_cron(spec), moment)  # type: ignore[assignment]
        out.append(moment.astimezone(UTC))
    return out


def test_a_time_skipped_by_spring_forward_does_not_run() -> None:
    # TestPeriodicConfig_DSTChange_Transitions "Spring forward at a skipped time odd"
    got = _run("2 2 * * * 2019", datetime(2019, 3, 9, 1, tzinfo=LA), 3)
    assert got == [datetime(2019, 3, 9, 2, 2, tzinfo=LA).astimezone(UTC),
                   datetime(2019, 3, 11, 2, 2, tzinfo=LA).astimezone(UTC),
                   datetime(2019, 3, 12, 2, 2, tzinfo=LA).astimezone(UTC)]


def test_a_time_repeated_by_fall_back_runs_twice() -> None:
    # TestPeriodicConfig_DSTChange_Transitions "Fall back: in repeated region"
    base = datetime(2019, 11, 3, 0, 30, tzinfo=LA).astimezone(UTC)
    got = _run("30 1 * * * 2019", datetime(2019, 11, 3, 0, 0, tzinfo=LA), 3)
    assert got == [base + timedelta(hours=1), base + timedelta(hours=2),
                   datetime(2019, 11, 4, 1, 30, tzinfo=LA).astimezone(UTC)]


@pytest.mark.parametrize(("spec", "text"), [
    ("* * *", "missing field(s)"),
    ("61 * * * *", "syntax error in minute field: '61'"),
    ("*/0 * * * *", "invalid interval */0"),
    ("0 0 32 * *", "syntax error in day-of-month field: '32'"),
    ("0 0 * * 9", "syntax error in day-of-week field: '9'"),
])
def test_cron_errors_are_cronexprs_texts(spec: str, text: str) -> None:
    with pytest.raises(CronError) as err:
        parse_cron(spec)
    assert str(err.value) == text


def periodic_job(**periodic: Any) -> dict[str, Any]:
    job = {"ID": "nightly", "Type": "batch", "Periodic": periodic, "TaskGroups": [
        {"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x"}}]}]}
    req = decode_register(json.dumps({"Job": job}).encode())
    return admit(check_register(req, None)).job


def test_next_launch_uses_the_jobs_time_zone() -> None:
    # nomad/periodic.go:217 job.Periodic.Next(now.In(location))
    job = periodic_job(Spec="0 3 * * *", TimeZone="America/Los_Angeles")
    launch = next_launch(job, datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    assert launch is not None
    assert launch.astimezone(UTC) == datetime(2026, 1, 11, 11, 0, tzinfo=UTC)


def test_next_launch_of_several_specs_is_the_earliest() -> None:
    # nomad/structs/structs.go:5985 PeriodicConfig.Next over Specs
    job = periodic_job(Specs=["0 12 * * *", "30 6 * * *"])
    launch = next_launch(job, datetime(2026, 1, 10, 7, 0, tzinfo=UTC))
    assert launch == datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    disabled = periodic_job(Spec="0 12 * * *", Enabled=False)
    assert next_launch(disabled, datetime(2026, 1, 10, tzinfo=UTC)) is None


def test_periodic_child_is_named_by_launch_time() -> None:
    # nomad/periodic.go:410 deriveJob
    parent = periodic_job(Spec="0 3 * * *")
    child = periodic_child(parent, datetime(2026, 1, 11, 3, 0, tzinfo=UTC))
    assert (child["ID"], child["Name"], child["ParentID"], child["Periodic"]) == (
        "nightly/periodic-1768100400", "nightly/periodic-1768100400", "nightly", None)


def parameterized(**config: Any) -> dict[str, Any]:
    job = {"ID": "thumbs", "Type": "batch", "ParameterizedJob": config, "TaskGroups": [
        {"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x"}}]}]}
    return admit(check_register(decode_register(json.dumps({"Job": job}).encode()), None)).job


NOW = datetime(2026, 1, 11, 3, 0, tzinfo=UTC)


def dispatch_body(**fields: Any) -> Any:
    return decode_dispatch(json.dumps(fields).encode(), "thumbs")


@pytest.mark.parametrize(("config", "request_fields", "text"), [
    ({"Payload": "required"}, {}, "Payload is not provided but required by parameterized job"),
    ({"Payload": "forbidden"}, {"Payload": "aGk="},
     "Payload provided but forbidden by parameterized job"),
    ({"MetaRequired": ["size"]}, {}, "Dispatch did not provide required meta keys: [size]"),
    ({"MetaOptional": ["a"]}, {"Meta": {"b": "1", "c": "2"}},
     "Dispatch request included unpermitted metadata keys: [b c]"),
])
def test_dispatch_checks_are_nomads(config: dict[str, Any], request_fields: dict[str, Any],
                                    text: str) -> None:
    with pytest.raises(NomadApiError) as err:
        dispatch(parameterized(**config), dispatch_body(**request_fields), now=NOW, children=[])
    assert (err.value.status, err.value.text) == (500, text)


def test_dispatch_of_unknown_or_plain_job() -> None:
    with pytest.raises(NomadApiError, match=r"^parameterized job not found$"):
        dispatch(None, dispatch_body(), now=NOW, children=[])
    plain = periodic_job(Spec="0 3 * * *")
    request = decode_dispatch(b"{}", "nightly")
    with pytest.raises(NomadApiError, match=r'^Specified job "nightly" is not a parameterized'):
        dispatch(plain, request, now=NOW, children=[])


def test_dispatch_child_carries_meta_payload_and_token() -> None:
    parent = parameterized(MetaOptional=["size"])
    done = dispatch(parent, dispatch_body(Meta={"size": "L"}, Payload="aGk=",
                                          IdempotencyToken="t-1"), now=NOW, children=[])
    child = done.job
    assert done.created
    assert child["ID"].startswith("thumbs/dispatch-1768100400-")
    assert (child["ParentID"], child["Dispatched"], child["Meta"]["size"]) == (
        "thumbs", True, "L")
    assert child["DispatchIdempotencyToken"] == "t-1"
    assert snappy_decode(child["Payload"]) == b"hi"  # stored snappy-compressed (:2087)
    again = dispatch(parent, dispatch_body(Meta={"size": "L"}, IdempotencyToken="t-1"),
                     now=NOW, children=[child])
    assert (again.created, again.job["ID"]) == (False, child["ID"])
