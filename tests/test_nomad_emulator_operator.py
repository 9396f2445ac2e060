"""The emulator's agent, operator, system, search, metrics and scaling endpoints (gaps python-nomad's
suite found). Texts and shapes follow Nomad at aa026cc: command/agent/agent_endpoint.go,
operator_endpoint.go, nomad/search_endpoint.go, nomad/structs/structs.go.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import service_job


@pytest.fixture
def nomad() -> Iterator[NomadEmulator]:
    with NomadEmulator() as emulator:
        yield emulator


def _call(nomad: NomadEmulator, method: str, path: str, body: Any = None,
          **params: str) -> requests.Response:
    return requests.request(method, f"{nomad.url}{path}", json=body, params=params, timeout=5)


def test_agent_members_servers_join_force_leave(nomad: NomadEmulator) -> None:
    members = _call(nomad, "GET", "/v1/agent/members").json()
    assert members["ServerRegion"] == "global"
    assert [(m["Name"], m["Status"]) for m in members["Members"]] == [
        ("nomad-emulator.global", "alive")]
    assert _call(nomad, "GET", "/v1/agent/servers").json() == ["127.0.0.1:4647"]
    joined = _call(nomad, "POST", "/v1/agent/join", address="nope").json()
    assert joined["num_joined"] == 0 and joined["error"].startswith("1 error occurred:")
    missing = _call(nomad, "POST", "/v1/agent/join")
    assert (missing.status_code, missing.text) == (400, "missing address to join")
    assert _call(nomad, "POST", "/v1/agent/force-leave", node="nope").status_code == 200
    bad = _call(nomad, "POST", "/v1/agent/force-leave", node="x", prune="maybe")
    assert (bad.status_code, bad.text) == (400, "invalid prune value")


def test_raft_configuration_and_peer_removal(nomad: NomadEmulator) -> None:
    servers = _call(nomad, "GET", "/v1/operator/raft/configuration").json()["Servers"]
    assert [(s["Address"], s["Leader"], s["Voter"]) for s in servers] == [
        ("127.0.0.1:4647", True, True)]
    by_address = _call(nomad, "DELETE", "/v1/operator/raft/peer", address="1.2.3.4:4646")
    assert (by_address.status_code, by_address.text) == (
        400, "Removing a peer by address is not supported in the current raft protocol version")
    unknown = _call(nomad, "DELETE", "/v1/operator/raft/peer", id="x")
    assert (unknown.status_code, unknown.text) == (
        500, 'id "x" was not found in the Raft configuration')


def test_prefix_and_fuzzy_search(nomad: NomadEmulator) -> None:
    nomad.register(service_job("example", count=1))
    nomad.register(service_job("other", count=1))
    found = _call(nomad, "POST", "/v1/search", {"Prefix": "ex", "Context": "jobs"}).json()
    assert found == {"Matches": {"jobs": ["example"]}, "Truncations": {"jobs": False}}
    everything = _call(nomad, "POST", "/v1/search", {"Prefix": "", "Context": "all"}).json()
    assert everything["Matches"]["jobs"] == ["example", "other"]
    assert len(everything["Matches"]["nodes"]) == 3
    fuzzy = _call(nomad, "POST", "/v1/search/fuzzy", {"Text": "XAmp", "Context": "jobs"}).json()
    assert fuzzy["Matches"]["jobs"] == [{"ID": "example", "Scope": ["default", "example"]}]
    short = _call(nomad, "POST", "/v1/search/fuzzy", {"Text": "e", "Context": "jobs"})
    assert (short.status_code, short.text) == (
        500, "fuzzy search query must be at least 2 characters, got 1")


def test_system_gc_metrics_and_scaling_policies(nomad: NomadEmulator) -> None:
    assert _call(nomad, "PUT", "/v1/system/gc").status_code == 200
    nomad.register(service_job("web", count=2))
    gauges = {g["Name"]: g["Value"] for g in _call(nomad, "GET", "/v1/metrics").json()["Gauges"]}
    assert gauges["nomad.state.jobs"] == 1.0
    prometheus = _call(nomad, "GET", "/v1/metrics", format="prometheus")
    assert (prometheus.status_code, prometheus.text) == (415, "Prometheus is not enabled")
    assert _call(nomad, "GET", "/v1/scaling/policies").json() == []
    assert _call(nomad, "GET", "/v1/scaling/policy/nope").status_code == 404


# --- node writes (command/agent/node_endpoint.go, nomad/node_endpoint.go) ----------------------


def _node(nomad: NomadEmulator, node_id: str) -> dict[str, Any]:
    node: dict[str, Any] = _call(nomad, "GET", f"/v1/node/{node_id}").json()
    return node


def test_node_eligibility_and_evaluate(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web", count=1))
    assert nomad.wait_for(lambda: any(a["ClientStatus"] == "running"
                                      for a in nomad.snapshot().all("allocs")), 10)
    node_id = next(a["NodeID"] for a in nomad.snapshot().all("allocs"))
    evaluated = _call(nomad, "POST", f"/v1/node/{node_id}/evaluate").json()
    assert len(evaluated["EvalIDs"]) == 1
    ev = _call(nomad, "GET", f"/v1/evaluation/{evaluated['EvalIDs'][0]}").json()
    assert (ev["TriggeredBy"], ev["NodeID"], ev["JobID"]) == ("node-update", node_id, "web")
    off = _call(nomad, "POST", f"/v1/node/{node_id}/eligibility",
                {"NodeID": node_id, "Eligibility": "ineligible"})
    assert off.status_code == 200
    node = _node(nomad, node_id)
    assert node["SchedulingEligibility"] == "ineligible"
    assert node["Events"][-1]["Message"] == "Node marked as ineligible for scheduling"
    bad = _call(nomad, "POST", f"/v1/node/{node_id}/eligibility", {"Eligibility": "maybe"})
    assert (bad.status_code, bad.text) == (500, 'invalid scheduling eligibility "maybe"')


def test_drain_migrates_allocations_then_completes(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web", count=1))
    assert nomad.wait_for(lambda: any(a["ClientStatus"] == "running"
                                      for a in nomad.snapshot().all("allocs")), 10)
    first = next(iter(nomad.snapshot().all("allocs")))
    node_id = first["NodeID"]
    drained = _call(nomad, "POST", f"/v1/node/{node_id}/drain",
                    {"NodeID": node_id, "DrainSpec": {"Deadline": -1}}).json()
    assert len(drained["EvalIDs"]) == 1
    node = _node(nomad, node_id)
    assert "Drain" not in node  # structs.Node has none; the list stub computes it
    assert node["LastDrain"]["Status"] in ("draining", "complete")
    assert node["SchedulingEligibility"] == "ineligible"
    stub = next(n for n in _call(nomad, "GET", "/v1/nodes").json() if n["ID"] == node_id)
    assert isinstance(stub["Drain"], bool)
    # the drainer: the allocation moves, then the drain is complete (drainer.go:39)
    assert nomad.wait_for(lambda: any(
        a["NodeID"] != node_id and a["ClientStatus"] == "running"
        for a in nomad.snapshot().all("allocs")), 10)
    assert nomad.wait_for(lambda: (nomad.snapshot().node_by_id(node_id) or {}).get(
        "DrainStrategy") is None, 10)
    node = _node(nomad, node_id)
    assert (node["LastDrain"]["Status"], node["Events"][-1]["Message"]) == (
        "complete", "Node drain complete")
    assert node["SchedulingEligibility"] == "ineligible"
    again = _call(nomad, "POST", f"/v1/node/{node_id}/eligibility", {"Eligibility": "eligible"})
    assert again.status_code == 200
    assert _node(nomad, node_id)["SchedulingEligibility"] == "eligible"
    typo = _call(nomad, "POST", f"/v1/node/{node_id}/drain", {"DrainSpec": {"Deadline": "1"}})
    assert (typo.status_code, typo.text) == (400, (
        "json: cannot unmarshal string into Go struct field "
        "NodeUpdateDrainRequest.DrainSpec.Deadline of type time.Duration"))
    huge = _call(nomad, "POST", f"/v1/node/{node_id}/drain", {"DrainSpec": {"Deadline": 1e300}})
    assert (huge.status_code, huge.text) == (400, (
        "json: cannot unmarshal number 1e+300 into Go struct field "
        "NodeUpdateDrainRequest.DrainSpec.Deadline of type time.Duration"))


def test_drain_disabled_with_mark_eligible(nomad: NomadEmulator) -> None:
    node_id = nomad.snapshot().nodes()[0]["ID"]
    _call(nomad, "POST", f"/v1/node/{node_id}/drain", {"DrainSpec": {"Deadline": 0}})
    _call(nomad, "POST", f"/v1/node/{node_id}/drain", {"DrainSpec": None, "MarkEligible": True})
    node = _node(nomad, node_id)
    assert (node["DrainStrategy"], node["SchedulingEligibility"]) == (None, "eligible")


# --- event stream (command/agent/event_endpoint.go:46, nomad/structs/event.go) -----------------


def _first_event(nomad: NomadEmulator, params: dict[str, str],
                 write: Any) -> dict[str, Any]:
    """Open the stream, do `write`, answer the first batch that arrives."""
    with requests.get(f"{nomad.url}/v1/event/stream", params=params, stream=True,
                      timeout=10) as resp:
        assert resp.status_code == 200
        write()
        for line in resp.iter_lines():
            batch: dict[str, Any] = json.loads(line)
            if batch:
                return batch
    raise AssertionError("the stream ended")


def test_event_stream_topics(nomad: NomadEmulator) -> None:
    batch = _first_event(nomad, {"topic": "Job"},
                         lambda: nomad.register(service_job("web", count=1)))
    assert {(e["Topic"], e["Type"], e["Key"]) for e in batch["Events"]} == {
        ("Job", "JobRegistered", "web")}
    assert batch["Events"][0]["Payload"]["Job"]["ID"] == "web"
    node_id = nomad.snapshot().nodes()[0]["ID"]
    batch = _first_event(nomad, {"topic": "Node"}, lambda: _call(
        nomad, "POST", f"/v1/node/{node_id}/eligibility", {"Eligibility": "ineligible"}))
    assert [(e["Type"], e["Key"]) for e in batch["Events"]] == [("NodeEligibility", node_id)]
    bad = _call(nomad, "GET", "/v1/event/stream", topic="a:b:c")
    assert (bad.status_code, bad.text) == (400, "Invalid topic query: error parsing topics: "
                                                "Invalid key value pair for topic, topic: a:b:c")
