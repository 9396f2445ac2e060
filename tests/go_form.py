"""Go's normal form of Nomad JSON, from the committed schema: what two jobs must agree on.

Go cannot tell an absent key from `null`, from an empty list or map, or from the zero value of a
plain (non-pointer) field, so all of those are dropped; a pointer field keeps its zero (`Count: 0`
is not `Count: null`). Numbers in free-form objects (task config) are float64s, as in Go.
Comparing `go_form("Job", ours) == go_form("Job", nomads)` therefore checks exactly what Nomad
would see, no more and no less.
"""

from __future__ import annotations

from typing import Any

from nomadmesh.nomad_schema import schema

_ZERO = ("", 0, False)


def go_form(struct: str, value: Any) -> Any:
    """`value` (JSON of the api struct `struct`) in Go's normal form."""
    if not isinstance(value, dict):
        return value
    fields = {f.json: f for f in schema().struct(struct) if not f.skip}
    out: dict[str, Any] = {}
    for key, v in value.items():
        f = fields.get(key)
        if f is None:
            out[key] = v  # not Nomad's: kept so that a comparison shows it
            continue
        normal = _field(f.kind, f.go_type, f.elem, v)
        if normal is not None:
            out[key] = normal
    return out


def _field(kind: str, go_type: str, elem: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "scalar":
        return None if v in _ZERO else v
    if kind == "ptr":
        return go_form(elem, v) if elem else v
    if kind == "struct":
        return go_form(elem, v)
    if kind == "slice":
        if not v:
            return None
        return [go_form(elem, x) for x in v] if elem else list(v)
    if kind == "map":
        if not v:
            return None
        if elem:
            return {k: go_form(elem, x) for k, x in v.items()}
        return _float64(v) if go_type == "map[string]interface {}" else dict(v)
    return v


def _float64(v: Any) -> Any:
    """Free-form JSON as Go holds it in an interface{}: every number a float64."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return {k: _float64(x) for k, x in v.items()}
    return [_float64(x) for x in v]


def job_form(job: Any) -> Any:
    """A job's JSON (bare) in Go's normal form."""
    return go_form("Job", job)
