"""The one boundary to the Nomad HTTP API: requests in, nomadmesh errors out.

`NomadHttp.request` sends every request. It owns the pooled session (TLS verified unless told
otherwise, client certificates, a chosen server name, basic auth), the deadline and the retries
where repeating a request is safe, and the two tables that turn what can go wrong into
`nomadmesh.errors`: `TRANSPORT_ERRORS` for failures below HTTP and `ANSWERS` for what Nomad
answers. Redirects are never followed (a write must not land elsewhere, a token must not travel to
another host); an answer of the wrong JSON shape is an error naming the endpoint. Everything quoted
from an answer is redacted first.

python-nomad is not used here: its requester treats a 3xx as success, follows redirects on DELETE
and PUT, reads NOMAD_* by itself and drops `X-Nomad-Index`; wrapping it would mean undoing each.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import attrs
import requests
from requests.adapters import HTTPAdapter

from nomadmesh.deploy.config import NomadConfig
from nomadmesh.errors import (
    ApiError,
    ConflictError,
    InputError,
    NomadmeshError,
    NomadUnavailable,
    NotFound,
    PermissionDenied,
    Problem,
    RedirectError,
    ValidationError,
)
from nomadmesh.redact import redact

log = logging.getLogger("nomadmesh.deploy")

_QUOTE_LIMIT = 2000


@attrs.frozen
class Retry:
    """How often and how patiently a safe request is repeated: exponential backoff with jitter."""

    attempts: int = 8
    backoff: float = 0.05
    max_backoff: float = 2.0

    def delays(self) -> list[float]:
        """The sleep before each repeat (one fewer than the attempts)."""
        return [min(self.max_backoff, self.backoff * 2**i) * random.uniform(0.5, 1.0)
                for i in range(max(0, self.attempts - 1))]


NO_RETRY = Retry(attempts=1)


class Answer(enum.Enum):
    """The JSON shape an endpoint answers with; anything else is an error naming the endpoint."""

    OBJECT = "a JSON object"
    OBJECT_OR_NULL = "a JSON object or null"
    LIST = "a JSON list"
    TEXT = "text"


@attrs.frozen
class Reply:
    """A decoded answer: the body in its endpoint's shape and the `X-Nomad-Index` (0 if none)."""

    body: Any
    index: int


# --- what Nomad answers: one table ------------------------------------------------------------


_NESTED = re.compile(r"\d+ errors? occurred:$")


def _validation(status: int, text: str, where: str, subject: str | None) -> NomadmeshError:
    """Nomad's nested go-multierror text as problems: a `Task group "g" validation failed: N
    errors occurred:` line opens the group its following lines belong to."""
    job = subject or ""
    problems: list[Problem] = []
    group: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("* "):
            continue
        line = line[2:].strip()
        named = _GROUP.search(line)
        if named and _NESTED.search(line):
            group = named.group(1)
            continue
        found = problem(job, line)
        if group and found.path == f"job[{job}]":
            task = _TASK.search(line)
            found = Problem(f"job[{job}].group[{group}]"
                            + (f".task[{task.group(1)}]" if task else ""), found.message)
        problems.append(found)
    return ValidationError(problems or [problem(job, text.strip())],
                           subject=f"job {job!r}" if job else "job")


@attrs.frozen
class Rule:
    """One row of the answer table: which statuses (and Nomad text) it matches, what it means."""

    statuses: frozenset[int]
    text: re.Pattern[str] | None
    error: type[ApiError] | None
    message: str
    retry: bool = False
    build: Callable[[int, str, str, str | None], NomadmeshError] | None = None

    def matches(self, status: int, text: str) -> bool:
        return status in self.statuses and (self.text is None or bool(self.text.search(text)))


_ALL = frozenset(range(300, 600))
_CLIENT = frozenset(range(400, 500))
# Nomad answers 500 for input it rejects as well as for outages; these texts are final.
_REJECTED = re.compile(r"errors? occurred|validation failed|[Ii]nvalid|not (?:a|allowed)|"
                       r"does not match|must be|required|not found|[Pp]ermission denied")

