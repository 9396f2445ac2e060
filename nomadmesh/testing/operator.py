"""The emulator's one-server cluster endpoints: agent members/servers/join/force-leave, Raft
configuration, system GC, metrics, search, scaling policies (command/agent/*_endpoint.go).

The emulated cluster is one server (`nomad-emulator.<region>`, Raft address host:4647) that is its
own leader and voter; it cannot join others. Search answers from the state store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing._gotypes import check_fields
from nomadmesh.testing._http import Blocking, HttpError, Request, Response, decode_json
from nomadmesh.testing.config import NOMAD_VERSION

if TYPE_CHECKING:
    from nomadmesh.testing.nomad import NomadEmulator

_TRUNCATE = 20  # nomad/search_endpoint.go:26 truncateLimit
# structs.Context values a prefix search over "all" covers (search_endpoint.go getResourceIter)
_PREFIX_CONTEXTS = ("allocs", "deployment", "evals", "jobs", "namespaces", "node_pools", "nodes")


class OperatorEndpoints:
    """Routes answered from the emulator's configuration and state (see module docstring)."""

    def __init__(self, emulator: NomadEmulator) -> None:
        self.nomad = emulator
        self.server_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{emulator.region}.raft"))

    def routes(self, add: Callable[[str, str, Any], None]) -> None:
        """Register the routes (command/agent/http.go)."""
        add("GET", "/v1/agent/members", self._h_members)
        add("GET", "/v1/agent/servers", self._h_servers)
        add("PUT POST", "/v1/agent/join", self._h_join)
        add("PUT POST", "/v1/agent/force-leave", self._h_force_leave)
        add("GET", "/v1/operator/raft/configuration", self._h_raft_configuration)
        add("DELETE", "/v1/operator/raft/peer", self._h_raft_peer)
        add("PUT", "/v1/system/gc", lambda req: Response(None))
        add("PUT", "/v1/system/reconcile/summaries", lambda req: Response(None))
        add("GET", "/v1/metrics", self._h_metrics)
        add("PUT POST", "/v1/search", self._h_search)
        add("PUT POST", "/v1/search/fuzzy", self._h_fuzzy)
        add("GET", "/v1/scaling/policies", self._h_scaling_policies)
        add("GET", "/v1/scaling/policy/([^/]+)", self._h_scaling_policy)

    @property
    def _raft_address(self) -> str:
        return f"{self.nomad.host}:4647"

    # --- agent (command/agent/agent_endpoint.go) --------------------------------------------

    def _h_members(self, req: Request) -> Response:
        """structs.ServerMembersResponse (nomad/structs/structs.go:1220)."""
        region, dc = self.nomad.region, self.nomad.datacenter
        member = {"Name": f"nomad-emulator.{region}", "Addr": self.nomad.host, "Port": 4648,
                  "Tags": {"region": region, "dc": dc, "role": "nomad", "build": NOMAD_VERSION,
                           "id": self.server_id, "raft_vsn": "3", "expect": "1"},
                  "Status": "alive", "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                  "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}
        return Response({"ServerName": "nomad-emulator", "ServerRegion": region,
                         "ServerDC": dc, "Members": [member]})

    def _h_servers(self, req: Request) -> Response:
        """The client's server list, sorted (agent_endpoint.go:561 listServers)."""
        return Response([self._raft_address])

    def _h_join(self, req: Request) -> Response:
        """joinResult (agent_endpoint.go:106, :698): the one server joins nobody."""
        addresses = [req.query["address"]] if req.query.get("address") else []
        if not addresses:
            raise HttpError(400, "missing address to join")
        errors = "".join(f"\t* Failed to join {a}: the emulator is a single server\n"
                         for a in addresses)
        word = "error" if len(addresses) == 1 else "errors"
        return Response({"num_joined": 0, "error": f"{len(addresses)} {word} occurred:\n"
                                                   f"{errors}\n", "warning": ""})

    def _h_force_leave(self, req: Request) -> Response:
        """agent_endpoint.go:424: an unknown member leaves silently (as serf's RemoveFailedNode)."""
        if not req.query.get("node"):
            raise HttpError(400, "missing node to force leave")
        if req.query.get("prune", "") not in ("", "1", "t", "T", "true", "TRUE", "True", "0",
                                               "f", "F", "false", "FALSE", "False"):
            raise HttpError(400, "invalid prune value")
        return Response(None)

    # --- operator (command/agent/operator_endpoint.go, nomad/operator_endpoint.go) ----------

    def _h_raft_configuration(self, req: Request) -> Response:
        """structs.RaftConfigurationResponse: this server, leader and voter."""
        index = self.nomad.snapshot().index
        return Response({"Index": index, "Servers": [{
            "ID": self.server_id, "Node": f"nomad-emulator.{self.nomad.region}",
            "Address": self._raft_address, "Leader": True, "Voter": True,
            "RaftProtocol": "3"}]})

    def _h_raft_peer(self, req: Request) -> Response:
        """OperatorRaftPeer (operator_endpoint.go:62) and RaftRemovePeerByID (nomad/:140)."""
        if "address" in req.query:
            raise HttpError(400, "Removing a peer by address is not supported in the current "
                                 "raft protocol version")
        if "id" not in req.query:
            raise HttpError(400, "Must specify the peer's ID to remove")
        peer = req.query["id"]
        if peer == self.server_id:
            raise HttpError(500, "cannot remove the leader of the emulated cluster")
        raise HttpError(500, f'id "{peer}" was not found in the Raft configuration')

    # --- metrics, search, scaling -----------------------------------------------------------

    def _h_metrics(self, req: Request) -> Response:
        """go-metrics' InmemSink summary (command/agent/metrics_endpoint.go:21): two gauges."""
        if req.query.get("format") == "prometheus":  # telemetry.prometheus_metrics is off
            raise HttpError(415, "Prometheus is not enabled")
        snap = self.nomad.snapshot()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime())
        gauges = [{"Name": "nomad.state.jobs", "Value": float(sum(1 for _ in snap.all("jobs"))),
                   "Labels": {}},
                  {"Name": "nomad.state.allocs",
                   "Value": float(sum(1 for _ in snap.all("allocs"))), "Labels": {}}]
        return Response({"Timestamp": stamp, "Gauges": gauges, "Points": [], "Counters": [],
                         "Samples": []})

    def _body(self, req: Request) -> dict[str, Any]:
        body = decode_json(req.body) if req.body.strip() else {}
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed")
        return body

    def _objects(self, context: str, namespace: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
        """(searchable ID, object) of one context, as getResourceIter walks its table."""
        snap = self.nomad.snapshot()
        if context == "namespaces":
            names = {"default", *(j["Namespace"] for j in snap.all("jobs"))}
            return ((n, {"Name": n}) for n in sorted(names))
        if context == "node_pools":
            pools = {"all", "default", *(n.get("NodePool") or "default" for n in snap.nodes())}
            return ((p, {"Name": p}) for p in sorted(pools))
        table = {"jobs": "jobs", "evals": "evals", "allocs": "allocs", "nodes": "nodes",
                 "deployment": "deployment"}[context]
        rows = sorted(snap.all(table), key=lambda o: str(o["ID"]))
        return ((str(o["ID"]), o) for o in rows
                if context == "nodes" or namespace == "*" or o.get("Namespace") == namespace)

    def _h_search(self, req: Request) -> Response | Blocking:
        """Search.PrefixSearch (nomad/search_endpoint.go:585): up to 20 IDs per context."""
        body = self._body(req)
        check_fields(body, "SearchRequest", {"Prefix": "string", "Context": "string",
                                             "Namespace": "string"})
        prefix, context = str(body.get("Prefix") or ""), str(body.get("Context") or "")
        contexts = _PREFIX_CONTEXTS if context == "all" else (context,)
        if any(c not in _PREFIX_CONTEXTS for c in contexts):
            raise HttpError(500, f"context must be one of {', '.join(_PREFIX_CONTEXTS)} or all")
        namespace = str(body.get("Namespace") or req.query.get("namespace") or "default")
        matches: dict[str, list[str]] = {}
        truncations: dict[str, bool] = {}
        for ctx in contexts:
            found = [i for i, _ in self._objects(ctx, namespace) if i.startswith(prefix)]
            matches[ctx], truncations[ctx] = found[:_TRUNCATE], len(found) > _TRUNCATE
        return self.nomad.answer({"Matches": matches, "Truncations": truncations},
                                 self.nomad.snapshot().index)

    def _h_fuzzy(self, req: Request) -> Response:
        """Search.FuzzySearch over jobs (search_endpoint.go:726, fuzzyMatchesJob :266)."""
        body = self._body(req)
        check_fields(body, "FuzzySearchRequest", {"Text": "string", "Context": "string",
                                                  "Namespace": "string"})
        text, context = str(body.get("Text") or ""), str(body.get("Context") or "")
        if len(text) < 2:  # SearchConfig.MinTermLength default
            raise HttpError(500, f"fuzzy search query must be at least 2 characters, "
                                 f"got {len(text)}")
        if context not in ("all", "jobs"):
            raise HttpError(500, f"fuzzy search is emulated for jobs only, not {context!r}")
        namespace = str(body.get("Namespace") or req.query.get("namespace") or "default")
        text = text.lower()  # search_endpoint.go:762
        sets: dict[str, list[tuple[int, str, list[str]]]] = {}

        def hit(ctx: str, name: str, *scope: str) -> None:
            index = name.lower().find(text)
            if name and index >= 0:
                sets.setdefault(ctx, []).append((index, name, [*scope]))

        for job_id, job in self._objects("jobs", namespace):
            ns = str(job["Namespace"])
            hit("jobs", str(job.get("Name") or ""), ns, job_id)
            for group in job.get("TaskGroups") or ():
                hit("groups", group["Name"], ns, job_id)
                for service in group.get("Services") or ():
                    hit("services", service.get("Name") or "", ns, job_id, group["Name"])
                for task in group.get("Tasks") or ():
                    hit("tasks", task["Name"], ns, job_id, group["Name"])
                    for service in task.get("Services") or ():
                        hit("services", service.get("Name") or "", ns, job_id, group["Name"],
                            task["Name"])
                    config = task.get("Config") or {}
                    key = {"docker": "image", "exec": "command", "raw_exec": "command",
                           "java": "class"}.get(task.get("Driver") or "")
                    if key and isinstance(config.get(key), str):
                        hit({"image": "images", "command": "commands",
                             "class": "classes"}[key], config[key], ns, job_id, group["Name"],
                            task["Name"])
        matches = {ctx: [{"ID": name, "Scope": scope} for _, name, scope in
                         sorted(found, key=lambda m: (m[0], len(m[1]), m[1]))[:_TRUNCATE]]
                   for ctx, found in sets.items()}
        truncations = {ctx: len(found) > _TRUNCATE for ctx, found in sets.items()}
        return self.nomad.answer({"Matches": matches, "Truncations": truncations},
                                 self.nomad.snapshot().index)

    def _h_scaling_policies(self, req: Request) -> Response:
        """ScalingPolicyListStub of every group `scaling` block (scaling_endpoint.go)."""
        namespace = self.nomad._namespace(req)
        job_filter, kind = req.query.get("job", ""), req.query.get("type", "")
        snap = self.nomad.snapshot()
        out = []
        for job in snap.jobs():
            if (namespace != "*" and job["Namespace"] != namespace) or (
                    job_filter and job["ID"] != job_filter):
                continue
            for group in job.get("TaskGroups") or ():
                policy = group.get("Scaling")
                if not policy or (kind and (policy.get("Type") or "horizontal") != kind):
                    continue
                out.append({"ID": policy.get("ID") or "", "Enabled": policy.get("Enabled"),
                            "Type": policy.get("Type") or "horizontal",
                            "Target": {"Namespace": job["Namespace"], "Job": job["ID"],
                                       "Group": group["Name"]},
                            "CreateIndex": job.get("CreateIndex"),
                            "ModifyIndex": job.get("ModifyIndex")})
        return self.nomad.answer(out, snap.index)

    def _h_scaling_policy(self, req: Request) -> Response:
        policy_id = req.params[0]
        for job in self.nomad.snapshot().jobs():
            for group in job.get("TaskGroups") or ():
                policy = group.get("Scaling") or {}
                if policy.get("ID") == policy_id:
                    return Response(policy)
        raise HttpError(404, "scaling policy not found")
