"""An in-process emulator of the Consul HTTP API: catalog, health, agent services/checks and KV.

One emulated agent that is also the server of datacenter `dc1`. Its own node (`NODE_NAME`) holds
what the agent endpoints register; `PUT /v1/catalog/register` and `/v1/catalog/deregister` add,
change and remove other nodes, their services and checks as a Consul server does, so the catalog
and health endpoints answer across nodes. Checks are not probed: their status is what was
registered (default `critical`, as Consul does) until changed via the check endpoints or
`set_check_status`. Indexes follow Consul: the health of service X carries the highest raft index
of X's entries, `/v1/catalog/node/<node>` the node's own index (Consul >= 1.13), so unrelated
changes do not wake their watchers, and every write fires only the watch keys it touched
(`("service", X)`, `("node", N)`, `("kv", key)`, ...). Instances are indexed by service name and
by node, and checks by service, so a query costs what it answers, not what the catalog has.
"""

from __future__ import annotations

import base64
import copy
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nomadmesh.testing._filter import FilterError, compile_filter
from nomadmesh.testing._http import (
    Blocking,
    EmulatorError,
    HttpEmulator,
    HttpError,
    Request,
    Response,
    bearer_token,
    go_json,
    int_param,
    json_array,
)
from nomadmesh.testing.config import HttpLimits
from nomadmesh.testing.watch import WatchKey

DATACENTER = "dc1"
NODE_NAME = "consul-emulator"
CHECK_STATES = ("passing", "warning", "critical", "maintenance")
_SERF_CHECK = "serfHealth"
SKey = tuple[str, str]  # (node name, service or check ID)


