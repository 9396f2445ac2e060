"""The Consul and Nomad sources at many services: a fixed number of threads and connections,
only the changed service read, and no change lost across a reconnect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest
import requests

from nomadmesh.contract import SERVICE_META_KEY
from nomadmesh.errors import XdsError
from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing._http import HttpError
from nomadmesh.testing.ads import connected_sidecar
from nomadmesh.testing.envoy import eventually
from nomadmesh.xds import ControlPlane
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import Endpoint
from nomadmesh.xds.sources.consul import ConsulSource
from nomadmesh.xds.sources.nomad import NomadSource, _shut

SERVICES = 200
Seen = dict[str, tuple[Endpoint, ...]]


def source_threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def connections_to(port: int) -> int:
    """This process's open TCP connections to `port` (the emulator serves from it too: only the
    client ends, whose remote port it is, are counted)."""
    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


@contextmanager
def following(source: ConsulSource | NomadSource) -> Iterator[Seen]:
    """The endpoints the source hands its builder, per service (removed: gone from the dict)."""
    seen: Seen = {}
    loop = source._builds
    set_service, remove = loop.set_service, loop.remove_service

    def on_set(name: str, endpoints: Any, upstreams: Any) -> None:
        seen[name] = tuple(endpoints)
        set_service(name, seen[name], upstreams)

    def on_remove(name: str) -> None:
        seen.pop(name, None)
        remove(name)

    loop.set_service = on_set  # type: ignore[method-assign]
    loop.remove_service = on_remove  # type: ignore[method-assign]
    source.start()
    try:
        yield seen
    finally:
        source.stop()


def ports_of(seen: Seen, name: str) -> list[int]:
    return sorted(e.port for e in seen.get(name, ()))


def fetches(metrics: XdsMetrics, source: str) -> float:
    return float(metrics.source_fetches.labels(source)._value.get())


def consul_register(consul: ConsulEmulator, name: str, instance: str, port: int) -> None:
    consul.register(name, service_id=instance, address="127.0.0.1", port=port,
                    checks=[{"CheckID": f"{instance}-check", "TTL": "30s", "Status": "passing"}])


def register_services(consul: ConsulEmulator) -> None:
    """SERVICES services `svc-<n>`, one instance `svc-<n>-1` each on port 20000 + n."""
    for n in range(SERVICES):
        consul_register(consul, f"svc-{n}", f"svc-{n}-1", 20000 + n)


def test_consul_source_holds_its_connection_budget_and_reads_only_what_changed() -> None:
    with ConsulEmulator() as consul:
        register_services(consul)
        metrics = XdsMetrics()
        source = ConsulSource(consul.address, SnapshotCache(), metrics, wait="2s",
                              connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")
            threads = source_threads("nomadmesh-xds-consul")
            # catalog, critical, warning, config, build + 2 readers, at any number of services
            assert len(threads) == 7, threads
            eventually(lambda: connections_to(consul.port) <= 6, what="at most 6 connections")
            assert connections_to(consul.port) >= 3  # the three watches stay open
            read_before, relists = fetches(metrics, "consul"), source.relists

            consul.set_check_status("svc-7-1-check", "critical")
            eventually(lambda: [e.health for e in seen["svc-7"]] == ["critical"],
                       what="the health change")
            assert fetches(metrics, "consul") - read_before <= 2  # that service, not all 200
            assert source.relists == relists

            consul_register(consul, "svc-new", "svc-new-1", 29999)
            eventually(lambda: ports_of(seen, "svc-new") == [29999], what="a new service")
            consul.deregister("svc-3-1")
            eventually(lambda: "svc-3" not in seen, what="a service gone")
            # (each of those moves was re-read as well: it might have held other changes)
            eventually(lambda: source.rereads == source.relists + 1, what="the re-reads' end")
            assert source.relists == relists + 2
            relists = source.relists

            # A second instance of a known service changes no name or tag: everything is read
            # again, node by node, the health taken from the checks that are not passing.
            consul.set_check_status("svc-9-1-check", "warning")
            eventually(lambda: [e.health for e in seen["svc-9"]] == ["warning"], what="warning")
            read_before = fetches(metrics, "consul")
            consul_register(consul, "svc-9", "svc-9-2", 29998)
            eventually(lambda: ports_of(seen, "svc-9") == [20009, 29998],
                       what="the new instance")
            assert source.relists == relists + 1
            assert fetches(metrics, "consul") - read_before <= 2  # one node, not 200 services
            assert {e.port: e.health for e in seen["svc-9"]} == {20009: "warning",
                                                                 29998: "passing"}
            assert [e.health for e in seen["svc-7"]] == ["critical"]  # kept through the re-read
            assert len(source_threads("nomadmesh-xds-consul")) == 7
            assert source.healthy(), source.problems()
    eventually(lambda: not source_threads("nomadmesh-xds-consul"), timeout=5,
               what="the source's threads to end")


def test_a_new_name_and_a_new_instance_in_one_catalog_move_are_both_seen() -> None:
    """Writes between two catalog answers are one move: a service that came does not hide a
    new instance of a known one written with it."""
    with ConsulEmulator() as consul:
        register_services(consul)
        source = ConsulSource(consul.address, SnapshotCache(), XdsMetrics(), wait="2s",
                              connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")
            eventually(lambda: source.rereads == 1, what="the first load's end")
            with consul._lock:  # the parked catalog query answers once, after both writes
                consul_register(consul, "svc-brand-new", "svc-brand-new-1", 29990)
                consul_register(consul, "svc-5", "svc-5-2", 29991)
            eventually(lambda: ports_of(seen, "svc-brand-new") == [29990], what="the new name")
            eventually(lambda: ports_of(seen, "svc-5") == [20005, 29991],
                       what="the new instance of svc-5")
            assert source.relists == 1


def test_a_consul_re_read_rebuilds_only_the_services_whose_instances_changed() -> None:
    """An unattributable catalog move reads every node, but the instances' ModifyIndex says
    which services changed: only those are rebuilt."""
    with ConsulEmulator() as consul:
        register_services(consul)
        metrics = XdsMetrics()
        source = ConsulSource(consul.address, SnapshotCache(), metrics, wait="2s",
                              connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")

            def re_read(change: Callable[[], object], name: str, ports: list[int]) -> None:
                relists, rebuilt, rereads = source.relists, source.rebuilt_total, source.rereads
                change()
                eventually(lambda: ports_of(seen, name) == ports, what=f"{name} on {ports}")
                eventually(lambda: source.rereads > rereads, what="the re-read's end")
                assert source.relists == relists + 1
                assert source.rebuilt == 1 and source.rebuilt_total == rebuilt + 1

            # a new instance of a known service
            re_read(lambda: consul_register(consul, "svc-9", "svc-9-2", 29998), "svc-9",
                    [20009, 29998])
            # a known instance registered again on another port
            re_read(lambda: consul_register(consul, "svc-11", "svc-11-1", 29997), "svc-11",
                    [29997])
            # one of two instances gone
            re_read(lambda: consul.deregister("svc-9-2"), "svc-9", [20009])
            assert ports_of(seen, "svc-12") == [20012]
            assert metrics.source_relists.labels("consul", "catalog")._value.get() == 3
            assert source.healthy(), source.problems()



def test_a_consul_re_read_first_reads_what_connected_sidecars_route_to() -> None:
    """An unattributable catalog move: the services a connected sidecar routes to (and its own)
    are read one by one ahead of the node reads, so they are served in one read's time."""
    with ConsulEmulator() as consul:
        register_services(consul)
        consul.register("caller", service_id="caller-1", address="127.0.0.1", port=7000,
                        meta={SERVICE_META_KEY: "svc-9=/nine,svc-10=/ten"},
                        checks=[{"CheckID": "caller-1-check", "TTL": "30s",
                                 "Status": "passing"}])
        metrics = XdsMetrics()
        cache = SnapshotCache()
        source = ConsulSource(consul.address, cache, metrics, wait="2s", connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES + 1, timeout=30, what="every service")

            def new_instance(name: str, instance: str, port: int) -> float:
                relists, rereads = source.relists, source.rereads
                read_before = fetches(metrics, "consul")
                consul_register(consul, name, instance, port)
                eventually(lambda: port in ports_of(seen, name), what=f"{instance}")
                eventually(lambda: source.rereads > rereads, what="the re-read's end")
                assert source.relists == relists + 1
                return fetches(metrics, "consul") - read_before

            assert new_instance("svc-11", "svc-11-2", 29990) == 1  # the node, nothing else
            assert source.hot_reads == 0
            with connected_sidecar(cache, "caller"):
                # caller, svc-9 and svc-10 one by one, then the node
                assert new_instance("svc-9", "svc-9-2", 29991) == 4
                assert source.hot_reads == 3
                assert ports_of(seen, "svc-9") == [20009, 29991]
                # the same for a change elsewhere: which service changed is not known
                assert new_instance("svc-12", "svc-12-2", 29992) == 4
                assert source.hot_reads == 6
            assert new_instance("svc-13", "svc-13-2", 29993) == 1  # disconnected: none
            assert source.hot_reads == 6
            assert source.healthy(), source.problems()


