"""The emulator's jobspec side behind one module: decoding, admission, update kinds, diffs.

Everything the cluster needs to know about job JSON goes through these functions, shaped as
`nomadmesh.testing.nomad_api` (the emujob package) publishes them, so switching to that package
is one edit here. Until then they sit on the old `_jobspec`/`_diff` helpers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from nomadmesh.errors import InputError
from nomadmesh.testing import _diff, _jobspec

SERVER_FIELDS = _jobspec.SERVER_FIELDS


class NomadApiError(Exception):
    """An answer Nomad's agent or server gives to bad input: status and text/plain body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


multierror = _jobspec.multierror


@attrs.frozen
class RegisterRequest:
    """A decoded `api.JobRegisterRequest`."""

    job: dict[str, Any] | None
    enforce_index: bool = False
    job_modify_index: int = 0
    policy_override: bool = False
    preserve_counts: bool = False
    preserve_resources: bool = False
    eval_priority: int = 0
    submission: dict[str, Any] | None = None


@attrs.frozen
class PlanRequest:
    """A decoded `api.JobPlanRequest`."""

    job: dict[str, Any] | None
    diff: bool = False
    policy_override: bool = False


@attrs.frozen
class DispatchRequest:
    """A decoded `api.JobDispatchRequest`."""

    payload: bytes = b""
    meta: dict[str, str] = attrs.Factory(dict)
    idempotency_token: str = ""


@attrs.frozen
class Admitted:
    """A job the server accepted: structs JSON with server fields zeroed, and its warnings."""

    job: dict[str, Any]
    warnings: str = ""


@attrs.frozen
class Dispatched:
    """A dispatch: the child job, and whether it is new (False: the idempotent earlier one)."""

    job: dict[str, Any]
    created: bool


def _object(raw: bytes, what: str) -> dict[str, Any]:
    if not raw.strip():
        raise NomadApiError(400, "Request body is empty")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise NomadApiError(400, f"invalid character in request body: {exc}") from None
    if not isinstance(body, dict):
        raise NomadApiError(400, f"json: cannot unmarshal {_json_kind(body)} into Go value "
                                 f"of type {what}")
    return body


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "bool", type(None): "null"}.get(
        type(value), "number")


def _job_of(body: Mapping[str, Any]) -> dict[str, Any] | None:
    job = body.get("Job")
    if job is not None and not isinstance(job, dict):
        raise NomadApiError(400, f"json: cannot unmarshal {_json_kind(job)} into Go struct "
                                 "field JobRegisterRequest.Job of type api.Job")
    return job


def decode_register(raw: bytes) -> RegisterRequest:
    """A register body (`POST /v1/jobs`, `/v1/job/<id>`)."""
    body = _object(raw, "api.JobRegisterRequest")
    submission = body.get("Submission")
    return RegisterRequest(
        job=_job_of(body), enforce_index=bool(body.get("EnforceIndex")),
        job_modify_index=int(body.get("JobModifyIndex") or 0),
        policy_override=bool(body.get("PolicyOverride")),
        preserve_counts=bool(body.get("PreserveCounts")),
        preserve_resources=bool(body.get("PreserveResources")),
        eval_priority=int(body.get("EvalPriority") or 0),
        submission=submission if isinstance(submission, dict) else None)


def decode_plan(raw: bytes) -> PlanRequest:
    """A plan body (`POST /v1/job/<id>/plan`)."""
    body = _object(raw, "api.JobPlanRequest")
    return PlanRequest(job=_job_of(body), diff=bool(body.get("Diff")),
                       policy_override=bool(body.get("PolicyOverride")))


def decode_validate(raw: bytes) -> dict[str, Any] | None:
    """The Job of a `/v1/validate/job` body."""
    return _job_of(_object(raw, "api.JobValidateRequest"))


def decode_dispatch(raw: bytes) -> DispatchRequest:
    """A dispatch body (`POST /v1/job/<id>/dispatch`)."""
    body = _object(raw, "api.JobDispatchRequest") if raw.strip() else {}
    payload = body.get("Payload") or ""
    try:
        data = base64.b64decode(payload) if payload else b""
    except ValueError:
        raise NomadApiError(400, "illegal base64 data in Payload") from None
    return DispatchRequest(payload=data, meta=dict(body.get("Meta") or {}),
                           idempotency_token=str(body.get("IdempotencyToken") or ""))


def admit(job: dict[str, Any] | None, *, path_id: str | None = None,
          previous: dict[str, Any] | None = None, region: str = "global") -> Admitted:
    """The agent's checks (400), canonicalization and validation (500)."""
    if job is None:
        raise NomadApiError(400, "Job must be specified")
    if not job.get("ID"):
        raise NomadApiError(400, "Job ID hasn't been provided")
    if path_id is not None and job["ID"] != path_id:
        raise NomadApiError(400, "Job ID does not match name")
    errors = _jobspec.problems(job)
    if errors:
        raise NomadApiError(500, multierror(errors))
    canonical = _jobspec.canonical(job)
    if previous is not None and previous["Type"] != canonical["Type"]:
        raise NomadApiError(500, f'cannot update job from type "{previous["Type"]}" to '
                                 f'"{canonical["Type"]}"')
    canonical.update(Status="", StatusDescription="", Stable=False, Version=0, SubmitTime=0,
                     CreateIndex=0, ModifyIndex=0, JobModifyIndex=0)
    canonical.setdefault("Stop", False)
    return Admitted(canonical)