ANSWERS: tuple[Rule, ...] = (
    Rule(frozenset(range(300, 400)), None, RedirectError,
         "answered with a redirect, which is not followed"),
    Rule(frozenset({401, 403}), None, PermissionDenied, "permission denied (the token is not shown)"),
    Rule(frozenset({404}), None, NotFound, "not found"),
    Rule(frozenset({409}), None, ConflictError,
         "the job changed since it was read; nothing was written"),
    # structs.RegisterEnforceIndexErrPrefix (nomad/structs/structs.go), 500 from the server.
    Rule(_ALL, re.compile("Enforcing job modify index"), ConflictError,
         "the job changed since it was read; nothing was written"),
    Rule(_ALL, re.compile("No cluster leader"), ApiError, "no cluster leader", retry=True),
    # structs.ErrNoRegionPath: the region does not exist; asking again will not create it.
    Rule(_ALL, re.compile("No path to region"), ApiError, "no path to region"),
    # go-multierror texts of job validation: 400 from the agent, 500 from the server.
    Rule(frozenset({400, 500}), re.compile(r"\d+ errors? occurred"), None, "", build=_validation),
    Rule(_CLIENT, None, ApiError, "Nomad refused the request"),
    Rule(frozenset({500}), _REJECTED, ApiError, "Nomad refused the request"),
    Rule(frozenset({500, 502, 503, 504}), None, ApiError, "Nomad API error", retry=True),
    Rule(_ALL, None, ApiError, "Nomad API error"),
)


def classify(status: int, text: str, method: str, url: str,
             subject: str | None = None) -> tuple[NomadmeshError, bool]:
    """The error an HTTP error answer means, and whether asking again may help."""
    # The go-multierror texts read as job problems only where a job was sent; elsewhere (a
    # promotion Nomad refuses: `1 error occurred: * Task group "api" has 0/1 healthy
    # allocations`) they are the refusal of that request.
    rule = next(r for r in ANSWERS
                if r.matches(status, text) and (r.build is None or subject is not None))
    if rule.build is not None:
        return rule.build(status, text, url, subject), rule.retry
    kind = rule.error or ApiError
    return kind(rule.message, status=status, body=text, method=method, url=url), rule.retry


# --- what can go wrong below HTTP: the other table ------------------------------------------


@attrs.frozen
class TransportRule:
    """One row of the transport table: a requests exception, its words, whether to retry."""

    error: type[BaseException]
    words: str
    retry: bool


TRANSPORT_ERRORS: tuple[TransportRule, ...] = (
    TransportRule(requests.exceptions.SSLError, "TLS handshake failed", False),
    TransportRule(requests.exceptions.ConnectTimeout, "connect timed out", True),
    TransportRule(requests.exceptions.ReadTimeout, "no answer in time", True),
    TransportRule(requests.exceptions.ConnectionError, "connection failed", True),
    TransportRule(requests.exceptions.ChunkedEncodingError, "the answer was cut off", True),
    TransportRule(requests.exceptions.ContentDecodingError, "the answer could not be decoded",
                  False),
    TransportRule(requests.exceptions.RequestException, "request failed", False),
)


