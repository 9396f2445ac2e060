"""The deploy loop end to end over real HTTP: the Nomad emulator, or a real cluster.

With NOMAD_ADDR set, every test here runs against that cluster (the `real_cluster` marker of the
nomadmesh pytest plugin; jobs get unique IDs and are purged afterwards); otherwise each test gets
the plugin's fresh emulator. Failures are induced by scripting
the emulator, or on a real cluster by job content that fails the same way.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from nomadmesh.deploy import DeployEvent, NomadClient
from nomadmesh.errors import (
    ApiError,
    ConflictError,
    DeploymentFailed,
    NotFound,
    OwnershipError,
    ValidationError,
)
from nomadmesh.model import Group, Job, Parameterized, Periodic, Resources, Task, UpdateStrategy
from nomadmesh.testing import NomadEmulator

REAL = bool(os.environ.get("NOMAD_ADDR"))
SECOND = 1_000_000_000
FAST_UPDATE = UpdateStrategy(min_healthy_time=1 * SECOND, healthy_deadline=30 * SECOND,
                             progress_deadline=60 * SECOND)


pytestmark = pytest.mark.real_cluster


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> NomadEmulator | None:
    """The plugin's emulator, or None when the tests run against the cluster at NOMAD_ADDR."""
    if REAL:
        return None
    nomad: NomadEmulator = request.getfixturevalue("nomad")
    return nomad


@pytest.fixture
def client(nomad_url: str, emulator: NomadEmulator | None) -> Iterator[NomadClient]:
    """A client of the cluster under test; on a real one, token and TLS come from NOMAD_*."""
    c = NomadClient(nomad_url) if emulator is not None else NomadClient.from_env(address=nomad_url)
    with c:
        yield c


@pytest.fixture
def job_id(client: NomadClient) -> Iterator[str]:
    """A job ID unique to this test; the job is purged afterwards."""
    ident = f"nm-test-{uuid.uuid4().hex[:8]}"
    yield ident
    with contextlib.suppress(NotFound):
        client.stop(ident, purge=True)


def service(job_id: str, image: str = "busybox:1.36", count: int = 2,
            **job_fields: object) -> Job:
    task = Task("app", driver="docker", config={"image": image, "command": "sh",
                                                "args": ["-c", "sleep 3600"]},
                resources=Resources(cpu=50, memory=32))
    job_fields.setdefault("update", FAST_UPDATE)
    return Job(job_id, groups=(Group("api", count=count, tasks=(task,)),),
               **job_fields)  # type: ignore[arg-type]


def failing(emulator: NomadEmulator | None, job: Job, how: str, *,
            version: int | None = None) -> Job:
    """The job made to fail `how` ("driver" or "exit"): scripted on the emulator, by content on
    a real cluster (an image that does not exist, a command that exits 3)."""
    group = job.groups[0]
    task = group.tasks[0]
    if emulator is not None:
        emulator.script_task(job.id, group.name, task.name, fail=how, exit_code=3,
                             message="boom", version=version)
        return job
    config = dict(task.config)
    if how == "driver":
        config["image"] = "nomadmesh.invalid/does-not-exist:0"
    else:
        config["args"] = ["-c", "echo boom; exit 3"]
    changed = attrs.evolve(task, config=config)
    return attrs.evolve(job, groups=(attrs.evolve(group, tasks=(changed,)),))


# --- healthy path -------------------------------------------------------------------------------


def test_run_returns_healthy_when_every_allocation_is_healthy(client: NomadClient,
                                                              job_id: str) -> None:
    result = client.run(service(job_id), timeout=60)
    assert (result.status, result.ok) == ("healthy", True)
    assert [(g.name, g.healthy, g.desired) for g in result.groups] == [("api", 2, 2)]


def test_run_reports_progress_and_task_events_as_they_happen(client: NomadClient,
                                                             job_id: str) -> None:
    events: list[DeployEvent] = []
    client.run(service(job_id), timeout=60, on_event=events.append)
    kinds = {e.kind for e in events}
    assert {"plan", "register", "evaluation", "progress", "task"} <= kinds
    assert any(e.task == "app" and e.alloc_id for e in events if e.kind == "task")


