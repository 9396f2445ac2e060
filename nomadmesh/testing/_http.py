"""The HTTP machinery both emulators share: an asyncio server on loopback, routing, faults.

One event loop thread reads and writes every connection; handlers run on a small thread pool.
Nothing holds a thread while it waits: an idle keep-alive connection is just a socket on the
loop (closed after `HttpLimits.idle_timeout`), and a blocking query (`?index=N&wait=...`) is a
`Blocking` answer that parks on the emulator's `Watches` for the keys it reads and is computed
again only when a write touched one of them (or its wait ran out). Requests are parsed as Go's
net/http does where a client can tell: a malformed request line, header or `Content-Length` is
a `400 Bad Request` and the connection is closed; a body over `HttpLimits.max_body` is a `413`
before any of it is read; headers over `max_header` are a `431`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from nomadmesh._running import Running
from nomadmesh.errors import NomadmeshError
from nomadmesh.testing.config import HttpLimits
from nomadmesh.testing.watch import Watches, WatchKey

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
MAX_JSON_DEPTH = 10000  # Go's encoding/json maxNestingDepth

_WAIT_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_WAIT_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
               "h": 3600.0}
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


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
        return decode_json(self.body)

    def flag(self, name: str) -> bool:
        """A boolean query parameter: present without value, or a true-ish value."""
        if name not in self.query:
            return False
        return self.query[name].lower() not in ("false", "0")


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
GO_MAX_DEPTH = 10000  # encoding/json/scanner.go maxNestingDepth


def nesting_depth(raw: bytes) -> int:
    """How deep a JSON text nests arrays and objects (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= 1:
        return raw.count(b"[") + raw.count(b"{")
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    return max(itertools.accumulate(_BRACKET_STEP[c] for c in brackets), default=0)


def check_nesting(raw: bytes, limit: int) -> None:
    """Refuse, with a 400, JSON that Go decodes but nests deeper than the emulator's `limit`.

    Past Go's own bound the decoder refuses it with Go's text.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    depth = nesting_depth(raw)
    if limit < depth <= GO_MAX_DEPTH:
        raise HttpError(400, f"emulator limit: the request body nests {depth} levels deep, over "
                             f"HttpLimits.max_depth = {limit} (Nomad accepts up to "
                             f"{GO_MAX_DEPTH})")


def decode_json(raw: bytes) -> Any:
    """JSON as Go's decoder accepts it: no NaN/Infinity, nesting bounded; errors are 400s."""
    def constant(name: str) -> Any:
        raise HttpError(400, f"invalid character '{name[0]}' looking for beginning of value")

    try:
        return json.loads(raw, parse_constant=constant)
    except RecursionError:
        raise HttpError(400, "invalid character '[' exceeded max depth") from None
    except UnicodeDecodeError:
        raise HttpError(400, "invalid character in request body: not UTF-8") from None
    except ValueError as exc:
        raise HttpError(400, f"invalid character in request body: {exc}") from None


@attrs.define
class Response:
    """A handler's answer: JSON (default) or raw text, a status and extra headers.

    With `stream`, the body is sent chunked: `stream()` (run on the pool) answers the next
    bytes and whether that was the end; it is called again every `poll` seconds. With
    `pieces`, the body is these byte strings in order, written one by one as the connection
    drains (a large answer kept in pieces is never copied whole).
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = attrs.Factory(dict)
    raw: bytes | None = None
    pieces: Sequence[bytes] | None = None
    content_type: str = "application/json"
    stream: Callable[[], tuple[bytes, bool]] | None = None
    poll: float = 0.1


@attrs.define
class Blocking:
    """A blocking query's answer: recomputed when one of `keys` is written, until `index`."""

    keys: tuple[WatchKey, ...]
    compute: Callable[[], tuple[int, Response]]
    wanted: int
    deadline: float
    seen: int


Handler = Callable[[Request], "Response | Blocking"]
DROP = Response(status=0)  # close the connection without an answer


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


def parse_wait(text: str | None) -> float:
    """A `wait` query parameter as Go's time.ParseDuration reads it ("5s", "1m30s"), capped."""
    if not text:
        return DEFAULT_WAIT
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return min(float(text), MAX_WAIT)
    pos, total = 0, 0.0
    for match in _WAIT_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _WAIT_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise HttpError(400, "Invalid wait time")
    return min(total, MAX_WAIT)


def int_param(req: Request, name: str, default: int = 0) -> int:
    """An integer query parameter, 400 when it is not one."""
    text = req.query.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise HttpError(400, f"Invalid {name}: {text}") from exc


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
            if method in methods or (method == "HEAD" and "GET" in methods):
                return handler, tuple(unquote(g or "") for g in match.groups())
        if path_matched:
            raise HttpError(405, "Invalid method")
        raise HttpError(404, "Invalid URL path: not a recognized HTTP API endpoint")


class _BadRequest(Exception):
    """A request the HTTP layer answers itself (as net/http does) and then closes."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class HttpEmulator(Running):
    """Base of both emulators: lifecycle (start/stop/restart on the same port), faults, routing."""

    default_port = 0
    # Exceptions with `status` and `text` that handlers raise to refuse a request, and those
    # after which a real server drops the connection without an answer (a Go panic).
    answered_errors: tuple[type[Exception], ...] = ()
    dropped_errors: tuple[type[Exception], ...] = ()

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | tuple[str, str] | None = None,
                 limits: HttpLimits | None = None) -> None:
        self.host = host
        self.port = port
        self.router = Router()
        self.faults = Faults()
        self.limits = limits or HttpLimits()
        self.tls_context = _tls_context(tls)
        self.watches = Watches()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._closing = False
        self._lifecycle = threading.RLock()

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

    @property
    def open_connections(self) -> int:
        """How many client connections are open right now."""
        return len(self._connections)

    def start(self) -> HttpEmulator:
        """Bind (the same port again after a stop) and serve on the emulator's loop thread."""
        with self._lifecycle:
            return self._start()

    def _start(self) -> HttpEmulator:
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            raise EmulatorError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        self._closing = False
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._pool = ThreadPoolExecutor(self.limits.workers,
                                        thread_name_prefix=f"{type(self).__name__}-worker")
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(asyncio.start_server(
                self._serve, sock=sock, limit=self.limits.max_header))
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}-{self.port}",
                                        daemon=True)
        self._thread.start()
        ready.wait()
        self._started()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread; state is kept."""
        with self._lifecycle:
            self._stop()

    def _stop(self) -> None:
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or server is None:
            return
        self._closing = True

        async def shutdown() -> None:
            server.close()
            # Until no task of this loop is left: a connection accepted just before the close
            # may not have started yet; it starts, sees the server closing and ends by itself.
            for _ in range(10):
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    break
                for task in tasks:
                    if task in self._connections:
                        task.cancel()
                await asyncio.wait(tasks, timeout=5)
            await server.wait_closed()

        # The front door closes first: answers in flight may still need the server behind it.
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=60)
        self._stopping()
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._connections.clear()
        self._server = self._loop = self._thread = self._pool = None

    def restart(self) -> None:
        """Stop and start again on the same port, keeping all state."""
        with self._lifecycle:
            self._stop()
            self._start()

    def _started(self) -> None:
        """Hook for subclasses: the server is up."""

    def _stopping(self) -> None:
        """Hook for subclasses: the server is about to stop."""

    # --- request handling ------------------------------------------------------------------

    def index_headers(self, index: int) -> dict[str, str]:
        """Headers every blocking-capable answer carries (subclasses name them)."""
        return {}

    def watch_index(self) -> int:
        """The latest index of the emulator's state (what a blocking query has seen)."""
        return 0

    def authorize(self, req: Request) -> None:
        """Raise HttpError(403) when ACLs are on and the token is not good (subclasses)."""

    def answer(self, body: Any, index: int) -> Response:
        """A JSON answer with the emulator's index headers."""
        return Response(body, headers=self.index_headers(index))

    def blocking(self, req: Request, keys: Iterable[WatchKey],
                 compute: Callable[[], tuple[int, Any]]) -> Response | Blocking:
        """Answer `compute()` (index, body) now, or block until the index passes `?index`."""
        wanted = int_param(req, "index")
        wait = parse_wait(req.query.get("wait")) if wanted > 0 else 0.0
        seen = self.watch_index()

        def respond() -> tuple[int, Response]:
            try:
                index, body = compute()
            except Exception as exc:  # an error ends the wait: it is the answer
                return wanted + 1, self._error_response(exc)
            index = max(index, 1)
            response = body if isinstance(body, Response) else self.answer(body, index)
            response.headers.update(self.index_headers(index))
            return index, response

        index, response = respond()
        if wanted <= 0 or index > wanted:
            return response
        return Blocking(tuple(keys), respond, wanted, time.monotonic() + wait, seen)

    def dispatch(self, req: Request) -> Response | Blocking:
        """Route, authorize and run one request (on a pool thread)."""
        try:
            if self.faults.roll(self.faults.error_rate):
                raise HttpError(500, self.faults.error_text)
            handler, req.params = self.router.resolve(req.method, req.path)
            self.authorize(req)
            return handler(req)
        except Exception as exc:
            return self._error_response(exc)

    def _error_response(self, exc: Exception) -> Response:
        """The text/plain answer to a refusal; anything else is an emulator bug, shown."""
        if isinstance(exc, self.dropped_errors):
            return DROP
        if isinstance(exc, (HttpError, *self.answered_errors)):
            status, text = getattr(exc, "status", 500), getattr(exc, "text", str(exc))
            return _text_response(int(status), str(text))
        traceback.print_exception(exc)
        return _text_response(500, f"emulator internal error: {exc!r}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        stream: _Stream = _PlainStream(reader, writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # asyncio skips it for a socket made with proto 0
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self._closing:
                return
            if self.tls_context is not None:
                tls = _TlsStream(reader, writer, self.tls_context, self.limits.max_header)
                await asyncio.wait_for(tls.handshake(), self.limits.handshake_timeout)
                stream = tls
            while not self._closing:
                try:
                    req, keep_alive = await self._read_request(stream)
                except _BadRequest as bad:
                    await _write_raw(stream, bad.status, bad.text, close=True)
                    return
                if req is None:
                    return
                if self.faults.latency > 0:
                    await asyncio.sleep(self.faults.latency)
                if self.faults.roll(self.faults.drop_rate):
                    writer.transport.abort()
                    return
                response = await self._respond(req)
                if response is DROP:
                    writer.transport.abort()
                    return
                if response.stream is not None:
                    await self._write_stream(stream, response)
                    return
                await _write_response(stream, req, response, keep_alive)
                if not keep_alive:
                    return
        except (asyncio.CancelledError, asyncio.TimeoutError, ConnectionError, ssl.SSLError,
                OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _write_stream(self, stream: _Stream, resp: Response) -> None:
        """A chunked answer fed by `resp.stream` until it says it is done."""
        assert resp.stream is not None
        head = [_status_line(resp.status), f"Content-Type: {resp.content_type}\r\n".encode(),
                b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n"]
        head.extend(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in resp.headers.items())
        stream.write(b"".join(head) + b"\r\n")
        loop = asyncio.get_running_loop()
        while not self._closing:
            data, done = await loop.run_in_executor(self._pool, resp.stream)
            if data:
                stream.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await stream.drain()
            if done:
                break
            await asyncio.sleep(resp.poll)
        stream.write(b"0\r\n\r\n")
        await stream.drain()

    async def _respond(self, req: Request) -> Response:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, self.dispatch, req)
        while isinstance(result, Blocking):
            result = await self._block(result)
        return result

    async def _block(self, blocking: Blocking) -> Response | Blocking:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            # Called from a writer's commit: a loop closed by a stop must never fail the write.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)

        token = self.watches.subscribe(blocking.keys, wake)
        waiter = asyncio.ensure_future(woken.wait())
        try:
            if not self._closing and not self.watches.fired_since(blocking.keys, blocking.seen):
                # asyncio.wait, not wait_for: Python 3.11's wait_for loses a cancellation that
                # meets a wake-up, and a stop would then wait for the whole blocking query.
                await asyncio.wait((waiter,), timeout=max(0.0, blocking.deadline - time.monotonic()))
        finally:
            waiter.cancel()
            self.watches.unsubscribe(token, blocking.keys)
        seen = self.watch_index()
        index, response = await loop.run_in_executor(self._pool, blocking.compute)
        if index > blocking.wanted or time.monotonic() >= blocking.deadline or self._closing:
            return response
        return attrs.evolve(blocking, seen=seen)

    async def _read_head(self, stream: _Stream) -> list[bytes] | None:
        """The request line and header lines (CRLF or bare LF, as textproto reads them)."""
        lines: list[bytes] = []
        size = 0
        while True:
            try:
                line = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if lines or exc.partial.strip():
                    raise _BadRequest(400, "400 Bad Request") from None
                return None
            except asyncio.LimitOverrunError:
                raise _BadRequest(431, "431 Request Header Fields Too Large") from None
            size += len(line)
            if size > self.limits.max_header:
                raise _BadRequest(431, "431 Request Header Fields Too Large")
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not line and lines:
                return lines
            lines.append(line)

    async def _read_request(self, stream: _Stream) -> tuple[Request | None, bool]:
        try:
            lines = await asyncio.wait_for(self._read_head(stream), self.limits.idle_timeout)
        except asyncio.TimeoutError:
            return None, False
        if lines is None:
            return None, False
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise _BadRequest(400, "400 Bad Request: malformed request line") from None
        if not _TOKEN.match(method) or not target or version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _BadRequest(400 if version.startswith("HTTP/") or not version else 505,
                              "400 Bad Request")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not _TOKEN.match(name):
                raise _BadRequest(400, "400 Bad Request: malformed MIME header line")
            key = name.lower()
            value = value.strip()
            if key in headers and key == "content-length" and headers[key] != value:
                raise _BadRequest(400, "400 Bad Request")
            headers[key] = f"{headers[key]}, {value}" if key in headers and (
                key != "content-length") else value
        if version == "HTTP/1.1" and "host" not in headers:
            raise _BadRequest(400, "400 Bad Request: missing required Host header")
        body = await self._read_body(stream, headers)
        split = urlsplit(target)
        connection = headers.get("connection", "").lower()
        keep_alive = ("close" not in connection) if version == "HTTP/1.1" else (
            "keep-alive" in connection)
        return Request(method=method, path=split.path,
                       query=dict(parse_qsl(split.query, keep_blank_values=True)),
                       headers=headers, body=body), keep_alive

    async def _read_body(self, stream: _Stream, headers: dict[str, str]) -> bytes:
        limits = self.limits
        encoding = headers.get("transfer-encoding", "").lower()
        if encoding and encoding != "chunked":
            raise _BadRequest(501, "501 Not Implemented: unsupported transfer encoding")
        if "chunked" in encoding:
            await _continue(stream, headers)
            try:
                return await asyncio.wait_for(_read_chunked(stream, limits.max_body),
                                              limits.read_timeout)
            except asyncio.TimeoutError:
                raise _BadRequest(408, "408 Request Timeout") from None
            except asyncio.IncompleteReadError:
                raise _BadRequest(400, "400 Bad Request: unexpected EOF") from None
        text = headers.get("content-length")
        if text is None:
            return b""
        if not _DIGITS.fullmatch(text):
            raise _BadRequest(400, "400 Bad Request: bad Content-Length")
        length = int(text)
        if length > limits.max_body:
            raise _BadRequest(413, f"413 Request Entity Too Large: body over "
                                   f"{limits.max_body} bytes")
        if not length:
            return b""
        await _continue(stream, headers)
        try:
            return await asyncio.wait_for(stream.readexactly(length), limits.read_timeout)
        except asyncio.TimeoutError:
            raise _BadRequest(408, "408 Request Timeout") from None
        except asyncio.IncompleteReadError:
            raise _BadRequest(400, "400 Bad Request: unexpected EOF") from None


class _Stream(Protocol):
    """A connection's byte stream, plain or TLS."""

    async def readuntil(self, separator: bytes) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...

    async def readline(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class _PlainStream:
    """A plain TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.readuntil = reader.readuntil
        self.readexactly = reader.readexactly
        self.readline = reader.readline
        self.write = writer.write
        self.drain = writer.drain


class _TlsStream:
    """TLS over a connection, done with memory BIOs so that a refused handshake still sends
    its alert before the close (as Go's crypto/tls does), which asyncio's own TLS does not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 context: ssl.SSLContext, limit: int) -> None:
        self._reader = reader
        self._writer = writer
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=True)
        self._buffer = bytearray()
        self._limit = limit

    async def handshake(self) -> None:
        """Complete the handshake; a refusal sends its alert, then raises."""
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._send()
                if not await self._receive():
                    raise ConnectionError("connection closed during the TLS handshake") from None
            except ssl.SSLError:
                await self._send()
                raise
        await self._send()

    async def _send(self) -> None:
        data = self._out.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _receive(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            return False
        self._in.write(data)
        return True

    async def _fill(self) -> bool:
        """Decrypt more bytes into the buffer; False at the end of the stream."""
        while True:
            try:
                chunk = self._ssl.read(65536)
            except ssl.SSLWantReadError:
                await self._send()
                if not await self._receive():
                    return False
                continue
            except ssl.SSLZeroReturnError:
                return False
            if not chunk:
                return False
            self._buffer += chunk
            return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readuntil(self, separator: bytes) -> bytes:
        """As StreamReader.readuntil."""
        while True:
            found = self._buffer.find(separator)
            if found >= 0:
                return self._take(found + len(separator))
            if len(self._buffer) > self._limit:
                raise asyncio.LimitOverrunError("separator not found within the limit",
                                                len(self._buffer))
            if not await self._fill():
                raise asyncio.IncompleteReadError(self._take(len(self._buffer)), None)

    async def readexactly(self, n: int) -> bytes:
        """As StreamReader.readexactly."""
        while len(self._buffer) < n:
            if not await self._fill():
                raise asyncio.IncompleteReadError(self._take(len(self._buffer)), n)
        return self._take(n)

    async def readline(self) -> bytes:
        """As StreamReader.readline."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def write(self, data: bytes) -> None:
        """Encrypt and send."""
        self._ssl.write(data)
        self._writer.write(self._out.read())

    async def drain(self) -> None:
        """As StreamWriter.drain."""
        await self._writer.drain()


async def _continue(stream: _Stream, headers: dict[str, str]) -> None:
    if headers.get("expect", "").lower() == "100-continue":
        stream.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await stream.drain()


async def _read_chunked(reader: _Stream, limit: int) -> bytes:
    out = bytearray()
    while True:
        line = await reader.readline()
        size_text = line.split(b";")[0].strip()
        if not _HEX.fullmatch(size_text):
            raise _BadRequest(400, "400 Bad Request: malformed chunked encoding")
        size = int(size_text, 16)
        if size == 0:
            while (await reader.readline()).strip():
                pass
            return bytes(out)
        if len(out) + size > limit:
            raise _BadRequest(413, f"413 Request Entity Too Large: body over {limit} bytes")
        out += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _BadRequest(400, "400 Bad Request: malformed chunked encoding")


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


async def _write_raw(writer: _Stream, status: int, text: str, close: bool) -> None:
    data = text.encode()
    writer.write(_status_line(status) + b"Content-Type: text/plain; charset=utf-8\r\n"
                 + (b"Connection: close\r\n" if close else b"")
                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


_JOIN_BELOW = 64 * 1024  # answers smaller than this go out in one write with their head


async def _write_response(writer: _Stream, req: Request, resp: Response,
                          keep_alive: bool) -> None:
    if resp.pieces is not None:
        pieces = resp.pieces
    else:
        pieces = (resp.raw if resp.raw is not None else go_json(resp.body),)
    length = sum(map(len, pieces))
    head = [_status_line(resp.status),
            f"Content-Type: {resp.content_type}\r\n".encode(),
            f"Content-Length: {length}\r\n".encode(),
            f"Date: {formatdate(usegmt=True)}\r\n".encode()]
    head.extend(f"{name}: {value}\r\n".encode("latin-1", "replace")
                for name, value in resp.headers.items())
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    if req.method == "HEAD":
        writer.write(b"".join(head))
    elif length < _JOIN_BELOW:
        writer.write(b"".join([*head, *pieces]))
    else:  # a large answer goes out as it is: copying it into the head would cost more
        writer.write(b"".join(head))
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
    await writer.drain()


def go_json(body: Any) -> bytes:
    """JSON as Go's encoding/json writes it: no spaces after separators."""
    return json.dumps(body, separators=(",", ":")).encode()


def json_array(parts: Sequence[bytes]) -> bytes:
    """The JSON array of encoded elements in one join (a large `bytes + bytes` costs far more)."""
    if not parts:
        return b"[]"
    if len(parts) == 1:
        return b"[" + parts[0] + b"]"
    return b",".join([b"[" + parts[0], *parts[1:-1], parts[-1] + b"]"])


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