def _reason(exc: BaseException) -> str:
    """The innermost cause in words: `Connection refused`, `certificate verify failed: ...`."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    best = ""
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {inner.verify_message or inner.reason}"
        if isinstance(inner, ssl.SSLError) and inner.reason:
            best = str(inner.reason)
        elif isinstance(inner, OSError) and inner.strerror:
            best = inner.strerror
        nxt = inner.__cause__ or inner.__context__
        if nxt is None and inner.args and isinstance(inner.args[0], BaseException):
            nxt = inner.args[0]
        if nxt is None:
            reason = getattr(inner, "reason", None)
            nxt = reason if isinstance(reason, BaseException) else None
        inner = nxt
    return best


def describe_transport(exc: requests.RequestException) -> tuple[str, bool]:
    """What a requests exception means, in words without addresses, and whether to retry."""
    rule = next(r for r in TRANSPORT_ERRORS if isinstance(exc, r.error))
    reason = _reason(exc)
    return (f"{rule.words}: {reason}" if reason else rule.words), rule.retry


# --- sessions ----------------------------------------------------------------------------------


class _TlsAdapter(HTTPAdapter):
    """Verifies against every certificate in a CA directory and checks a chosen server name."""

    def __init__(self, context: ssl.SSLContext, server_name: str | None) -> None:
        self._context = context
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        if self._server_name:
            kwargs["server_hostname"] = self._server_name
            kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _ssl_context(config: NomadConfig) -> ssl.SSLContext:
    # Go's CAPATH reads every certificate in the directory; OpenSSL's capath wants hashed
    # names, so the files are loaded one by one instead.
    context = ssl.create_default_context(cafile=config.ca_cert)
    if config.ca_path and os.path.isdir(config.ca_path):
        for name in sorted(os.listdir(config.ca_path)):
            path = os.path.join(config.ca_path, name)
            if os.path.isfile(path):
                try:
                    context.load_verify_locations(cafile=path)
                except ssl.SSLError:
                    log.debug("skipping %s in NOMAD_CAPATH: not a certificate", path)
    return context


def _check_files(config: NomadConfig) -> None:
    for what, path, want_dir in (("NOMAD_CACERT", config.ca_cert, False),
                                 ("NOMAD_CAPATH", config.ca_path, True),
                                 ("NOMAD_CLIENT_CERT", config.client_cert, False),
                                 ("NOMAD_CLIENT_KEY", config.client_key, False)):
        if path and not (os.path.isdir(path) if want_dir else os.path.isfile(path)):
            kind = "directory" if want_dir else "file"
            raise InputError(f"{what}: no such {kind}: {path}")


def make_session(config: NomadConfig) -> requests.Session:
    """One pooled session carrying the TLS and auth settings of `config` (files must exist)."""
    if not config.skip_verify:
        _check_files(config)
    session = requests.Session()
    # The process environment never changes what a client does: NomadConfig has read it already.
    session.trust_env = False
    session.verify = config.verify
    if config.cert:
        session.cert = config.cert
    if config.http_auth:
        user, _, password = config.http_auth.partition(":")
        session.auth = (user, password)
    if not config.skip_verify and (config.ca_path or config.tls_server_name):
        session.mount("https://", _TlsAdapter(_ssl_context(config), config.tls_server_name))
    return session


def _user_agent() -> str:
    from nomadmesh import __version__  # the one place the version is written

    return f"nomadmesh/{__version__}"


# --- requests ----------------------------------------------------------------------------------


class NomadHttp:
    """Requests to one Nomad API: deadline-bounded, retried where safe, errors from the tables."""

    def __init__(self, config: NomadConfig, *, retry: Retry = Retry(),
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.retry = retry
        self.session = session or make_session(config)
        self._headers = {"User-Agent": _user_agent()}
        if config.token:
            self._headers["X-Nomad-Token"] = config.token
        password = (config.http_auth or "").partition(":")[2]
        basic = base64.b64encode(config.http_auth.encode()).decode() if config.http_auth else ""
        self._secrets = tuple(s for s in (config.token, password, basic) if s)
        self._address = self.redact(config.address)

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def params(self, namespace: str | None = None, region: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Query parameters with the namespace and region of this call (or the client's)."""
        out: dict[str, Any] = {}
        ns = namespace or self.config.namespace
        if ns:
            out["namespace"] = ns
        rg = region or self.config.region
        if rg:
            out["region"] = rg
        if extra:
            out.update({k: v for k, v in extra.items() if v is not None})
        return out

    def redact(self, text: str) -> str:
        """`text` without this client's token, basic-auth password or echoed credentials."""
        return redact(text, self._secrets)

    def request(self, method: str, path: tuple[str, ...], answer: Answer, *,
                params: Mapping[str, Any] | None = None, body: Any = None,
                retry: Retry = NO_RETRY, timeout: float | None = None,
                deadline: float | None = None, subject: str | None = None,
                cancelled: Callable[[], bool] | None = None) -> Reply:
        """One API call, repeated up to `retry` while failures may pass; never past `deadline`
        (a `time.monotonic()` value); `cancelled` ends the repeats early; `subject` is the job
        that validation errors name."""
        endpoint = "/v1/" + "/".join(quote(str(p), safe="") for p in path)
        url = self.config.address + endpoint
        what = f"{method.upper()} {endpoint}"
        delays = retry.delays()
        per_try = timeout if timeout is not None else self.config.timeout
        attempt = 0
        while True:
            attempt += 1
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._gave_up(what, attempt - 1, "no answer before the deadline")
            try:
                response = self.session.request(
                    method.upper(), url, params=dict(params or {}), json=body,
                    headers=self._headers, allow_redirects=False,
                    timeout=per_try if left is None else min(per_try, left))
            except requests.RequestException as exc:
                cause, retryable = describe_transport(exc)
                failure: NomadmeshError = NomadUnavailable(
                    f"{what} failed", address=self._address, cause=self.redact(cause))
            else:
                index = response.headers.get("X-Nomad-Index", "")
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s -> %s (index %s)", method.upper(), url,
                              response.status_code, index or "-")
                if 200 <= response.status_code < 300:
                    return Reply(self._decode(response, answer, what),
                                 int(index) if index.isdigit() else 0)
                failure, retryable = self._refusal(response, method, url, subject)
                cause = _cause(failure)
            if not retryable or attempt > len(delays) or (cancelled is not None and cancelled()):
                if retryable and attempt > 1:
                    raise self._gave_up(what, attempt, cause) from None
                raise failure from None
            delay = delays[attempt - 1]
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            log.debug("%s: %s; retrying in %.2fs", what, cause, delay)
            time.sleep(delay)

    def stream(self, path: tuple[str, ...], *,
               params: Mapping[str, Any] | None = None) -> Iterator[str]:
        """A streamed GET (logs with `follow=true`): decoded text chunks as they arrive; errors
        as `request` maps them. Sent once; the connection closes when iteration stops."""
        endpoint = "/v1/" + "/".join(quote(str(p), safe="") for p in path)
        what = f"GET {endpoint}"
        try:
            response = self.session.get(self.config.address + endpoint, params=dict(params or {}),
                                        headers=self._headers, allow_redirects=False,
                                        timeout=(self.config.timeout, None), stream=True)
        except requests.RequestException as exc:
            raise NomadUnavailable(f"{what} failed", address=self._address,
                                   cause=self.redact(describe_transport(exc)[0])) from None
        with response:
            if not 200 <= response.status_code < 300:
                raise self._refusal(response, "get", response.url, None)[0]
            try:
                for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
                    if chunk:
                        yield chunk if isinstance(chunk, str) else chunk.decode(errors="replace")
            except requests.RequestException as exc:
                raise NomadUnavailable(f"{what} failed", address=self._address,
                                       cause=self.redact(describe_transport(exc)[0])) from None

    def _gave_up(self, what: str, attempts: int, cause: str) -> NomadUnavailable:
        times = f" {attempts} times" if attempts > 1 else ""
        return NomadUnavailable(f"{what} failed{times}", address=self._address,
                                cause=self.redact(cause))

    def _refusal(self, response: requests.Response, method: str, url: str,
                 subject: str | None) -> tuple[NomadmeshError, bool]:
        text = self.redact(_text(response))
        if 300 <= response.status_code < 400:
            location = self.redact(response.headers.get("Location") or "nowhere")
            text = (f"it points to {location}; point the client at the address you mean "
                    "(NOMAD_ADDR)")
        return classify(response.status_code, text, method.upper(), self.redact(url), subject)

    def _decode(self, response: requests.Response, answer: Answer, what: str) -> Any:
        if answer is Answer.TEXT:
            return response.text
        raw = response.content
        try:
            decoded = json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            decoded = _NOT_JSON
        if answer is Answer.OBJECT_OR_NULL and decoded is None:
            return None
        if isinstance(decoded, dict) if answer is not Answer.LIST else isinstance(decoded, list):
            return decoded
        seen = "something that is not JSON" if decoded is _NOT_JSON else (
            "null" if decoded is None else f"a JSON {type(decoded).__name__}")
        quoted = self.redact(_text(response))
        raise ApiError(f"{what} answered {response.status_code} with {seen} where Nomad answers "
                       f"{answer.value} (a proxy or another server at this address?)",
                       status=response.status_code, body=quoted, method=method_of(what),
                       url=self.redact(response.url))


