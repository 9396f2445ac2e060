"""inject's compiled copies: every block it builds stores what its class's constructor stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

import nomadmesh
from nomadmesh.mesh import Mesh, Upstream, inject
from nomadmesh.mesh.settings import GroupMesh
from nomadmesh.model import Check, Group, Job, Network, Port, Service, Task
from nomadmesh.model._copy import DECLARED
from tests.model_fixtures import blocks

EXAMPLES = Path(__file__).parent.parent / "examples" / "jobs"


def _typed(d: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(k, type(v), v) for k, v in d.items()]


def _user_job(mode: str, provider: str | None) -> Job:
    app = Group(
        "api",
        networks=[Network(mode=mode, ports=[Port("http", to=8080), Port("admin", static=9000)])],
        services=[Service(name="api", port="http", provider=provider,
                          checks=[Check(type="http", path="/h", interval="10s", timeout="2s"),
                                  Check(type="tcp", port="admin", interval="5s", timeout="1s")])],
        meta={"nomadmesh.upstreams": "orders:/orders,users:/users"},
        tasks=[Task("app", driver="docker", config={"image": "api:1"}, env={"A": "1"}),
               Task("log", driver="docker", config={"image": "log:1"})],
    )
    owned = Group(  # the application service belongs to a task
        "worker",
        networks=[Network(mode=mode, ports=[Port("http", to=8081)])],
        tasks=[Task("work", driver="docker", config={"image": "w:1"},
                    services=[Service(name="worker", port="http", provider=provider)])],
    )
    return Job("web", datacenters=["dc1"], groups=[app, owned])


def _cases() -> list[tuple[str, Job, Mesh]]:
    meshes = [Mesh(), Mesh(inbound=False), Mesh(control_plane="10.0.0.5:18000"),
              Mesh(groups={"api": GroupMesh(upstreams=(Upstream("billing", "/billing"),))})]
    jobs = [(f.name, job) for f in sorted(EXAMPLES.glob("*.hcl"))
            for job in nomadmesh.load_all(f, validate=False)]
    jobs += [(f"user-{mode}-{provider}", _user_job(mode, provider))
             for mode in ("bridge", "host") for provider in (None, "nomad")]
    return [(f"{name}-{i}", job, mesh) for name, job in jobs for i, mesh in enumerate(meshes)]


CASES = _cases()


@pytest.mark.parametrize(("job", "mesh"), [(j, m) for _, j, m in CASES],
                         ids=[name for name, _, _ in CASES])
def test_every_block_inject_builds_is_what_its_constructor_stores(job: Job, mesh: Mesh) -> None:
    try:
        injected = inject(job, mesh)
    except nomadmesh.MeshError:
        return  # a conflict: nothing built to check (tests/test_mesh_inject.py checks those)
    old = {id(b) for b in blocks(job)}
    new = {id(b): b for b in blocks(injected)}
    built = [b for i, b in new.items() if i not in old]
    for block in built:
        cls = type(block)
        fields = attrs.fields(cls)
        again = cls(**{a.alias: block.__dict__[a.name] for a in fields})
        assert _typed(block.__dict__) == _typed(again.__dict__), cls.__name__


def test_some_case_injects_every_kind_of_block_inject_builds() -> None:
    """The test above is not vacuous: its cases make every kind of copy inject makes."""
    kinds: set[str] = set()
    for _, job, mesh in CASES:
        try:
            injected = inject(job, mesh)
        except nomadmesh.MeshError:
            continue
        old = {id(b) for b in blocks(job)}
        kinds |= {type(b).__name__ for b in blocks(injected) if id(b) not in old}
    assert {"Job", "Group", "Network", "Task", "Template", "Service", "Check"} <= kinds


def test_inject_declares_its_copies() -> None:
    declared = set(DECLARED)
    assert (Task, ("name", "templates", "services", "meta")) in declared
    assert (Service, ("meta", "tags", "port", "checks")) in declared
    assert (Group, ("tasks", "services", "networks")) in declared
