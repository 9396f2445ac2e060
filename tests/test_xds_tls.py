"""TLS and mTLS between the sidecars and the control plane's gRPC listener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from nomadmesh.errors import XdsError
from nomadmesh.mesh.bootstrap import BootstrapParams, XdsTls, render_bootstrap
from nomadmesh.testing.envoy import EnvoyProcess, free_port
from nomadmesh.xds import ControlPlane, ServerTls, Snapshot

SERVER_NAME = "xds.nomadmesh"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert(SERVER_NAME)
    client = ca.issue_cert("sidecar.nomadmesh")
    files = {
        "ca": ca.cert_pem,
        "server_cert": server.cert_chain_pems[0],
        "server_key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(directory / f"{name}.pem"))
    return {name: str(directory / f"{name}.pem") for name in files}


@pytest.fixture
def mtls_plane(pki: dict[str, str]) -> Iterator[ControlPlane]:
    tls = ServerTls(cert_file=pki["server_cert"], key_file=pki["server_key"], client_ca_file=pki["ca"])
    with ControlPlane(listen="127.0.0.1:0", tls=tls) as plane:
        plane.cache.set_snapshot("service-a", Snapshot.empty())
        yield plane


@pytest.mark.envoy
def test_envoy_with_a_client_certificate_connects_over_mtls(
    mtls_plane: ControlPlane, pki: dict[str, str]
) -> None:
    tls = XdsTls(
        ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"], server_name=SERVER_NAME
    )
    params = BootstrapParams(
        node_id="n1",
        cluster="service-a",
        xds_host="127.0.0.1",
        xds_port=mtls_plane.port,
        admin_port=0,
        metrics_port=free_port(),
        xds_tls=tls,
    )
    envoy = EnvoyProcess(render_bootstrap(params))
    mtls_plane.cache.set_snapshot(envoy.node_hash, Snapshot.empty())
    with envoy:
        envoy.wait_for(lambda: envoy.stat("control_plane.connected_state") == "1", what="an mTLS ADS stream")
        envoy.wait_for(envoy.is_ready, what="/ready")


def test_a_client_without_a_certificate_is_refused(mtls_plane: ControlPlane, pki: dict[str, str]) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(pki["ca"]).read_bytes())
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    with grpc.secure_channel(f"127.0.0.1:{mtls_plane.port}", credentials, options) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        request = discovery_pb2.DiscoveryRequest(type_url="x")
        request.node.cluster = "service-a"
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(stub.StreamAggregatedResources(iter([request]), timeout=5)))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_unreadable_certificate_is_an_xds_error(tmp_path: Path) -> None:
    tls = ServerTls(cert_file=str(tmp_path / "missing.pem"), key_file=str(tmp_path / "k.pem"))
    with pytest.raises(XdsError, match="cannot read TLS file"):
        ControlPlane(listen="127.0.0.1:0", tls=tls)
