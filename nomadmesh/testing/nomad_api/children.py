"""Child jobs: periodic launches (nomad/periodic.go) and dispatches (nomad/job_endpoint.go)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nomadmesh.testing.nomad_api._json import clone
from nomadmesh.testing.nomad_api.agent import DispatchRequest
from nomadmesh.testing.nomad_api.errors import NomadApiError

Obj = dict[str, Any]
DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024  # nomad/job_endpoint.go:34


@dataclass(frozen=True, slots=True)
class Dispatched:
    """A dispatch's outcome: the child job, and whether it is new (false: idempotent replay)."""

    job: Obj
    created: bool


def periodic_child(parent: Obj, launch: datetime) -> Obj:
    """nomad/periodic.go:410 deriveJob: `<id>/periodic-<unix>`, no Periodic, ParentID set."""
    child = clone(parent)
    child["ParentID"] = parent["ID"]
    child["ID"] = f"{parent['ID']}/periodic-{int(launch.timestamp())}"
    child["Name"] = child["ID"]
    child["Periodic"] = None
    child["Status"] = ""
    child["StatusDescription"] = ""
    return child


def dispatch(parent: Obj | None, request: DispatchRequest, *, now: datetime,
             children: Iterable[Obj]) -> Dispatched:
    """nomad/job_endpoint.go:1984 Job.Dispatch; errors are the RPC's (500 at the agent)."""
    if request.job_id == "":
        raise NomadApiError(500, "missing parameterized job ID")
    if parent is None:
        raise NomadApiError(500, "parameterized job not found")
    if parent["ParameterizedJob"] is None or parent["Dispatched"]:
        raise NomadApiError(500, f'Specified job "{request.job_id}" is not a parameterized job')
    if parent["Stop"]:
        raise NomadApiError(500, f'Specified job "{request.job_id}" is stopped')
    _check_request(request, parent)
    if request.idempotency_token != "":
        for child in children:  # state_store.go:1923 CheckIdempotencyToken
            if (child["ParentID"] == parent["ID"]
                    and child["DispatchIdempotencyToken"] == request.idempotency_token):
                return Dispatched(job=child, created=False)
    child = clone(parent)
    suffix = f"{int(now.timestamp())}-{str(uuid.uuid4())[:8]}"
    prefix = f"{request.id_prefix_template}-" if request.id_prefix_template else ""
    child["ID"] = f"{parent['ID']}/dispatch-{prefix}{suffix}"  # structs.go:6120 DispatchedID
    child["ParentID"] = parent["ID"]
    child["Name"] = child["ID"]
    child["SubmitTime"] = int(now.timestamp() * 1e9)
    child["Dispatched"] = True
    child["Status"] = ""
    child["StatusDescription"] = ""
    child["DispatchIdempotencyToken"] = request.idempotency_token
    child["Priority"] = request.priority or parent["Priority"]
    if request.meta:
        child["Meta"] = {**(child["Meta"] or {}), **request.meta}
    child["Payload"] = snappy_block(request.payload)
    return Dispatched(job=child, created=True)


def _check_request(request: DispatchRequest, parent: Obj) -> None:
    """nomad/job_endpoint.go:2132 validateDispatchRequest."""
    config = parent["ParameterizedJob"]
    has_payload = len(request.payload) != 0
    if config["Payload"] == "required" and not has_payload:
        raise NomadApiError(500, "Payload is not provided but required by parameterized job")
    if config["Payload"] == "forbidden" and has_payload:
        raise NomadApiError(500, "Payload provided but forbidden by parameterized job")
    if len(request.payload) > DISPATCH_PAYLOAD_SIZE_LIMIT:
        raise NomadApiError(500, f"Payload exceeds maximum size; {len(request.payload)} > "
                            f"{DISPATCH_PAYLOAD_SIZE_LIMIT}")
    required = config["MetaRequired"] or []
    optional = config["MetaOptional"] or []
    unpermitted = [k for k in request.meta if k not in required and k not in optional]
    if unpermitted:  # Go prints the keys of a map: their order is random there
        raise NomadApiError(500, "Dispatch request included unpermitted metadata keys: "
                            f"[{' '.join(sorted(unpermitted))}]")
    missing = [k for k in required if k not in request.meta]
    if missing:
        raise NomadApiError(500, "Dispatch did not provide required meta keys: "
                            f"[{' '.join(sorted(set(missing)))}]")


def snappy_block(data: bytes) -> str:
    """snappy.Encode(nil, data) as base64 (job_endpoint.go:2087), using literal chunks only.

    Valid snappy that every decoder reads; Go's encoder also compresses repeats, so for
    compressible payloads over 16 bytes the stored bytes differ from a real server's.
    """
    out = bytearray(_uvarint(len(data)))
    for start in range(0, len(data), 65536):
        chunk = data[start:start + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2, n & 0xFF, n >> 8])
        out += chunk
    return base64.b64encode(bytes(out)).decode("ascii")


def snappy_decode(encoded: str) -> bytes:
    """The payload a dispatched job carries, as the client decodes it for the task."""
    data = base64.b64decode(encoded)
    length, pos = 0, 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            out += data[pos:pos + n + 1]
            pos += n + 1
            continue
        if kind == 1:
            size, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            size, offset = (tag >> 2) + 1, int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            size, offset = (tag >> 2) + 1, int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        for _ in range(size):
            out.append(out[-offset])
    if len(out) != length:
        raise ValueError("snappy: corrupt input")
    return bytes(out)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
