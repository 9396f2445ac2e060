"""API JSON job -> HCL2 text that jobspec2 reads back to the same job."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def hcl_value(value: Any) -> str:
    """A Python value as an HCL expression."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not an HCL number")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{quote(str(k))} = {hcl_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(hcl_value(v) for v in value) + "]"


def quote(text: str) -> str:
    """A quoted HCL string literal whose value is exactly `text` (templates escaped)."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    return '"' + body.replace("${", "$${").replace("%{", "%%{") + '"'


def write_job(job: Mapping[str, Any]) -> str:
    raise NotImplementedError
