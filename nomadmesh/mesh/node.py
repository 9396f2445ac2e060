"""An injected sidecar as a Nomad client would run it: its bootstrap rendered with runtime values.

This is what `nomadmesh sidecar bootstrap` prints, so anyone can check it with
`envoy --mode validate`, and what the tests start a real Envoy with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nomadmesh.errors import MeshError
from nomadmesh.mesh.inject import XDS_ENDPOINTS_PATH, sidecar_task
from nomadmesh.mesh.template import parse_bootstrap, render_template
from nomadmesh.model import Group, Task, Template

EXAMPLE_ALLOC_ID = "5f0e2b8c-7a3d-4c1e-9b6a-2d8f4e1c0a99"
EXAMPLE_XDS = ("127.0.0.1", 18000)
# Where the example values put dynamic ports when the caller does not say.
_FIRST_DYNAMIC_PORT = 20000
_SERVICE_LOOP = re.compile(r'range \$i, \$s := service "([^"]+)"')


def bootstrap_template(task: Task) -> Template:
    """The template that writes the sidecar's Envoy bootstrap (not the env, not the instances)."""
    for template in task.templates:
        if not template.env and template.data and template.destination != XDS_ENDPOINTS_PATH:
            return template
    raise MeshError.single(f"task[{task.name}]", "the sidecar has no bootstrap template",
                           subject="sidecar")


def runtime_env(group: Group, env: Mapping[str, str] | None = None,
                *, address: str = "127.0.0.1") -> dict[str, str]:
    """Example values for what Nomad sets on a node: alloc id, and IP/port per port label.

    Static ports keep their number; dynamic ones are numbered from 20000. `env` wins.
    """
    values = {"NOMAD_ALLOC_ID": EXAMPLE_ALLOC_ID, "NOMAD_SECRETS_DIR": "/secrets",
              "NOMAD_TASK_DIR": "/local"}
    for i, port in enumerate(group.ports):
        number = port.static or _FIRST_DYNAMIC_PORT + i
        values[f"NOMAD_IP_{port.label}"] = address
        values[f"NOMAD_PORT_{port.label}"] = str(number)
        values[f"NOMAD_HOST_PORT_{port.label}"] = str(number)
        values[f"NOMAD_ADDR_{port.label}"] = f"{address}:{number}"
    values.update(env or {})
    return values


def node_files(group: Group, env: Mapping[str, str] | None = None,
               services: Mapping[str, Sequence[tuple[str, int]]] | None = None
               ) -> dict[str, str]:
    """Every file the group's sidecar templates render on a node, by destination.

    `env` overrides the example runtime values; `services` gives the instances of the services
    the templates read (each defaults to one control plane at 127.0.0.1:18000).
    """
    task = sidecar_task(group)
    if task is None:
        raise MeshError.single(f"group[{group.name}]", "the group has no nomadmesh sidecar; "
                               "inject the job first", subject="sidecar")
    values = runtime_env(group, env)
    files = {}
    for template in task.templates:
        if template.env or not template.data or not template.destination:
            continue
        instances: dict[str, Sequence[tuple[str, int]]] = {
            name: [EXAMPLE_XDS] for name in _SERVICE_LOOP.findall(template.data)}
        instances.update(services or {})
        files[template.destination] = render_template(template.data, values, instances)
    return files


def node_bootstrap(group: Group, env: Mapping[str, str] | None = None,
                   services: Mapping[str, Sequence[tuple[str, int]]] | None = None
                   ) -> dict[str, Any]:
    """The bootstrap the group's sidecar renders on a node, as a dict Envoy can load.

    `env` and `services` as for `node_files`.
    """
    task = sidecar_task(group)
    if task is None:
        raise MeshError.single(f"group[{group.name}]", "the group has no nomadmesh sidecar; "
                               "inject the job first", subject="sidecar")
    destination = bootstrap_template(task).destination or ""
    text = node_files(group, env, services)[destination]
    return parse_bootstrap(text)


def write_node_files(group: Group, directory: Path, env: Mapping[str, str] | None = None,
                     services: Mapping[str, Sequence[tuple[str, int]]] | None = None
                     ) -> Path:
    """Render the sidecar's files into `directory` as the task directory (its `secrets/` and
    `local/`), so that `envoy -c` can start from them; returns the bootstrap's path."""
    task = sidecar_task(group)
    if task is None:
        raise MeshError.single(f"group[{group.name}]", "the group has no nomadmesh sidecar; "
                               "inject the job first", subject="sidecar")
    values = {"NOMAD_SECRETS_DIR": str(directory / "secrets"),
              "NOMAD_TASK_DIR": str(directory / "local"), **(env or {})}
    for destination, text in node_files(group, values, services).items():
        path = directory / destination
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory / (bootstrap_template(task).destination or "")
