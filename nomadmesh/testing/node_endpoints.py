"""Node writes: force evaluation, scheduling eligibility and drain (command/agent/node_endpoint.go,
nomad/node_endpoint.go, nomad/state/state_store.go updateNodeDrainImpl).

A drain marks the node ineligible and every non-terminal allocation on it for migration at once
(the drainer's `migrate.max_parallel` pacing and `deadline` timing are not emulated); once no
allocation to drain is left on the node, the drain is complete (nomad/drainer/drainer.go).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing._gotypes import check_fields
from nomadmesh.testing._http import HttpError, Request, Response, decode_json
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.state import Snapshot, Txn

if TYPE_CHECKING:
    from nomadmesh.testing.nomad import NomadEmulator

TRIGGER_NODE_UPDATE = "node-update"  # structs.EvalTriggerNodeUpdate
TRIGGER_NODE_DRAIN = "node-drain"  # structs.EvalTriggerNodeDrain
# nomad/node_endpoint.go:37-47
DRAIN_SET, DRAIN_UPDATED, DRAIN_DISABLED = ("Node drain strategy set",
                                            "Node drain strategy updated", "Node drain disabled")
DRAIN_COMPLETE = "Node drain complete"  # nomad/drainer/drainer.go:39
ELIGIBLE, INELIGIBLE = ("Node marked as eligible for scheduling",
                        "Node marked as ineligible for scheduling")


def _node_event(node: Mapping[str, Any], message: str, subsystem: str, index: int
                ) -> list[dict[str, Any]]:
    """appendNodeEvents: the node's events plus one, the last 10 kept (structs.MaxRetainedNodeEvents)."""
    event = {"Message": message, "Subsystem": subsystem, "Details": None,
             "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "CreateIndex": index}
    return [*(node.get("Events") or ()), event][-10:]


def _node_evals(txn: Txn, node: Mapping[str, Any], trigger: str) -> list[str]:
    """createNodeEvals (nomad/node_endpoint.go): one evaluation per job with allocations on
    the node, plus every system job."""
    jobs: dict[tuple[str, str], Mapping[str, Any]] = {}
    for alloc in txn.allocs_by_node(node["ID"]):
        job = txn.job_by_id(alloc["Namespace"], alloc["JobID"])
        if job is not None:
            jobs[(job["Namespace"], job["ID"])] = job
    for job in txn.jobs():
        if job.get("Type") in ("system", "sysbatch") and not job.get("Stop"):
            jobs[(job["Namespace"], job["ID"])] = job
    ids = []
    for each in jobs.values():
        ev = s.new_eval(each, trigger)
        ev.update(NodeID=node["ID"], NodeModifyIndex=txn.index)
        ids.append(txn.upsert_eval(ev)["ID"])
    return ids


class NodeEndpoints:
    """POST /v1/node/<id>/{evaluate,eligibility,drain}."""

    def __init__(self, emulator: NomadEmulator) -> None:
        self.nomad = emulator
        emulator.state.listeners.append(self._on_commit)

    def _on_commit(self, keys: set[Any], index: int) -> None:
        """Commit listener: a draining node whose allocations changed may be done."""
        if any(len(k) == 2 and k[0] in ("allocs", "nodes") for k in keys):
            self.nomad.server.loop.call_soon(self._complete_drains)

    def _complete_drains(self) -> None:
        """The drainer's completion (drainer.go handleMigratedAllocs / NodeDrainEventComplete)."""
        def apply(txn: Txn) -> None:
            for node in txn.nodes():
                strategy = node.get("DrainStrategy")
                if strategy is None or _to_drain(txn, node, strategy):
                    continue
                now = s.rfc3339(s.now_ns())
                txn.upsert_node(s.evolve(
                    node, DrainStrategy=None,
                    LastDrain={**(node.get("LastDrain") or {}), "Status": "complete",
                               "UpdatedAt": now},
                    Events=_node_event(node, DRAIN_COMPLETE, "Drain", txn.index)))

        snap = self.nomad.snapshot()
        if any(n.get("DrainStrategy") is not None and not _to_drain(snap, n, n["DrainStrategy"])
               for n in snap.nodes()):
            self.nomad.server.write(apply)

    def routes(self, add: Callable[[str, str, Any], None]) -> None:
        """Register the routes (command/agent/node_endpoint.go:40-60)."""
        add("PUT POST", "/v1/node/([^/]+)/evaluate", self._h_evaluate)
        add("PUT POST", "/v1/node/([^/]+)/eligibility", self._h_eligibility)
        add("PUT POST", "/v1/node/([^/]+)/drain", self._h_drain)

    def _write(self, node_id: str, fn: Callable[[Txn, dict[str, Any]], dict[str, Any]]
               ) -> Response:
        def apply(txn: Txn) -> dict[str, Any]:
            node = txn.node_by_id(node_id)
            if node is None:
                raise HttpError(500, "node not found")
            out = fn(txn, node)
            out.update(NodeModifyIndex=txn.index, Index=txn.index)
            out.setdefault("EvalIDs", None)
            out.setdefault("EvalCreateIndex", 0)
            return out

        result = self.nomad.server.write(apply)
        return self.nomad.answer(result, int(result["Index"]))

    def _h_evaluate(self, req: Request) -> Response:
        """Node.Evaluate (nomad/node_endpoint.go): evaluations for the node's jobs."""
        def apply(txn: Txn, node: dict[str, Any]) -> dict[str, Any]:
            ids = _node_evals(txn, node, TRIGGER_NODE_UPDATE)
            return {"EvalIDs": ids, "EvalCreateIndex": txn.index if ids else 0,
                    "HeartbeatTTL": 0, "LeaderRPCAddr": f"{self.nomad.host}:4647",
                    "NumNodes": sum(1 for _ in txn.nodes()), "Servers": None}

        return self._write(self.nomad._node_id(req.params[0]), apply)

    def _h_eligibility(self, req: Request) -> Response:
        """Node.UpdateEligibility (nomad/node_endpoint.go:1036)."""
        body = _object(req)
        check_fields(body, "NodeUpdateEligibilityRequest", {"Eligibility": "string"})
        eligibility = body.get("Eligibility")

        def apply(txn: Txn, node: dict[str, Any]) -> dict[str, Any]:
            if eligibility not in ("eligible", "ineligible"):
                raise HttpError(500, f'invalid scheduling eligibility "{eligibility}"')
            if node.get("DrainStrategy") is not None and eligibility == "eligible":
                raise HttpError(500, "can not set node's scheduling eligibility to eligible "
                                     "while it is draining")
            changed = node.get("SchedulingEligibility") != eligibility
            events = _node_event(node, ELIGIBLE if eligibility == "eligible" else INELIGIBLE,
                                 "Cluster", txn.index) if changed else node.get("Events")
            txn.upsert_node(s.evolve(node, SchedulingEligibility=eligibility, Events=events))
            ids = (_node_evals(txn, node, TRIGGER_NODE_UPDATE)
                   if changed and eligibility == "eligible" else [])
            return {"EvalIDs": ids or None, "EvalCreateIndex": txn.index if ids else 0}

        return self._write(self.nomad._node_id(req.params[0]), apply)

    def _h_drain(self, req: Request) -> Response:
        """Node.UpdateDrain (nomad/node_endpoint.go:911) and updateNodeDrainImpl (state_store.go:1204)."""
        body = _object(req)
        spec = body.get("DrainSpec")
        if spec is not None and not isinstance(spec, dict):
            raise HttpError(400, "json: cannot unmarshal into Go struct field "
                                 "NodeUpdateDrainRequest.DrainSpec of type api.DrainSpec")
        check_fields(body, "NodeUpdateDrainRequest", {"MarkEligible": "bool",
                                                      "Meta": "map[string]string"})
        if spec is not None:
            check_fields(spec, "NodeUpdateDrainRequest.DrainSpec", {"IgnoreSystemJobs": "bool"})
        mark_eligible = bool(body.get("MarkEligible"))

        def apply(txn: Txn, node: dict[str, Any]) -> dict[str, Any]:
            old = node.get("DrainStrategy")
            now = s.now_ns()
            strategy = None
            if spec is not None:
                deadline = _duration(spec.get("Deadline"))
                strategy = {"Deadline": deadline,
                            "IgnoreSystemJobs": bool(spec.get("IgnoreSystemJobs")),
                            "ForceDeadline": s.rfc3339(now + deadline) if deadline > 0
                            else s.ZERO_TIME,
                            "StartedAt": old["StartedAt"] if old else s.rfc3339(now)}
            message = (DRAIN_SET if old is None and strategy is not None else DRAIN_UPDATED
                       if strategy is not None else DRAIN_DISABLED if old is not None else "")
            changes: dict[str, Any] = {"DrainStrategy": strategy}
            if message:
                changes["Events"] = _node_event(node, message, "Drain", txn.index)
            if strategy is not None:
                changes["SchedulingEligibility"] = "ineligible"
                changes["LastDrain"] = {"Status": "draining", "Meta": body.get("Meta"),
                                        "StartedAt": strategy["StartedAt"],
                                        "UpdatedAt": s.rfc3339(now)}
            elif mark_eligible:
                changes["SchedulingEligibility"] = "eligible"
            if old is not None and strategy is None and node.get("LastDrain"):
                changes["LastDrain"] = {**node["LastDrain"], "Status": "canceled",
                                        "UpdatedAt": s.rfc3339(now)}
            txn.upsert_node(s.evolve(node, **changes))
            ids: list[str] = []
            if strategy is not None and old is None:
                ids = self._migrate(txn, node, strategy)
            elif (strategy is None and mark_eligible
                  and node.get("SchedulingEligibility") == "ineligible"):
                ids = _node_evals(txn, node, TRIGGER_NODE_UPDATE)
            return {"EvalIDs": ids or None, "EvalCreateIndex": txn.index if ids else 0}

        return self._write(self.nomad._node_id(req.params[0]), apply)

    @staticmethod
    def _migrate(txn: Txn, node: Mapping[str, Any], strategy: Mapping[str, Any]) -> list[str]:
        """The drainer's work, all at once: mark the node's live allocations to migrate
        (nomad/drainer), system ones unless IgnoreSystemJobs, and evaluate their jobs."""
        jobs: dict[tuple[str, str], Mapping[str, Any]] = {}
        for alloc in _to_drain(txn, node, strategy):
            transition = {**(alloc.get("DesiredTransition") or {}), "Migrate": True}
            txn.upsert_alloc(s.evolve(alloc, DesiredTransition=transition,
                                      ModifyTime=s.now_ns()))
            current = txn.job_by_id(alloc["Namespace"], alloc["JobID"])
            if current is not None:
                jobs[(current["Namespace"], current["ID"])] = current
        return [txn.upsert_eval(s.new_eval(job, TRIGGER_NODE_DRAIN))["ID"]
                for job in jobs.values()]


def _to_drain(snap: Snapshot, node: Mapping[str, Any], strategy: Mapping[str, Any]
              ) -> list[dict[str, Any]]:
    """The node's allocations a drain still has to move: live ones, system ones unless
    IgnoreSystemJobs."""
    return [a for a in snap.allocs_by_node(node["ID"])
            if not s.terminal(a) and not (strategy["IgnoreSystemJobs"] and (
                a.get("Job") or {}).get("Type") in ("system", "sysbatch"))]


def _object(req: Request) -> dict[str, Any]:
    body = decode_json(req.body) if req.body.strip() else {}
    if not isinstance(body, dict):
        raise HttpError(400, "Request decode failed")
    return body


def _duration(value: Any) -> int:
    """A time.Duration from JSON: int64 nanoseconds (Go's decoder refuses anything else)."""
    check_fields({"Deadline": value}, "NodeUpdateDrainRequest.DrainSpec",
                 {"Deadline": "time.Duration"})
    return int(value or 0)
