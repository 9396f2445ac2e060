"""Reliability: faults injected by the emulator (500s, dropped connections, restarts) do not change
the verdict of `run()`; retries happen only where repeating a request is safe."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from nomadmesh.deploy import DeployEvent, NomadClient, Retry
from nomadmesh.errors import ApiError, DeploymentFailed, DeployTimeout, NomadUnavailable
from nomadmesh.model import Group, Job, Resources, Task
from nomadmesh.testing import Faults, NomadEmulator

FAST_RETRY = Retry(attempts=12, backoff=0.01, max_backoff=0.2)


def job(job_id: str = "web") -> Job:
    task = Task("app", driver="docker", config={"image": "busybox:1.36"},
                resources=Resources(cpu=50, memory=32))
    return Job(job_id, groups=(Group("api", count=2, tasks=(task,)),))


@pytest.fixture(autouse=True)
def seeded(nomad: NomadEmulator) -> None:
    """Reproducible fault injection."""
    nomad.faults = Faults(seed=7)


@pytest.fixture
def client(nomad: NomadEmulator) -> Iterator[NomadClient]:
    with NomadClient(nomad.url, retry=FAST_RETRY) as c:
        yield c


def test_run_reaches_healthy_through_30_percent_500s_and_dropped_connections(
        nomad: NomadEmulator, client: NomadClient) -> None:
    nomad.faults.error_rate = 0.3
    nomad.faults.drop_rate = 0.3
    assert client.run(job(), timeout=60).status == "healthy"


def test_run_reaches_failed_verdict_with_diagnosis_through_faults(
        nomad: NomadEmulator, client: NomadClient) -> None:
    nomad.script_task("web", "api", "app", fail="driver", message="image not found")
    nomad.faults.error_rate = 0.3
    nomad.faults.drop_rate = 0.3
    with pytest.raises(DeploymentFailed) as failed:
        client.run(job(), timeout=60)
    assert any("driver failure: image not found" in d for d in failed.value.diagnosis)


def test_watch_resumes_after_the_server_restarts_mid_deployment(nomad: NomadEmulator) -> None:
    nomad.timings.healthy_after = 0.4
    restarter = threading.Thread(target=nomad.restart)

    def restart_while_blocked(event: DeployEvent) -> None:
        # The first progress event means the deployment follower is about to block; the
        # restart closes its connection in flight.
        if event.kind == "progress" and not restarter.is_alive() and restarter.ident is None:
            restarter.start()

    # The client's retries must outlast a restart on a loaded machine: about 12 s here.
    with NomadClient(nomad.url, retry=Retry(attempts=20, backoff=0.05, max_backoff=1.0)) as c:
        try:
            result = c.run(job(), timeout=60, on_event=restart_while_blocked)
        finally:
            if restarter.ident is not None:
                restarter.join()
    assert result.status == "healthy"
    assert [(g.healthy, g.desired) for g in result.groups] == [(2, 2)]


def test_exhausted_retries_raise_nomad_unavailable_naming_the_address(
        nomad: NomadEmulator) -> None:
    nomad.faults.error_rate = 1.0
    with NomadClient(nomad.url, retry=Retry(attempts=3, backoff=0.001)) as c, \
            pytest.raises(NomadUnavailable) as down:
        c.status("web")
    assert down.value.address == nomad.url
    assert "failed 3 times" in str(down.value)
    assert "No cluster leader" in str(down.value)


def test_register_without_enforce_index_is_never_repeated(nomad: NomadEmulator,
                                                          client: NomadClient) -> None:
    nomad.faults.error_rate = 1.0
    with pytest.raises(ApiError) as failed:
        client.register(job())
    assert not isinstance(failed.value, NomadUnavailable)
    assert failed.value.status == 500


def test_register_under_enforce_index_is_repeated_until_it_lands(nomad: NomadEmulator,
                                                                 client: NomadClient) -> None:
    nomad.faults.drop_rate = 0.5
    registered = client.register(job(), enforce_index=0)
    nomad.faults.drop_rate = 0.0
    assert client.job("web")["JobModifyIndex"] == registered.job_modify_index


def test_server_gone_for_good_mid_watch_raises_nomad_unavailable(
        nomad: NomadEmulator) -> None:
    nomad.timings.healthy_after = 5.0

    def stop_server(event: DeployEvent) -> None:
        if event.kind == "evaluation":
            nomad.stop()

    with NomadClient(nomad.url, retry=Retry(attempts=3, backoff=0.01)) as client, \
            pytest.raises(NomadUnavailable) as down:
        client.run(job(), timeout=60, on_event=stop_server)
    assert down.value.address == nomad.url


def test_slow_rollout_raises_deploy_timeout_with_the_progress_so_far(
        nomad: NomadEmulator, client: NomadClient) -> None:
    nomad.timings.healthy_after = 30.0
    with pytest.raises(DeployTimeout) as slow:
        client.run(job(), timeout=0.5)
    assert any("did not finish before the timeout (api: 0/2 healthy" in d
               for d in slow.value.diagnosis)


# Strict: once the emulator stores Submissions this passes and the marker must go.
def test_retried_register_whose_first_attempt_landed_is_not_a_false_conflict(
        nomad: NomadEmulator) -> None:
    # The first attempts land on the server only after the client stopped waiting for them;
    # a later attempt then meets the index they moved. The job carries our digest, so this is
    # our own write, not someone else's.
    nomad.faults.latency = 0.5
    threading.Timer(0.6, lambda: setattr(nomad.faults, "latency", 0.0)).start()
    with NomadClient(nomad.url, retry=Retry(attempts=20, backoff=0.01, max_backoff=0.02)) as c:
        registered = c.register(job(), enforce_index=0, timeout=0.2)
        current = c.job("web")
    assert registered.job_modify_index == current["JobModifyIndex"]
    assert current["Version"] == 0
