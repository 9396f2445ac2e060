"""Pack deployments on the Nomad emulator: run, plan a new version, prune, stop, status."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
import requests

from nomadmesh import Group, Job, Periodic, Task
from nomadmesh.deploy import NomadClient
from nomadmesh.errors import DeploymentFailed, NotFound, OwnershipError
from nomadmesh.packs import Pack, pack, variable
from nomadmesh.packs.deploy import deployments, plan_pack, run_pack, stop_pack
from nomadmesh.testing import NomadEmulator


@attrs.frozen(kw_only=True)
class Variables:
    image: str = variable("app:1")


def shop_pack(version: str, parts: tuple[str, ...]) -> Pack[Variables]:
    def jobs(v: Variables, deployment: str) -> list[Job]:
        return [Job(f"{deployment}-{part}", groups=[Group("main", tasks=[
            Task("main", driver="docker", config={"image": v.image})])]) for part in parts]

    return pack(name="shop", version=version, variables=Variables)(jobs)


V1 = shop_pack("1.0.0", ("web", "worker"))
V2 = shop_pack("2.0.0", ("web",))


@pytest.fixture
def client(nomad_url: str) -> Iterator[NomadClient]:
    with NomadClient(nomad_url) as c:
        yield c


def job_ids(client: NomadClient, deployment: str) -> list[str]:
    return [j.id for d in deployments(client, deployment=deployment) for j in d.jobs]


def test_run_registers_every_job_of_the_deployment(client: NomadClient) -> None:
    result = run_pack(client, V1.render(deployment="eu"))
    assert [r.status for r in result.results] == ["healthy", "healthy"]
    [found] = deployments(client)
    assert (found.pack, found.deployment) == ("shop", "eu")
    assert [j.id for j in found.jobs] == ["eu-web", "eu-worker"]


def test_plan_of_a_new_version_lists_the_jobs_it_no_longer_produces(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    plan = plan_pack(client, V2.render(deployment="eu"))
    assert plan.dropped == ("eu-worker",)
    assert "eu-worker" in plan.render() and "--prune" in plan.render()
    assert job_ids(client, "eu") == ["eu-web", "eu-worker"]


def test_run_without_prune_leaves_dropped_jobs_running(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    result = run_pack(client, V2.render(deployment="eu"))
    assert (result.left_running, result.pruned) == (("eu-worker",), ())
    assert job_ids(client, "eu") == ["eu-web", "eu-worker"]


def test_run_with_prune_stops_exactly_the_dropped_jobs(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    run_pack(client, V1.render(deployment="eu-worker"))
    result = run_pack(client, V2.render(deployment="eu"), prune=True)
    assert result.pruned == ("eu-worker",)
    assert job_ids(client, "eu") == ["eu-web"]
    assert job_ids(client, "eu-worker") == ["eu-worker-web", "eu-worker-worker"]


def test_stop_stops_only_the_named_deployment_by_exact_id(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    run_pack(client, V1.render(deployment="eu-2"))
    assert stop_pack(client, "eu") == ["eu-web", "eu-worker"]
    assert [d.deployment for d in deployments(client)] == ["eu-2"]


def test_stopped_deployments_show_only_when_asked(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    stop_pack(client, "eu")
    [found] = deployments(client, include_stopped=True)
    assert all(j.stopped for j in found.jobs)


def test_a_job_of_another_deployment_is_not_taken_over(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    other = pack(name="other", version="1", variables=Variables)(
        lambda v, d: [Job("eu-web", groups=[Group("main", tasks=[
            Task("main", driver="docker", config={"image": v.image})])])])
    with pytest.raises(OwnershipError, match="belongs to deployment 'eu' of pack 'shop'"):
        run_pack(client, other.render(deployment="eu-other"))


def test_stopping_an_unknown_deployment_is_not_found(client: NomadClient) -> None:
    with pytest.raises(NotFound, match="no running jobs belong to deployment 'nowhere'"):
        stop_pack(client, "nowhere")


def test_children_of_a_periodic_job_are_not_jobs_of_the_deployment(client: NomadClient,
                                                                   nomad_url: str) -> None:
    nightly = pack(name="nightly", version="1", variables=Variables)(
        lambda v, d: Job(d, type="batch", periodic=Periodic(crons=["0 3 * * *"]), groups=[
            Group("main", tasks=[Task("main", driver="docker", config={"image": v.image})])]))
    run_pack(client, nightly.render(deployment="report"), wait=False)
    requests.post(f"{nomad_url}/v1/job/report/periodic/force", timeout=5).raise_for_status()
    assert job_ids(client, "report") == ["report"]
    assert plan_pack(client, nightly.render(deployment="report")).dropped == ()


def test_a_failed_rollout_prunes_nothing(client: NomadClient, nomad: NomadEmulator) -> None:
    run_pack(client, V1.render(deployment="eu"))
    nomad.script_task("eu-web", "main", "main", fail="driver")
    with pytest.raises(DeploymentFailed):
        run_pack(client, V2.render(V2.variables(image="app:2"), deployment="eu"), prune=True,
                 timeout=10)
    assert job_ids(client, "eu") == ["eu-web", "eu-worker"]


def test_a_new_pack_version_alone_changes_nothing_on_the_cluster(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    same_jobs = shop_pack("1.0.1", ("web", "worker"))
    plan = plan_pack(client, same_jobs.render(deployment="eu"))
    assert [p.diff.get("Type") for p in plan.plans] == ["None", "None"]
    assert plan.exit_code == 0
    assert set(client.job("eu-web")["Meta"]) == {"nomadmesh.tool", "nomadmesh.pack",
                                                 "nomadmesh.deployment"}


def test_pack_plan_exit_code_counts_dropped_jobs_only_when_pruning(client: NomadClient) -> None:
    run_pack(client, V1.render(deployment="eu"))
    assert plan_pack(client, V2.render(deployment="eu")).exit_code == 0
    assert plan_pack(client, V2.render(deployment="eu"), prune=True).exit_code == 1
