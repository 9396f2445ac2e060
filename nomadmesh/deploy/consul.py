"""Service health in Consul (python-consul2): wait until a job's services are registered and passing.

python-consul2 lets CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN override its constructor arguments; here the
environment is read once, explicit arguments win, and the HTTP client is built from the result.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import consul
import consul.std
import requests

from nomadmesh.deploy.results import ServiceInstance
from nomadmesh.errors import ConsulUnavailable


class ServiceHealth:
    """Reads service instances and check states from one Consul agent."""

    def __init__(self, address: str, *, token: str | None = None, verify: bool | str = True,
                 timeout: float = 10.0) -> None:
        if "://" not in address:
            address = "http://" + address
        parts = urlsplit(address)
        self.address = address.rstrip("/")
        with warnings.catch_warnings():
            # python-consul2 warns about legacy ACL and discovery-chain APIs on construction.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._client = consul.Consul(token=token)
        # Rebuild the HTTP layer from our own settings: the constructor prefers the environment.
        self._client.http = consul.std.HTTPClient(parts.hostname, parts.port or 8500,
                                                  parts.scheme, verify, None, timeout)
        self._client.token = token
        self._timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> ServiceHealth:
        """CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, CONSUL_CACERT; explicit wins."""
        env = os.environ if env is None else env
        address = explicit.pop("address", None) or env.get("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
        if "://" not in address and env.get("CONSUL_HTTP_SSL", "").lower() == "true":
            address = "https://" + address
        explicit.setdefault("token", env.get("CONSUL_HTTP_TOKEN") or None)
        if env.get("CONSUL_CACERT"):
            explicit.setdefault("verify", env["CONSUL_CACERT"])
        return cls(address, **explicit)

    def close(self) -> None:
        self._client.http.session.close()

    def _service(self, name: str, index: int | None = None,
                 wait: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        try:
            idx, nodes = self._client.health.service(name, index=index, wait=wait)
        except (requests.RequestException, consul.ConsulException) as exc:
            raise ConsulUnavailable(f"reading service {name!r} failed", address=self.address,
                                    cause=f"{type(exc).__name__}: {exc}"[:300]) from None
        return int(idx or 0), list(nodes or [])

    def instances(self, names: Iterable[str]) -> list[ServiceInstance]:
        """Every registered instance of these services, with each check's state."""
        out: list[ServiceInstance] = []
        for name in names:
            _, entries = self._service(name)
            out.extend(_instance(name, e) for e in entries)
        return out

    def wait_passing(self, expected: Mapping[str, int], timeout: float) -> dict[str, int]:
        """Block (Consul blocking queries) until each service has its expected passing count or
        `timeout` runs out; returns the passing counts reached."""
        deadline = time.monotonic() + max(0.0, timeout)
        counts: dict[str, int] = {}
        for name, want in expected.items():
            index: int | None = None
            while True:
                remaining = deadline - time.monotonic()
                wait = f"{max(1, int(min(remaining, 30.0) * 1000))}ms" if index else None
                index, entries = self._service(name, index=index, wait=wait)
                counts[name] = sum(1 for e in entries if _instance(name, e).passing)
                if counts[name] >= want or time.monotonic() >= deadline:
                    break
        return counts


def _instance(name: str, entry: Mapping[str, Any]) -> ServiceInstance:
    svc = entry.get("Service") or {}
    node = entry.get("Node") or {}
    checks = {str(c.get("Name") or c.get("CheckID")): str(c.get("Status"))
              for c in entry.get("Checks") or ()
              if c.get("CheckID") != "serfHealth"}
    return ServiceInstance(name, str(svc.get("ID") or ""),
                           str(svc.get("Address") or node.get("Address") or ""),
                           int(svc.get("Port") or 0), checks)
