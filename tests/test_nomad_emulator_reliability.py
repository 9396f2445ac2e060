"""Both emulators under load, faults, TLS, ACLs and restarts."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nomad as python_nomad
import pytest
import requests
import trustme

from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.jobs import service_job

# --- load ----------------------------------------------------------------------------------------


def test_200_concurrent_clients_register_and_read_without_error(nomad: NomadEmulator) -> None:
    def client(n: int) -> tuple[int, int]:
        with requests.Session() as session:
            job = service_job(f"job-{n}")
            r1 = session.post(f"{nomad.url}/v1/jobs", json={"Job": job}, timeout=30)
            r2 = session.get(f"{nomad.url}/v1/job/job-{n}", timeout=30)
            return r1.status_code, r2.status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(client, range(200)))
    assert results == [(200, 200)] * 200
    assert len(requests.get(f"{nomad.url}/v1/jobs", timeout=10).json()) == 200


def test_50_blocking_queries_all_wake_on_one_change(consul: ConsulEmulator) -> None:
    consul.register("web", service_id="web-1", checks=[{"CheckID": "c", "TTL": "10s"}])
    index = requests.get(f"{consul.url}/v1/health/service/web", timeout=5).headers[
        "X-Consul-Index"]
    barrier = threading.Barrier(51)

    def watcher(_: int) -> tuple[str, float]:
        barrier.wait()
        r = requests.get(f"{consul.url}/v1/health/service/web",
                         params={"index": index, "wait": "10s"}, timeout=20)
        return r.json()[0]["Checks"][1]["Status"], time.monotonic()

    with ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(watcher, n) for n in range(50)]
        barrier.wait()
        time.sleep(0.3)
        changed_at = time.monotonic()
        consul.set_check_status("c", "passing")
        results = [f.result() for f in futures]
    assert {status for status, _ in results} == {"passing"}
    assert max(at for _, at in results) - changed_at < 2


def test_50_nomad_blocking_queries_all_wake_on_register(nomad: NomadEmulator) -> None:
    index = requests.get(f"{nomad.url}/v1/jobs", timeout=5).headers["X-Nomad-Index"]
    barrier = threading.Barrier(51)

    def watcher(_: int) -> int:
        barrier.wait()
        r = requests.get(f"{nomad.url}/v1/jobs", params={"index": index, "wait": "10s"},
                         timeout=20)
        return len(r.json())

    with ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(watcher, n) for n in range(50)]
        barrier.wait()
        time.sleep(0.3)
        nomad.register(service_job("web"))
        counts = [f.result() for f in futures]
    assert counts == [1] * 50


def test_restarts_under_blocking_traffic_leave_no_waiter_behind(nomad: NomadEmulator) -> None:
    index = requests.get(f"{nomad.url}/v1/jobs", timeout=5).headers["X-Nomad-Index"]
    stop = threading.Event()

    def watcher(_: int) -> None:
        # Reconnects at once, so connections arrive while the server is shutting down.
        while not stop.is_set():
            try:
                requests.get(f"{nomad.url}/v1/jobs", params={"index": index, "wait": "30s"},
                             timeout=40)
            except requests.RequestException:
                continue

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(watcher, n) for n in range(20)]
        assert nomad.wait_for(lambda: nomad.watches.subscribed() >= 20, timeout=20)
        for _ in range(5):
            nomad.restart()
        stop.set()
        nomad.stop()
        for future in futures:
            future.result(timeout=60)
    # Every parked query of every stopped loop is gone, and a write wakes nobody dead.
    assert nomad.watches.subscribed() == 0
    nomad.start()
    nomad.register(service_job("web"))
    assert requests.get(f"{nomad.url}/v1/job/web", timeout=5).status_code == 200


# --- faults -----------------------------------------------------------------------------------------


def test_error_rate_answers_no_cluster_leader(nomad: NomadEmulator) -> None:
    nomad.faults.error_rate = 1.0
    r = requests.get(f"{nomad.url}/v1/jobs", timeout=5)
    assert (r.status_code, r.text) == (500, "No cluster leader")


def test_partial_error_rate_fails_a_share_of_requests(consul: ConsulEmulator) -> None:
    consul.faults.error_rate = 0.5
    consul.faults.seed = 7
    codes = [requests.get(f"{consul.url}/v1/status/leader", timeout=5).status_code
             for _ in range(40)]
    assert 0 < codes.count(500) < 40


def test_latency_delays_every_answer(nomad: NomadEmulator) -> None:
    nomad.faults.latency = 0.2
    started = time.monotonic()
    requests.get(f"{nomad.url}/v1/status/leader", timeout=5)
    assert time.monotonic() - started >= 0.2


def test_dropped_connection_is_a_client_connection_error(nomad: NomadEmulator) -> None:
    nomad.faults.drop_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{nomad.url}/v1/jobs", timeout=5)


def test_restart_keeps_jobs_and_port(nomad: NomadEmulator) -> None:
    nomad.register(service_job("web"))
    port = nomad.port
    nomad.restart()
    r = requests.get(f"{nomad.url}/v1/job/web", timeout=5)
    assert (nomad.port, r.status_code) == (port, 200)


def test_scheduler_resumes_after_restart(nomad: NomadEmulator) -> None:
    nomad.stop()
    nomad.register(service_job("web"))
    nomad.start()
    assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    session = requests.Session()  # its keep-alive connection is still open when stop() runs
    with ConsulEmulator() as consul, NomadEmulator(consul=consul) as nomad:
        session.post(f"{nomad.url}/v1/jobs", json={"Job": service_job("web")}, timeout=5)
        assert nomad.wait_for(lambda: nomad.deployment_status("web") == "successful")
        session.get(f"{nomad.url}/v1/jobs", timeout=5)
    session.close()
    assert set(threading.enumerate()) - before == set()


# --- ACL --------------------------------------------------------------------------------------------


@pytest.fixture
def acl_nomad() -> Iterator[NomadEmulator]:
    with NomadEmulator(acl="management-secret") as emulator:
        yield emulator


def test_acl_mode_refuses_requests_without_token(acl_nomad: NomadEmulator) -> None:
    r = requests.get(f"{acl_nomad.url}/v1/jobs", timeout=5)
    assert (r.status_code, r.text) == (403, "Permission denied")


def test_acl_mode_refuses_an_unknown_token(acl_nomad: NomadEmulator) -> None:
    r = requests.get(f"{acl_nomad.url}/v1/jobs", headers={"X-Nomad-Token": "nope"}, timeout=5)
    assert (r.status_code, r.text) == (403, "ACL token not found")


def test_acl_mode_accepts_the_token_as_header_or_bearer(acl_nomad: NomadEmulator) -> None:
    header = requests.get(f"{acl_nomad.url}/v1/jobs",
                          headers={"X-Nomad-Token": "management-secret"}, timeout=5)
    bearer = requests.get(f"{acl_nomad.url}/v1/jobs",
                          headers={"Authorization": "Bearer management-secret"}, timeout=5)
    assert (header.status_code, bearer.status_code) == (200, 200)


def test_python_nomad_with_token_works_in_acl_mode(acl_nomad: NomadEmulator) -> None:
    client = python_nomad.Nomad(host=acl_nomad.host, port=acl_nomad.port,
                                token="management-secret")
    client.job.register_job("web", {"Job": service_job("web")})
    assert client.job.get_job("web")["ID"] == "web"


def test_status_endpoints_need_no_token(acl_nomad: NomadEmulator) -> None:
    assert requests.get(f"{acl_nomad.url}/v1/status/leader", timeout=5).status_code == 200


# --- TLS --------------------------------------------------------------------------------------------


@pytest.fixture
def tls_material(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_context, ca_file


def test_tls_mode_serves_https_with_the_given_certificate(
        tls_material: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_file = tls_material
    with NomadEmulator(tls=context) as nomad:
        r = requests.get(f"{nomad.url}/v1/status/leader", verify=str(ca_file), timeout=5)
    assert nomad.url.startswith("https://")
    assert r.status_code == 200


def test_tls_mode_refuses_plain_http(tls_material: tuple[ssl.SSLContext, Path]) -> None:
    context, _ = tls_material
    with NomadEmulator(tls=context) as nomad, pytest.raises(requests.ConnectionError):
        requests.get(f"http://{nomad.address}/v1/status/leader", timeout=5)


def test_tls_material_as_file_pair(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with NomadEmulator(tls=(str(cert_file), str(key_file))) as nomad:
        r: Any = requests.get(f"{nomad.url}/v1/regions", verify=str(ca_file), timeout=5)
    assert r.json() == ["global"]
