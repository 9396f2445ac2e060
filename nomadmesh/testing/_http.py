"""The HTTP machinery both emulators share: a threaded loopback server, routing, faults, blocking.

Each emulator owns a `Store`: one lock, one condition variable and one raft-like index counter.
Every write bumps the index and wakes every blocked query at once (`Condition.notify_all`); a
blocked query re-computes its endpoint's own index on each wake-up and answers as soon as that
index passes the one the client sent, or when its `wait` runs out. Nothing polls.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from nomadmesh._running import Running
from nomadmesh.errors import NomadmeshError

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0

_WAIT = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$")
_WAIT_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class EmulatorError(NomadmeshError):
    """An emulator cannot start (port taken, bad TLS material) or was misused from Python."""


class HttpError(Exception):
    """Raised by a handler to answer with a status and a text/plain body, as the real servers do."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@attrs.define
class Request:
    """One parsed HTTP request as handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: tuple[str, ...] = ()

    def json(self) -> Any:
        """The body decoded as JSON; a 400 with Go's wording when it is not."""
        if not self.body.strip():
            raise HttpError(400, "EOF")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, f"invalid character in request body: {exc}") from exc

    def flag(self, name: str) -> bool:
        """A boolean query parameter: present without value, or a true-ish value."""
        if name not in self.query:
            return False
        return self.query[name].lower() not in ("false", "0")


@attrs.define
class Response:
    """A handler's answer: JSON (default) or raw text, a status and extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = attrs.Factory(dict)
    raw: bytes | None = None
    content_type: str = "application/json"


Handler = Callable[[Request], Response]


@attrs.define
class Faults:
    """Fault injection for reliability tests; change the attributes at any time."""

    latency: float = 0.0
    error_rate: float = 0.0
    error_text: str = "No cluster leader"
    drop_rate: float = 0.0
    seed: int | None = None
    _rng: random.Random = attrs.field(init=False, factory=random.Random)

    def __attrs_post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def roll(self, rate: float) -> bool:
        """True with probability `rate`."""
        return rate > 0 and self._rng.random() < rate


class Store:
    """The lock, condition and index counter behind one emulator's state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.index = 1
        self.closing = False

    def bump(self) -> int:
        """Allocate the next raft index (caller holds the lock) and wake blocked queries."""
        self.index += 1
        self.changed.notify_all()
        return self.index

    @contextmanager
    def write(self) -> Iterator[int]:
        """Hold the lock for one write and give it a fresh index."""
        with self.lock:
            yield self.bump()

    def wake_all(self) -> None:
        """Release every blocked query (used on shutdown)."""
        with self.lock:
            self.changed.notify_all()

    def block(self, req: Request, index_of: Callable[[], int]) -> int:
        """Wait until `index_of()` passes the request's `index`, or its `wait` expires.

        Called with the lock held or not; returns the endpoint index to put in the header.
        """
        wanted = _int_param(req, "index")
        with self.lock:
            current = max(index_of(), 1)
            if wanted <= 0 or current > wanted:
                return current
            deadline = time.monotonic() + parse_wait(req.query.get("wait"))
            while current <= wanted and not self.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
                current = max(index_of(), 1)
            return current


def parse_wait(text: str | None) -> float:
    """A `wait` query parameter ("5s", "100ms", "2m", bare seconds) in seconds, capped at 10m."""
    if not text:
        return DEFAULT_WAIT
    match = _WAIT.match(text.strip())
    if not match:
        raise HttpError(400, "Invalid wait time")
    value = float(match.group(1)) * _WAIT_UNITS[match.group(2) or "s"]
    return min(value, MAX_WAIT)


def _int_param(req: Request, name: str) -> int:
    text = req.query.get(name, "")
    if not text:
        return 0
    try:
        return int(text)
    except ValueError as exc:
        raise HttpError(400, f"Invalid {name}: {text}") from exc


def int_param(req: Request, name: str, default: int = 0) -> int:
    """An integer query parameter, 400 when it is not one."""
    return _int_param(req, name) if req.query.get(name) else default


