"""The Nomad-native source (provider = "nomad") over real HTTP: a mesh with no Consul at all."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from nomadmesh.cli import main
from nomadmesh.contract import (
    CONFIG_ITEM,
    CONFIG_PREFIX,
    ROUTES_TAG_PREFIX,
    Upstream,
    config_document,
    read_config_document,
)
from nomadmesh.deploy import NomadClient
from nomadmesh.errors import ConflictError, XdsError
from nomadmesh.mesh import GroupMesh, Mesh, inject
from nomadmesh.mesh.config import apply_nomad_config
from nomadmesh.model import Group, Job, Network, Port, Service, Task
from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.envoy import HttpBackend, Sidecar, eventually, watching
from nomadmesh.testing.jobs import service_job
from nomadmesh.xds import ControlPlane
from nomadmesh.xds.resources import ENDPOINT_TYPE, ROUTE_TYPE
from nomadmesh.xds.sources.nomad import NomadSource, registrations_view


class NomadServices:
    """Nomad's `/v1/services` and `/v1/service/<name>` with blocking queries (X-Nomad-Index,
    ?index=&wait=), as nomad/service_registration_endpoint.go serves them, and Variables
    (`/v1/vars?prefix=`, `/v1/var/<path>`: nomad/variables_endpoint.go)."""

    def __init__(self) -> None:
        self.index = 10
        self.registrations: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.after_read: Callable[[], None] | None = None  # runs after each /v1/var/ read
        self.changed = threading.Condition()
        self.queries: list[str] = []
        nomad = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                nomad.queries.append(self.path)
                wanted = int(query.get("index", ["0"])[0])
                with nomad.changed:
                    nomad.changed.wait_for(lambda: nomad.index > wanted, timeout=1.0)
                    body = nomad.answer(url.path, query.get("prefix", [""])[0],
                                        query.get("namespace", ["default"])[0])
                    index = nomad.index
                self.reply(200 if body is not None else 404, body, index)
                if url.path.startswith("/v1/var/") and nomad.after_read is not None:
                    nomad.after_read()

            def do_PUT(self) -> None:
                url = urlsplit(self.path)
                nomad.queries.append("PUT " + self.path)
                path = url.path.removeprefix("/v1/var/")
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                cas = parse_qs(url.query).get("cas")
                with nomad.changed:
                    current = nomad.variables.get(path)
                    if cas is not None and int(cas[0]) != (current or {}).get("ModifyIndex", 0):
                        self.reply(409, current, nomad.index)  # nomad/variables_endpoint.go
                        return
                nomad.set_variable(path, sent["Items"])
                self.reply(200, nomad.variables[path], nomad.index)

            def reply(self, status: int, body: Any, index: int) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("X-Nomad-Index", str(index))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, prefix: str = "", namespace: str = "default") -> Any:
        if path == "/v1/vars":
            return [{k: v[k] for k in ("Namespace", "Path", "CreateIndex", "ModifyIndex")}
                    for p, v in sorted(self.variables.items()) if p.startswith(prefix)]
        if path.startswith("/v1/var/"):
            return self.variables.get(path.removeprefix("/v1/var/"))
        if path == "/v1/services":
            names: dict[str, dict[str, set[str]]] = {}
            for reg in self.registrations.values():
                if namespace in ("*", reg["Namespace"]):
                    names.setdefault(reg["Namespace"], {}).setdefault(
                        reg["ServiceName"], set()).update(reg["Tags"])
            return [{"Namespace": ns, "Services": [
                {"ServiceName": n, "Tags": sorted(t)} for n, t in sorted(services.items())]}
                for ns, services in sorted(names.items())]
        if not path.startswith("/v1/service/"):
            return None  # no event stream here: a Nomad before 1.0, watched by blocking queries
        # One namespace, exactly (state_store_service_registration.go:244): `*` finds nothing.
        name = path.removeprefix("/v1/service/")
        return [r for _, r in sorted(self.registrations.items())
                if r["ServiceName"] == name and r["Namespace"] == namespace]

    def register(self, reg_id: str, name: str, port: Any, tags: list[str] | None = None,
                 namespace: str = "default") -> None:
        with self.changed:
            self.index += 1
            self.registrations[reg_id] = {
                "ID": reg_id, "ServiceName": name, "Namespace": namespace, "NodeID": "n1",
                "Datacenter": "dc1", "JobID": name, "AllocID": reg_id, "Tags": tags or [],
                "Address": "127.0.0.1", "Port": port, "CreateIndex": self.index,
                "ModifyIndex": self.index}
            self.changed.notify_all()

    def set_variable(self, path: str, items: dict[str, str] | None) -> None:
        with self.changed:
            self.index += 1
            if items is None:
                self.variables.pop(path)
            else:
                created = self.variables.get(path, {}).get("CreateIndex", self.index)
                self.variables[path] = {"Namespace": "default", "Path": path, "Items": items,
                                        "CreateIndex": created, "ModifyIndex": self.index}
            self.changed.notify_all()

    def deregister(self, reg_id: str) -> None:
        with self.changed:
            self.index += 1
            self.registrations.pop(reg_id)
            self.changed.notify_all()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nomad() -> Iterator[NomadServices]:
    server = NomadServices()
    yield server
    server.close()


def nomad_plane(nomad: NomadServices) -> ControlPlane:
    return ControlPlane(listen="127.0.0.1:0", source=lambda cache, metrics: NomadSource(
        nomad.address, cache, metrics, wait="1s"))


def ports(plane: ControlPlane, node: str, service: str) -> list[int]:
    snapshot = plane.cache.get(node)
    if snapshot is None or service not in snapshot.of_type(ENDPOINT_TYPE):
        return []
    assignment = snapshot.of_type(ENDPOINT_TYPE)[service].message
    return [e.endpoint.address.socket_address.port_value for e in assignment.endpoints[0].lb_endpoints]


def test_inject_puts_the_routes_in_a_tag_for_nomad_services() -> None:
    job = Job("web", groups=[Group("web", networks=[Network(mode="bridge", ports=[Port("http")])],
                                    services=[Service(name="web", port="http", provider="nomad")],
                                    tasks=[Task("app", driver="docker")])])
    mesh = Mesh(groups={"web": GroupMesh(upstreams=[Upstream("api", "/api")])})
    service = inject(job, mesh).groups[0].services[0]
    assert f"{ROUTES_TAG_PREFIX}api=/api" in service.tags


def test_registrations_and_route_tags_become_snapshots_and_follow_changes(
        nomad: NomadServices) -> None:
    nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
    nomad.register("a1", "api", 7001)
    with nomad_plane(nomad) as plane, watching(plane.port, "web"):
        eventually(lambda: ports(plane, "web", "api") == [7001], what="the first snapshot")
        nomad.register("a2", "api", 7002)
        eventually(lambda: ports(plane, "web", "api") == [7001, 7002], what="a new registration")
        nomad.deregister("a1")
        eventually(lambda: ports(plane, "web", "api") == [7002], what="a stopped allocation")
        assert any("index=" in q for q in nomad.queries), "blocking queries were used"


def test_a_registration_envoy_cannot_use_is_skipped_reported_and_later_changes_apply(
        nomad: NomadServices) -> None:
    nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
    nomad.register("a1", "api", 7001)
    nomad.register("bad", "api", 70000)
    with nomad_plane(nomad) as plane, watching(plane.port, "web"):
        eventually(lambda: ports(plane, "web", "api") == [7001], what="the good registration")
        assert not plane.healthy()
        assert any("port 70000" in p for p in plane.source.problems())  # type: ignore[union-attr]
        nomad.deregister("bad")
        nomad.register("a3", "api", 7003)
        eventually(lambda: ports(plane, "web", "api") == [7001, 7003], what="later changes")
        eventually(plane.healthy, what="healthy again")


def routes(plane: ControlPlane, node: str) -> list[str]:
    snapshot = plane.cache.get(node)
    if snapshot is None or "egress_route" not in snapshot.of_type(ROUTE_TYPE):
        return []
    config = snapshot.of_type(ROUTE_TYPE)["egress_route"].message
    return list(dict.fromkeys(r.match.prefix for host in config.virtual_hosts for r in host.routes))


def test_config_documents_in_nomad_variables_win_over_the_routes_tag_and_follow_changes(
        nomad: NomadServices) -> None:
    nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
    nomad.register("a1", "api", 7001)
    nomad.register("o1", "other", 7002)
    path = CONFIG_PREFIX + "web"
    nomad.set_variable(path, {CONFIG_ITEM: config_document(
        [Upstream("api", "/v2/api"), Upstream("other", "/other")])})
    with nomad_plane(nomad) as plane, watching(plane.port, "web"):
        eventually(lambda: routes(plane, "web") == ["/v2/api", "/other"], what="the document")
        assert ports(plane, "web", "other") == [7002]
        nomad.set_variable(path, {CONFIG_ITEM: "{not json"})
        eventually(lambda: not plane.healthy(), what="the bad document reported")
        assert any(f"nomad variable {path}" in p
                   for p in plane.source.problems())  # type: ignore[union-attr]
        assert routes(plane, "web") == ["/v2/api", "/other"]  # the last good one stays
        nomad.set_variable(path, {CONFIG_ITEM: config_document([Upstream("api", "/v3/api")])})
        eventually(lambda: routes(plane, "web") == ["/v3/api"], what="a changed document")
        eventually(plane.healthy, what="healthy again")
        nomad.set_variable(path, None)
        eventually(lambda: routes(plane, "web") == ["/api"], what="back to the routes tag")
        reads = [q for q in nomad.queries if q.startswith("/v1/var/")]
        assert len(reads) == 3, reads  # one read per changed variable, none per wake-up


def test_a_variable_without_a_config_item_is_reported_and_nested_paths_are_not_documents(
        nomad: NomadServices) -> None:
    nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
    nomad.register("a1", "api", 7001)
    nomad.set_variable(CONFIG_PREFIX + "web/extra", {CONFIG_ITEM: "{not json"})
    nomad.set_variable(CONFIG_PREFIX + "api", {"other": "x"})
    with nomad_plane(nomad) as plane, watching(plane.port, "web"):
        eventually(lambda: routes(plane, "web") == ["/api"], what="the routes tag")
        eventually(lambda: not plane.healthy(), what="the unusable variable reported")
        problems = plane.source.problems()  # type: ignore[union-attr]
        assert any("no item 'config'" in p for p in problems), problems
        assert not any("web/extra" in p for p in problems), problems
        nomad.set_variable(CONFIG_PREFIX + "api", None)
        eventually(plane.healthy, what="healthy once it is gone")


def cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_mesh_apply_writes_nomad_variables_once_and_the_source_serves_them(
        nomad: NomadServices, capsys: pytest.CaptureFixture[str]) -> None:
    nomad.register("b1", "service-b", 7000)
    nomad.register("a1", "service-a", 7001)
    job = str(Path(__file__).parents[1] / "examples" / "jobs" / "service-b.nomad.hcl")
    argv = ["mesh", "apply", job, "--nomad", f"http://{nomad.address}"]
    assert cli(argv) == 0
    assert capsys.readouterr().out.split() == [CONFIG_PREFIX + "service-b"]
    stored = nomad.variables[CONFIG_PREFIX + "service-b"]["Items"]
    assert read_config_document(stored[CONFIG_ITEM], "variable").upstreams == (
        Upstream("service-a", "/hi_a"),)
    assert cli(argv) == 0
    assert "0 of 1 service config(s) changed" in capsys.readouterr().err
    with nomad_plane(nomad) as plane, watching(plane.port, "service-b"):
        eventually(lambda: routes(plane, "service-b") == ["/hi_a"], what="the applied document")
        assert ports(plane, "service-b", "service-a") == [7001]


def test_apply_nomad_config_never_overwrites_a_change_made_since_it_read(
        nomad: NomadServices) -> None:
    path = CONFIG_PREFIX + "web"
    nomad.set_variable(path, {CONFIG_ITEM: config_document([Upstream("api", "/old")])})
    theirs = {CONFIG_ITEM: config_document([Upstream("api", "/theirs")])}

    def someone_else_writes() -> None:
        nomad.after_read = None
        nomad.set_variable(path, theirs)

    nomad.after_read = someone_else_writes
    client = NomadClient(address=f"http://{nomad.address}")
    try:
        with pytest.raises(ConflictError):
            apply_nomad_config({path: config_document([Upstream("api", "/mine")])}, client)
    finally:
        client.close()
    assert nomad.variables[path]["Items"] == theirs


def emulated_service_job(job_id: str, name: str, count: int,
                         tags: list[str] | None = None) -> dict[str, Any]:
    job = service_job(job_id, count=count, service=name)
    job["TaskGroups"][0]["Services"][0].update(Provider="nomad", Tags=tags or [], Checks=None)
    return job


def test_the_source_follows_the_nomad_emulators_services_and_variables() -> None:
    with NomadEmulator() as emulator:
        emulator.register(emulated_service_job("web", "web", 1, [ROUTES_TAG_PREFIX + "api=/api"]))
        emulator.register(emulated_service_job("api", "api", 2))
        with ControlPlane(listen="127.0.0.1:0", source=lambda cache, metrics: NomadSource(
                emulator.address, cache, metrics, wait="1s")) as plane, \
                watching(plane.port, "web"):
            eventually(lambda: len(ports(plane, "web", "api")) == 2, what="both allocations")
            assert routes(plane, "web") == ["/api"]
            client = NomadClient(address=emulator.url)
            try:
                document = config_document([Upstream("api", "/v2/api")])
                assert apply_nomad_config({CONFIG_PREFIX + "web": document}, client) == [
                    CONFIG_PREFIX + "web"]
            finally:
                client.close()
            eventually(lambda: routes(plane, "web") == ["/v2/api"], what="the variable")
            emulator.register(emulated_service_job("api", "api", 3))
            eventually(lambda: len(ports(plane, "web", "api")) == 3, what="a third allocation")
            assert plane.healthy(), plane.source.problems()  # type: ignore[union-attr]


def test_a_service_in_two_namespaces_is_watched_in_each_and_served_as_one(
        nomad: NomadServices) -> None:
    nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
    nomad.register("a1", "api", 7001)
    nomad.register("a2", "api", 7002, namespace="prod")
    with nomad_plane(nomad) as plane, watching(plane.port, "web"):
        eventually(lambda: ports(plane, "web", "api") == [7001, 7002], what="both namespaces")
        nomad.deregister("a1")
        eventually(lambda: ports(plane, "web", "api") == [7002], what="one namespace left")
        nomad.deregister("a2")
        eventually(lambda: ports(plane, "web", "api") == [], what="none left")
    assert any("namespace=prod" in q for q in nomad.queries if q.startswith("/v1/service/api"))


def test_malformed_registrations_are_skipped() -> None:
    (endpoints, _), skipped = registrations_view([None, {"ID": "x", "Port": "80", "Address": "a"}])
    assert endpoints == ()
    assert skipped == ["1 entries that are not objects skipped",
                       "registration x: port 80 is not 1-65535"]


def test_a_malformed_nomad_address_is_an_xds_error() -> None:
    for address in ("http://[::1", "host:abc", "ftp://h:1"):
        with pytest.raises(XdsError, match="Nomad address"):
            NomadSource(address, None, None)  # type: ignore[arg-type]


@pytest.mark.envoy
def test_a_real_sidecar_routes_through_nomad_discovery_alone(nomad: NomadServices) -> None:
    with HttpBackend("api") as api:
        nomad.register("x1", "web", 7000, tags=[ROUTES_TAG_PREFIX + "api=/api"])
        nomad.register("a1", "api", api.port)
        with nomad_plane(nomad) as plane, Sidecar(plane.port, "web") as sidecar:
            sidecar.envoy.wait_for(lambda: sidecar.answer("/api/x") == "api /api/x",
                                   what="a route from Nomad's registrations")
            # The config document from a Nomad Variable takes over the routes: still no Consul.
            nomad.set_variable(CONFIG_PREFIX + "web", {CONFIG_ITEM: config_document(
                [Upstream("api", "/v2")])})
            sidecar.envoy.wait_for(lambda: sidecar.answer("/v2/x") == "api /v2/x",
                                   what="a route from a Nomad Variable")
            assert sidecar.answer("/api/x") == ""