def validate_response(job: dict[str, Any] | None) -> dict[str, Any]:
    """The 200 body of `/v1/validate/job`."""
    if job is None:
        raise NomadApiError(400, "Job must be specified")
    errors = _jobspec.problems(job)
    return {"DriverConfigValidated": True, "ValidationErrors": errors or None,
            "Error": multierror(errors) if errors else "", "Warnings": ""}


def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """structs.Job.SpecChanged: whether a register makes a new version."""
    return bool(old.get("Stop")) != bool(new.get("Stop")) or (
        _jobspec.spec_of(old) != _jobspec.spec_of(new))


def update_kind(old: Mapping[str, Any], new: Mapping[str, Any], group: str) -> str:
    """"ignore", "inplace" or "destructive" for the group's allocations (scheduler/util.go)."""
    old_group = _group(old, group)
    new_group = _group(new, group)
    if old_group is not None and new_group is not None and _meta(old, old_group) != _meta(
            new, new_group):
        return "destructive"
    kind = _diff.update_kind(old_group, new_group)
    return "ignore" if kind == "none" else kind


def _group(job: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    return next((g for g in job.get("TaskGroups") or () if g.get("Name") == name), None)


def _meta(job: Mapping[str, Any], group: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{**(job.get("Meta") or {}), **(group.get("Meta") or {}), **(t.get("Meta") or {})}
            for t in group.get("Tasks") or ()]


def plan_diff(old: dict[str, Any] | None, new: dict[str, Any], *, contextual: bool,
              desired_updates: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The plan's Diff with annotate.go's group annotations."""
    names = {"Place": "create", "Stop": "destroy", "InPlaceUpdate": "in-place update",
             "DestructiveUpdate": "create/destroy update", "Canary": "canary",
             "Ignore": "ignore", "Migrate": "migrate"}
    return _diff.diff_job(old, new, {
        g: {names[k]: v for k, v in counts.items() if k in names}
        for g, counts in desired_updates.items()})


def next_launch(job: Mapping[str, Any], after: datetime) -> datetime | None:
    """NextPeriodicLaunch (not computed until the nomad_api package lands)."""
    return None


def periodic_child(parent: Mapping[str, Any], launch: datetime) -> dict[str, Any]:
    """The child a periodic launch registers: `<id>/periodic-<unix>`."""
    child_id = f"{parent['ID']}/periodic-{int(launch.timestamp())}"
    child = _spec(parent)
    child.update(ID=child_id, Name=child_id, ParentID=parent["ID"], Periodic=None)
    return child


def dispatch(parent: Mapping[str, Any], request: DispatchRequest, *, now: datetime,
             children: Iterable[Mapping[str, Any]]) -> Dispatched:
    """Job.Dispatch's checks and the child job (nomad/job_endpoint.go)."""
    params = parent.get("ParameterizedJob")
    if not params:
        raise NomadApiError(500, f'Specified job "{parent["ID"]}" is not a parameterized job')
    if parent.get("Stop"):
        raise NomadApiError(500, f'Specified job "{parent["ID"]}" is stopped')
    required = list(params.get("MetaRequired") or [])
    missing = [k for k in required if k not in request.meta]
    if missing:
        raise NomadApiError(500, f"Dispatch did not provide required meta keys: {missing}")
    allowed = set(required) | set(params.get("MetaOptional") or [])
    unpermitted = sorted(k for k in request.meta if k not in allowed)
    if unpermitted:
        raise NomadApiError(500, f"Dispatch specified unpermitted meta keys: {unpermitted}")
    if params.get("Payload") == "required" and not request.payload:
        raise NomadApiError(500, "Payload is not provided but required by parameterized job")
    if params.get("Payload") == "forbidden" and request.payload:
        raise NomadApiError(500, "Payload provided but forbidden by parameterized job")
    if request.idempotency_token:
        for child in children:
            if (child.get("DispatchIdempotencyToken") == request.idempotency_token
                    and child.get("Status") != "dead"):
                return Dispatched(dict(child), created=False)
    child_id = f"{parent['ID']}/dispatch-{int(now.timestamp())}-{uuid.uuid4().hex[:8]}"
    child = _spec(parent)
    child.update(ID=child_id, Name=child_id, ParentID=parent["ID"], Dispatched=True,
                 Meta={**(parent.get("Meta") or {}), **request.meta},
                 Payload=base64.b64encode(request.payload).decode() if request.payload else None,
                 DispatchIdempotencyToken=request.idempotency_token)
    return Dispatched(child, created=True)


def _spec(job: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in SERVER_FIELDS}


def parse_hcl(body: bytes) -> dict[str, Any]:
    """`/v1/jobs/parse` (through the client's model until the nomad_api package lands)."""
    request = _object(body, "api.JobsParseRequest")
    if not isinstance(request.get("JobHCL"), str):
        raise NomadApiError(400, "Job HCL must be specified")
    variables = request.get("Variables")
    if isinstance(variables, str):
        variables = {k.strip(): v.strip().strip('"') for k, sep, v in
                     (line.partition("=") for line in variables.splitlines()) if sep}
    try:
        return _jobspec.parse_hcl(request["JobHCL"], variables or None,
                                  bool(request.get("Canonicalize")))
    except InputError as exc:
        raise NomadApiError(400, str(exc)) from exc


def unix_now() -> datetime:
    """Now, for `dispatch` and `periodic_child`."""
    return datetime.fromtimestamp(time.time()).astimezone()
