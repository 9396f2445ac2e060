"""The sidecar's bootstrap as a Nomad `template`, and that template rendered as a node would.

The bootstrap is the Envoy JSON from `nomadmesh.mesh.bootstrap.render_bootstrap`, rendered with
placeholder strings that are then swapped for consul-template expressions: `{{ env "..." }}` for
runtime values (alloc id, Nomad ports), and a `{{ range service "..." }}` loop that turns every
instance of the control plane's Consul service into an endpoint of the xDS cluster. Numbers are
written unquoted so that the rendered file is the JSON Envoy expects.

`render_template` evaluates exactly the expressions this module writes, nothing more: it is what
`nomadmesh sidecar bootstrap` prints, and what the tests feed to `envoy --mode validate`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from nomadmesh.errors import MeshError, Problem
from nomadmesh.mesh.bootstrap import BootstrapParams, render_bootstrap, xds_endpoints


@attrs.frozen
class Runtime:
    """A value known only on the node: a Nomad env var, written as a number or as a string."""

    env: str
    number: bool = False

    @property
    def placeholder(self) -> str:
        return f"@@{self.env}@@"

    @property
    def expression(self) -> str:
        return f'{{{{ env "{self.env}" }}}}'


_RANGE = (
    '[{{{{ range $i, $s := service "{service}" }}}}{{{{ if $i }}}},{{{{ end }}}}'
    '{{"endpoint": {{"address": {{"socket_address": '
    '{{"address": "{{{{ $s.Address }}}}", "port_value": {{{{ $s.Port }}}}}}}}}}}}'
    "{{{{ end }}}}]"
)
_RANGE_PATTERN = re.compile(
    r'\{\{ range \$i, \$s := service "(?P<service>[^"]+)" \}\}\{\{ if \$i \}\},\{\{ end \}\}'
    r"(?P<body>.*?)\{\{ end \}\}",
    re.DOTALL,
)
_ENV_PATTERN = re.compile(r'\{\{ env "(?P<name>[A-Za-z0-9_]+)" \}\}')


def bootstrap_template(params: BootstrapParams, *, runtime: Sequence[Runtime] = ()) -> str:
    """The bootstrap as consul-template text.

    `params` may hold `Runtime.placeholder` strings; each listed `Runtime` becomes its `env`
    expression.
    """
    text = json.dumps(render_bootstrap(params))
    for value in runtime:
        if value.number:
            text = text.replace(f'"{value.placeholder}"', value.expression)
        text = text.replace(value.placeholder, value.expression)
    return text


def xds_endpoints_template(service: str) -> str:
    """The control plane's instances (every healthy one of its service) as the file the xDS
    cluster reads; rendered again whenever they change, with no restart."""
    text = json.dumps(xds_endpoints([]))
    return text.replace('"lb_endpoints": []', '"lb_endpoints": ' + _RANGE.format(service=service))


def env_expression(name: str) -> str:
    """A consul-template expression reading one of the task's env vars."""
    return f'{{{{ env "{name}" }}}}'


def render_template(text: str, env: Mapping[str, str],
                    services: Mapping[str, Sequence[tuple[str, int]]] | None = None) -> str:
    """Render a template written by `bootstrap_template` with the node's values.

    `env` holds the task environment (NOMAD_ALLOC_ID, NOMAD_PORT_<label>, ...); `services` the
    healthy instances of each Consul service as (address, port). A value the template reads but
    `env` lacks is an error naming it.
    """
    services = services or {}

    def expand(match: re.Match[str]) -> str:
        body = match.group("body")
        return ",".join(
            body.replace("{{ $s.Address }}", address).replace("{{ $s.Port }}", str(port))
            for address, port in services.get(match.group("service"), ())
        )

    rendered = _RANGE_PATTERN.sub(expand, text)
    missing = sorted({m.group("name") for m in _ENV_PATTERN.finditer(rendered)} - set(env))
    if missing:
        raise MeshError([Problem(f"env.{name}", "the template reads this variable; give it a "
                                 "value (e.g. --env NAME=VALUE)") for name in missing],
                        subject="sidecar bootstrap")
    rendered = _ENV_PATTERN.sub(lambda m: env[m.group("name")], rendered)
    if "{{" in rendered:
        line = rendered[: rendered.index("{{")].count("\n") + 1
        raise MeshError.single(f"line {line}", "template expression not understood by the local "
                               "renderer", subject="sidecar bootstrap")
    return rendered


def parse_bootstrap(rendered: str) -> dict[str, Any]:
    """A rendered bootstrap as the dict Envoy would load; MeshError if it is not JSON."""
    try:
        data: dict[str, Any] = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise MeshError.single(f"line {exc.lineno}", f"rendered bootstrap is not JSON: {exc.msg}",
                               subject="sidecar bootstrap") from None
    return data
