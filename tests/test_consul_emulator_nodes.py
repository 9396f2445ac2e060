"""The Consul emulator as a multi-node catalog: `/v1/catalog/register` and `/deregister` as a Consul
server takes them, and the per-node index of `/v1/catalog/node/<node>` (Consul >= 1.13), over
real HTTP."""

from __future__ import annotations

from typing import Any

import requests

from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.consul import NODE_NAME


def _put(consul: ConsulEmulator, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.put(f"{consul.url}{path}", json=body, timeout=10)


def _get(consul: ConsulEmulator, path: str, **params: Any) -> tuple[int, Any]:
    answer = requests.get(f"{consul.url}{path}", params=params, timeout=20)
    answer.raise_for_status()
    return int(answer.headers["X-Consul-Index"]), answer.json()


def _node(consul: ConsulEmulator, node: str, *services: tuple[str, str, int],
          address: str = "10.0.0.1") -> None:
    """Register `node` with `services` (name, ID, port), each with a passing check."""
    for name, service_id, port in services:
        response = _put(consul, "/v1/catalog/register", {
            "Node": node, "Address": address,
            "Service": {"Service": name, "ID": service_id, "Port": port},
            "Check": {"CheckID": f"{service_id}-check", "Name": "alive", "Status": "passing",
                      "ServiceID": service_id}})
        assert response.status_code == 200 and response.json() is True, response.text
    if not services:
        assert _put(consul, "/v1/catalog/register",
                    {"Node": node, "Address": address}).status_code == 200


def test_a_registered_node_is_listed_beside_the_agents_own(consul: ConsulEmulator) -> None:
    _node(consul, "client-1")
    _, nodes = _get(consul, "/v1/catalog/nodes")
    assert [(n["Node"], n["Address"]) for n in nodes] == [
        ("client-1", "10.0.0.1"), (NODE_NAME, "127.0.0.1")]
    assert nodes[0]["CreateIndex"] == nodes[0]["ModifyIndex"] > 1


def test_health_answers_each_instance_with_its_own_node(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080), address="10.0.0.1")
    _node(consul, "client-2", ("web", "web-2", 8080), address="10.0.0.2")
    _, entries = _get(consul, "/v1/health/service/web")
    assert [(e["Node"]["Node"], e["Node"]["Address"], e["Service"]["ID"],
             [c["CheckID"] for c in e["Checks"]]) for e in entries] == [
        ("client-1", "10.0.0.1", "web-1", ["web-1-check"]),
        ("client-2", "10.0.0.2", "web-2", ["web-2-check"])]
    _, catalog = _get(consul, "/v1/catalog/service/web")
    assert [(e["Node"], e["Address"]) for e in catalog] == [
        ("client-1", "10.0.0.1"), ("client-2", "10.0.0.2")]


