"""`POST /v1/jobs/parse` (command/agent/job_endpoint.go:930 JobsParseRequest).

Nomad parses HCL with jobspec2 on the agent. The emulator has no HCL parser of its own and must not
import the client's (it would agree with the client's mistakes), so the parser is given by whoever
runs the emulator: `nomadmesh dev` passes nomadmesh's HCL package, which makes this endpoint
(only this one) not independent of the client. Without a parser the answer is 501.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nomadmesh.testing.nomad_api.api_canonical import canonicalize_job
from nomadmesh.testing.nomad_api.errors import NomadApiError
from nomadmesh.testing.nomad_api.gojson import decode, marshal

HclParser = Callable[[str, str], dict[str, Any]]
"""(job HCL, variables file content) -> the api job JSON; raises ValueError with the diagnostic."""

NOT_EMULATED = ("/v1/jobs/parse is not emulated: this emulator was started without an HCL "
                "parser (nomadmesh dev provides one; elsewhere parse locally or with "
                "nomad-api-oracle parse)")


def parse_hcl(raw: bytes, parser: HclParser | None) -> dict[str, Any]:
    """The parse endpoint's answer (the api job, canonicalized when asked), or NomadApiError."""
    if not raw:
        raise NomadApiError(400, "Request body is empty")
    request = decode(raw, "JobsParseRequest")
    if request["JobHCL"] == "":
        raise NomadApiError(400, "Job spec is empty")
    if parser is None:
        raise NomadApiError(501, NOT_EMULATED)
    try:
        parsed = parser(request["JobHCL"], request["Variables"])
    except ValueError as exc:
        raise NomadApiError(400, f"Failed to parse job: {exc}") from None
    try:
        job = decode(json.dumps(parsed).encode(), "Job")
    except NomadApiError as exc:
        raise NomadApiError(400, f"Failed to parse job: {exc.text}") from None
    if request["Canonicalize"]:
        canonicalize_job(job)
    out: dict[str, Any] = marshal(job, "api.Job")
    return out
