"""Nomad's agent and server as pure functions on API JSON, for the emulator.

It imports nothing of nomadmesh's client (model, codec, hcl, mesh, deploy): it decodes with Go's
rules from Nomad's api schema and follows Nomad's source (cited beside each function), so the
emulator checks the client instead of agreeing with it.
"""

from __future__ import annotations

from typing import Any

from nomadmesh.testing.nomad_api.admission import (
    Admitted,
    ServerConfig,
    admit,
    against_existing,
    spec_changed,
    submission,
    to_structs,
    validate_response,
)
from nomadmesh.testing.nomad_api.agent import (
    DispatchRequest,
    PlanRequest,
    RegisterRequest,
    check_register,
    decode_dispatch,
    decode_plan,
    decode_register,
    decode_validate,
)
from nomadmesh.testing.nomad_api.children import Dispatched, dispatch, periodic_child, snappy_decode
from nomadmesh.testing.nomad_api.diff import annotate, job_diff, plan_diff
from nomadmesh.testing.nomad_api.errors import AgentPanic, NomadApiError, multierror
from nomadmesh.testing.nomad_api.gojson import marshal
from nomadmesh.testing.nomad_api.parse import HclParser, parse_hcl
from nomadmesh.testing.nomad_api.periodic import next_launch
from nomadmesh.testing.nomad_api.update import combined_meta, tasks_updated, update_kind


def api_job_json(job: dict[str, Any]) -> dict[str, Any]:
    """A decoded api job as Go's json.Marshal prints it (what `nomad-api-oracle register` shows)."""
    out: dict[str, Any] = marshal(job, "*api.Job")
    return out


__all__ = [
    "Admitted",
    "AgentPanic",
    "DispatchRequest",
    "Dispatched",
    "HclParser",
    "NomadApiError",
    "PlanRequest",
    "RegisterRequest",
    "ServerConfig",
    "admit",
    "against_existing",
    "annotate",
    "api_job_json",
    "check_register",
    "combined_meta",
    "decode_dispatch",
    "decode_plan",
    "decode_register",
    "decode_validate",
    "dispatch",
    "job_diff",
    "multierror",
    "next_launch",
    "parse_hcl",
    "periodic_child",
    "plan_diff",
    "snappy_decode",
    "spec_changed",
    "submission",
    "tasks_updated",
    "to_structs",
    "update_kind",
    "validate_response",
]
