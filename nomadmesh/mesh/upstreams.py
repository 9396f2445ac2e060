"""Upstreams: the routes a group's egress listener sends to other services, with their policy.

A group declares them in Python (`Upstream("service-a", prefix="/hi_a", policy=Policy(...))`),
in the mesh settings file, or, so that an HCL file stays a plain Nomad job, in group meta in the
short form: `"nomadmesh.upstreams" = "service-a=/hi_a,service-b=/hi_b"`. The values and their
wire forms live in `nomadmesh.contract`, shared with the control plane.
"""

from __future__ import annotations

import re

from nomadmesh.contract import (
    GROUP_META_KEY,
    SERVICE_META_KEY,
    Upstream,
    format_upstreams,
    parse_upstreams,
)

__all__ = [
    "GROUP_META_KEY",
    "SERVICE_META_KEY",
    "Upstream",
    "format_upstreams",
    "parse_upstreams",
    "url_env_name",
]


def url_env_name(pattern: str, service: str) -> str:
    """The env var holding an upstream's ready URL: `{SERVICE}_URL` → `SERVICE_A_URL`."""
    return pattern.replace("{SERVICE}", re.sub(r"[^A-Za-z0-9]", "_", service).upper())