def nomad_registration(name: str, instance: str, port: int) -> dict[str, Any]:
    return {"ID": f"_nomad-task-{instance}", "ServiceName": name, "Namespace": "default",
            "NodeID": "n1", "Datacenter": "dc1", "JobID": name, "AllocID": instance,
            "Tags": [], "Address": "127.0.0.1", "Port": port}


def nomad_write(nomad: NomadEmulator, change: Callable[[Any], object]) -> None:
    nomad.server.write(change)


def register_nomad_services(nomad: NomadEmulator) -> None:
    """SERVICES services `svc-<n>`, one registration each on port 20000 + n, in one write."""
    registrations = [nomad_registration(f"svc-{n}", f"svc-{n}-1", 20000 + n)
                     for n in range(SERVICES)]
    nomad_write(nomad, lambda txn: [txn.upsert_service(r) for r in registrations])


def test_nomad_source_follows_every_service_on_one_event_stream() -> None:
    with NomadEmulator() as nomad:
        register_nomad_services(nomad)
        metrics = XdsMetrics()
        source = NomadSource(nomad.address, SnapshotCache(), metrics, wait="2s", connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")
            assert source.mode == "events"
            assert metrics.source_watch.labels("nomad", "events")._value.get() == 1
            threads = source_threads("nomadmesh-xds-nomad")
            assert len(threads) == 6, threads  # stream, config, build + 3 readers
            eventually(lambda: connections_to(nomad.port) <= 6, what="at most 6 connections")
            assert connections_to(nomad.port) >= 2  # the stream and the variables watch
            read_before = fetches(metrics, "nomad")

            nomad_write(nomad, lambda txn: txn.upsert_service(
                nomad_registration("svc-7", "svc-7-2", 29999)))
            eventually(lambda: ports_of(seen, "svc-7") == [20007, 29999], what="a new instance")
            nomad_write(nomad, lambda txn: txn.delete_service("_nomad-task-svc-3-1"))
            eventually(lambda: "svc-3" not in seen, what="a service gone")
            assert fetches(metrics, "nomad") == read_before  # the events carry the changes

            # A reconnect may have missed batches: the source lists again, and a change made
            # while it was away is served.
            with source._lock:
                response = source._response
            assert response is not None
            nomad_write(nomad, lambda txn: txn.delete_service("_nomad-task-svc-8-1"))
            _shut(response)
            eventually(lambda: source.relists == 1, what="the re-list after the reconnect")
            eventually(lambda: "svc-8" not in seen, what="the change across the reconnect")
            nomad_write(nomad, lambda txn: txn.upsert_service(
                nomad_registration("svc-9", "svc-9-2", 29998)))
            eventually(lambda: ports_of(seen, "svc-9") == [20009, 29998],
                       what="events after the reconnect")
            assert metrics.source_relists.labels("nomad", "reconnect")._value.get() == 1
            assert source.healthy(), source.problems()


def test_nomad_blocking_fallback_holds_its_connection_budget_at_any_number_of_services() -> None:
    """Without the event stream the source watches `/v1/services` and re-reads the services on
    its readers: a fixed number of threads and connections, however many services there are."""
    with NomadEmulator() as nomad:
        register_nomad_services(nomad)
        metrics = XdsMetrics()
        source = NomadSource(nomad.address, SnapshotCache(), metrics, wait="2s", connections=6,
                             watch="blocking")
        most = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.05):
                most[0] = max(most[0], connections_to(nomad.port))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with following(source) as seen:
                eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")
                assert source.mode == "blocking"
                assert metrics.source_watch.labels("nomad", "blocking")._value.get() == 1
                threads = source_threads("nomadmesh-xds-nomad")
                assert len(threads) == 6, threads  # services, config, build + 3 readers

                nomad_write(nomad, lambda txn: txn.upsert_service(
                    nomad_registration("svc-7", "svc-7-2", 29999)))
                eventually(lambda: ports_of(seen, "svc-7") == [20007, 29999],
                           what="a new instance")
                relists = source.relists
                assert relists >= 1
                nomad_write(nomad, lambda txn: txn.delete_service("_nomad-task-svc-3-1"))
                eventually(lambda: "svc-3" not in seen, what="a service gone")
                nomad_write(nomad, lambda txn: txn.upsert_service(
                    nomad_registration("svc-new", "svc-new-1", 29998)))
                eventually(lambda: ports_of(seen, "svc-new") == [29998], what="a new service")
                nomad_write(nomad, lambda txn: txn.delete_service("_nomad-task-svc-7-2"))
                eventually(lambda: ports_of(seen, "svc-7") == [20007], what="an instance gone")
                eventually(lambda: source.relists >= relists + 1, what="re-reads counted")
                assert metrics.source_relists.labels("nomad", "blocking")._value.get() == \
                    source.relists
                assert len(source_threads("nomadmesh-xds-nomad")) == 6
                assert source.healthy(), source.problems()
        finally:
            sampling.set()
            sampler.join()
        # the list, the variables and 3 readers: never one connection per service
        assert 2 <= most[0] <= 6, most[0]
    eventually(lambda: not source_threads("nomadmesh-xds-nomad"), timeout=5,
               what="the source's threads to end")


