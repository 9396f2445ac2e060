"""The agent's side of a job request: decode the body, check what the HTTP handler checks.

Each function mirrors a handler of command/agent/job_endpoint.go at aa026cc; the job it returns is
the api job as decoded (every field, `None` for nil), ready for `admit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nomadmesh.testing.nomad_api.errors import NomadApiError
from nomadmesh.testing.nomad_api.gojson import decode

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """A decoded `api.JobRegisterRequest` (api/jobs.go:1482)."""

    job: Obj | None
    enforce_index: bool
    job_modify_index: int
    policy_override: bool
    preserve_counts: bool
    preserve_resources: bool
    eval_priority: int
    submission: Obj | None
    region: str
    namespace: str


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """A decoded `api.JobPlanRequest` (api/jobs.go:1527)."""

    job: Obj
    diff: bool
    policy_override: bool


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """A decoded dispatch body (`structs.JobDispatchRequest`, nomad/structs/structs.go:927)."""

    job_id: str
    payload: bytes
    meta: dict[str, str]
    idempotency_token: str
    id_prefix_template: str
    priority: int


def _decode_body(raw: bytes, struct: str) -> Obj:
    """command/agent/http.go:870 decodeBody: a request without a body is refused first."""
    if not raw:
        raise NomadApiError(400, "Request body is empty")
    return decode(raw, struct)


def decode_register(raw: bytes) -> RegisterRequest:
    """Decode a register body as job_endpoint.go:555 jobUpdate does (400 on a bad body)."""
    body = _decode_body(raw, "JobRegisterRequest")
    return RegisterRequest(
        job=body["Job"], enforce_index=body["EnforceIndex"],
        job_modify_index=body["JobModifyIndex"], policy_override=body["PolicyOverride"],
        preserve_counts=body["PreserveCounts"], preserve_resources=body["PreserveResources"],
        eval_priority=body["EvalPriority"], submission=body["Submission"],
        region=body["Region"], namespace=body["Namespace"])


def check_register(request: RegisterRequest, path_id: str | None) -> Obj:
    """jobUpdate's checks before it converts the job (job_endpoint.go:558-590): the job or a 400."""
    job = request.job
    if job is None:
        raise NomadApiError(400, "Job must be specified")
    if job["ID"] is None:
        raise NomadApiError(400, "Job ID hasn't been provided")
    if path_id and job["ID"] != path_id:
        raise NomadApiError(400, "Job ID does not match name")
    if job["Type"] == "system":
        for tg in job["TaskGroups"] or ():
            if tg["Scaling"] is not None:
                raise NomadApiError(
                    400, "Task groups with job type system do not support scaling blocks")
    if request.eval_priority != 0 and not 1 <= request.eval_priority <= 100:
        # job_endpoint.go:2328 validateEvalPriorityOpt
        raise NomadApiError(400, "Eval priority must be between 1 and 100 inclusively")
    return job


def decode_plan(raw: bytes, path_id: str | None = None) -> PlanRequest:
    """Decode and check a plan body as job_endpoint.go:171 jobPlan does."""
    body = _decode_body(raw, "JobPlanRequest")
    job = body["Job"]
    if job is None:
        raise NomadApiError(400, "Job must be specified")
    if job["ID"] is None:
        raise NomadApiError(400, "Job must have a valid ID")
    if path_id and job["ID"] != path_id:
        raise NomadApiError(400, "Job ID does not match")
    return PlanRequest(job=job, diff=body["Diff"], policy_override=body["PolicyOverride"])


def decode_validate(raw: bytes) -> Obj:
    """Decode a /v1/validate/job body as job_endpoint.go:207 ValidateJobRequest does."""
    job = _decode_body(raw, "JobValidateRequest")["Job"]
    if job is None:
        raise NomadApiError(400, "Job must be specified")
    return job  # type: ignore[no-any-return]


def decode_dispatch(raw: bytes, path_id: str) -> DispatchRequest:
    """Decode a dispatch body as job_endpoint.go:881 jobDispatchRequest does."""
    body = _decode_body(raw, "JobDispatchRequest")
    if body["JobID"] and body["JobID"] != path_id:
        raise NomadApiError(400, "Job ID does not match")
    return DispatchRequest(
        job_id=body["JobID"] or path_id, payload=body["Payload"] or b"",
        meta=body["Meta"] or {}, idempotency_token=body["IdempotencyToken"],
        id_prefix_template=body["IdPrefixTemplate"], priority=body["Priority"])
