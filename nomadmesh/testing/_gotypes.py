"""Go's encoding/json type errors for the small request bodies the agent decodes into structs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nomadmesh.testing._http import HttpError

INT64 = (-(2**63), 2**63 - 1)


_KINDS: dict[type, str] = {bool: "bool", str: "string", list: "array", dict: "object"}
_NUMERIC = ("int64", "uint64", "time.Duration")


def _json_kind(value: Any, go_type: str) -> str:
    """How Go's decoder names a JSON value in an UnmarshalTypeError (a number that does not fit
    a numeric field is quoted: `number 1e+300`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"number {value}" if go_type in _NUMERIC else "number"
    return _KINDS.get(type(value), "value")


def _fits(value: Any, go_type: str) -> bool:
    if value is None:
        return True
    if go_type == "string":
        return isinstance(value, str)
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type in _NUMERIC:
        low = 0 if go_type == "uint64" else INT64[0]
        return (isinstance(value, int) and not isinstance(value, bool)
                and low <= value <= INT64[1])
    if go_type == "[]string":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if go_type.startswith("map[string]string"):
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return True


def check_fields(body: Mapping[str, Any], struct: str, fields: Mapping[str, str]) -> None:
    """Raise the agent's 400 with Go's text when a field of `body` cannot decode into its type
    (`json: cannot unmarshal string into Go struct field ACLToken.Name of type string`)."""
    for name, go_type in fields.items():
        value = body.get(name)
        if not _fits(value, go_type):
            raise HttpError(400, f"json: cannot unmarshal {_json_kind(value, go_type)} into Go struct "
                                 f"field {struct}.{name} of type {go_type}")