class FakeNomad:
    """A loopback HTTP/1.1 server answering GETs with `answer(handler)`: (status, body), or None
    when `answer` wrote its own response."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], tuple[int, bytes] | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                answered = answer(self)
                if answered is None:
                    return
                code, body = answered
                self.send_response(code)
                self.send_header("X-Nomad-Index", "5")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RefusingNomad(FakeNomad):
    """A Nomad whose event stream answers `status` and has no services (blocking queries)."""

    def __init__(self, status: int) -> None:
        super().__init__(lambda handler: (status, b"Permission denied")
                         if handler.path.startswith("/v1/event/stream") else (200, b"[]"))


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_event_stream_falls_back_to_blocking_queries_and_says_so(status: int) -> None:
    nomad = RefusingNomad(status)
    try:
        with ControlPlane(listen="127.0.0.1:0", nomad=nomad.address, nomad_wait="1s",
                          metrics="127.0.0.1:0") as plane:
            source = plane.source
            assert isinstance(source, NomadSource)
            eventually(lambda: source.mode == "blocking", what="the fallback")
            assert plane.metrics.source_watch.labels("nomad", "blocking")._value.get() == 1
            health = source.health()
            assert health.ok, health
            assert any(f"HTTP {status}" in p and "blocking" in p for p in health.problems)
            page = requests.get(f"http://127.0.0.1:{plane.metrics_port}/healthz", timeout=5)
            assert page.status_code == 200, page.text
            assert page.text.startswith("ok\n") and "blocking queries" in page.text, page.text
    finally:
        nomad.close()


def test_watch_events_only_reports_a_refused_stream_instead_of_falling_back() -> None:
    nomad = RefusingNomad(403)
    source = NomadSource(nomad.address, SnapshotCache(), XdsMetrics(), watch="events")
    try:
        source.start()
        eventually(lambda: any("HTTP 403" in p for p in source.problems()), what="the report")
        assert source.mode == "events" and not source.healthy()
    finally:
        source.stop()
        nomad.close()


def test_a_connection_budget_below_what_the_watches_need_is_an_xds_error() -> None:
    with pytest.raises(XdsError, match="at least 5 connections"):
        ConsulSource("127.0.0.1:8500", SnapshotCache(), XdsMetrics(), connections=4)
    with pytest.raises(XdsError, match="at least 4 connections"):
        NomadSource("127.0.0.1:4646", SnapshotCache(), XdsMetrics(), connections=3)
    with pytest.raises(XdsError, match="watch mode"):
        NomadSource("127.0.0.1:4646", SnapshotCache(), XdsMetrics(), watch="poll")


class RevokingNomad(FakeNomad):
    """A Nomad that serves the event stream once (a heartbeat, then the connection ends) and
    refuses it afterwards (403: a token that lost the capability), with one service `web`."""

    def __init__(self) -> None:
        self.streams = 0
        super().__init__(self._answer)

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, bytes] | None:
        if handler.path.startswith("/v1/event/stream"):
            self.streams += 1
            if self.streams == 1:
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Connection", "close")
                handler.end_headers()
                handler.wfile.write(b"{}\n")
                handler.wfile.flush()
                time.sleep(0.3)
                handler.close_connection = True
                return None
            return 403, b"Permission denied"
        if handler.path.startswith("/v1/services"):
            return 200, json.dumps([{"Namespace": "default", "Services": [
                {"ServiceName": "web", "Tags": []}]}]).encode()
        if handler.path.startswith("/v1/service/web"):
            return 200, json.dumps([nomad_registration("web", "w1", 7000)]).encode()
        return 200, b"[]"


def test_a_stream_refused_after_a_reconnect_falls_back_without_dropping_a_service() -> None:
    nomad = RevokingNomad()
    removed: list[str] = []
    metrics = XdsMetrics()
    source = NomadSource(nomad.address, SnapshotCache(), metrics, wait="1s")
    remove = source._builds.remove_service

    def on_remove(name: str) -> None:
        removed.append(name)
        remove(name)

    source._builds.remove_service = on_remove  # type: ignore[method-assign]
    try:
        with following(source) as seen:
            eventually(lambda: source.mode == "blocking", what="the fallback after the 403")
            assert nomad.streams == 2
            eventually(lambda: ports_of(seen, "web") == [7000], what="web served")
            # the stream's re-list read web once; the blocking list's first answer reads it again
            eventually(lambda: fetches(metrics, "nomad") >= 2, what="web read in blocking mode")
            assert ports_of(seen, "web") == [7000]
            assert removed == []  # served from the stream's list until the blocking answer
    finally:
        nomad.close()


# --- a multi-node Consul: per-node attribution -------------------------------------------------

NODES = 20
NODE_SERVICES = 60  # services `nsvc-<n>`, 4 instances each, spread over the nodes


def node_register(consul: ConsulEmulator, node: str, name: str, instance: str, port: int,
                  address: str | None = None) -> None:
    """One instance on `node` (catalog registration, as a Consul client agent's sync does)."""
    consul.catalog_register({
        "Node": node, "Address": address or f"10.1.0.{int(node.split('-')[1]) + 1}",
        "Service": {"Service": name, "ID": instance, "Port": port},
        "Check": {"CheckID": f"{instance}-check", "Name": "alive", "Status": "passing",
                  "ServiceID": instance}})


def register_on_nodes(consul: ConsulEmulator, nodes: int = NODES) -> None:
    for n in range(NODE_SERVICES):
        for k in range(4):
            node_register(consul, f"node-{(n + 5 * k) % nodes}", f"nsvc-{n}", f"nsvc-{n}-{k}",
                          21000 + k)


class NodeReads:
    """What one catalog move cost the source: the counters before, and their movement."""

    def __init__(self, source: ConsulSource, metrics: XdsMetrics) -> None:
        self.source, self.metrics = source, metrics
        self.rereads, self.relists = source.rereads, source.relists
        self.read, self.probed = source.nodes_read_total, source.nodes_probed_total
        self.fetched, self.attributed = fetches(metrics, "consul"), source.attributed

    def wait(self, rereads: int = 1) -> None:
        eventually(lambda: self.source.rereads >= self.rereads + rereads,
                   what="the re-read's end")

    @property
    def nodes_read(self) -> int:
        return self.source.nodes_read_total - self.read

    @property
    def nodes_probed(self) -> int:
        return self.source.nodes_probed_total - self.probed


@contextmanager
def multi_node_source(consul: ConsulEmulator) -> Iterator[tuple[ConsulSource, XdsMetrics, Seen]]:
    metrics = XdsMetrics()
    source = ConsulSource(consul.address, SnapshotCache(), metrics, wait="2s", connections=6)
    with following(source) as seen:
        eventually(lambda: len(seen) == NODE_SERVICES, timeout=30, what="every service")
        eventually(lambda: source.rereads >= 1, what="the first load's end")
        yield source, metrics, seen


def test_a_new_instance_on_node_7_of_20_is_read_with_one_node_read_not_20() -> None:
    with ConsulEmulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            node_register(consul, "node-7", "nsvc-13", "nsvc-13-extra", 29999)
            eventually(lambda: 29999 in ports_of(seen, "nsvc-13"), what="the new instance")
            cost.wait()
            assert source.relists == cost.relists + 1
            assert (cost.nodes_read, source.nodes_read) == (1, 1)
            assert cost.nodes_probed == NODES + 1  # and the agent's own node
            assert source.attributed == cost.attributed + 1 and source.rebuilt == 1
            # the node, then the one service that moved on it
            assert fetches(metrics, "consul") - cost.fetched == 2
            assert ports_of(seen, "nsvc-13") == [21000, 21001, 21002, 21003, 29999]
            assert source.healthy(), source.problems()


def test_a_deregistration_on_one_node_is_read_from_that_node() -> None:
    with ConsulEmulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            consul.catalog_deregister({"Node": "node-8", "ServiceID": "nsvc-3-1"})
            eventually(lambda: ports_of(seen, "nsvc-3") == [21000, 21002, 21003],
                       what="the instance gone")
            cost.wait()
            assert cost.nodes_read == 1 and source.rebuilt == 1


def test_an_instance_moved_to_another_node_is_followed_there() -> None:
    with ConsulEmulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            consul.catalog_deregister({"Node": "node-4", "ServiceID": "nsvc-4-0"})
            node_register(consul, "node-12", "nsvc-4", "nsvc-4-0", 21000)
            eventually(lambda: {e.address for e in seen["nsvc-4"] if e.port == 21000}
                       == {"10.1.0.13"}, what="the instance on node-12")
            eventually(lambda: source.rereads >= cost.rereads + 1 and not any(
                e.address == "10.1.0.5" for e in seen["nsvc-4"]), what="settled")
            assert len(seen["nsvc-4"]) == 4
            # one catalog move per write, or one for both: node-4 and node-12, read once each
            assert cost.nodes_read in (2, 3) and source.attributed > cost.attributed


def test_a_node_that_comes_is_read_and_one_that_goes_takes_its_instances_along() -> None:
    with ConsulEmulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            node_register(consul, "node-20", "nsvc-1", "nsvc-1-new", 29998)
            eventually(lambda: 29998 in ports_of(seen, "nsvc-1"), what="the new node's instance")
            cost.wait()
            assert cost.nodes_read == 1

            cost = NodeReads(source, metrics)
            consul.catalog_deregister({"Node": "node-0"})
            gone = [f"nsvc-{n}" for n in range(NODE_SERVICES) if any(
                (n + 5 * k) % NODES == 0 for k in range(4))]
            eventually(lambda: all(len(seen[name]) == 3 for name in gone),
                       what="node-0's instances gone")
            cost.wait()
            assert cost.nodes_read == 0 and source.attributed == cost.attributed + 1
            assert len(gone) == 12 and source.rebuilt == 12
            assert source.healthy(), source.problems()


class _RefusesFilters(ConsulEmulator):
    """A Consul that refuses `?filter` on the node endpoint (the probe fails)."""

    def _h_catalog_node(self, req: Any) -> Any:
        if "filter" in req.query:
            raise HttpError(500, "rpc error: filter not allowed")
        return super()._h_catalog_node(req)


class _OneCatalogIndex(ConsulEmulator):
    """A Consul before 1.13: every node is answered at the catalog's index."""

    def _touch_node(self, node: str, w: Any) -> None:
        super()._touch_node(node, w)
        for name in self._node_index:
            self._node_index[name] = w.index


@pytest.mark.parametrize("emulator", [_RefusesFilters, _OneCatalogIndex])
def test_without_per_node_indexes_every_node_is_read_and_nothing_missed(
        emulator: type[ConsulEmulator]) -> None:
    with emulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            node_register(consul, "node-7", "nsvc-13", "nsvc-13-extra", 29999)
            eventually(lambda: 29999 in ports_of(seen, "nsvc-13"), what="the new instance")
            cost.wait()
            assert cost.nodes_read == NODES + 1 and source.attributed == cost.attributed
            # probed (and refused) once per move, or not at all: the indexes say it is useless
            assert cost.nodes_probed == (NODES + 1 if emulator is _RefusesFilters else 0)
            assert source.healthy(), source.problems()


def test_a_single_node_consul_is_not_probed() -> None:
    with ConsulEmulator() as consul:
        register_services(consul)
        metrics = XdsMetrics()
        source = ConsulSource(consul.address, SnapshotCache(), metrics, wait="2s",
                              connections=6)
        with following(source) as seen:
            eventually(lambda: len(seen) == SERVICES, timeout=30, what="every service")
            cost = NodeReads(source, metrics)
            consul_register(consul, "svc-9", "svc-9-2", 29998)
            eventually(lambda: 29998 in ports_of(seen, "svc-9"), what="the new instance")
            cost.wait()
            assert (cost.nodes_read, cost.nodes_probed) == (1, 0)


def test_node_indexes_that_went_backwards_read_the_node_again() -> None:
    """A Consul restored from an older snapshot (same node names, lower indexes): a node whose
    index is not the one it was read at is read, whichever way it moved."""
    with ConsulEmulator() as consul:
        register_on_nodes(consul)
        with multi_node_source(consul) as (source, metrics, seen):
            cost = NodeReads(source, metrics)
            with source._lock:
                index, modified, services = source._nodes_seen["node-7"]
                source._nodes_seen["node-7"] = (index + 1000, modified, services)
            consul.catalog_deregister({"Node": "node-3", "ServiceID": "nsvc-3-0"})
            eventually(lambda: len(seen["nsvc-3"]) == 3, what="the instance gone")
            cost.wait()
            assert cost.nodes_read == 2  # node-3, and node-7 whose index is not the one held
