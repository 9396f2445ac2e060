"""Service health in Consul: wait until a job's current allocations' instances are passing.

Reads go through `nomadmesh.consul_api`, the one Consul boundary. Only the instances Nomad
registered for the given allocations count (Nomad names them `_nomad-task-<alloc ID>-...`,
client/serviceregistration/id.go:27), so other jobs' instances of the same service, and the old
version's instances still draining, are never counted.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from nomadmesh.consul_api import ConsulApi, ConsulConfig
from nomadmesh.deploy.results import ServiceInstance

NOMAD_TASK_PREFIX = "_nomad-task-"


class ServiceHealth:
    """Reads service instances and check states from one Consul agent."""

    def __init__(self, address: str, *, token: str | None = None, verify: bool | str = True,
                 timeout: float = 10.0) -> None:
        self._api = ConsulApi(ConsulConfig(address=address, token=token, verify=verify,
                                           timeout=timeout))
        self.address = self._api.address

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> ServiceHealth:
        """CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, CONSUL_CACERT; explicit wins."""
        config = ConsulConfig.from_env(env, **explicit)
        return cls(config.address, token=config.token, verify=config.verify,
                   timeout=config.timeout)

    def close(self) -> None:
        self._api.close()

    def instances(self, names: Iterable[str], *,
                  alloc_ids: Collection[str] | None = None) -> list[ServiceInstance]:
        """Every registered instance of these services (of these allocations, if given), with
        each check's state."""
        out: list[ServiceInstance] = []
        for name in names:
            _, entries = self._api.health_service(name)
            out.extend(_instance(name, e) for e in entries if _belongs(e, alloc_ids))
        return out

    def wait_passing(self, expected: Mapping[str, int], timeout: float, *,
                     alloc_ids: Collection[str] | None = None) -> dict[str, int]:
        """Block (Consul blocking queries) until each service has its expected number of passing
        instances of `alloc_ids` or `timeout` runs out; returns the passing counts reached."""
        deadline = time.monotonic() + max(0.0, timeout)
        counts: dict[str, int] = {}
        for name, want in expected.items():
            index: int | None = None
            while True:
                remaining = deadline - time.monotonic()
                wait = f"{max(1, int(min(remaining, 30.0) * 1000))}ms" if index else None
                index, entries = self._api.health_service(name, index=index, wait=wait)
                counts[name] = sum(1 for e in entries
                                   if _belongs(e, alloc_ids) and _instance(name, e).passing)
                if counts[name] >= want or time.monotonic() >= deadline:
                    break
        return counts


def _belongs(entry: Mapping[str, Any], alloc_ids: Collection[str] | None) -> bool:
    if alloc_ids is None:
        return True
    service_id = str((entry.get("Service") or {}).get("ID") or "")
    if not service_id.startswith(NOMAD_TASK_PREFIX):
        return False
    # An allocation ID is a UUID (36 characters) right after the prefix.
    alloc = service_id[len(NOMAD_TASK_PREFIX):len(NOMAD_TASK_PREFIX) + 36]
    return alloc in alloc_ids


def _instance(name: str, entry: Mapping[str, Any]) -> ServiceInstance:
    svc = entry.get("Service") or {}
    node = entry.get("Node") or {}
    checks = {str(c.get("Name") or c.get("CheckID")): str(c.get("Status"))
              for c in entry.get("Checks") or () if isinstance(c, dict)
              and c.get("CheckID") != "serfHealth"}
    port = svc.get("Port")
    return ServiceInstance(name, str(svc.get("ID") or ""),
                           str(svc.get("Address") or node.get("Address") or ""),
                           port if isinstance(port, int) else 0, checks)
