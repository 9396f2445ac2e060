"""The event stream, `GET /v1/event/stream` (command/agent/event_endpoint.go:46, nomad/stream).

Every state commit becomes one `structs.Events` batch of the objects it wrote (nomad/state/events.go
event types: JobRegistered, EvaluationUpdated, AllocationUpdated, DeploymentStatusUpdate,
NodeRegistration/NodeDrain/NodeEligibility, ServiceRegistration/..., ACL tokens and policies),
kept in a ring buffer of 100 batches (event_buffer_size). A purged job, evaluation or allocation
(an object gone from the state) has no event. The stream answers newline-delimited
JSON and a `{}` heartbeat every 10 s, as the agent does with its default JSON encoder.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing._http import HttpError, Request, Response

if TYPE_CHECKING:
    from nomadmesh.testing.nomad import NomadEmulator

BUFFER_SIZE = 100  # agent config event_buffer_size default
HEARTBEAT = 10.0  # nomad/stream/ndjson.go heartbeat interval
# table -> (Topic, payload key, upsert type, delete type), nomad/structs/event.go:22-78
_TOPICS = {
    "jobs": ("Job", "Job", "JobRegistered", "JobDeregistered"),
    "evals": ("Evaluation", "Evaluation", "EvaluationUpdated", "EvaluationUpdated"),
    "allocs": ("Allocation", "Allocation", "AllocationUpdated", "AllocationUpdated"),
    "deployment": ("Deployment", "Deployment", "DeploymentStatusUpdate",
                   "DeploymentStatusUpdate"),
    "nodes": ("Node", "Node", "NodeRegistration", "NodeDeregistration"),
    "service_registrations": ("Service", "Service", "ServiceRegistration",
                              "ServiceDeregistration"),
    "acl_token": ("ACLToken", "ACLToken", "ACLTokenUpserted", "ACLTokenDeleted"),
    "acl_policy": ("ACLPolicy", "ACLPolicy", "ACLPolicyUpserted", "ACLPolicyDeleted"),
}
_REMEMBERED = ("nodes", "service_registrations")  # tables whose deletes have events


def _key(table: str, obj: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The event's Key and FilterKeys (nomad/state/events.go eventFromChange)."""
    if table == "jobs":
        return str(obj["ID"]), []
    if table in ("evals", "allocs", "deployment"):
        return str(obj["ID"]), [str(obj.get("JobID") or "")] + (
            [str(obj["DeploymentID"])] if obj.get("DeploymentID") else [])
    if table == "service_registrations":
        # nomad/state/events.go:178 and :427: keyed by the registration, filtered by job or name
        return str(obj["ID"]), [str(obj.get("JobID") or ""), str(obj["ServiceName"])]
    if table == "acl_token":
        return str(obj["AccessorID"]), []
    if table == "acl_policy":
        return str(obj["Name"]), []
    return str(obj["ID"]), []


