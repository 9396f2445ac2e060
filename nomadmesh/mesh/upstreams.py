"""Upstreams: the path prefixes a group's egress listener routes to other services.

A group declares them in Python (`Upstream("service-a", prefix="/hi_a")`) or, so that an HCL file
stays a plain Nomad job, in group meta: `"nomadmesh.upstreams" = "service-a=/hi_a,service-b=/hi_b"`.
The injector publishes them in the same text form as the Consul service meta key
`nomadmesh-upstreams`, which the control plane reads (Consul meta keys cannot contain dots).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import attrs

from nomadmesh.errors import Problem

# Group meta key (HCL) and Consul service meta key (control plane) carrying the routes.
GROUP_META_KEY = "nomadmesh.upstreams"
SERVICE_META_KEY = "nomadmesh-upstreams"

_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_PREFIX = re.compile(r"^/[A-Za-z0-9_\-./~%]*$")


@attrs.frozen
class Upstream:
    """Requests to the egress listener under `prefix` go to the Consul service `service`."""

    service: str
    prefix: str = attrs.field(kw_only=True)

    def problems(self, path: str) -> Iterator[Problem]:
        """What is wrong with this upstream, with `path` pointing at it."""
        if not isinstance(self.service, str) or not _SERVICE.match(self.service):
            yield Problem(path, f"upstream service {self.service!r} must be a Consul service name "
                          "(letters, digits and dashes)")
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            yield Problem(path, f"upstream prefix {self.prefix!r} must be a path starting with '/' "
                          "(no spaces, commas or '=')")

    def __str__(self) -> str:
        return f"{self.service}={self.prefix}"


def parse_upstreams(text: str, path: str) -> tuple[tuple[Upstream, ...], list[Problem]]:
    """Parse `service-a=/hi_a,service-b=/hi_b`; every malformed item is a problem at `path`."""
    found: list[Upstream] = []
    problems: list[Problem] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        service, sep, prefix = item.partition("=")
        if not sep:
            problems.append(Problem(path, f"upstream {item!r} is not of the form service=/prefix "
                                    "(e.g. 'service-a=/hi_a,service-b=/hi_b')"))
            continue
        upstream = Upstream(service.strip(), prefix=prefix.strip())
        errors = list(upstream.problems(path))
        problems.extend(errors)
        if not errors:
            found.append(upstream)
    return tuple(found), problems


def format_upstreams(upstreams: Iterable[Upstream]) -> str:
    """The meta text form the control plane parses: `service-a=/hi_a,service-b=/hi_b`."""
    return ",".join(str(u) for u in upstreams)


def url_env_name(pattern: str, service: str) -> str:
    """The env var holding an upstream's ready URL: `{SERVICE}_URL` → `SERVICE_A_URL`."""
    return pattern.replace("{SERVICE}", re.sub(r"[^A-Za-z0-9]", "_", service).upper())
