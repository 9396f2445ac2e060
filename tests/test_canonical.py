"""Nomad's server defaults applied locally, so local and server copies compare equal."""

from __future__ import annotations

import attrs

from nomadmesh import (
    Check,
    CheckRestart,
    Group,
    Job,
    Network,
    Port,
    Resources,
    RestartPolicy,
    Service,
    Task,
    UpdateStrategy,
)
from nomadmesh.codec import canonicalize
from nomadmesh.model._base import HOUR, MINUTE, SECOND


def job(job_type: str = "service", **group_changes: object) -> Job:
    group = attrs.evolve(Group("api", tasks=[Task("app", driver="docker")]), **group_changes)
    return Job("web", type=job_type, groups=[group])


def test_job_defaults_match_nomads() -> None:
    c = canonicalize(Job("web", groups=[Group("g", tasks=[Task("t", driver="exec")])]))
    assert (c.name, c.type, c.region, c.namespace, c.priority, c.datacenters, c.node_pool) == (
        "web", "service", "global", "default", 50, ("*",), "default")


def test_group_count_defaults_to_one() -> None:
    assert canonicalize(job()).groups[0].count == 1


def test_task_resources_default_to_100_mhz_and_300_mb() -> None:
    task = canonicalize(job()).groups[0].tasks[0]
    assert (task.resources.cpu, task.resources.memory) == (100, 300)  # type: ignore[union-attr]


def test_a_partial_resources_block_keeps_what_was_set() -> None:
    c = canonicalize(job(tasks=[Task("app", driver="docker", resources=Resources(memory=64))]))
    assert (c.groups[0].tasks[0].resources.cpu, c.groups[0].tasks[0].resources.memory) == (100, 64)  # type: ignore[union-attr]


def test_kill_timeout_and_logs_defaults() -> None:
    task = canonicalize(job()).groups[0].tasks[0]
    assert task.kill_timeout == 5 * SECOND
    assert (task.logs.max_files, task.logs.max_file_size) == (10, 10)  # type: ignore[union-attr]


def test_restart_policy_depends_on_the_job_type() -> None:
    service = canonicalize(job("service")).groups[0].restart
    batch = canonicalize(job("batch")).groups[0].restart
    assert service == RestartPolicy(attempts=2, interval=30 * MINUTE, delay=15 * SECOND,
                                    mode="fail", render_templates=False)
    assert batch == RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail",
                                  render_templates=False)


def test_a_partial_restart_block_merges_onto_the_default() -> None:
    c = canonicalize(job(restart=RestartPolicy(attempts=5)))
    assert c.groups[0].restart.attempts == 5  # type: ignore[union-attr]
    assert c.groups[0].restart.interval == 30 * MINUTE  # type: ignore[union-attr]
    assert c.groups[0].tasks[0].restart == c.groups[0].restart


def test_service_jobs_get_the_default_update_strategy_merged_per_group() -> None:
    c = canonicalize(attrs.evolve(job(update=UpdateStrategy(canary=1)),
                                  update=UpdateStrategy(max_parallel=3)))
    update = c.groups[0].update
    assert (update.canary, update.max_parallel, update.healthy_deadline) == (1, 3, 5 * MINUTE)  # type: ignore[union-attr]


def test_batch_jobs_get_no_update_strategy() -> None:
    c = canonicalize(job("batch"))
    assert c.update is None and c.groups[0].update is None


def test_system_jobs_are_not_rescheduled() -> None:
    assert canonicalize(job("system")).groups[0].reschedule is None


def test_service_names_default_to_job_group_and_task() -> None:
    c = canonicalize(job(services=[Service()], tasks=[Task("app", driver="docker",
                                                           services=[Service()])]))
    assert c.groups[0].services[0].name == "web-api"
    assert c.groups[0].tasks[0].services[0].name == "web-api-app"


def test_service_check_restart_merges_into_each_check_with_a_1s_grace() -> None:
    svc = Service(name="web", check_restart=CheckRestart(limit=3),
                  checks=[Check(type="tcp", interval="10s", timeout="2s")])
    c = canonicalize(job(services=[svc], networks=[Network(ports=[Port("http")])]))
    check = c.groups[0].services[0].checks[0]
    assert check.check_restart == CheckRestart(limit=3, grace=SECOND, ignore_warnings=False)


def test_unset_scalars_become_go_zero_values_as_the_server_reports_them() -> None:
    task = canonicalize(job()).groups[0].tasks[0]
    assert (task.user, task.leader, task.kill_signal, task.shutdown_delay) == ("", False, "", 0)


def test_canonicalize_is_idempotent() -> None:
    once = canonicalize(job(services=[Service(check_restart=CheckRestart(limit=1))]))
    assert canonicalize(once) == once


def test_canonical_jobs_survive_the_json_round_trip() -> None:
    c = canonicalize(job(networks=[Network(ports=[Port("http"), Port("a", static=80)])]))
    assert Job.from_api(c.to_api()) == c
