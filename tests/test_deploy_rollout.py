"""The rollout on top of the endpoints: validation first, ownership, preserved counts, promotion
that meets a failed canary, and Nomad's exit-code facts."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import requests

from nomadmesh.deploy import DeployResult, NomadClient, Plan
from nomadmesh.deploy.client import count_before_scaling
from nomadmesh.errors import DeploymentFailed, DeployTimeout, OwnershipError, ValidationError
from nomadmesh.model import Group, Job, Resources, Task, UpdateStrategy
from nomadmesh.testing import NomadEmulator

SECOND = 1_000_000_000
# The emulator runs a job's durations 200 times as fast (Timings.scale): these deadlines are 1.5 s
# and 3 s of wall time, so a loaded CI machine cannot fail a deployment that these tests expect
# to be healthy (30 s / 60 s were 0.15 s / 0.3 s, and once failed on "progress deadline").
FAST_UPDATE = UpdateStrategy(min_healthy_time=1 * SECOND, healthy_deadline=300 * SECOND,
                             progress_deadline=600 * SECOND)


def service(job_id: str = "web", *, count: int = 2, image: str = "busybox:1.36",
            meta: dict[str, str] | None = None, update: UpdateStrategy = FAST_UPDATE) -> Job:
    task = Task("app", driver="docker", config={"image": image},
                resources=Resources(cpu=50, memory=32))
    return Job(job_id, meta=meta or {}, update=update,
               groups=(Group("api", count=count, tasks=(task,)),))


@pytest.fixture
def client(nomad: NomadEmulator) -> Iterator[NomadClient]:
    with NomadClient(nomad.url) as c:
        yield c


# --- validation before anything is posted ------------------------------------------------------


def test_an_invalid_python_built_job_is_refused_before_any_request() -> None:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_error(500)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bad = Job("web", groups=(Group("api", count=-1, tasks=(Task("app", driver=""),)),))
        with NomadClient(f"http://127.0.0.1:{server.server_address[1]}") as c, \
                pytest.raises(ValidationError) as invalid:
            c.run(bad, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []
    assert all(p.path.startswith("job[web]") for p in invalid.value.problems)


# --- ownership ---------------------------------------------------------------------------------


def test_a_plain_run_of_a_job_a_pack_deployment_owns_is_refused(client: NomadClient) -> None:
    owned = {"nomadmesh.pack": "shop", "nomadmesh.deployment": "eu"}
    client.run(service(meta=owned), timeout=30)
    with pytest.raises(OwnershipError, match="deployment 'eu' of pack 'shop'"):
        client.run(service(image="busybox:1.37"), timeout=30)
    assert client.job("web")["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "busybox:1.36"


def test_a_forced_plain_run_takes_over_a_pack_job(client: NomadClient) -> None:
    client.run(service(meta={"nomadmesh.pack": "shop", "nomadmesh.deployment": "eu"}),
               timeout=30)
    result = client.run(service(image="busybox:1.37"), timeout=30, allow_foreign=True)
    assert result.status == "healthy"
    assert "nomadmesh.pack" not in client.job("web")["Meta"]


def test_the_same_pack_deployment_may_run_its_own_job_again(client: NomadClient) -> None:
    owned = {"nomadmesh.pack": "shop", "nomadmesh.deployment": "eu"}
    client.run(service(meta=owned), timeout=30)
    assert client.run(service(meta=owned, image="busybox:1.37"), timeout=30).status == "healthy"


# --- preserved counts --------------------------------------------------------------------------


def _scale(nomad: NomadEmulator, count: int) -> None:
    answer = requests.post(f"{nomad.url}/v1/job/web/scale", timeout=10, json={
        "Count": count, "Target": {"Group": "api"}, "Message": "autoscaler"})
    answer.raise_for_status()


def test_run_keeps_a_scaled_groups_count_when_the_file_did_not_change_it(
        client: NomadClient, nomad: NomadEmulator) -> None:
    client.run(service(count=2), timeout=30)
    _scale(nomad, 5)
    result = client.run(service(count=2, image="busybox:1.37"), timeout=60)
    assert result.status == "healthy"
    assert client.job("web")["TaskGroups"][0]["Count"] == 5
    assert any(e.kind == "scale" and "keeping count 5" in e.message for e in result.events)


def test_run_applies_a_count_the_file_changed_even_after_scaling(
        client: NomadClient, nomad: NomadEmulator) -> None:
    client.run(service(count=2), timeout=30)
    _scale(nomad, 5)
    client.run(service(count=3), timeout=60)
    assert client.job("web")["TaskGroups"][0]["Count"] == 3


def test_preserve_counts_off_applies_the_files_count(
        client: NomadClient, nomad: NomadEmulator) -> None:
    client.run(service(count=2), timeout=30)
    _scale(nomad, 5)
    client.run(service(count=2), timeout=60, preserve_counts=False)
    assert client.job("web")["TaskGroups"][0]["Count"] == 2


def test_the_count_before_scaling_follows_the_chain_of_scaling_events() -> None:
    # Newest first: 2 -> 5 -> 7 by scaling; the submit set 2.
    events = [{"Count": 7, "PreviousCount": 5}, {"Count": 5, "PreviousCount": 2},
              {"Count": None, "PreviousCount": 2, "Message": "a policy changed"}]
    assert count_before_scaling(events, 7) == 2
    # A submit set 3 after scaling to 5, then a scaling went 3 -> 7: the chain breaks at 5.
    assert count_before_scaling([{"Count": 7, "PreviousCount": 3},
                                 {"Count": 5, "PreviousCount": 2}], 7) == 3
    # The running count is not the last scaled one: a submit changed it since.
    assert count_before_scaling([{"Count": 5, "PreviousCount": 2}], 3) is None
    assert count_before_scaling([{"Count": 5, "PreviousCount": 2, "Error": True}], 5) is None


# --- promotion that meets a failed canary ------------------------------------------------------


def test_promote_with_a_failing_canary_and_auto_revert_reports_the_revert(
        client: NomadClient, nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    client.run(service(update=attrs.evolve(FAST_UPDATE, auto_revert=True)), timeout=30)
    canary = attrs.evolve(FAST_UPDATE, canary=1, auto_revert=True)
    failed_once: list[str] = []
    promote = client.api.promote

    def fail_then_promote(deployment_id: str, *args: Any, **kwargs: Any) -> Any:
        # The canaries are healthy and the client promotes; the deployment fails first (as
        # when a canary dies in between), so Nomad refuses and rolls back instead.
        if not failed_once:
            failed_once.append(deployment_id)
            requests.post(f"{nomad.url}/v1/deployment/fail/{deployment_id}", timeout=10,
                          json={"DeploymentID": deployment_id}).raise_for_status()
        return promote(deployment_id, *args, **kwargs)

    monkeypatch.setattr(client.api, "promote", fail_then_promote)
    with pytest.raises(DeploymentFailed) as failed:
        client.run(service(image="busybox:1.37", update=canary), timeout=60, promote=True)
    assert failed_once
    assert not isinstance(failed.value, DeployTimeout)
    assert "/v1/deployment/promote" not in str(failed.value)
    result = failed.value.result
    assert isinstance(result, DeployResult)
    assert (result.status, result.reverted_to) == ("reverted", 0)
    assert any(e.kind == "promote" and "refused" in e.message for e in result.events)


# --- exit-code facts ---------------------------------------------------------------------------


def _plan(diff_type: str, **updates: int) -> Plan:
    return Plan.from_api("web", {"Diff": {"Type": diff_type},
                                 "Annotations": {"DesiredTGUpdates": {"api": updates}}})


def test_plan_exit_code_is_nomads_in_place_updates_alone_are_0() -> None:
    assert _plan("None", Ignore=2).exit_code == 0
    assert _plan("Edited", InPlaceUpdate=2).exit_code == 0
    assert _plan("Edited", InPlaceUpdate=2, Place=1).exit_code == 1
    assert _plan("Edited", DestructiveUpdate=1).exit_code == 1
    assert _plan("Added", Place=2).exit_code == 1
    assert _plan("Edited", Canary=1).exit_code == 1


def test_run_of_an_unplaceable_job_fails_with_exit_code_2(client: NomadClient) -> None:
    huge = attrs.evolve(service(), groups=(attrs.evolve(
        service().groups[0], tasks=(Task("app", driver="docker", config={"image": "x"},
                                         resources=Resources(cpu=50, memory=10_000_000)),)),))
    with pytest.raises(DeploymentFailed) as failed:
        client.run(huge, timeout=30)
    assert getattr(failed.value.result, "exit_code", None) == 2


def test_run_of_a_failing_job_fails_with_exit_code_1(client: NomadClient,
                                                     nomad: NomadEmulator) -> None:
    nomad.script_task("web", "api", "app", fail="driver", message="no such image")
    failing_fast = attrs.evolve(FAST_UPDATE, healthy_deadline=30 * SECOND,
                                progress_deadline=60 * SECOND)  # this deployment is to fail
    with pytest.raises(DeploymentFailed) as failed:
        client.run(service(update=failing_fast), timeout=30)
    assert getattr(failed.value.result, "exit_code", None) == 1
