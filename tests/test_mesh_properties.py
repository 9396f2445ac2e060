"""Properties of injection over generated jobs: idempotent, lossless, opt-out kept, merges."""

from __future__ import annotations

import string

import attrs
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from nomadmesh.errors import MeshError
from nomadmesh.mesh import DEFAULT_SIDECAR, GroupMesh, Mesh, Sidecar, inject, sidecar_task
from nomadmesh.model import Group, Job, LogConfig, Network, Port, Resources, Service, Task
from nomadmesh.model._base import SECOND

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])

lower, upper = string.ascii_lowercase, string.ascii_uppercase
labels = st.text(lower, min_size=1, max_size=6)
names = st.builds(str.__add__, st.sampled_from(lower), st.text(lower + "-", max_size=6))
# Mostly free env names, now and then one the mesh sets (a conflict).
env_names = st.integers(0, 19).flatmap(
    lambda n: st.sampled_from(["EGRESS_HOST", "EGRESS_PORT", "SERVICE_A_URL"]) if n == 0
    else st.builds(str.__add__, st.sampled_from(upper), st.text(upper + "_", max_size=5)))
upstream_items = st.builds(lambda s, p: f"{s}=/{p}", names, st.text(lower + "_", min_size=1,
                                                                    max_size=5))


def optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


@st.composite
def groups(draw: st.DrawFn, name: str) -> Group:
    """A group as users write them: ports, services on them, app tasks, maybe mesh meta."""
    port_labels = draw(st.lists(labels, min_size=1, max_size=3, unique=True))
    ports = [Port(label, to=draw(st.none() | st.integers(1, 65535)),
                  static=draw(st.none() | st.integers(20000, 30000))) for label in port_labels]
    network = Network(mode=draw(st.sampled_from(["bridge", "host", "cni/overlay", None])),
                      ports=ports)
    networks = draw(st.sampled_from([[network]] * 9 + [[]]))
    service = st.builds(Service, name=optional(names),
                        port=st.sampled_from(port_labels) if networks else st.none(),
                        tags=st.lists(names, max_size=2),
                        meta=st.dictionaries(labels, st.text(max_size=5), max_size=2))
    tasks = draw(st.lists(
        st.builds(Task, name=labels, driver=st.sampled_from(["docker", "exec", "raw_exec"]),
                  env=st.dictionaries(env_names, st.text(max_size=5), max_size=3),
                  meta=st.dictionaries(labels, st.text(max_size=5), max_size=2),
                  resources=optional(st.builds(Resources, cpu=st.integers(1, 2000)))),
        min_size=1, max_size=3, unique_by=lambda t: t.name))
    meta = draw(st.fixed_dictionaries({}, optional={
        "nomadmesh.upstreams": st.lists(upstream_items, max_size=3).map(",".join),
        "nomadmesh.mesh": st.sampled_from(["true", "true", "false"]),
        "team": st.text(max_size=5),
    }))
    return Group(name, count=draw(st.none() | st.integers(0, 5)),
                 networks=networks,
                 services=draw(st.lists(service, min_size=draw(st.sampled_from([0, 1, 1, 1])),
                                        max_size=2)),
                 tasks=tasks, meta=meta)


@st.composite
def meshable_jobs(draw: st.DrawFn) -> Job:
    """A valid job of such groups."""
    group_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    job = Job(draw(names), groups=[draw(groups(n)) for n in group_names])
    assume(not job.problems_list())
    return job


def injected_or_none(job: Job, mesh: Mesh | None = None) -> Job | None:
    """The injected job, or None when injection refuses with problems that all have paths."""
    try:
        injected = inject(job, mesh)
    except MeshError as exc:
        event("refused with problems")
        assert exc.problems
        assert all(p.path.startswith((job.path, "mesh.")) for p in exc.problems)
        return None
    event("injected" if injected is not job else "nothing to mesh")
    return injected


@PROPERTY_SETTINGS
@given(meshable_jobs())
def test_injecting_an_injected_job_changes_nothing(job: Job) -> None:
    once = injected_or_none(job)
    if once is not None:
        assert inject(once) == once


