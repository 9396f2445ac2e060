"""The deploy client against servers that misbehave (issue 16): redirects, answers that are not
Nomad's JSON, bodies that echo secrets, servers that never answer, permanent errors.

Each server here is a real HTTP server on loopback that answers as a proxy or a broken server
would; nothing is mocked below the client's own HTTP layer.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trustme

from nomadmesh.consul_api import ConsulApi, ConsulConfig
from nomadmesh.deploy import NomadClient, Retry
from nomadmesh.errors import (
    ApiError,
    InputError,
    NomadmeshError,
    NomadUnavailable,
    RedirectError,
    ValidationError,
)
from nomadmesh.model import Group, Job, Resources, Task
from nomadmesh.redact import redact, redact_url
from nomadmesh.testing import NomadEmulator

TOKEN = "5e1c7d2a-misbehaving-secret-token"
PATIENT = Retry(attempts=8, backoff=0.2, max_backoff=0.2)


@attrs.define
class Seen:
    """One request a server received."""

    method: str
    path: str
    headers: dict[str, str]


Answer = tuple[int, dict[str, str], bytes] | None
Script = Callable[[str, str, dict[str, str]], Answer]


class Server:
    """A loopback HTTP server answering every request with `script` (None: never answer)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append(Seen(self.command, self.path, headers))
                answer = outer.script(self.command, self.path, headers)
                if answer is None:
                    outer.release.wait(30)
                    return
                status, extra, body = answer
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Server]]:
    servers: list[Server] = []

    def start(script: Script) -> Server:
        server = Server(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def job(job_id: str = "web") -> Job:
    task = Task("app", driver="docker", config={"image": "busybox:1.36"},
                resources=Resources(cpu=50, memory=32))
    return Job(job_id, groups=(Group("api", count=1, tasks=(task,)),))


def text(status: int, body: str, content_type: str = "text/plain") -> Answer:
    return status, {"Content-Type": content_type}, body.encode()


def consul_answer(status: int, body: str, content_type: str = "application/json") -> Answer:
    return status, {"Content-Type": content_type, "X-Consul-Index": "7"}, body.encode()


# --- redirects ---------------------------------------------------------------------------------


def test_a_redirect_on_register_is_an_error_naming_where_it_points_and_never_followed(
        serve: Callable[[Script], Server]) -> None:
    elsewhere = serve(lambda m, p, h: text(200, "{}", "application/json"))
    target = f"{elsewhere.url}/v1/job/web"
    lb = serve(lambda m, p, h: (307, {"Location": target}, b""))
    with NomadClient(lb.url, token=TOKEN) as client, pytest.raises(RedirectError) as redirected:
        client.register(job())
    assert target in str(redirected.value)
    assert redirected.value.status == 307
    assert elsewhere.seen == []


def test_run_against_a_redirecting_address_fails_instead_of_reporting_registered(
        serve: Callable[[Script], Server]) -> None:
    lb = serve(lambda m, p, h: (301, {"Location": "https://nomad.example:4646" + p}, b""))
    with NomadClient(lb.url, token=TOKEN) as client, pytest.raises(RedirectError) as redirected:
        client.run(job(), wait=False)
    assert "https://nomad.example:4646/v1/job/web" in str(redirected.value)
    assert all(s.method == "GET" for s in lb.seen)


def test_stop_never_follows_a_redirect_so_the_token_never_reaches_another_host(
        serve: Callable[[Script], Server]) -> None:
    other_host = serve(lambda m, p, h: text(200, '{"EvalID": "x"}', "application/json"))
    lb = serve(lambda m, p, h: (307, {"Location": other_host.url + p}, b""))
    with NomadClient(lb.url, token=TOKEN) as client, pytest.raises(RedirectError):
        client.stop("web")
    assert other_host.seen == []
    assert lb.seen[0].headers["x-nomad-token"] == TOKEN


def test_a_redirect_location_with_credentials_is_redacted(
        serve: Callable[[Script], Server]) -> None:
    lb = serve(lambda m, p, h: (302, {"Location": "https://admin:hunter22@sso.example/login"},
                                b""))
    with NomadClient(lb.url) as client, pytest.raises(RedirectError) as redirected:
        client.status("web")
    assert "hunter22" not in str(redirected.value)
    assert "https://admin:<redacted>@sso.example/login" in str(redirected.value)


# --- answers that are not Nomad's JSON ---------------------------------------------------------

NOT_NOMAD = {
    "an HTML login page": text(200, "<html><body>Please log in</body></html>", "text/html"),
    "truncated JSON": text(200, '{"ID": "web", "TaskGr', "application/json"),
    "a list": text(200, '["web"]', "application/json"),
    "JSON nested 5000 deep": text(200, "[" * 5000 + "]" * 5000, "application/json"),
}
VERBS: dict[str, Callable[[NomadClient], object]] = {
    "status": lambda c: c.status("web"),
    "run": lambda c: c.run(job(), timeout=10),
    "stop": lambda c: c.stop("web"),
    "plan": lambda c: c.plan(job()),
    "register": lambda c: c.register(job()),
    "history": lambda c: c.history("web"),
    "validate": lambda c: c.validate(job()),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("answer", sorted(NOT_NOMAD))
def test_an_answer_that_is_not_a_json_object_is_an_api_error_naming_the_endpoint(
        serve: Callable[[Script], Server], verb: str, answer: str) -> None:
    server = serve(lambda m, p, h: NOT_NOMAD[answer])
    with NomadClient(server.url) as client, pytest.raises(ApiError) as wrong:
        VERBS[verb](client)
    first = server.seen[0]
    assert f"{first.method} {first.path.split('?')[0]} answered 200 with" in str(wrong.value)


def test_a_json_object_where_nomad_answers_a_list_is_an_api_error(
        serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(200, '{"ID": "x"}', "application/json"))
    with NomadClient(server.url) as client, pytest.raises(ApiError) as wrong:
        client.jobs()
    assert "GET /v1/jobs answered 200 with a JSON dict where Nomad answers a JSON list" in str(
        wrong.value)


# --- secrets in what is quoted -----------------------------------------------------------------


def test_an_error_body_echoing_the_request_headers_is_quoted_without_the_token(
        serve: Callable[[Script], Server]) -> None:
    def echo(method: str, path: str, headers: dict[str, str]) -> Answer:
        dump = "\n".join(f"{k}: {v}" for k, v in headers.items())
        return text(502, f"bad gateway; your request was:\n{method} {path}\n{dump}\n"
                         f"map[X-Nomad-Token:[{headers['x-nomad-token']}]]")

    server = serve(echo)
    with NomadClient(server.url, token=TOKEN, retry=Retry(attempts=2, backoff=0.001)) as client, \
            pytest.raises(NomadmeshError) as failed:
        client.status("web")
    assert TOKEN not in str(failed.value)
    assert "x-nomad-token: <redacted>" in str(failed.value)


def test_basic_auth_from_nomad_http_auth_is_sent_and_its_password_never_quoted(
        serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(403, f"denied for {h.get('authorization')}"))
    env = {"NOMAD_ADDR": server.url, "NOMAD_HTTP_AUTH": "deployer:s3cret-pass"}
    with NomadClient.from_env(env) as client, pytest.raises(NomadmeshError) as denied:
        client.status("web")
    expected = "Basic " + base64.b64encode(b"deployer:s3cret-pass").decode()
    assert server.seen[0].headers["authorization"] == expected
    assert "s3cret-pass" not in str(denied.value)
    assert base64.b64encode(b"deployer:s3cret-pass").decode() not in str(denied.value)


def test_redaction_covers_urls_headers_and_query_tokens() -> None:
    assert redact_url("git+https://user:ghp_TOKEN123@github.com/org/packs") == \
        "git+https://user:<redacted>@github.com/org/packs"
    assert redact('{"Authorization": "Bearer abc.def"}') == '{"Authorization": "Bearer <redacted>"}'
    assert redact("GET /v1/x?token=abcd1234&b=1") == "GET /v1/x?token=<redacted>&b=1"
    assert redact("the token is 1234-abcd", ["1234-abcd"]) == "the token is <redacted>"


# --- time bounds and retries -------------------------------------------------------------------


def test_run_with_a_timeout_against_a_server_that_never_answers_returns_within_it(
        serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: None)
    with NomadClient(server.url, retry=Retry(attempts=8, backoff=0.05)) as client:
        started = time.monotonic()
        with pytest.raises(NomadUnavailable) as slow:
            client.run(job(), timeout=2)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert "GET /v1/job/web" in str(slow.value)


def test_a_4xx_answer_is_final_and_sent_once(serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(400, "Request decode failed"))
    with NomadClient(server.url, retry=PATIENT) as client, pytest.raises(ApiError) as refused:
        client.status("web")
    assert len(server.seen) == 1
    assert refused.value.status == 400


def test_no_path_to_region_is_final_and_sent_once(serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(500, "No path to region"))
    with NomadClient(server.url, retry=PATIENT, region="mars") as client, \
            pytest.raises(ApiError) as refused:
        client.status("web")
    assert len(server.seen) == 1
    assert "no path to region" in str(refused.value)


def test_a_validation_answer_of_the_agent_is_a_validation_error_sent_once(
        serve: Callable[[Script], Server]) -> None:
    body = ("1 error occurred:\n\t* Task group api validation failed: 1 error occurred:\n"
            "\t* Task app validation failed: missing driver\n\n")
    server = serve(lambda m, p, h: text(500, body) if m == "POST" else text(404, "job not found"))
    with NomadClient(server.url, retry=PATIENT) as client, \
            pytest.raises(ValidationError) as invalid:
        client.plan(job())
    assert [s.method for s in server.seen] == ["GET", "POST"]
    assert any(p.path == "job[web].group[api].task[app]" for p in invalid.value.problems)


def test_a_tls_verification_failure_is_not_retried(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with NomadEmulator(tls=(str(certfile), str(keyfile))) as nomad, \
            NomadClient(nomad.url, retry=Retry(attempts=8, backoff=1.0, max_backoff=1.0)) as c:
        started = time.monotonic()
        with pytest.raises(NomadUnavailable) as refused:
            c.status("web")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert "certificate verify failed" in refused.value.cause
    assert " times" not in str(refused.value)


def test_an_unreachable_server_is_said_once_with_its_address_once() -> None:
    with NomadEmulator() as gone:
        url = gone.url
    with NomadClient(url, retry=Retry(attempts=3, backoff=0.001)) as client, \
            pytest.raises(NomadUnavailable) as down:
        client.status("web")
    message = str(down.value)
    assert message.count(url.split("://")[1]) == 1
    assert "\n" not in message
    assert message == f"GET /v1/job/web failed 3 times at {url}: {down.value.cause}"


@pytest.mark.parametrize("address", ["http://127.0.0.1:99999", "ftp://nomad:4646",
                                     "http://:4646", "http://nomad:port"])
def test_a_malformed_nomad_address_is_an_input_error_naming_it(address: str) -> None:
    with pytest.raises(InputError) as bad:
        NomadClient(address)
    assert address in str(bad.value)


def test_json_bodies_are_sent_as_nomad_expects(serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(200, json.dumps({"EvalID": "e", "JobModifyIndex": 3}),
                                        "application/json"))
    with NomadClient(server.url) as client:
        result = client.register(job(), enforce_index=0)
    assert (result.eval_id, result.job_modify_index) == ("e", 3)
    assert server.seen[0].headers["content-type"] == "application/json"


def test_credentials_in_the_nomad_address_are_never_quoted() -> None:
    with NomadEmulator() as gone:
        port = gone.url.rsplit(":", 1)[1]
    with NomadClient(f"http://admin:pw-123456@127.0.0.1:{port}",
                     retry=Retry(attempts=1)) as client, \
            pytest.raises(NomadUnavailable) as down:
        client.status("web")
    assert "pw-123456" not in str(down.value)
    assert "admin:<redacted>@127.0.0.1" in str(down.value)


# --- Consul, through the one Consul boundary ---------------------------------------------------


def test_consul_answers_of_the_wrong_shape_are_api_errors(
        serve: Callable[[Script], Server]) -> None:
    answers = {"/v1/health/service/web": consul_answer(200, "[null]"),
               "/v1/health/service/db": consul_answer(200, "<html>login</html>", "text/html"),
               "/v1/health/service/api": text(200, "[]", "application/json"),
               "/v1/catalog/services": consul_answer(200, "null")}
    server = serve(lambda m, p, h: answers[p.split("?")[0]])
    api = ConsulApi(ConsulConfig(address=server.url))
    with pytest.raises(ApiError, match="/v1/health/service/web"):
        api.health_service("web")
    with pytest.raises(ApiError, match="not JSON"):
        api.health_service("db")
    with pytest.raises(ApiError, match="no X-Consul-Index header"):
        api.health_service("api")
    with pytest.raises(ApiError, match="/v1/catalog/services"):
        api.catalog_services()
    assert api.catalog_services_raw() == (7, None)
    assert api.health_service_raw("web") == (7, [None])
    api.close()


def test_consul_token_from_the_config_wins_over_the_environment(
        serve: Callable[[Script], Server], monkeypatch: pytest.MonkeyPatch) -> None:
    # py-consul on its own prefers CONSUL_HTTP_TOKEN / CONSUL_HTTP_ADDR over its arguments.
    server = serve(lambda m, p, h: consul_answer(200, "[]"))
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-the-environment")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
    api = ConsulApi(ConsulConfig(address=server.url, token="from-the-config"))
    assert api.health_service("web") == (7, [])
    api.close()
    assert server.seen[0].headers.get("x-consul-token") == "from-the-config"


def test_a_consul_error_echoing_the_token_is_quoted_without_it(
        serve: Callable[[Script], Server]) -> None:
    server = serve(lambda m, p, h: text(500, f"boom, token was {h.get('x-consul-token')}"))
    api = ConsulApi(ConsulConfig(address=server.url, token=TOKEN))
    with pytest.raises(NomadmeshError) as failed:
        api.health_service("web")
    api.close()
    assert TOKEN not in str(failed.value)


@pytest.mark.parametrize("address", ["http://consul:99999", "ftp://consul", "http://:8500"])
def test_a_malformed_consul_address_is_an_input_error(address: str) -> None:
    with pytest.raises(InputError, match="Consul address"):
        ConsulApi(ConsulConfig(address=address))


def test_consul_config_reads_the_consul_cli_environment() -> None:
    config = ConsulConfig.from_env({"CONSUL_HTTP_ADDR": "consul:8501", "CONSUL_HTTP_SSL": "true",
                                    "CONSUL_HTTP_TOKEN": "t0ken", "CONSUL_CACERT": "/ca.pem"},
                                   timeout=3.0)
    assert (config.url, config.token, config.verify, config.timeout) == (
        "https://consul:8501", "t0ken", "/ca.pem", 3.0)
    assert "t0ken" not in repr(config)