_NOT_JSON = object()


def method_of(what: str) -> str:
    """The method of a `GET /v1/...` description."""
    return what.partition(" ")[0]


def _text(response: requests.Response) -> str:
    text = response.text if response.content else ""
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + " ..."


def _cause(failure: NomadmeshError) -> str:
    if isinstance(failure, ApiError):
        return f"HTTP {failure.status}: {failure.body.strip()[:200]}"
    if isinstance(failure, NomadUnavailable):
        return failure.cause
    return str(failure)


_LOCATED = re.compile(r"^(job\[[^\]]*\]\S*): (.+)$", re.S)
_GROUP = re.compile(r'[Tt]ask group "?([^"\s:]+)"?')
_TASK = re.compile(r'[Tt]ask "?([^"\s:]+)"? validation')


def problem(job_id: str, text: str) -> Problem:
    """A Nomad validation message with a nomadmesh path from the group/task names it gives."""
    located = _LOCATED.match(text.strip())
    if located:
        return Problem(located.group(1), located.group(2))
    path = f"job[{job_id}]"
    group = _GROUP.search(text)
    if group:
        path += f".group[{group.group(1)}]"
        task = _TASK.search(text)
        if task:
            path += f".task[{task.group(1)}]"
    return Problem(path, text.strip())


def blocking_params(index: int, wait: float) -> dict[str, Any]:
    """The query parameters of a blocking query (`index` and `wait` in Go duration form)."""
    return {"index": index, "wait": f"{max(1, int(wait * 1000))}ms"}


def blocking_timeout(wait: float) -> float:
    """A read timeout for a blocking query: Nomad adds up to wait/16 of jitter to `wait`."""
    return wait + wait / 16 + 5.0
