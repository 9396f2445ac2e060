"""The emulators' HTTP server against malformed, oversized, slow and hostile requests (issue 16).

Where a client can tell, the answers are those of Go's net/http (server.go readRequest, textproto's
line reading, transfer.go's Content-Length and chunked parsing): a status line, then the connection
is closed. A handler never sees a request the server could not read, and nothing prints a traceback.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.config import HttpLimits
from nomadmesh.testing.jobs import service_job


def _exchange(emulator: NomadEmulator | ConsulEmulator, data: bytes, *,
              shut: bool = True, timeout: float = 10.0) -> bytes:
    """Send raw bytes and read the whole answer (the server closes the connection)."""
    with socket.create_connection((emulator.host, emulator.port), timeout=timeout) as conn:
        conn.sendall(data)
        if shut:
            conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("data", [
    b"T  HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n",
    b"\nE",
    b"GET /v1/jobs\r\nHost: x\r\n\r\n",
    b"GET /v1/jobs HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"G(T /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/jobs HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /v1/jobs HTTP/1.1\r\n\r\n",  # HTTP/1.1 needs a Host
])
def test_a_malformed_request_head_is_a_400_with_a_status_line(
        nomad: NomadEmulator, data: bytes) -> None:
    reply = _exchange(nomad, data)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply[:80]


@pytest.mark.parametrize("length", [b"abc", b"3\xc2\xb9", b"\xd9\xa3", b"1_0", b"-1", b"+4"])
def test_a_content_length_that_is_not_ascii_digits_is_a_400(nomad: NomadEmulator,
                                                            length: bytes) -> None:
    # transfer.go parseContentLength: ASCII digits only (Python's int() takes more).
    reply = _exchange(nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: " + length
                      + b"\r\n\r\nabcd")
    assert _status(reply) == 400
    assert requests.get(f"{nomad.url}/v1/jobs", timeout=10).status_code == 200


def test_bare_lf_line_endings_are_read_as_textproto_does(nomad: NomadEmulator) -> None:
    reply = _exchange(nomad, b"GET /v1/status/leader HTTP/1.1\nHost: x\nConnection: close\n\n")
    assert _status(reply) == 200 and reply.endswith(b'"127.0.0.1:4647"')


def test_a_truncated_body_is_a_400(nomad: NomadEmulator) -> None:
    reply = _exchange(nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{}")
    assert _status(reply) == 400


@pytest.mark.parametrize("chunk", [b"0x4\r\nabcd\r\n0\r\n\r\n", b"4\r\nabcdXX0\r\n\r\n",
                                   b"zz\r\n", b"4\r\nab"])
def test_malformed_chunked_bodies_are_400s(nomad: NomadEmulator, chunk: bytes) -> None:
    reply = _exchange(nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + chunk)
    assert _status(reply) == 400


def test_a_chunked_job_registers(nomad: NomadEmulator) -> None:
    body = requests.models.complexjson.dumps({"Job": service_job("chunky")}).encode()
    chunks = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                      for part in (body[:50], body[50:]))
    reply = _exchange(nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert _status(reply) == 200
    assert nomad.snapshot().get("jobs", ("default", "chunky")) is not None


def test_an_unknown_transfer_encoding_is_a_501(nomad: NomadEmulator) -> None:
    reply = _exchange(nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: gzip\r\n\r\n")
    assert _status(reply) == 501


@pytest.fixture
def small_nomad() -> Iterator[NomadEmulator]:
    limits = HttpLimits(max_body=64 * 1024, max_header=8 * 1024, idle_timeout=0.5,
                        read_timeout=0.5, workers=4)
    with NomadEmulator(limits=limits) as emulator:
        yield emulator


def test_a_body_over_the_limit_is_refused_before_it_is_sent(small_nomad: NomadEmulator) -> None:
    # The answer comes back after the head alone: the server never waits for (or buffers) it.
    with socket.create_connection((small_nomad.host, small_nomad.port), timeout=10) as conn:
        conn.sendall(b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        reply = conn.recv(65536)
    assert _status(reply) == 413


def test_a_chunked_body_over_the_limit_is_a_413(small_nomad: NomadEmulator) -> None:
    chunk = b"8000\r\n" + b"a" * 0x8000 + b"\r\n"
    reply = _exchange(small_nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3)
    assert _status(reply) == 413


def test_headers_over_the_limit_are_a_431(small_nomad: NomadEmulator) -> None:
    reply = _exchange(small_nomad, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: "
                                   + b"a" * 10_000 + b"\r\n\r\n")
    assert _status(reply) == 431


def test_idle_and_slow_connections_are_closed_and_hold_no_worker(
        small_nomad: NomadEmulator) -> None:
    # 40 connections that send nothing or half a head, against 4 workers: the server still
    # answers, and closes each of them once its idle timeout passes.
    idle = [socket.create_connection((small_nomad.host, small_nomad.port), timeout=10)
            for _ in range(40)]
    try:
        for conn in idle[::2]:
            conn.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost:")
        started = time.monotonic()
        assert requests.get(f"{small_nomad.url}/v1/status/leader", timeout=5).status_code == 200
        assert time.monotonic() - started < 5
        for conn in idle:
            assert conn.recv(1024) == b""
    finally:
        for conn in idle:
            conn.close()


def test_a_body_that_never_arrives_times_out_with_a_408(small_nomad: NomadEmulator) -> None:
    reply = _exchange(small_nomad, b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
                                   b"\r\n\r\nab", shut=False)
    assert _status(reply) == 408


def _deep_config_job(levels: int, leaf: str = "1") -> str:
    """A register body whose task config nests `levels` arrays/objects under its `Config`."""
    inner = leaf
    for level in range(levels):
        inner = f"[{inner}]" if level % 2 else f'{{"k": {inner}}}'
    body = requests.models.complexjson.dumps({"Job": service_job("deep")})
    return body.replace('"image": "nginx:1.27"', f'"image": "nginx:1.27", "deep": {inner}')


def test_a_job_as_deep_as_the_emulator_limit_runs_end_to_end(nomad: NomadEmulator) -> None:
    # Seven levels wrap Config ({"Job": {"TaskGroups": [{"Tasks": [{"Config": ...), so 249 more
    # reach HttpLimits.max_depth = 256: register, plan with a diff, reads of job and allocation.
    r = requests.put(f"{nomad.url}/v1/jobs", data=_deep_config_job(249), timeout=30)
    assert r.status_code == 200, r.text
    assert nomad.wait_for(lambda: any(a["ClientStatus"] == "running"
                                      for a in nomad.snapshot().all("allocs")))
    plan = requests.put(f"{nomad.url}/v1/job/deep/plan", timeout=30,
                        data=_deep_config_job(249, "2").replace('{"Job"', '{"Diff": true, "Job"'))
    assert plan.status_code == 200 and plan.json()["Diff"]["Type"] == "Edited"
    alloc = requests.get(f"{nomad.url}/v1/job/deep/allocations", timeout=30).json()[0]
    for path in ("/v1/job/deep", "/v1/job/deep/versions?diffs=true",
                 f"/v1/allocation/{alloc['ID']}"):
        assert requests.get(f"{nomad.url}{path}", timeout=30).status_code == 200


@pytest.mark.parametrize(("levels", "text"), [
    (600 - 7, "emulator limit: the request body nests 600 levels deep, over "
              "HttpLimits.max_depth = 256 (Nomad accepts up to 10000)"),
    (20_000, "invalid character '{' exceeded max depth"),  # Go's scanner, past its 10000
])
def test_a_job_nested_past_a_limit_is_a_400(nomad: NomadEmulator, levels: int,
                                            text: str) -> None:
    # Nomad registers a Config nested 600 deep (the oracle accepts up to 9,999); the emulator
    # says plainly that the limit is its own.
    for method, path in (("PUT", "/v1/jobs"), ("PUT", "/v1/job/deep/plan"),
                         ("PUT", "/v1/validate/job")):
        r = requests.request(method, f"{nomad.url}{path}", data=_deep_config_job(levels),
                             timeout=30)
        assert (r.status_code, r.text) == (400, text)


def test_a_deep_value_in_a_string_map_is_a_go_type_error(nomad: NomadEmulator) -> None:
    body = requests.models.complexjson.dumps({"Job": service_job("deep")})
    body = body[:-2] + ', "Meta": {"a": ' + "[" * 200 + "]" * 200 + "}}}"
    r = requests.put(f"{nomad.url}/v1/jobs", data=body, timeout=10)
    assert (r.status_code, r.text) == (
        400, "json: cannot unmarshal array into Go struct field Job.Job.Meta of type string")


def test_the_consul_emulator_shares_the_same_strictness(consul: ConsulEmulator) -> None:
    reply = _exchange(consul, b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\xc2\xb9"
                              b"\r\n\r\nabc")
    assert _status(reply) == 400
    reply = _exchange(consul, b"GET /v1/agent/self\nHost: x\n\n")
    assert _status(reply) == 400
