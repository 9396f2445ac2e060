"""The few lines every example app shares: a threaded HTTP server on the Nomad port `http`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str], dict[str, Any]]
PORT = "http"  # the Nomad port label; Nomad names its variables after it (NOMAD_PORT_http)


def identity(service: str) -> dict[str, Any]:
    """Who answered: the service, its allocation and the address it listens on."""
    return {"service": service, "alloc": os.environ.get("NOMAD_ALLOC_ID", "")[:8],
            "address": os.environ.get(f"NOMAD_ADDR_{PORT}", "")}


def serve(answer: Answer) -> None:
    """Serve `/health` and, for every other path, `answer(path)` as JSON; until interrupted."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = {"status": "ok"} if self.path == "/health" else answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)

    address = (os.environ.get(f"NOMAD_IP_{PORT}", "127.0.0.1"),
               int(os.environ[f"NOMAD_PORT_{PORT}"]))
    server = ThreadingHTTPServer(address, Handler)
    print(f"listening on {address[0]}:{address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("interrupted; shutting down", flush=True)
    finally:
        server.server_close()