def test_the_agent_endpoints_show_only_the_agents_own_node(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    consul.register("api", service_id="api-1", port=9090)
    assert list(requests.get(f"{consul.url}/v1/agent/services", timeout=10).json()) == [
        "api-1"]
    assert list(requests.get(f"{consul.url}/v1/agent/checks", timeout=10).json()) == []


def test_the_node_index_moves_only_with_that_node(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    _node(consul, "client-2", ("api", "api-1", 9090))
    one, _ = _get(consul, "/v1/catalog/node/client-1")
    two, _ = _get(consul, "/v1/catalog/node/client-2")
    _node(consul, "client-2", ("api", "api-2", 9091))
    assert _get(consul, "/v1/catalog/node/client-1")[0] == one
    moved, body = _get(consul, "/v1/catalog/node/client-2")
    assert moved > two and moved == body["Services"]["api-2"]["ModifyIndex"]


def test_a_blocking_node_query_is_not_woken_by_another_nodes_write(
        consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    index, _ = _get(consul, "/v1/catalog/node/client-1")
    _node(consul, "client-2", ("api", "api-1", 9090))
    assert _get(consul, "/v1/catalog/node/client-1", index=index, wait="300ms")[0] == index


def test_a_filter_that_matches_nothing_keeps_the_node_and_its_index(
        consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    index, full = _get(consul, "/v1/catalog/node/client-1")
    probe_index, probe = _get(consul, "/v1/catalog/node/client-1",
                              filter='Service == "" and Service != ""')
    assert (probe_index, probe["Node"], probe["Services"]) == (index, full["Node"], {})


def test_an_unchanged_registration_writes_nothing(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    index, body = _get(consul, "/v1/catalog/node/client-1")
    _put(consul, "/v1/catalog/register", {
        "Node": "client-1", "Address": "10.0.0.1",
        "Service": {"Service": "web", "ID": "web-1", "Port": 8080}})
    assert _get(consul, "/v1/catalog/node/client-1") == (index, body)


def test_a_node_address_change_moves_the_node_and_its_services(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    health, _ = _get(consul, "/v1/health/service/web")
    services, _ = _get(consul, "/v1/catalog/services")
    _node(consul, "client-1", address="10.9.9.9")
    index, body = _get(consul, "/v1/catalog/node/client-1")
    assert body["Node"]["Address"] == "10.9.9.9" and body["Node"]["ModifyIndex"] == index
    moved, entries = _get(consul, "/v1/health/service/web")
    assert moved == index > health and entries[0]["Node"]["Address"] == "10.9.9.9"
    # The services table does not move: no service was written (catalog_ce.go
    # catalogInsertNode touches the nodes' indexes and each service's, not the table's).
    assert _get(consul, "/v1/catalog/services")[0] == services


def test_deregistering_a_service_moves_its_nodes_index(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080), ("web", "web-2", 8081))
    index, _ = _get(consul, "/v1/catalog/node/client-1")
    assert _put(consul, "/v1/catalog/deregister",
                {"Node": "client-1", "ServiceID": "web-1"}).json() is True
    moved, body = _get(consul, "/v1/catalog/node/client-1")
    assert moved > index and list(body["Services"]) == ["web-2"]
    assert [e["Service"]["ID"] for e in _get(consul, "/v1/health/service/web")[1]] == ["web-2"]


def test_a_deregistered_node_answers_null_at_the_extinction_index(
        consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    index, _ = _get(consul, "/v1/catalog/node/client-1")
    _put(consul, "/v1/catalog/deregister", {"Node": "client-1"})
    gone, body = _get(consul, "/v1/catalog/node/client-1")
    assert body is None and gone > index
    assert [n["Node"] for n in _get(consul, "/v1/catalog/nodes")[1]] == [NODE_NAME]
    assert _get(consul, "/v1/health/service/web")[1] == []
    assert "web" not in _get(consul, "/v1/catalog/services")[1]


def test_a_nodes_own_check_is_in_every_entry_of_that_node_only(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    _node(consul, "client-2", ("web", "web-2", 8080))
    _put(consul, "/v1/catalog/register", {
        "Node": "client-2", "Address": "10.0.0.1",
        "Check": {"CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "critical"}})
    _, entries = _get(consul, "/v1/health/service/web", passing="1")
    assert [e["Service"]["ID"] for e in entries] == ["web-1"]
    _, critical = _get(consul, "/v1/health/state/critical")
    assert [(c["Node"], c["CheckID"], c["ServiceID"]) for c in critical] == [
        ("client-2", "serfHealth", "")]


def test_registering_without_a_node_or_an_address_is_refused_in_consuls_words(
        consul: ConsulEmulator) -> None:
    no_node = _put(consul, "/v1/catalog/register", {"Address": "10.0.0.1"})
    no_address = _put(consul, "/v1/catalog/register", {"Node": "client-1"})
    assert (no_node.status_code, no_node.text) == (500, "Must provide node")
    assert (no_address.status_code, no_address.text) == (
        500, "Must provide address if SkipNodeUpdate is not set")


def test_a_service_moved_to_another_node_leaves_the_first(consul: ConsulEmulator) -> None:
    _node(consul, "client-1", ("web", "web-1", 8080))
    _put(consul, "/v1/catalog/deregister", {"Node": "client-1", "ServiceID": "web-1"})
    _node(consul, "client-2", ("web", "web-1", 8080))
    assert _get(consul, "/v1/catalog/node/client-1")[1]["Services"] == {}
    assert [e["Node"]["Node"] for e in _get(consul, "/v1/health/service/web")[1]] == [
        "client-2"]