def _public(table: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the payload shows: a token's secret is never in an event (events.go ACLToken)."""
    if table == "acl_token":
        return {k: v for k, v in obj.items() if k != "SecretID"}
    return obj


class EventBroker:
    """Turns commits into event batches and serves them to streams."""

    def __init__(self, emulator: NomadEmulator) -> None:
        self.nomad = emulator
        self._lock = threading.Lock()
        self._batches: deque[dict[str, Any]] = deque(maxlen=BUFFER_SIZE)
        # What a delete event shows (the object before it went: events.go eventFromChange):
        # nodes, and service registrations, whose deregistration carries the registration.
        snap = emulator.snapshot()
        self._seen: dict[tuple[str, Any], Mapping[str, Any]] = {
            ("nodes", n["ID"]): n for n in snap.nodes()}
        self._seen.update({("service_registrations", r["ID"]): r
                           for r in snap.all("service_registrations")})
        emulator.state.listeners.append(self._on_commit)

    def routes(self, add: Callable[[str, str, Any], None]) -> None:
        """Register the route (command/agent/http.go)."""
        add("GET", "/v1/event/stream", self._h_stream)

    def _node_type(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
        if old is None:
            return "NodeRegistration"
        if old.get("DrainStrategy") != new.get("DrainStrategy"):
            return "NodeDrain"
        if old.get("SchedulingEligibility") != new.get("SchedulingEligibility"):
            return "NodeEligibility"
        if old.get("Events") != new.get("Events"):
            return "NodeStreamEvent"
        return "NodeRegistration"

    def _on_commit(self, keys: set[Any], index: int) -> None:
        snap = self.nomad.snapshot()
        events = []
        for key in sorted((k for k in keys if len(k) == 2 and k[0] in _TOPICS), key=repr):
            table, ident = key
            topic, payload_key, upsert, delete = _TOPICS[table]
            obj = snap.get(table, ident)
            old = self._seen.get(key)
            if obj is None and old is None:
                continue
            current = obj if obj is not None else old
            assert current is not None
            kind = delete if obj is None else upsert
            if table == "nodes" and obj is not None:
                kind = self._node_type(old, obj)
            if table == "jobs" and obj is not None and obj.get("Stop"):
                kind = delete
            if table in _REMEMBERED:
                if obj is None:
                    self._seen.pop(key, None)
                else:
                    self._seen[key] = obj
            event_key, filter_keys = _key(table, current)
            events.append({"Topic": topic, "Type": kind, "Key": event_key,
                           "Namespace": current.get("Namespace") or "",
                           "FilterKeys": filter_keys or None, "Index": index,
                           "Payload": {payload_key: _public(table, current)}})
        if events:
            with self._lock:
                self._batches.append({"Index": index, "Events": events})

    def _h_stream(self, req: Request) -> Response:
        """EventStream (event_endpoint.go:46): `index`, `topic` (Topic or Topic:key),
        `namespace` (default "default", `*` for all)."""
        index_text = req.query.get("index") or "0"
        if not index_text.lstrip("-").isdigit():
            raise HttpError(400, f'Unable to parse index: strconv.Atoi: parsing "{index_text}": '
                                 "invalid syntax")
        start = int(index_text)
        topic, key = "*", "*"
        if "topic" in req.query:
            parts = req.query["topic"].split(":")
            if len(parts) > 2:
                raise HttpError(400, "Invalid topic query: error parsing topics: Invalid key "
                                     f"value pair for topic, topic: {req.query['topic']}")
            topic, key = parts[0], parts[1] if len(parts) == 2 else "*"
        namespace = req.query.get("namespace") or "default"

        def wanted(event: Mapping[str, Any]) -> bool:
            if topic != "*" and event["Topic"] != topic:
                return False
            if key != "*" and key != event["Key"] and key not in (event["FilterKeys"] or ()):
                return False
            return namespace == "*" or event["Namespace"] in ("", namespace)

        with self._lock:
            # index 0: from now on; else from the closest batch at or after it
            position = [self._batches[-1]["Index"] if self._batches and start == 0
                        else start - 1]
        beat = [time.monotonic()]

        def more() -> tuple[bytes, bool]:
            with self._lock:
                fresh = [b for b in self._batches if b["Index"] > position[0]]
            lines = []
            for batch in fresh:
                position[0] = batch["Index"]
                chosen = [e for e in batch["Events"] if wanted(e)]
                if chosen:
                    lines.append(json.dumps({"Index": batch["Index"], "Events": chosen}))
            if not lines and time.monotonic() - beat[0] >= HEARTBEAT:
                lines.append("{}")
            if lines:
                beat[0] = time.monotonic()
            return "".join(f"{line}\n" for line in lines).encode(), False

        # Nomad flushes each batch as it is published (stream/ndjson.go): poll often.
        return Response(stream=more, content_type="application/json", poll=0.005)
