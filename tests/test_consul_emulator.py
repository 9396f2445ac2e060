"""The Consul emulator speaks Consul's HTTP API: driven with python-consul2 and raw requests."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import consul as python_consul
import pytest
import requests

from nomadmesh.testing import ConsulEmulator


def _register_web(consul_api: Any, service_id: str = "web-1", **kwargs: Any) -> None:
    consul_api.agent.service.register(
        "web", service_id=service_id, address="10.0.0.1", port=8080, tags=["v1"],
        meta={"version": "1"}, check=python_consul.Check.ttl("10s"), **kwargs)


@pytest.mark.real_cluster
def test_registered_service_is_listed_in_the_catalog_with_its_tags(consul_api: Any) -> None:
    _register_web(consul_api)
    _, services = consul_api.catalog.services()
    assert services["web"] == ["v1"]


def test_catalog_lists_consul_itself_like_a_real_agent(consul_api: Any) -> None:
    _, services = consul_api.catalog.services()
    assert services == {"consul": []}


def test_catalog_service_carries_address_port_and_meta(consul_api: Any) -> None:
    _register_web(consul_api)
    _, nodes = consul_api.catalog.service("web")
    assert [(n["ServiceID"], n["ServiceAddress"], n["ServicePort"], n["ServiceMeta"])
            for n in nodes] == [("web-1", "10.0.0.1", 8080, {"version": "1"})]


def test_check_starts_critical_as_consul_does(consul_api: Any) -> None:
    _register_web(consul_api)
    _, entries = consul_api.health.service("web")
    statuses = {c["CheckID"]: c["Status"] for c in entries[0]["Checks"]}
    assert statuses == {"serfHealth": "passing", "service:web-1": "critical"}


def test_passing_filter_hides_instances_with_a_failing_check(consul_api: Any) -> None:
    _register_web(consul_api)
    _, entries = consul_api.health.service("web", passing=True)
    assert entries == []


def test_ttl_pass_makes_the_instance_passing(consul_api: Any) -> None:
    _register_web(consul_api)
    consul_api.agent.check.ttl_pass("service:web-1")
    _, entries = consul_api.health.service("web", passing=True)
    assert [e["Service"]["ID"] for e in entries] == ["web-1"]


def test_warn_is_not_passing(consul_api: Any) -> None:
    _register_web(consul_api)
    consul_api.agent.check.ttl_warn("service:web-1")
    _, entries = consul_api.health.service("web", passing=True)
    assert entries == []


def test_check_update_endpoint_sets_status_and_output(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[{"TTL": "10s"}])
    r = requests.put(f"{consul.url}/v1/agent/check/update/service:web-1",
                     json={"Status": "warning", "Output": "slow"}, timeout=5)
    assert r.status_code == 200
    check = requests.get(f"{consul.url}/v1/health/checks/web", timeout=5).json()[0]
    assert (check["Status"], check["Output"]) == ("warning", "slow")


def test_multiple_checks_get_numbered_ids(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[{"TTL": "10s"}, {"TTL": "20s"}])
    assert sorted(consul.checks_of("web-1")) == ["service:web-1:1", "service:web-1:2"]


def test_http_and_tcp_check_definitions_keep_their_type(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[
        {"CheckID": "h", "Name": "http", "HTTP": "http://10.0.0.1/health", "Interval": "10s"},
        {"CheckID": "t", "Name": "tcp", "TCP": "10.0.0.1:80", "Interval": "10s",
         "Status": "passing"},
    ])
    checks = requests.get(f"{consul.url}/v1/health/checks/web", timeout=5).json()
    assert {(c["CheckID"], c["Type"], c["Status"]) for c in checks} == {
        ("h", "http", "critical"), ("t", "tcp", "passing")}


def test_tag_parameter_filters_instances(consul_api: Any) -> None:
    _register_web(consul_api, service_id="web-1")
    consul_api.agent.service.register("web", service_id="web-2", tags=["v2"])
    _, entries = consul_api.health.service("web", tag="v2")
    assert [e["Service"]["ID"] for e in entries] == ["web-2"]


def test_filter_expression_on_meta_and_tags(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="a", tags=["blue"], meta={"version": "1"})
    consul.register("web", service_id="b", tags=["green"], meta={"version": "2"})
    r = requests.get(f"{consul.url}/v1/health/service/web", timeout=5, params={
        "filter": 'Service.Meta.version == "2" or "blue" in Service.Tags and '
                  'Service.ID != "zzz"'})
    assert sorted(e["Service"]["ID"] for e in r.json()) == ["a", "b"]


def test_filter_expression_with_not_and_parentheses(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="a", tags=["blue"], meta={"version": "1"})
    consul.register("web", service_id="b", tags=["green"], meta={"version": "2"})
    r = requests.get(f"{consul.url}/v1/health/service/web", timeout=5, params={
        "filter": 'not ("blue" in Service.Tags)'})
    assert [e["Service"]["ID"] for e in r.json()] == ["b"]


def test_malformed_filter_is_a_400_in_plain_text(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/health/service/web", params={"filter": "Service.ID =="},
                     timeout=5)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "Failed to create boolean expression evaluator" in r.text


def test_deregister_removes_the_instance_and_its_checks(consul_api: Any) -> None:
    _register_web(consul_api)
    consul_api.agent.service.deregister("web-1")
    _, entries = consul_api.health.service("web")
    _, checks = consul_api.health.checks("web")
    assert (entries, checks) == ([], [])


def test_deregister_of_unknown_service_is_404(consul: ConsulEmulator) -> None:
    r = requests.put(f"{consul.url}/v1/agent/service/deregister/nope", timeout=5)
    assert (r.status_code, r.text.startswith('Unknown service ID "nope"')) == (404, True)


def test_register_without_name_is_400(consul: ConsulEmulator) -> None:
    r = requests.put(f"{consul.url}/v1/agent/service/register", json={"Port": 1}, timeout=5)
    assert (r.status_code, r.text) == (400, "Missing service name")


def test_health_state_lists_checks_in_a_state(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[{"TTL": "10s"}])
    r = requests.get(f"{consul.url}/v1/health/state/critical", timeout=5)
    assert [c["CheckID"] for c in r.json()] == ["service:web-1"]


def test_unknown_health_state_is_400(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/health/state/sleepy", timeout=5)
    assert (r.status_code, r.text) == (400, "Bad check state")


# --- blocking queries -------------------------------------------------------------------------


def test_responses_carry_consul_index_headers(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/health/service/web", timeout=5)
    assert int(r.headers["X-Consul-Index"]) > 0
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"] == "0"


def test_blocking_query_returns_at_once_on_change(consul: ConsulEmulator,
                                                  consul_api: Any) -> None:
    _register_web(consul_api)
    index, _ = consul_api.health.service("web")
    threading.Timer(0.05, consul.set_check_status, ("service:web-1", "passing")).start()
    started = time.monotonic()
    new_index, entries = consul_api.health.service("web", index=index, wait="5s")
    elapsed = time.monotonic() - started
    assert int(new_index) > int(index)
    assert entries[0]["Checks"][1]["Status"] == "passing"
    assert elapsed < 1.0


def test_blocking_query_times_out_with_the_same_index(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1")
    index = requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"]
    started = time.monotonic()
    r = requests.get(f"{consul.url}/v1/health/service/web",
                     params={"index": index, "wait": "200ms"}, timeout=5)
    assert r.headers["X-Consul-Index"] == index
    assert 0.15 < time.monotonic() - started < 1.5


def test_unrelated_service_change_does_not_bump_a_service_index(
        consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1")
    before = requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"]
    consul.register("db", service_id="db-1")
    after = requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"]
    assert before == after


def test_deregistration_bumps_the_service_index(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1")
    before = int(requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"])
    consul.deregister("web-1")
    after = int(requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"])
    assert after > before


def test_unknown_service_has_a_positive_index(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/health/service/nothing", timeout=5)
    assert (r.json(), int(r.headers["X-Consul-Index"]) > 0) == ([], True)


def test_invalid_wait_is_400(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/health/service/web", params={"index": 1, "wait": "x"},
                     timeout=5)
    assert (r.status_code, r.text) == (400, "Invalid wait time")


# --- KV ------------------------------------------------------------------------------------------


@pytest.mark.real_cluster
def test_kv_put_then_get_round_trips_the_value(consul_api: Any) -> None:
    assert consul_api.kv.put("nomadmesh-test/a", "hello") is True
    _, entry = consul_api.kv.get("nomadmesh-test/a")
    assert entry["Value"] == b"hello"


def test_kv_value_is_base64_on_the_wire(consul: ConsulEmulator) -> None:
    consul.kv_put("k", b"\x00\x01")
    r = requests.get(f"{consul.url}/v1/kv/k", timeout=5).json()
    assert base64.b64decode(r[0]["Value"]) == b"\x00\x01"


def test_kv_missing_key_is_404_with_an_index(consul: ConsulEmulator) -> None:
    r = requests.get(f"{consul.url}/v1/kv/missing", timeout=5)
    assert (r.status_code, r.text, int(r.headers["X-Consul-Index"]) > 0) == (404, "", True)


def test_kv_recurse_and_keys(consul_api: Any) -> None:
    for key in ("app/a", "app/b/c", "other"):
        consul_api.kv.put(key, "v")
    _, entries = consul_api.kv.get("app/", recurse=True)
    _, keys = consul_api.kv.get("app/", keys=True, separator="/")
    assert [e["Key"] for e in entries] == ["app/a", "app/b/c"]
    assert keys == ["app/a", "app/b/"]


def test_kv_cas_zero_only_creates(consul_api: Any) -> None:
    assert consul_api.kv.put("k", "1", cas=0) is True
    assert consul_api.kv.put("k", "2", cas=0) is False


def test_kv_cas_with_stale_index_fails(consul_api: Any) -> None:
    consul_api.kv.put("k", "1")
    _, entry = consul_api.kv.get("k")
    consul_api.kv.put("k", "2")
    assert consul_api.kv.put("k", "3", cas=entry["ModifyIndex"]) is False


def test_kv_flags_are_stored(consul_api: Any) -> None:
    consul_api.kv.put("k", "1", flags=42)
    _, entry = consul_api.kv.get("k")
    assert entry["Flags"] == 42


def test_kv_delete_recurse(consul_api: Any) -> None:
    consul_api.kv.put("app/a", "1")
    consul_api.kv.put("app/b", "1")
    consul_api.kv.delete("app/", recurse=True)
    _, entries = consul_api.kv.get("app/", recurse=True)
    assert entries is None


def test_kv_blocking_query_wakes_on_write(consul: ConsulEmulator, consul_api: Any) -> None:
    consul_api.kv.put("k", "1")
    index, _ = consul_api.kv.get("k")
    threading.Timer(0.05, consul.kv_put, ("k", "2")).start()
    _, entry = consul_api.kv.get("k", index=index, wait="5s")
    assert entry["Value"] == b"2"


# --- agent, ACL, lifecycle -------------------------------------------------------------------------


def test_status_leader_and_agent_self(consul_api: Any) -> None:
    assert consul_api.status.leader().endswith(":8300")
    assert consul_api.agent.self()["Config"]["Datacenter"] == "dc1"


def test_acl_token_is_required_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)
    with ConsulEmulator(acl_token="s3cret") as consul:
        denied = requests.get(f"{consul.url}/v1/catalog/services", timeout=5)
        wrong = requests.get(f"{consul.url}/v1/catalog/services",
                             headers={"X-Consul-Token": "nope"}, timeout=5)
        allowed = requests.get(f"{consul.url}/v1/catalog/services",
                               headers={"X-Consul-Token": "s3cret"}, timeout=5)
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    assert (wrong.status_code, wrong.text) == (403, "ACL not found")
    assert allowed.status_code == 200


def test_restart_keeps_state_and_port(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1")
    port = consul.port
    consul.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{consul.url}/v1/catalog/services", timeout=2)
    consul.start()
    r = requests.get(f"{consul.url}/v1/catalog/services", timeout=5)
    assert (consul.port, "web" in r.json()) == (port, True)


def test_stop_wakes_blocked_queries_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    consul = ConsulEmulator().start()
    results: list[Any] = []

    def blocked() -> None:
        try:
            results.append(requests.get(f"{consul.url}/v1/catalog/services",
                                        params={"index": 999, "wait": "30s"}, timeout=10))
        except requests.ConnectionError as exc:
            results.append(exc)

    waiter = threading.Thread(target=blocked)
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    consul.stop()
    waiter.join(5)
    assert time.monotonic() - started < 2
    assert results
    assert set(threading.enumerate()) - before == set()


def test_two_emulators_side_by_side_are_independent() -> None:
    with ConsulEmulator() as one, ConsulEmulator() as two:
        one.register("web")
        assert one.port != two.port
        assert requests.get(f"{two.url}/v1/catalog/services", timeout=5).json() == {
            "consul": []}


def test_reregistration_replaces_checks_but_keeps_a_known_checks_status(
        consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[{"CheckID": "a", "TTL": "10s"},
                                                       {"CheckID": "b", "TTL": "10s"}])
    consul.set_check_status("a", "passing")
    consul.register("web", service_id="web-1", checks=[{"CheckID": "a", "TTL": "10s"}])
    checks = requests.get(f"{consul.url}/v1/health/checks/web", timeout=5).json()
    assert [(c["CheckID"], c["Status"]) for c in checks] == [("a", "passing")]
