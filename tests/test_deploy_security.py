"""ACL tokens and TLS: the token authenticates and never shows; certificates are verified."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from urllib3.exceptions import InsecureRequestWarning

from nomadmesh.deploy import NomadClient, Retry
from nomadmesh.errors import NomadmeshError, NomadUnavailable, PermissionDenied
from nomadmesh.model import Group, Job, Resources, Task
from nomadmesh.testing import NomadEmulator

TOKEN = "4c1f2a9e-secret-acl-token-0b7d"


def job() -> Job:
    task = Task("app", driver="docker", config={"image": "busybox:1.36"},
                resources=Resources(cpu=50, memory=32))
    return Job("web", groups=(Group("api", count=1, tasks=(task,)),))


@pytest.fixture
def acl_nomad() -> Iterator[NomadEmulator]:
    with NomadEmulator(acl=TOKEN) as nomad:
        yield nomad


@pytest.fixture
def tls_nomad(tmp_path: Path) -> Iterator[tuple[NomadEmulator, Path, trustme.CA]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "server.global.nomad")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    with NomadEmulator(tls=(str(certfile), str(keyfile))) as nomad:
        yield nomad, cafile, ca


def test_acl_token_from_the_environment_authenticates(acl_nomad: NomadEmulator) -> None:
    env = {"NOMAD_ADDR": acl_nomad.url, "NOMAD_TOKEN": TOKEN}
    with NomadClient.from_env(env) as client:
        assert client.run(job(), timeout=30).status == "healthy"


def test_missing_token_is_permission_denied(acl_nomad: NomadEmulator) -> None:
    with NomadClient(acl_nomad.url) as client, pytest.raises(PermissionDenied):
        client.plan(job())


def test_wrong_token_never_appears_in_the_error_or_the_logs(
        acl_nomad: NomadEmulator, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "deadbeef-wrong-token-never-print"
    caplog.set_level(logging.DEBUG)
    with NomadClient(acl_nomad.url, token=wrong) as client, \
            pytest.raises(PermissionDenied) as denied:
        client.status("web")
    assert caplog.records, "the request was logged at debug level"
    for text in (str(denied.value), repr(denied.value), caplog.text, repr(client)):
        assert wrong not in text


def test_token_is_absent_from_every_failure_of_a_deploy(
        acl_nomad: NomadEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    acl_nomad.script_task("web", "api", "app", fail="driver")
    with NomadClient(acl_nomad.url, token=TOKEN) as client, \
            pytest.raises(NomadmeshError) as failed:
        client.run(job(), timeout=30)
    assert TOKEN not in str(failed.value)
    assert TOKEN not in caplog.text


def test_tls_with_the_ca_file_verifies_the_server(
        tls_nomad: tuple[NomadEmulator, Path, trustme.CA]) -> None:
    nomad, cafile, _ = tls_nomad
    with NomadClient.from_env({"NOMAD_ADDR": nomad.url, "NOMAD_CACERT": str(cafile)}) as client:
        assert client.run(job(), timeout=30).status == "healthy"


def test_tls_without_the_ca_is_refused_rather_than_trusted(
        tls_nomad: tuple[NomadEmulator, Path, trustme.CA]) -> None:
    nomad, _, _ = tls_nomad
    with NomadClient(nomad.url, retry=Retry(attempts=1)) as client, \
            pytest.raises(NomadUnavailable) as refused:
        client.status("web")
    assert "SSL" in refused.value.cause or "certificate" in refused.value.cause


def test_ca_directory_and_server_name_verify_a_certificate_issued_for_that_name(
        tls_nomad: tuple[NomadEmulator, Path, trustme.CA], tmp_path: Path) -> None:
    nomad, _, ca = tls_nomad
    cas = tmp_path / "cas"
    cas.mkdir()
    ca.cert_pem.write_to_path(str(cas / "nomad-ca.pem"))
    (cas / "README").write_text("not a certificate")
    url = nomad.url.replace("127.0.0.1", "localhost")
    with NomadClient(url, ca_path=str(cas), tls_server_name="server.global.nomad") as client:
        assert client.plan(job()).is_new


def test_skip_verify_accepts_an_unknown_certificate_only_when_asked_and_warns(
        tls_nomad: tuple[NomadEmulator, Path, trustme.CA]) -> None:
    nomad, _, _ = tls_nomad
    with NomadClient.from_env({"NOMAD_ADDR": nomad.url, "NOMAD_SKIP_VERIFY": "true"}) as client, \
            pytest.warns(InsecureRequestWarning):
        assert client.plan(job()).is_new


def test_mutual_tls_uses_the_client_certificate_from_the_environment(tmp_path: Path) -> None:
    import ssl

    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client.global.nomad")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    cafile, certfile, keyfile = tmp_path / "ca.pem", tmp_path / "cli.pem", tmp_path / "cli-key.pem"
    ca.cert_pem.write_to_path(str(cafile))
    client_cert.cert_chain_pems[0].write_to_path(str(certfile))
    client_cert.private_key_pem.write_to_path(str(keyfile))
    with NomadEmulator(tls=context) as nomad:
        env = {"NOMAD_ADDR": nomad.url, "NOMAD_CACERT": str(cafile)}
        with NomadClient.from_env({**env, "NOMAD_CLIENT_CERT": str(certfile),
                                   "NOMAD_CLIENT_KEY": str(keyfile)}) as client:
            assert client.register(job()).eval_id
        with NomadClient.from_env(env, retry=Retry(attempts=5, backoff=1.0)) as anonymous, \
                pytest.raises(NomadUnavailable) as refused:
            anonymous.status("web")
    assert "failed at" in str(refused.value) and " times" not in str(refused.value)