class _Write:
    """One write to the Consul state: its raft index and the watch keys it touches."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.keys: set[WatchKey] = set()


class _HealthListing:
    """One service's health entries as JSON, in service ID order, and whether each passes.

    The unfiltered answer is kept as blocks of `BLOCK` entries, each with its separators, so
    a change re-joins one block and the answer is written block by block.
    """

    BLOCK = 48

    def __init__(self, ids: list[SKey]) -> None:
        self.ids = ids
        self.at = {service_id: n for n, service_id in enumerate(ids)}
        self.parts: list[bytes] = [b""] * len(ids)
        self.passing: list[bool] = [False] * len(ids)
        self._blocks: list[bytes | None] = [None] * max(1, -(-len(ids) // self.BLOCK))

    def changed(self, n: int) -> None:
        """Entry `n` was re-encoded."""
        self._blocks[n // self.BLOCK] = None

    def blocks(self) -> tuple[bytes, ...]:
        """The JSON array of every entry, in pieces that join to it."""
        out = []
        for k, block in enumerate(self._blocks):
            if block is None:
                start = k * self.BLOCK
                end = min(start + self.BLOCK, len(self.ids))
                block = self._blocks[k] = (b"," if k else b"[") + b",".join(
                    self.parts[start:end]) + (b"]" if end == len(self.ids) else b"")
            out.append(block)
        return tuple(out)


class ConsulEmulator(HttpEmulator):
    """A Consul agent+server on loopback speaking the real HTTP API (see docs/emulators.md)."""

    default_port = 8500

    def __init__(self, host: str = "127.0.0.1", port: int = 0, acl_token: str | None = None,
                 node_address: str = "127.0.0.1", limits: HttpLimits | None = None) -> None:
        super().__init__(host, port, limits=limits)
        self._lock = threading.RLock()
        self._index = 1
        self.acl_token = acl_token
        self.node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{NODE_NAME}.{DATACENTER}"))
        self.node_address = node_address
        # node name -> its record, as /v1/catalog/node answers it
        self._nodes: dict[str, dict[str, Any]] = {NODE_NAME: {
            "ID": self.node_id, "Node": NODE_NAME, "Address": node_address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": {"lan": node_address, "wan": node_address},
            "Meta": {"consul-network-segment": ""}, "CreateIndex": 1, "ModifyIndex": 1,
        }}
        # Consul's per-node index entries ("node.<name>", agent/consul/state/catalog_ce.go
        # nodeIndexName), moved by every write to the node or its services, and the index of
        # the last node deregistration ("node_last_extinction", catalog.go deleteNodeTxn).
        self._node_index: dict[str, int] = {NODE_NAME: 1}
        self._node_extinction = 0
        self._services: dict[SKey, dict[str, Any]] = {}  # (node, service ID) -> record
        self._checks: dict[SKey, dict[str, Any]] = {}  # (node, check ID) -> record
        self._node_checks: dict[str, set[SKey]] = {}  # node -> its checks without a service
        self._put_node_check(self._check_record(
            {"CheckID": _SERF_CHECK, "Name": "Serf Health Status", "Status": "passing",
             "Output": "Agent alive and reachable"}, service=None, index=1, node=NODE_NAME))
        self._name_index: dict[str, int] = {}
        self._by_name: dict[str, set[SKey]] = {}
        self._by_node: dict[str, set[SKey]] = {NODE_NAME: set()}
        self._catalog_services: tuple[int, bytes] = (0, b"")  # (services index, its JSON)
        self._listings: dict[str, _HealthListing] = {}  # service name -> its health entries
        self._stale: dict[str, set[SKey]] = {}  # name -> instances whose entry may have changed
        self._health_answers: dict[tuple[str, bool, str | None],
                                   tuple[int, tuple[bytes, ...]]] = {}
        self._checks_by_service: dict[SKey, set[SKey]] = {}
        self._tables = {"services": 1, "checks": 1, "nodes": 1, "kvs": 1}
        self._kv: dict[str, dict[str, Any]] = {}
        self._tombstones: dict[str, int] = {}
        self._routes()

    def start(self) -> ConsulEmulator:
        """Bind and serve (again on the same port after a stop); returns self."""
        super().start()
        return self

    def __enter__(self) -> ConsulEmulator:
        return self.start()

    # --- Python-side API (same state code as the HTTP handlers) -----------------------------

    def register(self, name: str, *, service_id: str | None = None, address: str = "",
                 port: int = 0, tags: Sequence[str] = (), meta: Mapping[str, str] | None = None,
                 checks: Iterable[Mapping[str, Any]] = ()) -> str:
        """Register a service instance with Consul check definitions; returns its service ID."""
        definition: dict[str, Any] = {
            "Name": name, "ID": service_id or name, "Address": address, "Port": port,
            "Tags": list(tags), "Meta": dict(meta or {}), "Checks": [dict(c) for c in checks],
        }
        return self.register_definition(definition)

    def register_definition(self, body: Mapping[str, Any]) -> str:
        """Register a service from a `/v1/agent/service/register` body on the agent's own node;
        returns its service ID."""
        body = _canonical_keys(body)
        name = body.get("Name")
        if not name or not isinstance(name, str):
            raise HttpError(400, "Missing service name")
        service_id = str(body.get("ID") or name)
        checks = list(body.get("Checks") or [])
        if body.get("Check"):
            checks.insert(0, body["Check"])
        key = (NODE_NAME, service_id)
        with self._write() as w:
            # A re-registration replaces the service's checks; a check that keeps its ID keeps
            # its status unless the new definition sets one, as the Consul agent does.
            previous = {c[1]: self._checks[c]["Status"]
                        for c in self._checks_by_service.get(key, ())}
            self._drop_service_checks(key, w)
            record = self._put_service(NODE_NAME, {**body, "Service": name, "ID": service_id}, w)
            for n, raw_check in enumerate(checks, start=1):
                check = _canonical_keys(raw_check)
                check_id = check.get("CheckID") or check.get("ID") or (
                    f"service:{service_id}" if len(checks) == 1 else f"service:{service_id}:{n}")
                if not check.get("Status") and check_id in previous:
                    check["Status"] = previous[check_id]
                self._put_check(dict(check, CheckID=check_id), record, w)
        return service_id

    def deregister(self, service_id: str) -> None:
        """Remove a service instance of the agent's node and its checks; HttpError 404 when it
        is unknown (the agent's words)."""
        with self._write() as w:
            if (NODE_NAME, service_id) not in self._services:
                raise HttpError(404, f'Unknown service ID "{service_id}". Ensure that the '
                                     "service ID is passed, not the service name.")
            self._delete_service((NODE_NAME, service_id), w)

    def catalog_register(self, body: Mapping[str, Any]) -> None:
        """`PUT /v1/catalog/register` (agent/consul/catalog_endpoint.go Register, then
        agent/consul/state/catalog.go ensureRegistrationTxn): the node, created or updated
        only when the request changes it, the service when it differs, and the checks, in
        one write. Refusals are Consul's RPC errors (HTTP 500) with its words."""
        node = body.get("Node")
        if not isinstance(node, str) or not node:
            raise HttpError(500, "Must provide node")
        node_id = str(body.get("ID") or "")
        if node_id:
            try:
                uuid.UUID(node_id)
            except ValueError:
                raise HttpError(500, f"Bad node ID: {node_id!r} is not a UUID") from None
        skip_node = bool(body.get("SkipNodeUpdate"))
        address = str(body.get("Address") or "")
        if not address and not skip_node:
            raise HttpError(500, "Must provide address if SkipNodeUpdate is not set")
        service = body.get("Service")
        if service is not None:
            if not isinstance(service, Mapping):
                raise HttpError(400, "Request decode failed: Service is not an object")
            service = dict(service)
            # catalog_endpoint.go servicePreApply: the ID defaults to the name.
            if not service.get("ID") and service.get("Service"):
                service["ID"] = service["Service"]
            if service.get("ID") and not service.get("Service"):
                raise HttpError(500, "Must provide service name (Service.Service) when "
                                     "service ID is provided")
        checks = [dict(c) for c in ([body["Check"]] if body.get("Check") else [])
                  + list(body.get("Checks") or []) if isinstance(c, Mapping)]
        for check in checks:
            if not check.get("Node"):  # catalog_endpoint.go Register
                check["Node"] = node
            if not check.get("CheckID") and check.get("Name"):  # checkPreApply
                check["CheckID"] = check["Name"]
            if check["Node"].lower() != node.lower():
                raise HttpError(500, f"Node '{check['Node']}' for check '{check.get('CheckID')}'"
                                     f" doesn't match register request node '{node}'")
        with self._write() as w:
            if node not in self._nodes and skip_node:
                raise HttpError(500, "failed inserting service: Missing node registration")
            if not skip_node:
                self._put_node({"ID": node_id, "Node": node, "Address": address,
                                "TaggedAddresses": body.get("TaggedAddresses"),
                                "Meta": body.get("NodeMeta")}, w)
            if service is not None and service.get("ID"):
                self._put_service(node, service, w, only_if_changed=True)
            for check in checks:
                service_id = str(check.get("ServiceID") or "")
                owner = self._services.get((node, service_id)) if service_id else None
                if service_id and owner is None:
                    raise HttpError(500, f"failed inserting check on node {node!r}: Missing "
                                         f"service registration")
                definition = {**dict(check.get("Definition") or {}), **check}
                if owner is None:
                    self._put_node_check(self._check_record(definition, None, w.index, node), w)
                else:
                    self._put_check(definition, owner, w)

    def catalog_deregister(self, body: Mapping[str, Any]) -> None:
        """`PUT /v1/catalog/deregister` (catalog_endpoint.go Deregister, fsm applyDeregister):
        a ServiceID removes that service and its checks, else a CheckID that check, else the
        whole node; what is not there is no error."""
        node = body.get("Node")
        if not isinstance(node, str) or not node:
            raise HttpError(500, "Must provide node")
        with self._write() as w:
            if body.get("ServiceID"):
                key = (node, str(body["ServiceID"]))
                if key in self._services:
                    self._delete_service(key, w)
            elif body.get("CheckID"):
                self._delete_check((node, str(body["CheckID"])), w)
            elif node in self._nodes:
                self._delete_node(node, w)

    def set_check_status(self, check_id: str, status: str, output: str = "", *,
                         node: str = NODE_NAME) -> None:
        """Set a check's status (passing, warning, critical, maintenance)."""
        if status not in CHECK_STATES:
            raise HttpError(400, f'Invalid check status: "{status}"')
        with self._write() as w:
            check = self._checks.get((node, check_id))
            if check is None:
                raise HttpError(404, f'Unknown check ID "{check_id}". Ensure that the check ID '
                                     "is passed, not the check name.")
            if check["Status"] == status and check["Output"] == output:
                return
            self._checks[(node, check_id)] = {**check, "Status": status, "Output": output,
                                              "ModifyIndex": w.index}
            self._touch_table("checks", w)
            w.keys.add(("check", check_id))
            self._check_changed(check, w)

    def checks_of(self, service_id: str) -> list[str]:
        """The check IDs registered for a service instance of the agent's node."""
        with self._lock:
            return sorted(c[1] for c in self._checks_by_service.get((NODE_NAME, service_id), ()))

    def check_status(self, check_id: str, *, node: str = NODE_NAME) -> str | None:
        """A check's status (None when it is not registered)."""
        with self._lock:
            check = self._checks.get((node, check_id))
            return None if check is None else str(check["Status"])

    def check_definitions(self) -> list[dict[str, Any]]:
        """Every check of the agent's node with its ID, status, interval, timeout and target
        (what the agent runs)."""
        with self._lock:
            return [{"CheckID": c["CheckID"], "Status": c["Status"], "Interval": c["Interval"],
                     "Timeout": c["Timeout"], **c["Definition"]}
                    for (node, _), c in self._checks.items() if node == NODE_NAME]

    def healthy_instances(self, name: str) -> list[dict[str, Any]]:
        """Instances of a service whose checks all pass (what consul-template's `service` sees)."""
        with self._lock:
            return [copy.deepcopy(self._service_view(s)) for s in self._instances(name)
                    if all(c["Status"] == "passing" for c in self._checks_for(s))]

    def service_ids(self, name: str | None = None) -> list[str]:
        """IDs of registered service instances, of every node, in node order (of one service
        name, when given)."""
        with self._lock:
            keys = self._services if name is None else self._by_name.get(name, ())
            return [service_id for _, service_id in sorted(keys)]

    def node_names(self) -> list[str]:
        """The catalog's nodes (the agent's own included)."""
        with self._lock:
            return sorted(self._nodes)

    def kv_put(self, key: str, value: bytes | str, flags: int = 0) -> None:
        """Write a KV entry from Python."""
        data = value.encode() if isinstance(value, str) else value
        self._kv_write(key, data, flags, cas=None)

    def kv_get(self, key: str) -> bytes | None:
        """Read a KV value from Python (None when missing)."""
        with self._lock:
            entry = self._kv.get(key)
            return None if entry is None else bytes(entry["Raw"])

    # --- state helpers (caller holds the lock) -----------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[_Write]:
        """One write: the lock, the next raft index, and the keys it touched fired after."""
        with self._lock:
            self._index += 1
            w = _Write(self._index)
            yield w
        self.watches.fire(w.keys, w.index)

    def watch_index(self) -> int:
        """The latest raft index (what a blocking query has seen)."""
        return self._index

    def _touch_name(self, name: str, w: _Write) -> None:
        self._name_index[name] = w.index
        w.keys.add(("service", name))

    def _touch_node(self, node: str, w: _Write) -> None:
        """The node's own index (catalog_ce.go catalogUpdateNodeIndexes) and the nodes table's
        (catalogUpdateNodesIndexes): both move with the node and with each of its services."""
        self._node_index[node] = w.index
        w.keys.add(("node", node))
        self._touch_table("nodes", w)

    def _entry_changed(self, name: str, key: SKey) -> None:
        """Mark an instance's health entry for re-encoding (it changed, came or went)."""
        if name in self._listings:
            self._stale.setdefault(name, set()).add(key)

    def _touch_table(self, table: str, w: _Write) -> None:
        self._tables[table] = w.index
        w.keys.add((table,))

    def _put_node(self, fields: Mapping[str, Any], w: _Write) -> None:
        """Create or update a node (state/catalog.go ensureNodeTxn): its ModifyIndex moves
        only when something changed; then every service on it is touched, as their entries
        carry the node (catalog_ce.go catalogInsertNode: updateAllServiceIndexesOfNode)."""
        name = str(fields["Node"])
        old = self._nodes.get(name)
        record = {
            "ID": fields.get("ID") or (old["ID"] if old else ""), "Node": name,
            "Address": fields.get("Address") or "", "Datacenter": DATACENTER,
            "TaggedAddresses": dict(fields.get("TaggedAddresses") or {}),
            "Meta": dict(fields.get("Meta") or {}),
            "CreateIndex": old["CreateIndex"] if old else w.index, "ModifyIndex": w.index,
        }
        if old is not None and {k: v for k, v in record.items() if k != "ModifyIndex"} == {
                k: v for k, v in old.items() if k != "ModifyIndex"}:
            return
        self._nodes[name] = record
        self._by_node.setdefault(name, set())
        self._touch_node(name, w)
        for key in self._by_node[name]:
            service_name = self._services[key]["Service"]
            self._touch_name(service_name, w)
            self._entry_changed(service_name, key)

    def _put_service(self, node: str, body: Mapping[str, Any], w: _Write, *,
                     only_if_changed: bool = False) -> dict[str, Any]:
        """Create or replace a service instance on a node (state/catalog.go ensureServiceTxn,
        catalog_ce.go catalogInsertService): the services table, the service's name, the
        nodes table and the node's own index all move to this write's."""
        name, service_id = str(body["Service"]), str(body["ID"])
        key = (node, service_id)
        old = self._services.get(key)
        record = {
            "ID": service_id,
            "Service": name,
            "Tags": list(body.get("Tags") or []),
            "Address": str(body.get("Address") or ""),
            "Meta": dict(body.get("Meta") or {}),
            "Port": int(body.get("Port") or 0),
            "Weights": dict(body.get("Weights") or {"Passing": 1, "Warning": 1}),
            "EnableTagOverride": bool(body.get("EnableTagOverride", False)),
            "Kind": str(body.get("Kind") or ""),
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {},
            "Datacenter": DATACENTER,
            "CreateIndex": old["CreateIndex"] if old else w.index,
            "ModifyIndex": w.index,
            "_node": node,
        }
        if only_if_changed and old is not None and all(
                old[k] == v for k, v in record.items() if k not in ("ModifyIndex",)):
            return old  # ensureRegistrationTxn: IsSame, no write
        if old is not None and old["Service"] != name:
            self._by_name[old["Service"]].discard(key)
            self._touch_name(old["Service"], w)
            self._entry_changed(old["Service"], key)
        self._services[key] = record
        self._by_name.setdefault(name, set()).add(key)
        self._by_node.setdefault(node, set()).add(key)
        self._entry_changed(name, key)
        self._touch_name(name, w)
        self._touch_table("services", w)
        self._touch_node(node, w)
        return record

    def _delete_service(self, key: SKey, w: _Write) -> None:
        """state/catalog.go deleteServiceTxn: its checks, then the service; the checks,
        services and nodes tables and the node's own index move."""
        record = self._services.pop(key)
        self._by_name[record["Service"]].discard(key)
        self._by_node[key[0]].discard(key)
        self._entry_changed(record["Service"], key)
        self._drop_service_checks(key, w)
        self._touch_name(record["Service"], w)
        self._touch_table("services", w)
        self._touch_table("checks", w)
        self._touch_node(key[0], w)

    def _delete_node(self, node: str, w: _Write) -> None:
        """state/catalog.go deleteNodeTxn: its services and checks, then the node; its own
        index entry is dropped and the node extinction index moves."""
        for key in sorted(self._by_node.get(node, ())):
            self._delete_service(key, w)
        for check_key in list(self._node_checks.get(node, ())):
            self._delete_check(check_key, w)
        del self._nodes[node]
        self._by_node.pop(node, None)
        self._node_checks.pop(node, None)
        self._node_index.pop(node, None)
        self._node_extinction = w.index
        w.keys.add(("node", node))
        self._touch_table("nodes", w)

    def _delete_check(self, key: SKey, w: _Write) -> None:
        check = self._checks.pop(key, None)
        if check is None:
            return
        self._node_checks.get(key[0], set()).discard(key)
        if check["ServiceID"]:
            self._checks_by_service.get((key[0], check["ServiceID"]), set()).discard(key)
        w.keys.add(("check", key[1]))
        self._touch_table("checks", w)
        self._check_changed(check, w)

    def _check_changed(self, check: Mapping[str, Any], w: _Write) -> None:
        """A check came, went or changed: its service's entries (a node's check: every
        service of the node) are touched."""
        node = str(check["Node"])
        if check["ServiceName"]:
            self._touch_name(check["ServiceName"], w)
            self._entry_changed(check["ServiceName"], (node, check["ServiceID"]))
            return
        for key in self._by_node.get(node, ()):
            name = self._services[key]["Service"]
            self._touch_name(name, w)
            self._entry_changed(name, key)

    def _drop_service_checks(self, key: SKey, w: _Write) -> None:
        for check_key in self._checks_by_service.pop(key, set()):
            self._checks.pop(check_key, None)
            w.keys.add(("check", check_key[1]))

    def _checks_for(self, s: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The node's checks and the service's own, as a health entry lists them."""
        node = s["_node"]
        return [self._checks[c] for c in sorted(self._node_checks.get(node, ()))] + [
            self._checks[c] for c in sorted(self._checks_by_service.get((node, s["ID"]), ()))]

    def _check_record(self, definition: Mapping[str, Any], service: Mapping[str, Any] | None,
                      index: int, node: str) -> dict[str, Any]:
        kind = ""
        for key, name in (("TTL", "ttl"), ("HTTP", "http"), ("TCP", "tcp"), ("GRPC", "grpc"),
                          ("Args", "script"), ("AliasService", "alias")):
            if definition.get(key):
                kind = name
                break
        status = definition.get("Status") or "critical"
        if status not in CHECK_STATES:
            raise HttpError(400, f'Invalid check status: "{status}"')
        fields = {k: definition[k] for k in ("HTTP", "TCP", "TTL", "Interval", "Timeout",
                                             "Method", "GRPC", "DeregisterCriticalServiceAfter")
                  if definition.get(k)}
        return {
            "Node": node,
            "CheckID": str(definition["CheckID"]),
            "Name": str(definition.get("Name") or (
                f"Service '{service['Service']}' check" if service else definition["CheckID"])),
            "Status": status,
            "Notes": str(definition.get("Notes") or ""),
            "Output": str(definition.get("Output") or ""),
            "ServiceID": service["ID"] if service else "",
            "ServiceName": service["Service"] if service else "",
            "ServiceTags": list(service["Tags"]) if service else [],
            "Type": kind,
            "Interval": str(definition.get("Interval") or ""),
            "Timeout": str(definition.get("Timeout") or ""),
            "ExposedPort": 0,
            "Definition": fields,
            "CreateIndex": index,
            "ModifyIndex": index,
        }

    def _put_node_check(self, record: dict[str, Any], w: _Write | None = None) -> None:
        """A check of the node itself (no service): in every entry of the node's services."""
        key = (str(record["Node"]), str(record["CheckID"]))
        old = self._checks.get(key)
        if old is not None:
            record["CreateIndex"] = old["CreateIndex"]
        self._checks[key] = record
        self._node_checks.setdefault(key[0], set()).add(key)
        if w is not None:
            w.keys.add(("check", key[1]))
            self._touch_table("checks", w)
            self._check_changed(record, w)

    def _put_check(self, definition: Mapping[str, Any], service: Mapping[str, Any],
                   w: _Write) -> None:
        node = service["_node"]
        record = self._check_record(definition, service, w.index, node)
        key = (node, record["CheckID"])
        old = self._checks.get(key)
        if old is not None:
            record["CreateIndex"] = old["CreateIndex"]
            if old["ServiceID"] and old["ServiceID"] != service["ID"]:
                self._checks_by_service.get((node, old["ServiceID"]), set()).discard(key)
            elif not old["ServiceID"]:
                self._node_checks.get(node, set()).discard(key)
        self._checks[key] = record
        self._checks_by_service.setdefault((node, service["ID"]), set()).add(key)
        w.keys.add(("check", record["CheckID"]))
        self._touch_table("checks", w)
        self._check_changed(record, w)

    def _instances(self, name: str) -> list[dict[str, Any]]:
        return [self._services[k] for k in sorted(self._by_name.get(name, ()))]

    def _service_index(self, name: str) -> int:
        return self._name_index.get(name) or max(self._tables["services"], self._tables["nodes"])

    # The views below share the state's objects: they are encoded under the lock (`_read`).

    def _service_view(self, s: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in ("Datacenter", "_node")}

    def _health_entry(self, s: Mapping[str, Any]) -> dict[str, Any]:
        return {"Node": self._nodes[s["_node"]], "Service": self._service_view(s),
                "Checks": self._checks_for(s)}

    def _health_listing(self, name: str) -> _HealthListing:
        """The service's health entries, re-encoding only the instances changed since last time."""
        listing = self._listings.get(name)
        stale = self._stale.pop(name, set())
        members = self._by_name.get(name, set())
        if listing is None or any((i in members) != (i in listing.at) for i in stale):
            old = listing or _HealthListing([])
            listing = _HealthListing(sorted(members))
            for n, key in enumerate(listing.ids):
                k = None if key in stale else old.at.get(key)
                if k is None:
                    self._encode_entry(listing, n)
                else:
                    listing.parts[n], listing.passing[n] = old.parts[k], old.passing[k]
            self._listings[name] = listing
        else:
            for key in stale:
                # An instance added and removed again since the last listing is in neither.
                if key in listing.at:
                    self._encode_entry(listing, listing.at[key])
        return listing

    def _encode_entry(self, listing: _HealthListing, n: int) -> None:
        entry = self._health_entry(self._services[listing.ids[n]])
        listing.parts[n] = go_json(entry)
        listing.passing[n] = all(c["Status"] == "passing" for c in entry["Checks"])
        listing.changed(n)

    def _catalog_entry(self, s: Mapping[str, Any]) -> dict[str, Any]:
        node = self._nodes[s["_node"]]
        return {
            "ID": node["ID"], "Node": node["Node"], "Address": node["Address"],
            "Datacenter": DATACENTER, "TaggedAddresses": node["TaggedAddresses"],
            "NodeMeta": node["Meta"], "ServiceKind": s["Kind"], "ServiceID": s["ID"],
            "ServiceName": s["Service"], "ServiceTags": s["Tags"],
            "ServiceAddress": s["Address"], "ServiceWeights": s["Weights"],
            "ServiceMeta": s["Meta"], "ServicePort": s["Port"],
            "ServiceEnableTagOverride": s["EnableTagOverride"],
            "ServiceProxy": s["Proxy"], "ServiceConnect": {},
            "CreateIndex": s["CreateIndex"], "ModifyIndex": s["ModifyIndex"],
        }

    # --- HTTP ---------------------------------------------------------------------------------

    def index_headers(self, index: int) -> dict[str, str]:
        """Consul's blocking-query headers."""
        return {"X-Consul-Index": str(index), "X-Consul-KnownLeader": "true",
                "X-Consul-LastContact": "0"}

    def authorize(self, req: Request) -> None:
        """With an ACL token set, every endpoint but /v1/status needs exactly that token."""
        if self.acl_token is None or req.path.startswith("/v1/status/"):
            return
        token = bearer_token(req, "X-Consul-Token")
        if not token:
            raise HttpError(403, "Permission denied")
        if token != self.acl_token:
            raise HttpError(403, "ACL not found")

    def _routes(self) -> None:
        r = self.router.add
        r("GET", "/v1/status/leader", self._h_leader)
        r("GET", "/v1/status/peers", self._h_peers)
        r("GET", "/v1/agent/self", self._h_agent_self)
        r("GET", "/v1/agent/services", self._h_agent_services)
        r("GET", "/v1/agent/checks", self._h_agent_checks)
        r("PUT", "/v1/agent/service/register", self._h_register)
        r("PUT", "/v1/agent/service/deregister/(.+)", self._h_deregister)
        r("PUT", "/v1/agent/check/(pass|warn|fail)/(.+)", self._h_check_ttl)
        r("PUT", "/v1/agent/check/update/(.+)", self._h_check_update)
        r("PUT", "/v1/catalog/register", self._h_catalog_register)
        r("PUT", "/v1/catalog/deregister", self._h_catalog_deregister)
        r("GET", "/v1/catalog/services", self._h_catalog_services)
        r("GET", "/v1/catalog/service/(.+)", self._h_catalog_service)
        r("GET", "/v1/catalog/nodes", self._h_catalog_nodes)
        r("GET", "/v1/catalog/node/(.+)", self._h_catalog_node)
        r("GET", "/v1/catalog/datacenters", self._h_datacenters)
        r("GET", "/v1/health/service/(.+)", self._h_health_service)
        r("GET", "/v1/health/checks/(.+)", self._h_health_checks)
        r("GET", "/v1/health/state/(.+)", self._h_health_state)
        r("GET PUT DELETE", "/v1/kv/(.*)", self._h_kv)

    def _read(self, req: Request, keys: Iterable[WatchKey], index_of: Any,
              build: Any) -> Response | Blocking:
        """A blocking read: `index_of()` and `build()`, encoded, under the state lock."""
        def compute() -> tuple[int, Any]:
            with self._lock:
                return index_of(), Response(raw=go_json(build()))

        return self.blocking(req, keys, compute)

    def _h_leader(self, req: Request) -> Response:
        return Response(f"{self.host}:8300")

    def _h_peers(self, req: Request) -> Response:
        return Response([f"{self.host}:8300"])

    def _h_datacenters(self, req: Request) -> Response:
        return Response([DATACENTER])

    def _h_agent_self(self, req: Request) -> Response:
        return Response({
            "Config": {"Datacenter": DATACENTER, "PrimaryDatacenter": DATACENTER,
                       "NodeName": NODE_NAME, "NodeID": self.node_id, "Server": True,
                       "Revision": "emulator", "Version": "1.17.0"},
            "Member": {"Name": NODE_NAME, "Addr": self.node_address, "Port": 8301,
                       "Tags": {"role": "consul", "dc": DATACENTER}, "Status": 1},
            "Meta": {"consul-network-segment": ""},
        })

    def _h_agent_services(self, req: Request) -> Response:
        with self._lock:
            return Response(raw=go_json({key[1]: self._service_view(self._services[key])
                                         for key in sorted(self._by_node[NODE_NAME])}))

    def _h_agent_checks(self, req: Request) -> Response:
        with self._lock:
            return Response(raw=go_json({key[1]: c for key, c in self._checks.items()
                                         if key[0] == NODE_NAME and key[1] != _SERF_CHECK}))

    def _h_catalog_register(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed: expected an object")
        self.catalog_register(body)
        return Response(True)

    def _h_catalog_deregister(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed: expected an object")
        self.catalog_deregister(body)
        return Response(True)

    def _h_register(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed: expected an object")
        self.register_definition(body)
        return Response(raw=b"")

    def _h_deregister(self, req: Request) -> Response:
        self.deregister(req.params[0])
        return Response(raw=b"")

    def _h_check_ttl(self, req: Request) -> Response:
        verb, check_id = req.params
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[verb]
        self.set_check_status(check_id, status, req.query.get("note", ""))
        return Response(raw=b"")

    def _h_check_update(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed: expected an object")
        self.set_check_status(req.params[0], str(body.get("Status", "")),
                              str(body.get("Output") or ""))
        return Response(raw=b"")

    def _h_catalog_services(self, req: Request) -> Response | Blocking:
        def compute() -> tuple[int, Response]:
            with self._lock:
                index = self._tables["services"]
                if self._catalog_services[0] != index:
                    out: dict[str, list[str]] = {"consul": []}
                    for name in sorted(self._by_name):
                        instances = self._instances(name)
                        if not instances:
                            continue
                        tags = out.setdefault(name, [])
                        for instance in instances:
                            tags.extend(t for t in instance["Tags"] if t not in tags)
                    self._catalog_services = (index, go_json(out))
                return index, Response(raw=self._catalog_services[1])

        return self.blocking(req, [("services",)], compute)

    def _h_catalog_nodes(self, req: Request) -> Response | Blocking:
        pred = _predicate(req)
        return self._read(req, [("nodes",)], lambda: self._tables["nodes"],
                          lambda: [self._nodes[n] for n in sorted(self._nodes)
                                   if pred is None or pred(self._nodes[n])])

    def _h_catalog_node(self, req: Request) -> Response | Blocking:
        """`/v1/catalog/node/<node>`: the node and its services by ID, `null` for a node it does
        not know. The index is the node's own (Consul >= 1.13, consul#12399: state/catalog.go
        nodeServices returns catalogNodeMaxIndex, catalog_ce.go: the "node.<name>" entry),
        and for an unknown node the last node deregistration's (catalogNodeLastExtinctionIndex).
        A `filter` applies to the services only, after the index was taken
        (agent/consul/catalog_endpoint.go NodeServices: filter.Execute on Services)."""
        name = req.params[0]
        pred = _predicate(req)

        def build() -> dict[str, Any] | None:
            if name not in self._nodes:
                return None
            # (the filter sees the record: it holds the view's fields, and a view is made only
            # for what it keeps)
            return {"Node": self._nodes[name], "Services": {
                key[1]: self._service_view(self._services[key])
                for key in sorted(self._by_node[name])
                if pred is None or pred(self._services[key])}}

        return self._read(req, [("node", name)], lambda: self._node_index.get(
            name, self._node_extinction), build)

    def _h_catalog_service(self, req: Request) -> Response | Blocking:
        name = req.params[0]
        pred = _predicate(req)
        tag = req.query.get("tag")

        def build() -> list[dict[str, Any]]:
            entries = [self._catalog_entry(s) for s in self._instances(name)
                       if _has_tag(s, tag)]
            return [e for e in entries if pred is None or pred(e)]

        return self._read(req, [("service", name)], lambda: self._service_index(name), build)

    def _h_health_service(self, req: Request) -> Response | Blocking:
        name = req.params[0]
        pred = _predicate(req)
        passing = req.flag("passing")
        tag = req.query.get("tag")

        def compute() -> tuple[int, Response]:
            with self._lock:
                index = self._service_index(name)
                key = (name, passing, tag)
                cached = self._health_answers.get(key)
                if pred is None and cached is not None and cached[0] == index:
                    return index, Response(pieces=cached[1])
                # Drop the stale answer first: its memory then holds the new one (fresh memory
                # for a megabyte costs more in page faults than re-encoding the change).
                self._health_answers.pop(key, None)
                if pred is None:
                    listing = self._health_listing(name)
                    if not passing and not tag:
                        return index, self._health_answer(key, index, listing.blocks())
                    parts = [part for key, part, ok in zip(
                        listing.ids, listing.parts, listing.passing, strict=True)
                        if (ok or not passing) and _has_tag(self._services[key], tag)]
                else:
                    parts = []
                    for s in self._instances(name):
                        entry = self._health_entry(s)
                        if _has_tag(s, tag) and (not passing or all(
                                c["Status"] == "passing" for c in entry["Checks"])) \
                                and pred(entry):
                            parts.append(go_json(entry))
                data = json_array(parts)
                if pred is None:
                    return index, self._health_answer(key, index, (data,))
                return index, Response(raw=data)

        return self.blocking(req, [("service", name)], compute)

    def _health_answer(self, key: tuple[str, bool, str | None], index: int,
                       pieces: tuple[bytes, ...]) -> Response:
        """Keep an unfiltered health answer until its service changes."""
        if len(self._health_answers) > 256:
            self._health_answers.clear()
        self._health_answers[key] = (index, pieces)
        return Response(pieces=pieces)

    def _h_health_checks(self, req: Request) -> Response | Blocking:
        name = req.params[0]
        pred = _predicate(req)

        def build() -> list[dict[str, Any]]:
            checks = [c for s in self._instances(name)
                      for c in self._checks_for(s) if c["ServiceName"] == name]
            return [c for c in checks if pred is None or pred(c)]

        return self._read(req, [("service", name)], lambda: self._service_index(name), build)

    def _h_health_state(self, req: Request) -> Response | Blocking:
        state = req.params[0]
        if state not in ("any", *CHECK_STATES):
            raise HttpError(400, "Bad check state")
        pred = _predicate(req)

        def build() -> list[dict[str, Any]]:
            checks = [c for c in self._checks.values()
                      if state == "any" or c["Status"] == state]
            return [c for c in checks if pred is None or pred(c)]

        return self._read(req, [("checks",)], lambda: self._tables["checks"], build)

    # --- KV -----------------------------------------------------------------------------------

    def _kv_index(self, key: str, prefix: bool) -> int:
        if prefix:
            found = [e["ModifyIndex"] for k, e in self._kv.items() if k.startswith(key)]
            found += [i for k, i in self._tombstones.items() if k.startswith(key)]
            return max(found) if found else self._tables["kvs"]
        entry = self._kv.get(key)
        if entry is not None:
            return int(entry["ModifyIndex"])
        return self._tables["kvs"]

    def _kv_write(self, key: str, data: bytes, flags: int, cas: int | None) -> bool:
        with self._lock:
            old = self._kv.get(key)
            if cas is not None and (
                (cas == 0 and old is not None) or (cas > 0 and (old is None
                                                                or old["ModifyIndex"] != cas))):
                return False
            with self._write() as w:
                self._kv[key] = {
                    "LockIndex": 0, "Key": key, "Flags": flags, "Raw": data,
                    "CreateIndex": old["CreateIndex"] if old else w.index,
                    "ModifyIndex": w.index,
                }
                self._tombstones.pop(key, None)
                w.keys.add(("kv", key))
                self._touch_table("kvs", w)
            return True

    def _h_kv(self, req: Request) -> Response | Blocking:
        key = req.params[0]
        if req.method == "PUT":
            cas = int_param(req, "cas", -1) if "cas" in req.query else None
            ok = self._kv_write(key, req.body, int_param(req, "flags"), cas)
            return Response(ok)
        if req.method == "DELETE":
            return Response(self._kv_delete(key, req.flag("recurse"),
                                             int_param(req, "cas") if "cas" in req.query else None))
        recurse = req.flag("recurse")
        keys_only = "keys" in req.query
        watch: WatchKey = ("kvs",) if recurse or keys_only else ("kv", key)

        def build() -> Any:
            if keys_only:
                listed = _kv_keys(sorted(k for k in self._kv if k.startswith(key)), key,
                                  req.query.get("separator", ""))
                return listed or None
            matches = ([self._kv[k] for k in sorted(self._kv) if k.startswith(key)] if recurse
                       else [self._kv[key]] if key in self._kv else [])
            if not matches:
                return None
            if "raw" in req.query:
                return Response(raw=bytes(matches[0]["Raw"]),
                                content_type="text/plain; charset=utf-8")
            return [_kv_view(e) for e in matches]

        def compute() -> tuple[int, Any]:
            with self._lock:
                index = self._kv_index(key, recurse or keys_only)
                body = build()
            if body is None:
                return index, Response(raw=b"", status=404)
            return index, body

        return self.blocking(req, [watch], compute)

    def _kv_delete(self, key: str, recurse: bool, cas: int | None) -> bool:
        with self._lock:
            if cas is not None:
                entry = self._kv.get(key)
                if entry is None or entry["ModifyIndex"] != cas:
                    return False
            doomed = [k for k in self._kv if k.startswith(key)] if recurse else (
                [key] if key in self._kv else [])
            if not doomed:
                return True
            with self._write() as w:
                for k in doomed:
                    del self._kv[k]
                    self._tombstones[k] = w.index
                    w.keys.add(("kv", k))
                self._touch_table("kvs", w)
            return True


_KNOWN_KEYS = (
    "ID", "Name", "Tags", "Address", "Meta", "Port", "Weights", "EnableTagOverride", "Kind",
    "Check", "Checks", "CheckID", "Status", "Notes", "Output", "TTL", "HTTP", "TCP", "GRPC",
    "Args", "AliasService", "Interval", "Timeout", "Method", "Header",
    "DeregisterCriticalServiceAfter", "ServiceID", "TLSSkipVerify",
)
_KEY_LOOKUP = {k.lower(): k for k in _KNOWN_KEYS}


def _canonical_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Consul decodes JSON keys case-insensitively and accepts snake_case; so does the emulator."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        out[_KEY_LOOKUP.get(str(key).lower().replace("_", ""), str(key))] = value
    return out


def _kv_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    raw = entry["Raw"]
    return {
        "LockIndex": entry["LockIndex"], "Key": entry["Key"], "Flags": entry["Flags"],
        "Value": base64.b64encode(raw).decode() if raw else None,
        "CreateIndex": entry["CreateIndex"], "ModifyIndex": entry["ModifyIndex"],
    }


def _kv_keys(keys: list[str], prefix: str, separator: str) -> list[str]:
    if not separator:
        return keys
    out: list[str] = []
    for k in keys:
        rest = k[len(prefix):]
        cut = rest.find(separator)
        item = k if cut < 0 else prefix + rest[: cut + len(separator)]
        if item not in out:
            out.append(item)
    return out


def _has_tag(service: Mapping[str, Any], tag: str | None) -> bool:
    return not tag or tag in service["Tags"]


def _predicate(req: Request) -> Any:
    text = req.query.get("filter")
    if not text:
        return None
    try:
        return compile_filter(text)
    except FilterError as exc:
        raise HttpError(400, f"Failed to create boolean expression evaluator: {exc}") from exc


__all__ = ["CHECK_STATES", "ConsulEmulator", "EmulatorError"]