# Strict: once the emulator stores Submissions this passes and the marker must go.
def test_submitted_job_carries_only_the_owner_tool_in_meta_and_its_source_in_the_submission(
        client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    assert client.status(job_id).owner.tool == "nomadmesh"
    meta = client.job(job_id)["Meta"]
    assert meta == {"nomadmesh.tool": "nomadmesh"}
    submission = client.api.submission(job_id, 0, {})
    assert submission is not None and submission["Format"] == "json"
    assert json.loads(submission["Source"])["Job"]["ID"] == job_id


def test_a_count_only_change_updates_allocations_in_place_and_places_the_new_one(
        client: NomadClient, job_id: str) -> None:
    client.run(service(job_id, count=2), timeout=60)
    plan = client.plan(service(job_id, count=3))
    [group] = plan.groups
    assert (group.in_place_update, group.destructive_update, group.place) == (2, 0, 1)


def test_a_nomadmesh_upgrade_alone_changes_nothing_on_the_cluster(
        client: NomadClient, job_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client.run(service(job_id), timeout=60)
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0.0"
                        if name == "nomadmesh" else real_version(name))
    with NomadClient(client.address, token=client.config.token) as upgraded:
        plan = upgraded.plan(service(job_id))
        assert upgraded.payload(service(job_id)) == client.payload(service(job_id))
    assert plan.diff.get("Type") == "None"
    assert plan.exit_code == 0


def test_jobs_lists_the_submitted_job_with_its_meta(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    [stub] = client.jobs(prefix=job_id, meta=True)
    assert stub["ID"] == job_id
    assert stub["Meta"]["nomadmesh.tool"] == "nomadmesh"


def test_status_lists_allocations_and_latest_deployment(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    status = client.status(job_id)
    assert status.deployment_status == "successful"
    assert sorted(a.client_status for a in status.allocations) == ["running", "running"]


def test_running_an_unchanged_job_again_is_healthy_without_a_new_version(
        client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    again = client.run(service(job_id), timeout=60)
    assert (again.status, again.job_version) == ("healthy", 0)


def test_plan_of_an_unchanged_job_has_no_changes(client: NomadClient, job_id: str) -> None:
    job = service(job_id)
    client.run(job, timeout=60)
    plan = client.plan(job)
    assert not plan.changes
    assert plan.job_modify_index > 0


def test_plan_of_a_changed_image_shows_the_field_and_destructive_updates(
        client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    plan = client.plan(service(job_id, image="busybox:1.37"))
    assert plan.changes
    assert any('"busybox:1.36" => "busybox:1.37"' in line for _, line in plan.lines())
    group = plan.group("api")
    assert group is not None and group.destructive_update >= 1  # max_parallel at a time


# --- failures, with their diagnosis ---------------------------------------------------------------


def test_driver_failure_raises_deployment_failed_naming_group_task_and_alloc(
        client: NomadClient, emulator: NomadEmulator | None, job_id: str) -> None:
    job = failing(emulator, service(job_id), "driver")
    with pytest.raises(DeploymentFailed) as failed:
        client.run(job, timeout=60)
    task_lines = [d for d in failed.value.diagnosis if "task 'app'" in d]
    assert task_lines and "group 'api'" in task_lines[0] and "(alloc " in task_lines[0]
    assert "driver failure" in task_lines[0]


def test_crashing_task_is_explained_by_its_exit_code(
        client: NomadClient, emulator: NomadEmulator | None, job_id: str) -> None:
    if emulator is not None:
        emulator.timings.healthy_after = 0.5  # long enough for the crash loop to finish first
    job = failing(emulator, service(job_id), "exit")
    with pytest.raises(DeploymentFailed) as failed:
        client.run(job, timeout=90)
    assert any("exited with code 3" in d for d in failed.value.diagnosis)


def test_impossible_placement_is_explained_by_the_exhausted_dimension(
        client: NomadClient, job_id: str) -> None:
    job = service(job_id)
    huge = attrs.evolve(job.groups[0].tasks[0], resources=Resources(cpu=50, memory=10_000_000))
    job = attrs.evolve(job, groups=(attrs.evolve(job.groups[0], tasks=(huge,)),))
    with pytest.raises(DeploymentFailed) as failed:
        client.run(job, timeout=60)
    (line,) = failed.value.diagnosis
    assert line.startswith("group 'api': could not place")
    assert "memory exhausted" in line


def test_plan_shows_failed_placements_before_anything_is_submitted(
        client: NomadClient, job_id: str) -> None:
    job = service(job_id)
    huge = attrs.evolve(job.groups[0].tasks[0], resources=Resources(cpu=50, memory=10_000_000))
    plan = client.plan(attrs.evolve(job, groups=(attrs.evolve(job.groups[0], tasks=(huge,)),)))
    assert [f.group for f in plan.failed_placements] == ["api"]
    with pytest.raises(NotFound):
        client.job(job_id)


def test_server_side_validation_errors_carry_group_paths(client: NomadClient,
                                                         job_id: str) -> None:
    broken = {"ID": job_id, "TaskGroups": [{"Name": "api", "Count": 1,
                                            "Tasks": [{"Name": "app"}]}]}
    with pytest.raises(ValidationError) as invalid:
        client.validate(broken)
    assert any(p.path.startswith(f"job[{job_id}]") for p in invalid.value.problems)


# --- lost updates, ownership --------------------------------------------------------------------


def test_concurrent_change_between_plan_and_register_is_a_conflict_and_overwrites_nothing(
        client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    plan = client.plan(service(job_id, image="busybox:1.37"))
    client.register(service(job_id, image="busybox:1.35"))  # someone else, meanwhile
    with pytest.raises(ConflictError):
        client.register(service(job_id, image="busybox:1.37"),
                        enforce_index=plan.job_modify_index)
    assert client.job(job_id)["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "busybox:1.35"


def test_run_with_a_stale_check_index_is_a_conflict(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    with pytest.raises(ConflictError):
        client.run(service(job_id, image="busybox:1.37"), check_index=1, timeout=60)


def test_enforce_index_zero_refuses_to_replace_an_existing_job(client: NomadClient,
                                                              job_id: str) -> None:
    client.register(service(job_id))
    with pytest.raises(ConflictError):
        client.register(service(job_id, image="busybox:1.37"), enforce_index=0)


def test_job_owned_by_another_tool_is_not_overwritten(client: NomadClient, nomad_api: Any,
                                                      job_id: str) -> None:
    foreign = service(job_id).to_api()
    foreign["Meta"] = {"pack.name": "web", "pack.version": "0.1"}
    nomad_api.job.register_job(job_id, {"Job": foreign})  # as Nomad Pack would
    with pytest.raises(OwnershipError, match="nomad-pack"):
        client.run(service(job_id), timeout=60)
    assert client.job(job_id)["Meta"]["pack.name"] == "web"


def test_allow_foreign_takes_over_a_job_owned_by_another_tool(client: NomadClient,
                                                             nomad_api: Any, job_id: str) -> None:
    foreign = service(job_id).to_api()
    foreign["Meta"] = {"pack.name": "web"}
    nomad_api.job.register_job(job_id, {"Job": foreign})
    taken_over = client.run(service(job_id, image="busybox:1.37"), timeout=60, allow_foreign=True)
    assert taken_over.status == "healthy"
    assert client.status(job_id).owner.tool == "nomadmesh"


# --- rollbacks and canaries ---------------------------------------------------------------------


def test_auto_revert_is_followed_and_reported(client: NomadClient, emulator: NomadEmulator | None,
                                              job_id: str) -> None:
    reverting = attrs.evolve(FAST_UPDATE, auto_revert=True)
    client.run(service(job_id, update=reverting), timeout=60)
    bad = failing(emulator, service(job_id, image="busybox:1.37", update=reverting), "driver",
                  version=1)
    with pytest.raises(DeploymentFailed) as failed:
        client.run(bad, timeout=90)
    result = failed.value.result
    assert getattr(result, "reverted_to", None) == 0
    assert any("rolled back to version 0" in d for d in failed.value.diagnosis)
    assert client.job(job_id)["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "busybox:1.36"


def test_healthy_canaries_wait_for_promotion_by_default(client: NomadClient,
                                                        job_id: str) -> None:
    canary = attrs.evolve(FAST_UPDATE, canary=1)
    client.run(service(job_id, update=canary), timeout=60)
    result = client.run(service(job_id, image="busybox:1.37", update=canary), timeout=60)
    assert result.status == "awaiting-promotion"
    assert [(g.placed_canaries, g.promoted) for g in result.groups] == [(1, False)]


def test_promote_true_promotes_healthy_canaries_and_finishes_the_rollout(
        client: NomadClient, job_id: str) -> None:
    canary = attrs.evolve(FAST_UPDATE, canary=1)
    client.run(service(job_id, update=canary), timeout=60)
    result = client.run(service(job_id, image="busybox:1.37", update=canary), timeout=60,
                        promote=True)
    assert (result.status, result.promoted) == ("healthy", True)


def test_promoting_canaries_not_yet_healthy_is_nomads_refusal_not_a_job_problem(
        client: NomadClient, job_id: str) -> None:
    # The canary needs 60 s to count as healthy; Nomad refuses the promotion meanwhile with a
    # go-multierror text (state_store.go UpdateDeploymentPromotion), which names no job field.
    client.run(service(job_id, update=attrs.evolve(FAST_UPDATE, canary=1)), timeout=60)
    slow = attrs.evolve(FAST_UPDATE, canary=1, min_healthy_time=60 * SECOND,
                        healthy_deadline=90 * SECOND, progress_deadline=120 * SECOND)
    client.run(service(job_id, image="busybox:1.37", update=slow), wait=False)
    deadline = time.monotonic() + 30
    while (client.api.latest_deployment(job_id, {}) or {}).get("JobVersion") != 1:
        assert time.monotonic() < deadline, "no deployment of version 1 in 30 s"
        time.sleep(0.05)
    with pytest.raises(ApiError) as refused:
        client.promote(job_id)
    assert not isinstance(refused.value, ValidationError)
    assert "/v1/deployment/promote/" in str(refused.value)
    assert 'Task group "api" has 0/1 healthy allocations' in refused.value.body


def test_promote_promotes_the_latest_deployment(client: NomadClient, job_id: str) -> None:
    canary = attrs.evolve(FAST_UPDATE, canary=1)
    client.run(service(job_id, update=canary), timeout=60)
    client.run(service(job_id, image="busybox:1.37", update=canary), timeout=60)
    deployment_id = client.promote(job_id)
    assert client.status(job_id).deployment_id == deployment_id


# --- other job types ----------------------------------------------------------------------------


def batch(job_id: str, **job_fields: object) -> Job:
    task = Task("work", driver="docker", config={"image": "busybox:1.36", "command": "true"},
                resources=Resources(cpu=50, memory=32))
    return Job(job_id, type="batch", groups=(Group("run", count=1, tasks=(task,)),),
               **job_fields)  # type: ignore[arg-type]


def test_batch_job_finishes_when_its_allocations_complete(client: NomadClient,
                                                          job_id: str) -> None:
    assert client.run(batch(job_id), timeout=60).status == "complete"


def test_failing_batch_job_is_explained_by_its_exit_code(
        client: NomadClient, emulator: NomadEmulator | None, job_id: str) -> None:
    job = batch(job_id)
    if emulator is not None:
        emulator.script_task(job_id, "run", "work", fail="exit", exit_code=3)
    else:
        job = attrs.evolve(job, groups=(attrs.evolve(job.groups[0], tasks=(attrs.evolve(
            job.groups[0].tasks[0], config={"image": "busybox:1.36", "command": "sh",
                                            "args": ["-c", "exit 3"]}),)),))
    with pytest.raises(DeploymentFailed) as failed:
        client.run(job, timeout=60)
    assert any("task 'work'" in d and "exited with code 3" in d for d in failed.value.diagnosis)


def test_parameterized_job_is_registered_and_dispatched_with_meta(client: NomadClient,
                                                                 job_id: str) -> None:
    job = batch(job_id, parameterized=Parameterized(meta_required=("input",)))
    assert client.run(job, timeout=60).status == "registered"
    dispatched = client.dispatch(job_id, meta={"input": "s3://bucket/a.png"}, payload=b"x")
    assert dispatched.dispatched_job_id.startswith(f"{job_id}/dispatch-")
    assert client.job(dispatched.dispatched_job_id)["Meta"]["input"] == "s3://bucket/a.png"


def test_periodic_job_is_registered_and_left_to_its_schedule(client: NomadClient,
                                                            job_id: str) -> None:
    job = batch(job_id, periodic=Periodic(crons=("0 3 * * *",)))
    assert client.run(job, timeout=60).status == "registered"


def test_system_job_is_done_when_placed_and_running(client: NomadClient, job_id: str) -> None:
    task = Task("agent", driver="docker", config={"image": "busybox:1.36"},
                resources=Resources(cpu=50, memory=32))
    job = Job(job_id, type="system", groups=(Group("node", tasks=(task,)),))
    assert client.run(job, timeout=60).status in ("placed", "healthy")


# --- lifecycle verbs ------------------------------------------------------------------------------


def test_history_lists_versions_newest_first_with_their_owner(client: NomadClient,
                                                              job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    client.run(service(job_id, image="busybox:1.37"), timeout=60)
    history = client.history(job_id)
    assert [v.version for v in history] == [1, 0]
    assert history[0].owner.tool == "nomadmesh"
    assert any("busybox:1.37" in change for change in history[0].changes)


def test_revert_registers_the_earlier_version_again(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    client.run(service(job_id, image="busybox:1.37"), timeout=60)
    client.revert(job_id, 0)
    job = client.job(job_id)
    assert (job["Version"], job["TaskGroups"][0]["Tasks"][0]["Config"]["image"]) == (
        2, "busybox:1.36")


def test_stop_marks_the_job_stopped(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    client.stop(job_id)
    assert client.status(job_id).stopped


def test_stop_with_purge_forgets_the_job(client: NomadClient, job_id: str) -> None:
    client.run(service(job_id), timeout=60)
    client.stop(job_id, purge=True)
    with pytest.raises(NotFound):
        client.status(job_id)


def test_unknown_job_is_not_found(client: NomadClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.status("nm-test-no-such-job")
    assert missing.value.status == 404


def test_namespace_per_call_keeps_jobs_apart(client: NomadClient, job_id: str) -> None:
    namespace = os.environ.get("NOMADMESH_TEST_NAMESPACE", "team-a")
    client.run(service(job_id), timeout=60, namespace=namespace)
    try:
        assert client.status(job_id, namespace=namespace).status == "running"
        with pytest.raises(NotFound):
            client.status(job_id, namespace="default")
    finally:
        client.stop(job_id, purge=True, namespace=namespace)


def test_register_of_an_invalid_job_lists_nomads_errors_as_problems(client: NomadClient,
                                                                   job_id: str) -> None:
    broken = {"ID": job_id, "TaskGroups": [{"Name": "api", "Count": 1,
                                            "Tasks": [{"Name": "app"}]}]}
    with pytest.raises(ValidationError) as invalid:
        client.register(broken)
    assert invalid.value.problems


def test_plan_of_an_invalid_job_is_a_validation_error_not_retried_as_an_outage(
        client: NomadClient, job_id: str) -> None:
    broken = {"ID": job_id, "TaskGroups": [{"Name": "api", "Count": 1,
                                            "Tasks": [{"Name": "app"}]}]}
    with pytest.raises(ValidationError) as invalid:
        client.plan(broken)
    assert any(p.path.startswith(f"job[{job_id}]") for p in invalid.value.problems)


def test_namespace_of_the_call_wins_over_the_jobs_own(client: NomadClient, job_id: str) -> None:
    namespace = os.environ.get("NOMADMESH_TEST_NAMESPACE", "team-a")
    client.run(service(job_id, namespace="default"), timeout=60, namespace=namespace)
    try:
        assert client.job(job_id, namespace=namespace)["Namespace"] == namespace
    finally:
        client.stop(job_id, purge=True, namespace=namespace)
