"""Zero trust through real Envoys: the inbound listener, mTLS with SDS certificates, RBAC."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator

import pytest
import requests

from nomadmesh.contract import Upstream
from nomadmesh.testing.envoy import HttpBackend, Sidecar
from nomadmesh.xds import ControlPlane, Endpoint, MeshState
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.ca import MeshCA
from nomadmesh.xds.sources.state import MeshStateSource

pytestmark = pytest.mark.envoy


def plane_with(config: MeshConfig) -> ControlPlane:
    return ControlPlane(listen="127.0.0.1:0",
                        source=lambda cache, metrics: MeshStateSource(cache, config=config))


@pytest.fixture
def app() -> Iterator[HttpBackend]:
    with HttpBackend("api-app") as backend:
        yield backend


def mesh_state(api: Sidecar, callers: tuple[str, ...] | None = None) -> MeshState:
    assert api.inbound_port is not None
    upstream = (Upstream("api", "/api"),)
    return MeshState(
        endpoints={"api": (Endpoint("127.0.0.1", api.inbound_port),), "web": (), "intruder": ()},
        upstreams={"web": upstream, "intruder": upstream},
        callers={"api": callers} if callers is not None else {},
    )


def status(sidecar: Sidecar, path: str) -> int:
    try:
        return sidecar.get(path).status_code
    except requests.RequestException:
        return 0


def serve(plane: ControlPlane, state: MeshState) -> None:
    assert isinstance(plane.source, MeshStateSource)
    plane.source.update(state)


def test_with_mtls_an_allowed_caller_gets_through_and_an_intruder_gets_403(
        app: HttpBackend) -> None:
    config = MeshConfig(ca=MeshCA.generate(), default_allow=False)
    with plane_with(config) as plane, \
            Sidecar(plane.port, "api", "api-1", app_port=app.port) as api, \
            Sidecar(plane.port, "web", "web-1") as web, \
            Sidecar(plane.port, "intruder", "intruder-1") as intruder:
        serve(plane, mesh_state(api, callers=("web",)))
        web.envoy.wait_for(lambda: web.answer("/api/x") == "api-app /api/x", timeout=20,
                           what="web reaches api over mTLS")
        intruder.envoy.wait_for(lambda: status(intruder, "/api/x") == 403, timeout=20,
                                what="the intruder refused")
        denied = intruder.get("/api/x")
        assert (denied.status_code, denied.text) == (403, "RBAC: access denied")
        api.envoy.wait_for(lambda: int(api.envoy.stat("http.inbound.rbac.denied") or 0) >= 2,
                           what="the denials counted")
        assert int(api.envoy.stat("http.inbound.rbac.allowed") or 0) >= 1


def test_a_plain_text_call_to_the_inbound_listener_is_refused(app: HttpBackend) -> None:
    with plane_with(MeshConfig(ca=MeshCA.generate())) as plane, \
            Sidecar(plane.port, "api", "api-1", app_port=app.port) as api, \
            Sidecar(plane.port, "web", "web-1") as web:
        serve(plane, mesh_state(api))
        web.envoy.wait_for(lambda: web.answer("/api") == "api-app /api", timeout=20,
                           what="the mesh path works")
        before = app.requests
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{api.inbound_port}/api", timeout=5)
        # TLS without a mesh certificate is refused as well.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            import socket

            with socket.create_connection(("127.0.0.1", api.inbound_port), timeout=5) as raw, \
                    context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
                if not tls.recv(1):
                    raise ConnectionError("closed without an answer")
        assert app.requests == before


def test_the_caller_presents_its_spiffe_id_and_the_app_sees_it(app: HttpBackend) -> None:
    ca = MeshCA.generate(trust_domain="example.test")
    with plane_with(MeshConfig(ca=ca)) as plane, \
            Sidecar(plane.port, "api", "api-1", app_port=app.port) as api, \
            Sidecar(plane.port, "web", "web-1") as web:
        serve(plane, mesh_state(api))
        web.envoy.wait_for(lambda: web.answer("/api") == "api-app /api", timeout=20,
                           what="the mesh path works")
        certs = api.envoy.admin("/certs").json()["certificates"]
    uris = {san["uri"] for cert in certs for chain in cert.get("cert_chain", ())
            for san in chain.get("subject_alt_names", ()) if "uri" in san}
    assert "spiffe://example.test/svc/api" in uris


def test_a_certificate_is_renewed_over_sds_without_a_restart(app: HttpBackend) -> None:
    ca = MeshCA.generate(lifetime=datetime.timedelta(seconds=6))
    with plane_with(MeshConfig(ca=ca)) as plane, \
            Sidecar(plane.port, "api", "api-1", app_port=app.port) as api, \
            Sidecar(plane.port, "web", "web-1") as web:
        serve(plane, mesh_state(api))
        web.envoy.wait_for(lambda: web.answer("/api") == "api-app /api", timeout=20,
                           what="the mesh path works")

        def serial() -> str:
            certs = web.envoy.admin("/certs").json()["certificates"]
            return str(sorted(c["serial_number"] for cert in certs
                              for c in cert.get("cert_chain", ())))

        first = serial()
        web.envoy.wait_for(lambda: serial() != first, timeout=15, what="a renewed certificate")
        # The same Envoy process keeps calling with the new certificate.
        assert web.answer("/api") == "api-app /api"
        assert int(web.envoy.stat("sds.nomadmesh_identity.update_success") or 0) >= 2
