"""`nomadmesh pack new`: a new pack directory with typed variables, one job and a test."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nomadmesh.errors import InputError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

PACK_TEMPLATE = '''"""{name}: one meshed service; change the variables and the job to suit."""

from __future__ import annotations

import attrs

from nomadmesh import Check, Group, Job, Network, Port, Resources, Service, Task
from nomadmesh.packs import pack, variable


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of {name} can change (`nomadmesh pack info` lists them)."""

    image: str = variable("hashicorp/http-echo:1.0", description="container image")
    count: int = variable(1, description="instances", validator=attrs.validators.ge(1))
    datacenters: list[str] = variable(factory=lambda: ["dc1"], description="where to run")
    port: int = variable(5678, description="port the app listens on inside its container")
    upstreams: dict[str, str] = variable(
        factory=dict, description="services this one calls, by path prefix: {{'/api': 'api'}}")


@pack(name="{name}", version="0.1.0", variables=Variables)
def jobs(v: Variables, deployment: str) -> Job:
    """One service job named after the deployment."""
    meta = {{}}
    if v.upstreams:
        meta["nomadmesh.upstreams"] = ",".join(f"{{s}}={{p}}" for p, s in sorted(v.upstreams.items()))
    return Job(deployment, datacenters=v.datacenters, groups=[Group(
        "app", count=v.count, meta=meta,
        networks=[Network(mode="bridge", ports=[Port("http", to=v.port)])],
        services=[Service(name=deployment, port="http",
                          checks=[Check(type="http", path="/", interval="10s", timeout="2s")])],
        tasks=[Task("app", driver="docker", config={{"image": v.image, "ports": ["http"]}},
                    resources=Resources(cpu=100, memory=64))])])
'''

TEST_TEMPLATE = '''"""Tests for the {name} pack: run them with `pytest {module}`."""

from __future__ import annotations

from {module} import Variables, jobs


def test_the_defaults_render_one_valid_job_named_after_the_deployment() -> None:
    [job] = jobs.render(Variables(), deployment="demo")
    assert job.id == "demo"


def test_count_sets_the_number_of_instances() -> None:
    [job] = jobs.render(Variables(count=3))
    assert job.groups[0].count == 3


def test_upstreams_become_group_meta_for_the_mesh() -> None:
    [job] = jobs.render(Variables(upstreams={{"/api": "api"}}))
    assert job.groups[0].meta["nomadmesh.upstreams"] == "api=/api"
'''

README_TEMPLATE = '''# {name}

A nomadmesh pack. See the variables with `nomadmesh pack info {directory}`, render it with
`nomadmesh pack render {directory} --var count=2 --name demo`, test it with `pytest {directory}`.
'''


def new_pack(name: str, parent: str | os.PathLike[str] = ".") -> Path:
    """Write a pack directory `<parent>/<name with _>` with the pack, a test and a README."""
    if not _NAME.match(name):
        raise InputError(f"pack name {name!r} must start with a letter and use lowercase "
                         "letters, digits, '-' or '_'")
    module = name.replace("-", "_")
    directory = Path(parent) / module
    if directory.exists():
        raise InputError(f"{directory}: already exists; choose another name or directory")
    directory.mkdir(parents=True)
    values = {"name": name, "module": module, "directory": str(directory)}
    (directory / "__init__.py").write_text(PACK_TEMPLATE.format(**values), encoding="utf-8")
    (directory / f"test_{module}.py").write_text(TEST_TEMPLATE.format(**values), encoding="utf-8")
    (directory / "README.md").write_text(README_TEMPLATE.format(**values), encoding="utf-8")
    return directory
