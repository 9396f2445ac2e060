"""The one boundary to the Nomad HTTP API: python-nomad and requests in, nomadmesh errors out.

Every request goes through `NomadHttp.call`. It owns the pooled session (TLS verified unless told
otherwise), python-nomad's quirks (it reads the environment on its own, turns `user_agent` without
a token into a TypeError, defaults to `verify=False` and a 5 s timeout, and drops `X-Nomad-Index`),
retries with backoff where repeating a request is safe, and the mapping of every dependency
exception to `nomadmesh.errors`. Tokens travel in a header and appear in no message.
"""

from __future__ import annotations

import logging
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs
import requests
from nomad.api import exceptions as nomad_exceptions
from nomad.api.base import Requester
from requests.adapters import HTTPAdapter

from nomadmesh.deploy.config import NomadConfig
from nomadmesh.errors import (
    ApiError,
    ConflictError,
    InputError,
    NomadUnavailable,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger("nomadmesh.deploy")

USER_AGENT = "nomadmesh"
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
NO_LEADER = "No cluster leader"
CONFLICT_MARKER = "Enforcing job modify index"
_REJECTED = re.compile(r"errors? occurred|validation failed|[Ii]nvalid|not (?:a|allowed)|"
                       r"does not match|must be|required")


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


@attrs.frozen
class Reply:
    """A decoded answer: the JSON body and the `X-Nomad-Index` it came with (0 if none)."""

    body: Any
    index: int


class _Endpoint(Requester):  # type: ignore[misc]
    """A python-nomad requester for one top-level API path (`job`, `evaluation`, ...)."""

    def __init__(self, name: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.ENDPOINT = name


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
    """One pooled session carrying the TLS settings of `config` (files must exist)."""
    if not config.skip_verify:
        _check_files(config)
    session = requests.Session()
    session.verify = config.verify
    if config.cert:
        session.cert = config.cert
    if not config.skip_verify and (config.ca_path or config.tls_server_name):
        session.mount("https://", _TlsAdapter(_ssl_context(config), config.tls_server_name))
    return session


def _describe(exc: BaseException) -> str:
    """A short cause for an unreachable server: the exception kind and its innermost reason."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    kind = type(exc).__name__
    reason = str(inner) or type(inner).__name__
    return f"{kind}: {reason}"[:300]


class NomadHttp:
    """Requests to one Nomad API, with retries where safe and errors mapped to nomadmesh's."""

    def __init__(self, config: NomadConfig, *, retry: Retry = Retry(),
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.retry = retry
        self.session = session or make_session(config)
        self._endpoints: dict[str, _Endpoint] = {}
        self._settings = {
            # Everything explicit: python-nomad reads NOMAD_* itself when an argument is None,
            # which would let the environment override the caller. Namespace and region travel
            # as query parameters on every call instead.
            "address": config.address,
            "token": config.token or None,
            "namespace": None,
            "region": None,
            "timeout": config.timeout,
            "verify": config.verify,
            "cert": config.cert or (),
            "user_agent": None,
            "session": self.session,
        }

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def _endpoint(self, name: str) -> _Endpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            endpoint = self._endpoints[name] = _Endpoint(name, **self._settings)
        return endpoint

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

    def call(self, method: str, path: tuple[str, ...], *, params: dict[str, Any] | None = None,
             body: Any = None, timeout: float | None = None, retry: Retry | None = None,
             cancelled: Callable[[], bool] | None = None) -> Reply:
        """One API request; `retry` says how often a failure may be repeated (default: reads
        only); `cancelled` ends the retries early (a watch that is no longer interested)."""
        policy = retry if retry is not None else (self.retry if method == "get" else NO_RETRY)
        delays = policy.delays()
        head, *rest = path
        args = [quote(str(p), safe="") for p in rest]
        endpoint = self._endpoint(head)
        url = f"{self.config.address}/v1/{'/'.join((head, *args))}"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = endpoint.request(
                    *args, method=method, params=dict(params or {}), json=body,
                    headers={"User-Agent": USER_AGENT},
                    timeout=timeout if timeout is not None else self.config.timeout)
            except nomad_exceptions.BaseNomadException as exc:
                failure = self._failure(exc, method, url)
                retryable = _retryable(failure) and not (cancelled is not None and cancelled())
                if not retryable or attempt > len(delays):
                    if retryable and len(delays) > 0:
                        raise NomadUnavailable(
                            f"{method} {url} failed {attempt} times",
                            address=self.config.address, cause=_cause(failure)) from None
                    if isinstance(failure, _Unreachable):
                        raise NomadUnavailable(f"{method} {url} failed",
                                               address=self.config.address,
                                               cause=failure.cause) from None
                    raise failure from None
                delay = delays[attempt - 1]
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s: %s; retrying in %.2fs", method, url, _cause(failure), delay)
                time.sleep(delay)
                continue
            except requests.RequestException as exc:  # python-nomad's own TimeoutNomadException
                raise NomadUnavailable(f"{method} {url} failed", address=self.config.address,
                                       cause=_describe(exc)) from None
            index = response.headers.get("X-Nomad-Index")
            try:
                decoded = response.json() if response.content else None
            except ValueError:
                decoded = response.text
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %s (index %s)", method, url, response.status_code, index)
            return Reply(decoded, int(index) if index and index.isdigit() else 0)

    def _failure(self, exc: nomad_exceptions.BaseNomadException, method: str,
                 url: str) -> Exception:
        cause = exc.nomad_resp
        if not isinstance(cause, requests.Response):
            return _Unreachable(_describe(cause) if isinstance(cause, BaseException)
                                else str(type(cause).__name__))
        status = cause.status_code
        text = cause.text or ""
        kind: type[ApiError] = ApiError
        message = "Nomad API error"
        if status in (401, 403):
            kind, message = PermissionDenied, "permission denied (the token is not shown)"
        elif status == 404:
            kind, message = NotFound, "not found"
        elif status == 409 or CONFLICT_MARKER in text:
            kind, message = ConflictError, "the job changed since it was read; nothing was written"
        return kind(message, status=status, body=text, method=method, url=url)


class _Unreachable(Exception):
    """Internal: the server could not be reached (connection refused, reset, timed out, TLS)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _retryable(failure: Exception) -> bool:
    if isinstance(failure, _Unreachable):
        return True
    if isinstance(failure, ConflictError):
        return False
    if isinstance(failure, ApiError):
        if NO_LEADER in failure.body:
            return True
        # Nomad answers 500 for rejected input too (`1 error occurred: * ...`); that is final.
        return failure.status in RETRYABLE_STATUS and not _REJECTED.search(failure.body)
    return False


def _cause(failure: Exception) -> str:
    if isinstance(failure, _Unreachable):
        return failure.cause
    if isinstance(failure, ApiError):
        return f"HTTP {failure.status}: {failure.body.strip()[:200]}"
    return str(failure)


def blocking_params(index: int, wait: float) -> dict[str, Any]:
    """The query parameters of a blocking query (`index` and `wait` in Go duration form)."""
    return {"index": index, "wait": f"{max(1, int(wait * 1000))}ms"}


def blocking_timeout(wait: float) -> float:
    """A read timeout for a blocking query: Nomad adds up to wait/16 of jitter to `wait`."""
    return wait + wait / 16 + 5.0