@PROPERTY_SETTINGS
@given(meshable_jobs())
def test_an_injected_job_is_valid_and_round_trips_through_nomad_json(job: Job) -> None:
    injected = injected_or_none(job)
    if injected is not None:
        assert injected.problems_list() == []
        assert Job.from_api(injected.to_api()) == injected


@PROPERTY_SETTINGS
@given(meshable_jobs())
def test_no_user_field_is_lost(job: Job) -> None:
    injected = injected_or_none(job)
    if injected is None:
        return
    for before, after in zip(job.groups, injected.groups, strict=True):
        assert attrs.evolve(after, tasks=before.tasks, networks=before.networks,
                            services=before.services) == before
        assert after.tasks[: len(before.tasks)] == tuple(
            attrs.evolve(t, env={**t.env, **after.tasks[i].env}, services=after.tasks[i].services)
            for i, t in enumerate(before.tasks))
        for i, task in enumerate(before.tasks):
            assert dict(after.tasks[i].env).items() >= dict(task.env).items()
        for old, new in zip(before.services, after.services, strict=True):
            # The app service moves to the inbound listener; its checks keep reaching the app.
            assert attrs.evolve(new, meta=old.meta, port=old.port, checks=old.checks) == old
            assert [c.port or old.port for c in new.checks] == [
                c.port or old.port for c in old.checks]
        if before.networks:
            assert after.networks[0].ports[: len(before.networks[0].ports)] == (
                before.networks[0].ports)


@PROPERTY_SETTINGS
@given(meshable_jobs())
def test_groups_that_opt_out_are_returned_untouched(job: Job) -> None:
    opted_out = attrs.evolve(job, groups=[
        attrs.evolve(g, meta={**g.meta, "nomadmesh.mesh": "false"}) for g in job.groups])
    assert inject(opted_out) is opted_out


@PROPERTY_SETTINGS
@given(meshable_jobs())
def test_groups_turned_off_in_python_are_returned_untouched(job: Job) -> None:
    mesh = Mesh(groups={g.name: GroupMesh(enabled=False) for g in job.groups})
    assert inject(job, mesh) is job


overrides = st.builds(
    Sidecar,
    resources=optional(st.builds(Resources, cpu=optional(st.integers(1, 4000)),
                                 memory=optional(st.integers(10, 4096)))),
    logs=optional(st.builds(LogConfig, max_files=optional(st.integers(1, 9)),
                            max_file_size=optional(st.integers(1, 50)))),
    shutdown_delay=optional(st.integers(0, 60).map(lambda n: n * SECOND)),
    env=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).filter(
        lambda k: not k.startswith("XDS")), st.text(max_size=5), max_size=3),
    log_level=optional(st.sampled_from(["debug", "warn"])),
)


@PROPERTY_SETTINGS
@given(overrides)
def test_a_group_override_merges_field_by_field_onto_the_defaults(override: Sidecar) -> None:
    job = Job("web", groups=[Group("api", networks=[Network(mode="bridge")],
                                   services=[Service(name="api")],
                                   tasks=[Task("app", driver="docker")])])
    sidecar = sidecar_task(inject(job, Mesh(groups={"api": GroupMesh(sidecar=override)}))
                           .groups[0])
    assert sidecar is not None
    resources = override.resources or Resources()
    logs = override.logs or LogConfig()
    default_resources = DEFAULT_SIDECAR.resources or Resources()
    default_logs = DEFAULT_SIDECAR.logs or LogConfig()
    assert sidecar.resources == Resources(
        cpu=resources.cpu if resources.cpu is not None else default_resources.cpu,
        memory=resources.memory if resources.memory is not None else default_resources.memory)
    assert sidecar.logs == LogConfig(
        max_files=logs.max_files if logs.max_files is not None else default_logs.max_files,
        max_file_size=logs.max_file_size if logs.max_file_size is not None
        else default_logs.max_file_size)
    # Task.ShutdownDelay is a Go value (time.Duration): its zero is stored as unset (None).
    assert (sidecar.shutdown_delay or 0) == (override.shutdown_delay if override.shutdown_delay
                                             is not None else 5 * SECOND)
    assert dict(sidecar.env).items() >= dict(override.env).items()
