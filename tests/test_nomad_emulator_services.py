"""Nomad-native service discovery (`provider = "nomad"`), as Nomad 2.0 serves it.

Shapes and behaviour follow command/agent/service_registration_endpoint.go,
nomad/service_registration_endpoint.go (list per namespace with tags, by name, `choose`,
blocking on the table index), the registration ID of client/serviceregistration/id.go:27, and
the state store removing the registrations of terminal allocations
(state_store_service_registration.go:192).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.envoy import eventually
from nomadmesh.testing.jobs import service_job


def _nomad_service_job(job_id: str, name: str = "web", count: int = 1,
                       tags: list[str] | None = None) -> dict[str, Any]:
    job = service_job(job_id, count=count, service=name)
    service = job["TaskGroups"][0]["Services"][0]
    service.update(Provider="nomad", Tags=tags or ["v1"], Checks=None)
    return job


def _running(nomad: NomadEmulator, job_id: str, count: int) -> bool:
    return nomad.wait_for(lambda: sum(
        1 for a in nomad.snapshot().all("allocs")
        if a["JobID"] == job_id and a["ClientStatus"] == "running") == count)


def _service(nomad: NomadEmulator, name: str, **params: str) -> requests.Response:
    return requests.get(f"{nomad.url}/v1/service/{name}", params=params, timeout=10)


def test_a_running_allocation_registers_its_nomad_service(nomad: NomadEmulator) -> None:
    nomad.register(_nomad_service_job("api", count=2))
    assert _running(nomad, "api", 2)
    assert nomad.wait_for(lambda: len(_service(nomad, "web").json()) == 2)
    regs = _service(nomad, "web").json()
    allocs = {a["ID"]: a for a in nomad.snapshot().all("allocs")}
    for reg in regs:
        alloc = allocs[reg["AllocID"]]
        [port] = alloc["AllocatedResources"]["Shared"]["Ports"]
        assert reg == {**reg, "ServiceName": "web", "Namespace": "default", "JobID": "api",
                       "NodeID": alloc["NodeID"], "Datacenter": "dc1", "Tags": ["v1"],
                       "Address": port["HostIP"], "Port": port["Value"],
                       "ID": f"_nomad-task-{alloc['ID']}-group-app-web-http"}


def test_services_lists_names_and_tags_per_namespace(nomad: NomadEmulator) -> None:
    nomad.register(_nomad_service_job("api", tags=["a", "b"]))
    nomad.register(_nomad_service_job("db", name="pg", tags=["primary"]))
    assert _running(nomad, "api", 1) and _running(nomad, "db", 1)
    assert nomad.wait_for(lambda: len(requests.get(f"{nomad.url}/v1/services",
                                                   timeout=5).json()[0]["Services"]) == 2)
    answer = requests.get(f"{nomad.url}/v1/services", timeout=5).json()
    assert answer == [{"Namespace": "default", "Services": [
        {"ServiceName": "pg", "Tags": ["primary"]}, {"ServiceName": "web", "Tags": ["a", "b"]}]}]
    assert requests.get(f"{nomad.url}/v1/services", params={"namespace": "other"},
                        timeout=5).json() == []


def test_stopping_the_job_removes_its_registrations(nomad: NomadEmulator) -> None:
    nomad.register(_nomad_service_job("api"))
    assert nomad.wait_for(lambda: len(_service(nomad, "web").json()) == 1)
    requests.delete(f"{nomad.url}/v1/job/api", timeout=5)
    assert nomad.wait_for(lambda: _service(nomad, "web").json() == [])


def test_a_blocking_query_wakes_for_its_service_only(nomad: NomadEmulator) -> None:
    first = _service(nomad, "web")
    index = first.headers["X-Nomad-Index"]
    woke: list[float] = []

    def block() -> None:
        _service(nomad, "web", index=index, wait="20s")
        woke.append(time.monotonic())

    waiter = threading.Thread(target=block)
    waiter.start()
    key = ("service_registrations", "name", ("default", "web"))
    eventually(lambda: nomad.watches.waiting(key) == 1, what="the parked query")
    nomad.register(_nomad_service_job("other", name="unrelated"))
    assert _running(nomad, "other", 1)
    assert nomad.wait_for(lambda: len(_service(nomad, "unrelated").json()) == 1)
    time.sleep(0.3)  # give a wrongly woken waiter the time to show up (it must not)
    assert woke == []
    started = time.monotonic()
    nomad.register(_nomad_service_job("api"))
    waiter.join(timeout=20)
    assert woke and woke[0] - started < 10


def test_filter_and_choose_select_instances(nomad: NomadEmulator) -> None:
    nomad.register(_nomad_service_job("api", count=3))
    assert nomad.wait_for(lambda: len(_service(nomad, "web").json()) == 3)
    first = _service(nomad, "web").json()[0]
    assert [r["AllocID"] for r in _service(nomad, "web",
                                           filter=f'AllocID == "{first["AllocID"]}"').json()
            ] == [first["AllocID"]]
    chosen = [r["ID"] for r in _service(nomad, "web", choose="2|caller").json()]
    assert len(chosen) == 2 and chosen == [r["ID"] for r in _service(
        nomad, "web", choose="2|caller").json()]
    bad = _service(nomad, "web", choose="two")
    assert bad.status_code == 400


def test_consul_services_stay_in_consul(nomad: NomadEmulator, consul: ConsulEmulator) -> None:
    nomad.register(service_job("api", service="web"))
    nomad.register(_nomad_service_job("native", name="native"))
    assert _running(nomad, "api", 1) and _running(nomad, "native", 1)
    assert nomad.wait_for(lambda: len(_service(nomad, "native").json()) == 1)
    assert _service(nomad, "web").json() == []
    assert consul.service_ids("native") == [] and len(consul.service_ids("web")) == 1


def test_deleting_a_registration_by_id(nomad: NomadEmulator) -> None:
    nomad.register(_nomad_service_job("api"))
    assert nomad.wait_for(lambda: len(_service(nomad, "web").json()) == 1)
    [reg] = _service(nomad, "web").json()
    gone = requests.delete(f"{nomad.url}/v1/service/web/{reg['ID']}", timeout=5)
    assert gone.status_code == 200 and _service(nomad, "web").json() == []


def test_a_check_with_its_own_port_probes_that_port(nomad: NomadEmulator,
                                                    consul: ConsulEmulator) -> None:
    # service_client.go:1507: a check's PortLabel wins over its service's.
    job = service_job("api", service="web")
    group = job["TaskGroups"][0]
    group["Networks"][0]["DynamicPorts"].append({"Label": "health", "To": 9090})
    group["Services"][0]["Checks"] = [
        {"Name": "alive", "Type": "tcp", "PortLabel": "health",
         "Interval": 10_000_000_000, "Timeout": 2_000_000_000},
        {"Name": "ready", "Type": "http", "Path": "/ready",
         "Interval": 10_000_000_000, "Timeout": 2_000_000_000}]
    nomad.register(job)
    assert _running(nomad, "api", 1)

    def checks() -> list[dict[str, Any]]:
        return [c for c in consul.check_definitions() if c["CheckID"].startswith("_nomad-check")]

    assert nomad.wait_for(lambda: len(checks()) == 2)
    alloc = next(a for a in nomad.snapshot().all("allocs") if a["JobID"] == "api")
    ports = {p["Label"]: p for p in alloc["AllocatedResources"]["Shared"]["Ports"]}
    health, http = ports["health"], ports["http"]
    assert sorted(c.get("TCP") or c["HTTP"] for c in checks()) == sorted([
        f"{health['HostIP']}:{health['Value']}",
        f"http://{http['HostIP']}:{http['Value']}/ready"])
    assert health["Value"] != http["Value"]
