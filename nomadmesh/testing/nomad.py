"""An in-process emulator of the Nomad HTTP API, backed by an emulated server and clients.

`NomadEmulator` is the agent's HTTP layer (command/agent/*_endpoint.go): it parses requests,
hands them to the server's RPCs (`nomadmesh.testing.server`) and answers with Nomad's paths,
JSON shapes, `text/plain` errors and blocking-query headers. Reads come from a state store
snapshot and block on exactly the watch keys they read. See docs/emulators.md for what is
emulated and what is not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nomadmesh.testing import nomad_api as api
from nomadmesh.testing._filter import FilterError, compile_filter
from nomadmesh.testing._http import (
    Blocking,
    HttpEmulator,
    HttpError,
    Request,
    Response,
    bearer_token,
    check_nesting,
    decode_json,
    json_array,
)
from nomadmesh.testing.acl import MANAGEMENT, AclEndpoints
from nomadmesh.testing.client.client import Client
from nomadmesh.testing.client.runner import SimulatedRunner, TaskRunner, TaskScript
from nomadmesh.testing.client_endpoints import ClientEndpoints
from nomadmesh.testing.config import NOMAD_VERSION, HttpLimits, NodeSpec, Timings, default_nodes
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.events import EventBroker
from nomadmesh.testing.joblist import JobListing
from nomadmesh.testing.node_endpoints import NodeEndpoints
from nomadmesh.testing.nomad_api import AgentPanic, HclParser, NomadApiError
from nomadmesh.testing.operator import OperatorEndpoints
from nomadmesh.testing.server import job_endpoint
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.deploymentwatcher import DeploymentError
from nomadmesh.testing.server.server import Server
from nomadmesh.testing.server.state import Snapshot
from nomadmesh.testing.watch import ANY

_JOB_ACTIONS = ("versions", "summary", "allocations", "evaluations", "deployment",
                "deployments", "evaluate", "plan", "dispatch", "periodic/force", "revert",
                "stable", "scale", "submission", "services")
_WRITE = "PUT POST"
_ALLOC_STUB_FIELDS = (
    "ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobVersion",
    "TaskGroup", "DesiredStatus", "DesiredDescription", "ClientStatus", "ClientDescription",
    "DesiredTransition", "TaskStates", "DeploymentStatus", "FollowupEvalID", "NextAllocation",
    "RescheduleTracker", "PreemptedAllocations", "PreemptedByAllocation", "CreateIndex",
    "ModifyIndex", "CreateTime", "ModifyTime",
)


class NomadEmulator(HttpEmulator):
    """A Nomad server+clients on loopback speaking the real HTTP API (see docs/emulators.md)."""

    default_port = 4646
    answered_errors = (NomadApiError, DeploymentError)
    dropped_errors = (AgentPanic,)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, consul: ConsulEmulator | None = None,
                 acl: bool | str = False, tls: ssl.SSLContext | tuple[str, str] | None = None, *,
                 nodes: Iterable[NodeSpec] | None = None, timings: Timings | None = None,
                 runner: TaskRunner | None = None, region: str = "global",
                 datacenter: str = "dc1", limits: HttpLimits | None = None,
                 hcl_parser: HclParser | None = None, acl_bootstrap: bool = False) -> None:
        super().__init__(host, port, tls, limits)
        self.region = region
        self.datacenter = datacenter
        self.acl_enabled = bool(acl) or acl_bootstrap
        self.acl_token: str | None = None
        timings = timings or Timings()
        self.hcl_parser = hcl_parser
        self.runner: TaskRunner = runner or SimulatedRunner(timings)
        self.nodes = list(nodes) if nodes is not None else default_nodes()
        self.server = Server(region=region, timings=timings, port_free=self.runner.port_available,
                             node_pools=tuple(n.node_pool for n in self.nodes),
                             name=f"NomadEmulator-{id(self):x}")
        self.state = self.server.state
        self.watches = self.state.watches
        self.client = Client(self.server, self.runner, consul)
        with self.state.txn() as txn:
            for node in self.nodes:
                txn.upsert_node(node.to_node(txn.index))
        self._listings = {meta: JobListing(self.state, self._stub, meta) for meta in (False, True)}
        self.acl = AclEndpoints(self.server, self.answer, self.blocking, self.acl_enabled)
        if acl:
            secret = acl if isinstance(acl, str) else str(uuid.uuid4())
            self.acl_token = str(self.acl.bootstrap(secret)[0]["SecretID"])
        self._routes()

    @property
    def timings(self) -> Timings:
        """Emulated time (scale, start delay, health overrides); change it at any time."""
        return self.server.timings

    @property
    def consul(self) -> ConsulEmulator | None:
        """The Consul emulator the clients register services in (None without one)."""
        return self.client.consul

    def start(self) -> NomadEmulator:
        """Bind (the same port again after a stop), start the cluster; returns self."""
        super().start()
        return self

    def __enter__(self) -> NomadEmulator:
        return self.start()

    def _started(self) -> None:
        self.server.start()
        self.server.loop.call_soon(self.client.restore)

    def _stopping(self) -> None:
        self.server.stop()

    def watch_index(self) -> int:
        """The latest raft index."""
        return self.state.index

    # --- Python-side API ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A consistent, read-only view of the cluster state (jobs, allocs, evals, ...)."""
        return self.state.snapshot()

    def script_task(self, job_id: str, group: str, task: str, *, fail: str, exit_code: int = 1,
                    message: str = "", version: int | None = None, times: int | None = None,
                    namespace: str = "default") -> None:
        """Script a task failure: "driver", "exit" (with exit_code) or "unhealthy" (checks)."""
        self.client.script_task(namespace, job_id, group, task,
                                TaskScript(fail, exit_code, message, version, times))

    def clear_scripts(self) -> None:
        """Forget every scripted failure."""
        self.client.clear_scripts()

    def register(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Register a job (Nomad API JSON) from Python, exactly as `POST /v1/jobs` does."""
        try:
            request = api.decode_register(json.dumps({"Job": job}).encode())
            return job_endpoint.register(self.server, request)
        except NomadApiError as exc:
            raise HttpError(exc.status, exc.text) from None

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate()` is true, re-checked after every write (no polling)."""
        changed = threading.Event()
        token = self.watches.subscribe([ANY], changed.set)
        try:
            deadline = time.monotonic() + timeout
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                changed.wait(remaining)
                changed.clear()
            return True
        finally:
            self.watches.unsubscribe(token, [ANY])

    def deployment_status(self, job_id: str, namespace: str = "default") -> str | None:
        """Status of the job's latest deployment (None when it has none)."""
        dep = self.snapshot().latest_deployment(namespace, job_id)
        return None if dep is None else str(dep["Status"])

    # --- HTTP plumbing ------------------------------------------------------------------------

    def index_headers(self, index: int) -> dict[str, str]:
        """Nomad's blocking-query headers."""
        return {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true",
                "X-Nomad-LastContact": "0"}

    def authorize(self, req: Request) -> None:
        """With ACLs on, every endpoint but /v1/status and /v1/acl/bootstrap needs a management
        token; a client token may only read itself (its policies are not evaluated)."""
        region = req.query.get("region")
        if region and region != self.region:
            raise HttpError(500, "No path to region")
        if not self.acl_enabled or req.path.startswith("/v1/status/") or (
                req.path == "/v1/acl/bootstrap"):
            return
        token = bearer_token(req, "X-Nomad-Token")
        if not token:
            raise HttpError(403, "Permission denied")
        found = self.acl.token_by_secret(token)
        if found is None:
            raise HttpError(403, "ACL token not found")
        if found["Type"] != MANAGEMENT and req.path != "/v1/acl/token/self":
            raise HttpError(403, "Permission denied")

    def _routes(self) -> None:
        r = self.router.add
        r("GET", "/v1/status/leader", lambda req: Response(f"{self.host}:4647"))
        r("GET", "/v1/status/peers", lambda req: Response([f"{self.host}:4647"]))
        r("GET", "/v1/regions", lambda req: Response([self.region]))
        r("GET", "/v1/agent/self", self._h_agent_self)
        r("GET", "/v1/namespaces", self._h_namespaces)
        r("GET " + _WRITE, "/v1/jobs", self._h_jobs)
        r(_WRITE, "/v1/jobs/parse", self._h_parse)
        r(_WRITE, "/v1/validate/job", self._h_validate)
        r("GET DELETE " + _WRITE, "/v1/job/(.+)", self._h_job)
        r("GET", "/v1/evaluations", self._h_evals)
        r("GET", "/v1/evaluation/([^/]+)/allocations", self._h_eval_allocs)
        r("GET", "/v1/evaluation/([^/]+)", self._h_eval)
        r("GET", "/v1/allocations", self._h_allocs)
        r(_WRITE, "/v1/allocation/([^/]+)/stop", self._h_alloc_stop)
        r("GET", "/v1/allocation/([^/]+)/services", self._h_alloc_services)
        r("GET", "/v1/allocation/([^/]+)", self._h_alloc)
        r("GET", "/v1/deployments", self._h_deployments)
        r("GET", "/v1/deployment/allocations/([^/]+)", self._h_deployment_allocs)
        r(_WRITE, "/v1/deployment/promote/([^/]+)", self._h_promote)
        r(_WRITE, "/v1/deployment/fail/([^/]+)", self._h_fail)
        r(_WRITE, "/v1/deployment/pause/([^/]+)", self._h_pause)
        r(_WRITE, "/v1/deployment/allocation-health/([^/]+)", self._h_alloc_health)
        r("GET", "/v1/deployment/([^/]+)", self._h_deployment)
        r("GET", "/v1/client/fs/logs/([^/]+)", self._h_logs)
        r("GET", "/v1/nodes", self._h_nodes)
        r("GET", "/v1/node/([^/]+)/allocations", self._h_node_allocs)
        r("GET", "/v1/node/([^/]+)", self._h_node)
        r("GET", "/v1/vars", self._h_vars)
        r("GET DELETE " + _WRITE, "/v1/var/(.*)", self._h_var)
        r("GET", "/v1/services", self._h_services)
        self.acl.routes(r)
        OperatorEndpoints(self).routes(r)
        NodeEndpoints(self).routes(r)
        ClientEndpoints(self).routes(r)
        EventBroker(self).routes(r)
        r("GET DELETE", "/v1/service/(.*)", self._h_service)

    # --- agent ----------------------------------------------------------------------------------

    def _h_agent_self(self, req: Request) -> Response:
        return Response({
            "config": {"Region": self.region, "Datacenter": self.datacenter,
                       "NodeName": "nomad-emulator", "Version": {"Version": NOMAD_VERSION},
                       "ACL": {"Enabled": self.acl_enabled},
                       "TLSConfig": {"EnableHTTP": self.tls_context is not None}},
            "member": {"Name": f"nomad-emulator.{self.region}", "Addr": self.host,
                       "Port": 4648, "Status": "alive",
                       "Tags": {"region": self.region, "dc": self.datacenter, "role": "nomad",
                                "build": NOMAD_VERSION}},
            "stats": {"nomad": {"leader": "true", "server": "true"}},
        })

    def _h_namespaces(self, req: Request) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            names = sorted({"default", *(job["Namespace"] for job in snap.all("jobs"))})
            return snap.table_index("jobs"), [
                {"Name": n, "Description": "Default shared namespace" if n == "default" else "",
                 "Quota": "", "Meta": None, "CreateIndex": 1, "ModifyIndex": 1} for n in names]

        return self.blocking(req, [("jobs",)], compute)

    # --- jobs -------------------------------------------------------------------------------------

    @staticmethod
    def _namespace(req: Request) -> str:
        return req.query.get("namespace") or "default"

    def _h_jobs(self, req: Request) -> Response | Blocking:
        if req.method != "GET":
            return self._register(req, None)
        namespace = self._namespace(req)
        prefix = req.query.get("prefix", "")
        pred = _predicate(req)
        with_meta = req.flag("meta")

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            index = snap.table_index("jobs", "job_summary")
            listing = self._listings[with_meta]
            if pred is None:
                return index, Response(raw=listing.answer(snap, namespace, prefix))
            parts = [part for job, part in listing.stubs(snap)
                     if (namespace == "*" or job["Namespace"] == namespace)
                     and job["ID"].startswith(prefix)
                     and pred({**self._stub(snap, job, False), "Meta": job.get("Meta") or {}})]
            return index, Response(raw=json_array(parts))

        return self.blocking(req, [("jobs",), ("job_summary",)], compute)

    def _stub(self, snap: Snapshot, job: Mapping[str, Any], meta: bool) -> dict[str, Any]:
        """structs.Job.Stub (JobListStub)."""
        stub = {
            "ID": job["ID"], "ParentID": job.get("ParentID", ""), "Name": job["Name"],
            "Namespace": job["Namespace"], "Datacenters": job["Datacenters"],
            "NodePool": job.get("NodePool", "default"), "Multiregion": None,
            "Type": job["Type"], "Priority": job["Priority"],
            "Periodic": s.is_periodic(job), "ParameterizedJob": s.is_parameterized(job),
            "Stop": bool(job.get("Stop")), "Status": job["Status"],
            "StatusDescription": job.get("StatusDescription", ""),
            "JobSummary": snap.job_summary(job["Namespace"], job["ID"]),
            "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"],
            "JobModifyIndex": job["JobModifyIndex"], "SubmitTime": job["SubmitTime"],
        }
        if meta and job.get("Meta"):
            stub["Meta"] = job["Meta"]
        return stub

    def _register(self, req: Request, path_id: str | None) -> Response:
        result = job_endpoint.register(self.server, api.decode_register(self._job_body(req)),
                                       path_id=path_id, query_region=req.query.get("region", ""),
                                       query_namespace=req.query.get("namespace", ""))
        return self.answer(result, result["Index"])

    def _job_body(self, req: Request) -> bytes:
        """A body that carries a job, refused when it nests deeper than the emulator handles."""
        check_nesting(req.body, self.limits.max_depth)
        return req.body

    def _h_parse(self, req: Request) -> Response:
        return Response(api.parse_hcl(req.body, self.hcl_parser))

    def _h_validate(self, req: Request) -> Response:
        return Response(api.validate_response(api.decode_validate(self._job_body(req)),
                                              config=self.server.config))

    def _h_job(self, req: Request) -> Response | Blocking:
        rest = req.params[0]
        for action in _JOB_ACTIONS:
            if rest.endswith("/" + action):
                return self._job_action(req, rest[: -len(action) - 1], action)
        job_id = rest
        namespace = self._namespace(req)
        if req.method == "DELETE":
            result = job_endpoint.deregister(self.server, namespace, job_id,
                                             purge=req.flag("purge"))
            return self.answer(result, result["Index"])
        if req.method != "GET":
            return self._register(req, job_id)

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            job = snap.job_by_id(namespace, job_id)
            if job is None:
                raise HttpError(404, "job not found")
            return int(job["ModifyIndex"]), job

        return self.blocking(req, [("jobs", (namespace, job_id))], compute)

    def _job_action(self, req: Request, job_id: str, action: str) -> Response | Blocking:
        namespace = self._namespace(req)
        key = (namespace, job_id)
        if req.method == "GET":
            reads: dict[str, Callable[[Request, str, str], Response | Blocking]] = {
                "versions": self._versions, "summary": self._summary,
                "allocations": self._job_allocs, "evaluations": self._job_evals,
                "deployments": self._job_deployments, "deployment": self._job_deployment,
                "scale": self._scale_status, "submission": self._submission,
                "services": self._job_services,
            }
            if action not in reads:
                raise HttpError(405, "Invalid method")
            return reads[action](req, namespace, job_id)
        if action in ("versions", "summary", "allocations", "evaluations", "deployments",
                      "deployment", "submission", "services"):
            raise HttpError(405, "Invalid method")
        if action == "plan":
            result = job_endpoint.plan(self.server, api.decode_plan(self._job_body(req), job_id),
                                       query_region=req.query.get("region", ""),
                                       query_namespace=req.query.get("namespace", ""))
            return self.answer(result, result["Index"])
        if action == "dispatch":
            result = job_endpoint.dispatch(self.server, namespace,
                                           api.decode_dispatch(self._job_body(req), job_id))
            return self.answer(result, result["Index"])
        body = _body_object(req)
        if action == "evaluate":
            options = body.get("EvalOptions") or {}
            result = job_endpoint.evaluate(self.server, namespace, job_id,
                                           bool(options.get("ForceReschedule")))
        elif action == "periodic/force":
            result = self.server.periodic.force(namespace, job_id)
        elif action == "revert":
            if "JobVersion" not in body:
                raise HttpError(400, "JobVersion must be specified")
            enforce = body.get("EnforcePriorVersion")
            result = job_endpoint.revert(self.server, namespace, job_id,
                                         int(body["JobVersion"]),
                                         None if enforce is None else int(enforce))
        elif action == "stable":
            result = job_endpoint.stable(self.server, namespace, job_id,
                                         int(body.get("JobVersion") or 0),
                                         bool(body.get("Stable")))
            snap = self.snapshot()
            job = snap.job_by_id(*key)
            result["JobModifyIndex"] = job["JobModifyIndex"] if job else 0
        else:
            target = body.get("Target") or {}
            count = body.get("Count")
            result = job_endpoint.scale(
                self.server, namespace, job_id, group=str(target.get("Group") or ""),
                count=None if count is None else int(count),
                message=str(body.get("Message") or ""), error=bool(body.get("Error")),
                meta=body.get("Meta"), job_modify_index=int(body.get("JobModifyIndex") or 0),
                target_job=str(target.get("Job") or ""))
        return self.answer(result, result["Index"])

    def _existing(self, snap: Snapshot, namespace: str, job_id: str) -> dict[str, Any]:
        job = snap.job_by_id(namespace, job_id)
        if job is None:
            raise HttpError(404, "job not found")
        return job

    def _versions(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        diffs = req.flag("diffs")

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            self._existing(snap, namespace, job_id)
            versions = list(snap.job_versions(namespace, job_id))
            out: dict[str, Any] = {"Versions": versions, "Diffs": None}
            if diffs:
                out["Diffs"] = [api.job_diff(versions[i + 1], versions[i], True)
                                for i in range(len(versions) - 1)]
            return snap.table_index("job_version"), out

        return self.blocking(req, [("job_version", (namespace, job_id))], compute)

    def _summary(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            summary = snap.job_summary(namespace, job_id)
            if summary is None:
                raise HttpError(404, "job not found")
            return int(summary["ModifyIndex"]), summary

        return self.blocking(req, [("job_summary", (namespace, job_id))], compute)

    def _job_allocs(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        every = req.flag("all")

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            job = self._existing(snap, namespace, job_id)
            allocs = [_alloc_stub(a) for a in snap.allocs_by_job(namespace, job_id)
                      if every or a["Job"]["CreateIndex"] == job["CreateIndex"]]
            return snap.table_index("allocs"), allocs

        return self.blocking(req, [("allocs", "job", (namespace, job_id))], compute)

    def _job_evals(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            self._existing(snap, namespace, job_id)
            evals = sorted(snap.evals_by_job(namespace, job_id), key=lambda e: -e["CreateIndex"])
            return snap.table_index("evals"), evals

        return self.blocking(req, [("evals", "job", (namespace, job_id))], compute)

    def _job_deployments(self, req: Request, namespace: str,
                         job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            self._existing(snap, namespace, job_id)
            deps = sorted(snap.deployments_by_job(namespace, job_id),
                          key=lambda d: -d["CreateIndex"])
            return snap.table_index("deployment"), deps

        return self.blocking(req, [("deployment", "job", (namespace, job_id))], compute)

    def _job_deployment(self, req: Request, namespace: str,
                        job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            self._existing(snap, namespace, job_id)
            return snap.table_index("deployment"), snap.latest_deployment(namespace, job_id)

        return self.blocking(req, [("deployment", "job", (namespace, job_id))], compute)

    def _scale_status(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            index, status = job_endpoint.scale_status(self.snapshot(), namespace, job_id)
            if status is None:
                raise HttpError(404, "job not found")
            return index, status

        key = (namespace, job_id)
        return self.blocking(req, [("jobs", key), ("allocs", "job", key),
                                   ("scaling_event", key)], compute)

    def _submission(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        text = req.query.get("version", "")
        try:
            version = int(text)
        except ValueError:
            raise HttpError(400, "Unable to parse job submission version parameter") from None

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            submission = snap.job_submission(namespace, job_id, version)
            if submission is None:
                raise HttpError(404, "job source not found")
            return int(submission["JobModifyIndex"]), {
                k: submission.get(k) for k in ("Source", "Format", "VariableFlags",
                                               "Variables", "Namespace", "JobID", "Version",
                                               "JobModifyIndex")}

        return self.blocking(req, [("job_submission", (namespace, job_id, version))], compute)

    def _job_services(self, req: Request, namespace: str, job_id: str) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            return snap.table_index("service_registrations"), snap.services_by_job(
                namespace, job_id)

        return self.blocking(req, [("service_registrations", "job", (namespace, job_id))],
                             compute)

    # --- evaluations, allocations, deployments, nodes -----------------------------------------

    def _listing(self, req: Request, table: str, order: str,
                 view: Callable[[dict[str, Any]], Any] = lambda o: o) -> Response | Blocking:
        prefix = req.query.get("prefix", "")
        pred = _predicate(req)
        namespace = self._namespace(req)

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            rows = [o for o in sorted(snap.all(table), key=lambda o: o[order])
                    if o["ID"].startswith(prefix) and (
                        namespace == "*" or o.get("Namespace", namespace) == namespace)
                    and (pred is None or pred(o))]
            return snap.table_index(table), [view(o) for o in rows]

        return self.blocking(req, [(table,)], compute)

    def _one(self, req: Request, table: str, missing: str,
             view: Callable[[dict[str, Any]], Any] = lambda o: o) -> Response | Blocking:
        key = req.params[0]

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            obj = snap.get(table, key)
            if obj is None:
                raise HttpError(404, missing)
            return int(obj["ModifyIndex"]), view(obj)

        return self.blocking(req, [(table, key)], compute)

    def _h_evals(self, req: Request) -> Response | Blocking:
        return self._listing(req, "evals", "CreateIndex")

    def _h_eval(self, req: Request) -> Response | Blocking:
        return self._one(req, "evals", "eval not found")

    def _by_index(self, req: Request, index: str) -> Response | Blocking:
        key = req.params[0]

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            return snap.table_index("allocs"), [_alloc_stub(a) for a in
                                                snap.by("allocs", index, key)]

        return self.blocking(req, [("allocs", index, key)], compute)

    def _h_eval_allocs(self, req: Request) -> Response | Blocking:
        return self._by_index(req, "eval")

    def _h_allocs(self, req: Request) -> Response | Blocking:
        # alloc_endpoint.go:42: `resources` adds AllocatedResources, `task_states=false` drops
        # TaskStates (structs/alloc.go:757 Stub)
        resources = _bool_param(req, "resources")
        task_states = req.query.get("task_states") is None or _bool_param(req, "task_states")
        return self._listing(req, "allocs", "CreateIndex", lambda a: _alloc_stub(
            a, resources=resources, task_states=task_states))

    def _h_alloc(self, req: Request) -> Response | Blocking:
        return self._one(req, "allocs", "alloc not found")

    def _h_alloc_services(self, req: Request) -> Response | Blocking:
        alloc_id = req.params[0]

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            return snap.table_index("service_registrations"), snap.services_by_alloc(alloc_id)

        return self.blocking(req, [("service_registrations", "alloc", alloc_id)], compute)

    def _h_logs(self, req: Request) -> Response:
        """FileSystem.Logs (command/agent/fs_endpoint.go:267, client/fs_endpoint.go)."""
        alloc_id, task = req.params[0], req.query.get("task", "")
        if not alloc_id:
            raise HttpError(400, "must provide a valid alloc id")
        if not task:
            raise HttpError(400, "must provide task name")
        follow, plain = _bool_param(req, "follow"), _bool_param(req, "plain")
        kind = req.query.get("type", "")
        if kind not in ("stdout", "stderr"):
            raise HttpError(400, "must provide log type (stdout/stderr)")
        offset = req.query.get("offset", "") or "0"
        if not re.fullmatch(r"-?\d+", offset):
            raise HttpError(400, f'error parsing offset: strconv.ParseInt: parsing "{offset}": '
                                 "invalid syntax")
        origin = req.query.get("origin") or "start"
        if origin not in ("start", "end"):
            raise HttpError(400, "origin must be start or end")
        alloc = self.snapshot().alloc_by_id(alloc_id)
        if alloc is None:
            raise HttpError(404, f'Unknown allocation "{alloc_id}"')
        group = s.lookup_group(alloc["Job"], alloc["TaskGroup"]) or {}
        if task not in {t["Name"] for t in group.get("Tasks") or ()}:
            raise HttpError(400, f"unknown task name {task!r}")
        data = self.runner.logs(alloc_id, task, kind)
        start = max(0, len(data) - int(offset)) if origin == "end" else min(len(data),
                                                                             int(offset))
        position = [start]
        file = f"alloc/logs/{task}.{kind}.0"

        def frame(chunk: bytes) -> bytes:
            return chunk if plain else json.dumps({
                "Data": base64.b64encode(chunk).decode(), "File": file,
                "Offset": position[0], "FileEvent": ""}).encode() if chunk else b""

        if not follow:
            return Response(raw=frame(data[start:]), content_type="text/plain" if plain
                            else "application/json")

        def more() -> tuple[bytes, bool]:
            current = self.runner.logs(alloc_id, task, kind)
            chunk = current[position[0]:]
            position[0] = len(current)
            state = ((self.snapshot().alloc_by_id(alloc_id) or {}).get("TaskStates") or {}).get(
                task) or {}
            finished = state.get("State") == "dead" and len(
                self.runner.logs(alloc_id, task, kind)) == position[0]
            return frame(chunk), finished

        return Response(stream=more, content_type="text/plain" if plain else "application/json")

    def _h_deployments(self, req: Request) -> Response | Blocking:
        return self._listing(req, "deployment", "CreateIndex")

    def _h_deployment(self, req: Request) -> Response | Blocking:
        return self._one(req, "deployment", "deployment not found")

    def _h_deployment_allocs(self, req: Request) -> Response | Blocking:
        return self._by_index(req, "deployment")

    def _deployment_body(self, req: Request) -> dict[str, Any]:
        """command/agent/deployment_endpoint.go: a body naming the deployment of the path."""
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed")
        if not body.get("DeploymentID"):
            raise HttpError(400, "DeploymentID must be specified")
        if body["DeploymentID"] != req.params[0]:
            raise HttpError(400, "Deployment ID does not match")
        return body

    def _h_promote(self, req: Request) -> Response:
        body = self._deployment_body(req)
        groups = None if body.get("All") or not body.get("Groups") else list(body["Groups"])
        result = self.server.deployments.promote(req.params[0], groups)
        return self.answer(result, result["Index"])

    def _h_fail(self, req: Request) -> Response:
        result = self.server.deployments.fail(req.params[0])
        return self.answer(result, result["Index"])

    def _h_pause(self, req: Request) -> Response:
        body = self._deployment_body(req)
        result = self.server.deployments.pause(req.params[0], bool(body.get("Pause")))
        return self.answer(result, result["Index"])

    def _h_alloc_health(self, req: Request) -> Response:
        body = self._deployment_body(req)
        result = self.server.deployments.set_alloc_health(
            req.params[0], list(body.get("HealthyAllocationIDs") or []),
            list(body.get("UnhealthyAllocationIDs") or []))
        return self.answer(result, result["Index"])

    def _h_alloc_stop(self, req: Request) -> Response:
        alloc_id = req.params[0]

        def apply(txn: Any) -> dict[str, Any]:
            alloc = txn.alloc_by_id(alloc_id)
            if alloc is None:
                raise HttpError(404, "alloc not found")
            transition = {**(alloc.get("DesiredTransition") or {}), "Migrate": True,
                          "NoShutdownDelay": req.flag("no_shutdown_delay") or None}
            txn.upsert_alloc(s.evolve(alloc, DesiredTransition=transition,
                                      ModifyTime=s.now_ns()))
            job = txn.job_by_id(alloc["Namespace"], alloc["JobID"])
            ev = txn.upsert_eval(s.new_eval(job or {"Namespace": alloc["Namespace"],
                                                    "ID": alloc["JobID"]},
                                            s.TRIGGER_ALLOC_STOP))
            return {"EvalID": ev["ID"], "Index": txn.index}

        result = self.server.write(apply)
        return self.answer(result, result["Index"])

    def _h_nodes(self, req: Request) -> Response | Blocking:
        resources, os_name = _bool_param(req, "resources"), _bool_param(req, "os")

        def stub(node: dict[str, Any]) -> dict[str, Any]:
            """structs.Node.Stub (structs.go:2296) with NodeStubFields (http.go:1132)."""
            attributes = node.get("Attributes") or {}
            out = {k: node.get(k) for k in (
                "ID", "Name", "Datacenter", "NodeClass", "NodePool",
                "SchedulingEligibility", "Status", "StatusDescription", "Drivers", "Version",
                "CreateIndex", "ModifyIndex", "LastDrain")} | {
                "Address": attributes.get("unique.network.ip-address"),
                "Drain": node.get("DrainStrategy") is not None}
            if resources:
                out["NodeResources"] = node.get("NodeResources")
                out["ReservedResources"] = node.get("ReservedResources")
            if os_name:
                out["Attributes"] = {"os.name": attributes.get("os.name", "")}
            return out

        return self._listing(req, "nodes", "Name", stub)

    def _node_id(self, ident: str) -> str:
        snap = self.snapshot()
        node = snap.node_by_id(ident) or next((n for n in snap.nodes() if n["Name"] == ident),
                                              None)
        if node is None:
            raise HttpError(404, "node not found")
        return str(node["ID"])

    def _h_node(self, req: Request) -> Response | Blocking:
        req.params = (self._node_id(req.params[0]),)
        return self._one(req, "nodes", "node not found")

    def _h_node_allocs(self, req: Request) -> Response | Blocking:
        node_id = self._node_id(req.params[0])

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            return snap.table_index("allocs"), snap.allocs_by_node(node_id)

        return self.blocking(req, [("allocs", "node", node_id)], compute)

    # --- Nomad-native services (service_registration_endpoint.go) ------------------------------

    def _h_services(self, req: Request) -> Response | Blocking:
        namespace = self._namespace(req)
        pred = _predicate(req)

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            tags: dict[str, dict[str, list[str]]] = {}
            for reg in snap.all("service_registrations"):
                if namespace != "*" and reg["Namespace"] != namespace:
                    continue
                if pred is not None and not pred(reg):
                    continue
                service = tags.setdefault(reg["Namespace"], {}).setdefault(
                    reg["ServiceName"], [])
                service.extend(t for t in reg.get("Tags") or () if t not in service)
            out = [{"Namespace": ns, "Services": [{"ServiceName": name, "Tags": sorted(t)}
                                                  for name, t in sorted(names.items())]}
                   for ns, names in sorted(tags.items())]
            return snap.table_index("service_registrations"), out

        return self.blocking(req, [("service_registrations",)], compute)

    def _h_service(self, req: Request) -> Response | Blocking:
        parts = req.params[0].split("/")
        namespace = self._namespace(req)
        if len(parts) == 2:
            if req.method != "DELETE":
                raise HttpError(405, "Invalid method")
            if not parts[1]:
                raise HttpError(400, "missing service id")
            removed = self.server.write(lambda txn: (txn.delete_service(parts[1]), txn.index))
            if not removed[0]:
                raise HttpError(500, "service registration not found")
            return self.answer(None, removed[1])
        if len(parts) != 1:
            raise HttpError(400, "invalid URI")
        if req.method != "GET":
            raise HttpError(405, "Invalid method")
        name = parts[0]
        if not name:
            raise HttpError(400, "missing service name")
        pred = _predicate(req)
        choose = req.query.get("choose", "")

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            regs = [r for r in snap.services_by_name(namespace, name)
                    if pred is None or pred(r)]
            if choose:
                regs = _choose(regs, choose)
            return snap.table_index("service_registrations"), regs

        return self.blocking(req, [("service_registrations", "name", (namespace, name))],
                             compute)


    # --- Variables (command/agent/variable_endpoint.go, nomad/variables_endpoint.go) ---------

    def _h_vars(self, req: Request) -> Response | Blocking:
        namespace = self._namespace(req)
        prefix = req.query.get("prefix", "")

        def compute() -> tuple[int, Any]:
            snap = self.snapshot()
            rows = sorted((v for v in snap.all("variables") if v["Path"].startswith(prefix)
                           and (namespace == "*" or v["Namespace"] == namespace)),
                          key=lambda v: (v["Namespace"], v["Path"]))
            return snap.table_index("variables"), [
                {k: v[k] for k in ("Namespace", "Path", "CreateIndex", "CreateTime",
                                   "ModifyIndex", "ModifyTime")} for v in rows]

        return self.blocking(req, [("variables",)], compute)

    def _h_var(self, req: Request) -> Response | Blocking:
        path = req.params[0]
        if not path:
            raise HttpError(400, "missing variable path")
        namespace = self._namespace(req)
        if req.method == "GET":
            def compute() -> tuple[int, Any]:
                snap = self.snapshot()
                var = snap.variable(namespace, path)
                if var is None:
                    raise HttpError(404, "variable not found")
                return int(var["ModifyIndex"]), var

            return self.blocking(req, [("variables", (namespace, path))], compute)
        cas = _cas(req)
        if req.method == "DELETE":
            conflict, index = self.server.write(
                lambda txn: (txn.delete_variable(namespace, path, cas), txn.index))
            if conflict is not None:
                return Response(conflict, status=409, headers=self.index_headers(
                    int(conflict["ModifyIndex"])))
            return self.answer(None, index)
        body = _body_object(req)
        items = body.get("Items")
        if not items:
            raise HttpError(400, "variable missing required Items object")
        if not isinstance(items, dict) or not all(isinstance(v, str) for v in items.values()):
            raise HttpError(400, "json: cannot unmarshal into Go struct field "
                                 "VariableDecrypted.Items of type string")
        namespace = str(body.get("Namespace") or namespace)
        problem = _variable_problem(namespace, path, items)
        if problem:
            raise HttpError(400, problem)
        stored, conflict, index = self.server.write(
            lambda txn: (*txn.set_variable(namespace, path, items, cas), txn.index))
        if conflict is not None:
            return Response(conflict, status=409, headers=self.index_headers(
                int(conflict["ModifyIndex"])))
        return self.answer(stored, index)


_VARIABLE_PATH = re.compile(r"^[a-zA-Z0-9\-_~/]{1,128}$")


def _cas(req: Request) -> int | None:
    """parseCAS (variable_endpoint.go:271)."""
    text = req.query.get("cas", "")
    if not text:
        return None
    if not text.isdigit():
        raise HttpError(400, f'can not parse cas: strconv.ParseUint: parsing "{text}": '
                             "invalid syntax")
    return int(text)


def _variable_problem(namespace: str, path: str, items: Mapping[str, str]) -> str:
    """VariableDecrypted.Validate and ValidatePath (nomad/structs/variables.go:368, :413)."""
    if namespace == "*":
        return 'can not target wildcard ("*")namespace'
    if sum(len(k) + len(v) for k, v in items.items()) > 64 * 1024:
        return "variables are limited to 64KiB in total size"
    if not _VARIABLE_PATH.match(path):
        return f'invalid path "{path}"'
    parts = path.split("/")
    if parts[0] != "nomad":
        return ""
    if len(parts) == 1:
        return ('"nomad" is a reserved top-level directory path, but you may write variables '
                'to "nomad/jobs", "nomad/job-templates", "nomad/sentinel", or below')
    if parts[1] in ("jobs", "sentinel") or (parts[1] == "job-templates" and len(parts) == 3):
        return ""
    if parts[1] == "job-templates":
        return ('"nomad/job-templates" is a reserved directory path, but you may write '
                'variables at the level below it, for example, '
                '"nomad/job-templates/template-name"')
    return ('only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths '
            'under the top-level "nomad" directory')


def _choose(regs: list[dict[str, Any]], parameter: str) -> list[dict[str, Any]]:
    """ServiceRegistration.choose: rendezvous hashing on `<n>|<key>`."""
    count, sep, key = parameter.partition("|")
    if not sep or not count.isdigit() or not key:
        raise HttpError(400, "failed to choose services: failed to parse choose parameter")
    ranked = sorted(regs, key=lambda r: hashlib.sha256(
        f"{key}{r['ID']}".encode()).hexdigest())
    return ranked[:int(count)]


def _alloc_stub(alloc: Mapping[str, Any], *, resources: bool = False,
                task_states: bool = True) -> dict[str, Any]:
    """structs.Allocation.Stub (AllocListStub)."""
    stub = {k: alloc.get(k) for k in _ALLOC_STUB_FIELDS}
    stub["JobType"] = alloc["Job"]["Type"]
    if resources:
        stub["AllocatedResources"] = alloc.get("AllocatedResources")
    if not task_states:
        stub["TaskStates"] = None
    return stub


def _bool_param(req: Request, name: str) -> bool:
    """A strconv.ParseBool query parameter (400 with Go's text when it is not one)."""
    text = req.query.get(name, "")
    if not text:
        return False
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise HttpError(400, f"failed to parse {name} field to boolean: strconv.ParseBool: "
                         f'parsing "{text}": invalid syntax')


def _body_object(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    body = decode_json(req.body)
    if not isinstance(body, dict):
        raise HttpError(400, "Request decode failed")
    return body


def _predicate(req: Request) -> Any:
    text = req.query.get("filter")
    if not text:
        return None
    try:
        return compile_filter(text)
    except FilterError as exc:
        raise HttpError(400, f"failed to read filter expression: {exc}") from exc