class Router:
    """Method + path-pattern routing to handlers; unmatched paths answer 404 as the servers do."""

    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        """Route `methods` ("GET PUT") on a full-path regex (groups become `req.params`)."""
        self._routes.append((frozenset(methods.split()), re.compile(f"^{pattern}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, tuple[str, ...]]:
        """The handler and path parameters for a request; 404/405 otherwise."""
        path_matched = False
        for methods, pattern, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if method in methods:
                return handler, tuple(unquote(g or "") for g in match.groups())
        if path_matched:
            raise HttpError(405, "Invalid method")
        raise HttpError(404, "Invalid URL path: not a recognized HTTP API endpoint")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so that stop() closes every one of them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default of 5 resets bursts of concurrent clients

    def __init__(self, address: tuple[str, int], app: HttpEmulator) -> None:
        self.app = app
        self.connections: dict[threading.Thread, socket.socket] = {}
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address),
            name=f"{type(self.app).__name__}-conn", daemon=True,
        )
        with self.connections_lock:
            self.connections[thread] = request
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        conn: socket.socket = request
        try:
            if self.app.tls_context is not None:
                conn.settimeout(10)
                conn = self.app.tls_context.wrap_socket(request, server_side=True)
                conn.settimeout(None)
                with self.connections_lock:
                    self.connections[threading.current_thread()] = conn
            self.finish_request(conn, client_address)
        except (OSError, ssl.SSLError):
            pass  # the client went away or the handshake failed; nothing to answer
        finally:
            with self.connections_lock:
                self.connections.pop(threading.current_thread(), None)
            self.shutdown_request(conn)

    def close_connections(self) -> None:
        """Shut down every open connection and wait for its thread."""
        with self.connections_lock:
            items = list(self.connections.items())
        for _, sock in items:
            with suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in items:
            thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _dispatch(self) -> None:
        self.server.app.handle(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _dispatch


class HttpEmulator(Running):
    """Base of both emulators: lifecycle (start/stop/restart on the same port), faults, routing."""

    default_port = 0

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | tuple[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.store = Store()
        self.router = Router()
        self.faults = Faults()
        self.tls_context = _tls_context(tls)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """"https" when TLS is on, else "http"."""
        return "https" if self.tls_context is not None else "http"

    @property
    def address(self) -> str:
        """host:port the emulator listens on."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API (no trailing slash)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is currently accepting connections."""
        return self._server is not None

    def start(self) -> HttpEmulator:
        """Bind (the same port again after a stop) and serve in a daemon thread."""
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.port), self)
        except OSError as exc:
            raise EmulatorError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = server.server_address[1]
        self.store.closing = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}", daemon=True,
        )
        self._thread.start()
        self._started()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread; state is kept."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping()
        self._server = None
        self._thread = None
        self.store.closing = True
        self.store.wake_all()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port, keeping all state."""
        self.stop()
        self.start()

    def _started(self) -> None:
        """Hook for subclasses: the server is up."""

    def _stopping(self) -> None:
        """Hook for subclasses: the server is about to stop."""



    # --- request handling ------------------------------------------------------------------

    def index_headers(self, index: int) -> dict[str, str]:
        """Headers every blocking-capable answer carries (subclasses name them)."""
        return {}

    def authorize(self, req: Request) -> None:
        """Raise HttpError(403) when ACLs are on and the token is not good (subclasses)."""

    def handle(self, h: _Handler) -> None:
        """Parse, fault-inject, route and answer one request."""
        faults = self.faults
        if faults.latency > 0:
            time.sleep(faults.latency)
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if faults.roll(faults.drop_rate):
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        req = Request(
            method=h.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        try:
            if faults.roll(faults.error_rate):
                raise HttpError(500, faults.error_text)
            handler, req.params = self.router.resolve(req.method, req.path)
            self.authorize(req)
            resp = handler(req)
        except HttpError as exc:
            resp = _text_response(exc.status, exc.text)
        except Exception as exc:  # an emulator bug: answer like a server error, and show it
            traceback.print_exc()
            resp = _text_response(500, f"emulator internal error: {exc!r}")
        self._write(h, resp)

    def _write(self, h: _Handler, resp: Response) -> None:
        data = resp.raw if resp.raw is not None else json.dumps(resp.body).encode()
        h.send_response(resp.status)
        h.send_header("Content-Type", resp.content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in resp.headers.items():
            h.send_header(name, value)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


def _text_response(status: int, text: str) -> Response:
    return Response(status=status, raw=text.encode(), content_type="text/plain; charset=utf-8")


def _tls_context(tls: ssl.SSLContext | tuple[str, str] | None) -> ssl.SSLContext | None:
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    certfile, keyfile = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise EmulatorError(f"cannot load TLS certificate {certfile}: {exc}") from exc
    return context


def bearer_token(req: Request, header: str) -> str:
    """The request's token from `header`, `Authorization: Bearer`, or `?token=`."""
    token = req.headers.get(header.lower(), "")
    if not token:
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    return token or req.query.get("token", "")
