"""With Consul configured, `run()` waits for the job's services to pass and `status` shows them."""

from __future__ import annotations

import threading

import attrs
import requests

from nomadmesh.deploy import NomadClient, ServiceHealth
from nomadmesh.model import Check, Group, Job, Network, Port, Resources, Service, Task
from nomadmesh.testing import ConsulEmulator, NomadEmulator

SECOND = 1_000_000_000


def job() -> Job:
    task = Task("app", driver="docker", config={"image": "busybox:1.36"},
                resources=Resources(cpu=50, memory=32))
    check = Check(type="http", path="/health", interval=5 * SECOND, timeout=SECOND)
    group = Group("api", count=2, tasks=(task,), networks=(Network(ports=(Port("http"),)),),
                  services=(Service(name="web-api", port="http", checks=(check,)),))
    return Job("web", groups=(group,))


def test_run_waits_for_every_instance_to_pass_in_consul(
        nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    with NomadClient(nomad.url, consul=consul.url) as client:
        result = client.run(job(), timeout=30)
    assert result.services == {"web-api": 2}


def test_status_shows_each_service_instance_and_its_checks(
        nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    with NomadClient(nomad.url, consul=consul.url) as client:
        client.run(job(), timeout=30)
        instances = client.status("web").services
    assert [i.service for i in instances] == ["web-api", "web-api"]
    assert all(i.passing and i.port > 0 and i.checks for i in instances)


def test_from_env_reads_consul_http_addr(nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    env = {"NOMAD_ADDR": nomad.url, "CONSUL_HTTP_ADDR": consul.url}
    with NomadClient.from_env(env) as client:
        assert isinstance(client.consul, ServiceHealth)
        assert client.consul.address == consul.url


def _register_critical(consul: ConsulEmulator, service_id: str) -> str:
    requests.put(f"{consul.url}/v1/agent/service/register", timeout=5, json={
        "ID": service_id, "Name": "db", "Port": 5432,
        "Check": {"CheckID": f"{service_id}-ttl", "Name": "ttl", "TTL": "30s",
                  "Status": "critical"}}).raise_for_status()
    return f"{service_id}-ttl"


def test_waiting_for_services_returns_as_soon_as_a_check_turns_passing(
        consul: ConsulEmulator) -> None:
    check = _register_critical(consul, "db-1")
    threading.Timer(0.2, consul.set_check_status, (check, "passing")).start()
    health = ServiceHealth(consul.url)
    assert health.wait_passing({"db": 1}, timeout=10) == {"db": 1}


def test_waiting_for_services_gives_up_at_the_timeout_with_the_count_reached(
        consul: ConsulEmulator) -> None:
    _register_critical(consul, "db-1")
    health = ServiceHealth(consul.url)
    assert health.wait_passing({"db": 1}, timeout=0.3) == {"db": 0}


def test_the_health_gate_counts_only_this_jobs_current_allocations(
        nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    # Another job registers the same service name with 3 passing instances, and a stray
    # registration that Nomad did not make passes too; neither counts for "web".
    other = attrs.evolve(job(), id="other", name="other",
                         groups=(attrs.evolve(job().groups[0], count=3),))
    for n in range(2):
        requests.put(f"{consul.url}/v1/agent/service/register", timeout=5, json={
            "ID": f"stray-web-api-{n}", "Name": "web-api", "Port": 9000 + n}).raise_for_status()
    with NomadClient(nomad.url, consul=consul.url) as client:
        client.run(other, timeout=30)
        result = client.run(job(), timeout=30)
        instances = client.status("web").services
    assert result.services == {"web-api": 2}
    assert len(instances) == 2


def test_status_of_a_new_version_shows_only_instances_of_live_allocations(
        nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    with NomadClient(nomad.url, consul=consul.url) as client:
        client.run(job(), timeout=30)
        changed = attrs.evolve(job(), groups=(attrs.evolve(job().groups[0], count=1),))
        result = client.run(changed, timeout=30)
    assert result.services == {"web-api": 1}
