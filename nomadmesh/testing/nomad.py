"""An in-process emulator of the Nomad HTTP API, backed by a simulated scheduler and nodes.

`NomadEmulator` answers the job, evaluation, allocation, deployment, node and status endpoints
with Nomad's paths, JSON shapes, `text/plain` errors and blocking-query headers; see
docs/emulators.md for what is emulated and what is not.
"""

from __future__ import annotations

import base64
import copy
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nomadmesh.errors import InputError
from nomadmesh.testing import _jobspec
from nomadmesh.testing._diff import diff_job
from nomadmesh.testing._filter import FilterError, compile_filter
from nomadmesh.testing._http import (
    HttpEmulator,
    HttpError,
    Request,
    Response,
    bearer_token,
)
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.scheduler import (
    ZERO_TIME,
    Cluster,
    NodeSpec,
    TaskRunner,
    Timings,
)

_JOB_ACTIONS = ("versions", "summary", "allocations", "evaluations", "deployment",
                "deployments", "evaluate", "plan", "dispatch", "periodic/force", "revert",
                "stable", "scale")
_WRITE = "PUT POST"


class NomadEmulator(HttpEmulator):
    """A Nomad server+clients on loopback speaking the real HTTP API (see docs/emulators.md)."""

    default_port = 4646

    def __init__(self, host: str = "127.0.0.1", port: int = 0, consul: ConsulEmulator | None = None,
                 acl: bool | str = False, tls: ssl.SSLContext | tuple[str, str] | None = None, *,
                 nodes: Iterable[NodeSpec] | None = None, timings: Timings | None = None,
                 runner: TaskRunner | None = None, region: str = "global",
                 datacenter: str = "dc1") -> None:
        super().__init__(host, port, tls)
        self.region = region
        self.datacenter = datacenter
        self.acl_token: str | None = (acl if isinstance(acl, str) else str(uuid.uuid4())
                                      ) if acl else None
        self.cluster = Cluster(self.store, nodes=nodes, timings=timings, runner=runner,
                               consul=consul, region=region)
        self._routes()

    @property
    def timings(self) -> Timings:
        """Simulated delays (start, healthy_after, ...); change them at any time."""
        return self.cluster.timings

    def start(self) -> NomadEmulator:
        """Bind (the same port again after a stop), start the scheduler clock; returns self."""
        super().start()
        return self

    def __enter__(self) -> NomadEmulator:
        return self.start()

    def _started(self) -> None:
        self.cluster.clock.start(f"NomadEmulator-clock-{self.port}")

    def _stopping(self) -> None:
        self.cluster.clock.stop()

    # --- Python-side API ---------------------------------------------------------------------

    def script_task(self, job_id: str, group: str, task: str, *, fail: str, exit_code: int = 1,
                    message: str = "", version: int | None = None, times: int | None = None,
                    namespace: str = "default") -> None:
        """Script a task failure: "driver", "exit" (with exit_code) or "unhealthy" (checks)."""
        self.cluster.script_task(job_id, group, task, fail=fail, exit_code=exit_code,
                                 message=message, version=version, times=times,
                                 namespace=namespace)

    def clear_scripts(self) -> None:
        """Forget every scripted failure."""
        self.cluster.clear_scripts()

    def register(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Register a job (Nomad JSON) from Python, as `POST /v1/jobs` does."""
        return self.cluster.register(job)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate()` (called under the state lock) is true, woken on changes."""
        deadline = time.monotonic() + timeout
        with self.store.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.store.changed.wait(remaining)
            return True

    def deployment_status(self, job_id: str, namespace: str = "default") -> str | None:
        """Status of the job's latest deployment (None when it has none)."""
        with self.store.lock:
            dep = self.cluster.latest_deployment(namespace, job_id)
            return None if dep is None else str(dep["Status"])

    # --- HTTP plumbing ------------------------------------------------------------------------

    def index_headers(self, index: int) -> dict[str, str]:
        """Nomad's blocking-query headers."""
        return {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true",
                "X-Nomad-LastContact": "0"}

    def authorize(self, req: Request) -> None:
        """With ACLs on, every endpoint but /v1/status needs the management token."""
        region = req.query.get("region")
        if region and region != self.region:
            raise HttpError(500, "No path to region")
        if self.acl_token is None or req.path.startswith("/v1/status/"):
            return
        token = bearer_token(req, "X-Nomad-Token")
        if not token:
            raise HttpError(403, "Permission denied")
        if token != self.acl_token:
            raise HttpError(403, "ACL token not found")

    def _answer(self, body: Any, index: int) -> Response:
        return Response(body, headers=self.index_headers(index))

    def _blocking(self, req: Request, index_of: Callable[[], int],
                  build: Callable[[], Any]) -> Response:
        with self.store.lock:
            idx = self.store.block(req, index_of)
            return self._answer(build(), idx)

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
        r("GET", "/v1/allocation/([^/]+)", self._h_alloc)
        r("GET", "/v1/deployments", self._h_deployments)
        r("GET", "/v1/deployment/allocations/([^/]+)", self._h_deployment_allocs)
        r(_WRITE, "/v1/deployment/promote/([^/]+)", self._h_promote)
        r(_WRITE, "/v1/deployment/fail/([^/]+)", self._h_fail)
        r(_WRITE, "/v1/deployment/pause/([^/]+)", self._h_pause)
        r(_WRITE, "/v1/allocation/([^/]+)/stop", self._h_alloc_stop)
        r("GET", "/v1/deployment/([^/]+)", self._h_deployment)
        r("GET", "/v1/client/fs/logs/([^/]+)", self._h_logs)
        r("GET", "/v1/nodes", self._h_nodes)
        r("GET", "/v1/node/([^/]+)/allocations", self._h_node_allocs)
        r("GET", "/v1/node/([^/]+)", self._h_node)

    # --- agent ----------------------------------------------------------------------------------

    def _h_agent_self(self, req: Request) -> Response:
        return Response({
            "config": {"Region": self.region, "Datacenter": self.datacenter,
                       "NodeName": "nomad-emulator", "Version": {"Version": "1.8.0"},
                       "ACL": {"Enabled": self.acl_token is not None},
                       "TLSConfig": {"EnableHTTP": self.tls_context is not None}},
            "member": {"Name": f"nomad-emulator.{self.region}", "Addr": self.host,
                       "Port": 4648, "Status": "alive",
                       "Tags": {"region": self.region, "dc": self.datacenter, "role": "nomad",
                                "build": "1.8.0"}},
            "stats": {"nomad": {"leader": "true", "server": "true"}},
        })

    def _h_namespaces(self, req: Request) -> Response:
        with self.store.lock:
            names = sorted({"default", *(ns for ns, _ in self.cluster.jobs)})
            return self._answer([{"Name": n, "Description": "", "CreateIndex": 1,
                                  "ModifyIndex": 1} for n in names], self.store.index)

    # --- jobs -------------------------------------------------------------------------------------

    def _namespace(self, req: Request) -> str:
        return req.query.get("namespace") or "default"

    def _h_jobs(self, req: Request) -> Response:
        if req.method != "GET":
            return self._register(req, "")
        namespace = self._namespace(req)
        prefix = req.query.get("prefix", "")
        pred = _predicate(req)
        with_meta = req.flag("meta")
        cluster = self.cluster

        def build() -> list[dict[str, Any]]:
            out = []
            for (ns, job_id), job in sorted(cluster.jobs.items()):
                if (namespace != "*" and ns != namespace) or not job_id.startswith(prefix):
                    continue
                stub = self._job_stub(job)
                if pred is not None and not pred({**stub, "Meta": job.get("Meta") or {}}):
                    continue
                if with_meta:
                    stub["Meta"] = job.get("Meta")
                out.append(stub)
            return out

        return self._blocking(req, lambda: cluster.tables["jobs"], build)

    def _job_stub(self, job: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ID": job["ID"], "ParentID": job.get("ParentID", ""), "Name": job["Name"],
            "Namespace": job["Namespace"], "Datacenters": job["Datacenters"],
            "NodePool": job.get("NodePool", "default"), "Multiregion": None,
            "Type": job["Type"], "Priority": job["Priority"],
            "Periodic": bool(job.get("Periodic")),
            "ParameterizedJob": bool(job.get("ParameterizedJob")), "Stop": job["Stop"],
            "Status": job["Status"], "StatusDescription": job.get("StatusDescription", ""),
            "JobSummary": self.cluster.summary(job), "CreateIndex": job["CreateIndex"],
            "ModifyIndex": job["ModifyIndex"], "JobModifyIndex": job["JobModifyIndex"],
            "SubmitTime": job["SubmitTime"],
        }

    def _register(self, req: Request, url_id: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "json: cannot unmarshal into Go value of type "
                                 "api.JobRegisterRequest")
        job = body.get("Job")
        if not isinstance(job, dict):
            raise HttpError(400, "Job must be specified")
        if not job.get("ID"):
            raise HttpError(400, "Job ID hasn't been provided")
        if url_id and job["ID"] != url_id:
            raise HttpError(400, "Job ID does not match name")
        job = self._with_namespace(req, job)
        result = self.cluster.register(
            job, enforce_index=bool(body.get("EnforceIndex")),
            job_modify_index=int(body.get("JobModifyIndex") or 0),
            preserve_counts=bool(body.get("PreserveCounts")))
        return self._answer(result, result["Index"])

    def _with_namespace(self, req: Request, job: dict[str, Any]) -> dict[str, Any]:
        if not job.get("Namespace") and req.query.get("namespace"):
            job = {**job, "Namespace": req.query["namespace"]}
        if not job.get("Region") and req.query.get("region"):
            job = {**job, "Region": req.query["region"]}
        return job

    def _h_parse(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("JobHCL"), str):
            raise HttpError(400, "Job HCL must be specified")
        variables = body.get("Variables")
        if isinstance(variables, str):
            variables = _parse_var_lines(variables)
        try:
            job = _jobspec.parse_hcl(body["JobHCL"], variables or None,
                                     bool(body.get("Canonicalize")))
        except InputError as exc:
            raise HttpError(400, str(exc)) from exc
        return Response(job)

    def _h_validate(self, req: Request) -> Response:
        body = req.json()
        job = body.get("Job") if isinstance(body, dict) else None
        if not isinstance(job, dict):
            raise HttpError(400, "Job must be specified")
        errors = _jobspec.problems(job)
        return Response({"DriverConfigValidated": True, "ValidationErrors": errors or None,
                         "Error": _jobspec.multierror(errors) if errors else "",
                         "Warnings": ""})

    def _h_job(self, req: Request) -> Response:
        rest = req.params[0]
        for action in _JOB_ACTIONS:
            if rest.endswith("/" + action):
                return self._job_action(req, rest[: -len(action) - 1], action)
        job_id = rest
        namespace = self._namespace(req)
        if req.method == "DELETE":
            result = self.cluster.deregister(namespace, job_id, req.flag("purge"))
            return self._answer(result, result["Index"])
        if req.method != "GET":
            return self._register(req, job_id)
        cluster = self.cluster

        def index() -> int:
            job = cluster.jobs.get((namespace, job_id))
            return int(job["ModifyIndex"]) if job else cluster.tables["jobs"]

        return self._blocking(req, index, lambda: copy.deepcopy(cluster.job(namespace, job_id)))

    def _job_action(self, req: Request, job_id: str, action: str) -> Response:
        namespace = self._namespace(req)
        cluster = self.cluster
        reads: dict[str, tuple[str, Callable[[], Any]]] = {
            "versions": ("jobs", lambda: self._versions(namespace, job_id, req.flag("diffs"))),
            "summary": ("allocs", lambda: cluster.summary(cluster.job(namespace, job_id))),
            "allocations": ("allocs", lambda: [
                _alloc_stub(a) for a in cluster.job_allocs(namespace, job_id)
                if req.flag("all") or a["Job"]["CreateIndex"] == cluster.job(
                    namespace, job_id)["CreateIndex"]]),
            "evaluations": ("evals", lambda: [
                copy.deepcopy(e) for e in sorted(cluster.evals.values(),
                                                 key=lambda e: -e["CreateIndex"])
                if e["JobID"] == job_id and e["Namespace"] == namespace]),
            "deployments": ("deployment", lambda: [
                copy.deepcopy(d) for d in sorted(cluster.deployments.values(),
                                                 key=lambda d: -d["CreateIndex"])
                if d["JobID"] == job_id and d["Namespace"] == namespace]),
            "deployment": ("deployment", lambda: copy.deepcopy(
                cluster.latest_deployment(namespace, job_id))),
        }
        if action in reads and req.method == "GET":
            table, build = reads[action]
            if action in ("versions", "summary"):
                with self.store.lock:
                    cluster.job(namespace, job_id)
            return self._blocking(req, lambda: max(cluster.tables[table],
                                                   cluster.tables["jobs"]), build)
        if action in reads or req.method == "GET":
            raise HttpError(405, "Invalid method")
        body = req.json() if req.body.strip() else {}
        if not isinstance(body, dict):
            raise HttpError(400, "Request decode failed")
        handlers: dict[str, Callable[[str, str, dict[str, Any]], Response]] = {
            "evaluate": self._evaluate, "plan": self._plan, "dispatch": self._dispatch,
            "periodic/force": self._periodic_force, "revert": self._revert,
            "stable": self._stable, "scale": self._scale,
        }
        return handlers[action](namespace, job_id, body)

    def _versions(self, namespace: str, job_id: str, diffs: bool) -> dict[str, Any]:
        self.cluster.job(namespace, job_id)
        versions = [copy.deepcopy(v) for v in
                    reversed(self.cluster.versions.get((namespace, job_id), []))]
        out: dict[str, Any] = {"Versions": versions, "Diffs": None}
        if diffs:
            out["Diffs"] = [diff_job(versions[i + 1], versions[i], {})
                            for i in range(len(versions) - 1)]
        return out

    def _evaluate(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        with self.store.lock:
            job = self.cluster.job(namespace, job_id)
            if job.get("Periodic") or job.get("ParameterizedJob"):
                raise HttpError(500, "can't evaluate periodic or parameterized job")
            index = self.store.bump()
            ev = self.cluster.create_eval(job, "job-register", index)
            return self._answer({"EvalID": ev["ID"], "EvalCreateIndex": index,
                                 "JobModifyIndex": job["JobModifyIndex"], "Index": index},
                                index)

    def _plan(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        job = body.get("Job")
        if not isinstance(job, dict):
            raise HttpError(400, "Job must be specified")
        if job.get("ID") and job["ID"] != job_id:
            raise HttpError(400, "Job ID does not match")
        job = {**job, "ID": job_id, "Namespace": job.get("Namespace") or namespace}
        stored, submitted, updates, failed = self.cluster.plan(job)
        diff = None
        if body.get("Diff"):
            names = {"Place": "create", "Stop": "destroy", "InPlaceUpdate": "in-place update",
                     "DestructiveUpdate": "create/destroy update", "Canary": "canary",
                     "Ignore": "ignore", "Migrate": "migrate"}
            diff = diff_job(stored, submitted, {
                g: {names[k]: v for k, v in counts.items() if k in names}
                for g, counts in updates.items()})
        index = self.store.index
        return self._answer({
            "Annotations": {"DesiredTGUpdates": updates, "PreemptedAllocs": None},
            "FailedTGAllocs": failed or None,
            "JobModifyIndex": stored["JobModifyIndex"] if stored else 0,
            "CreatedEvals": None, "Diff": diff, "NextPeriodicLaunch": ZERO_TIME,
            "Warnings": "", "Index": index,
        }, index)

    def _dispatch(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        cluster = self.cluster
        with self.store.lock:
            parent = cluster.job(namespace, job_id)
            params = parent.get("ParameterizedJob")
            if not params:
                raise HttpError(500, f'Specified job "{job_id}" is not a parameterized job')
            if parent["Stop"]:
                raise HttpError(500, f'Specified job "{job_id}" is stopped')
            meta = dict(body.get("Meta") or {})
            missing = [k for k in params.get("MetaRequired") or [] if k not in meta]
            if missing:
                raise HttpError(500, f"Dispatch did not provide required meta keys: {missing}")
            allowed = set(params.get("MetaRequired") or []) | set(params.get("MetaOptional") or [])
            unpermitted = sorted(k for k in meta if k not in allowed)
            if unpermitted:
                raise HttpError(500, f"Dispatch specified unpermitted meta keys: {unpermitted}")
            payload = body.get("Payload") or ""
            if params.get("Payload") == "required" and not payload:
                raise HttpError(500, "Payload is not provided but required by parameterized job")
            if params.get("Payload") == "forbidden" and payload:
                raise HttpError(500, "Payload provided but forbidden by parameterized job")
            token = str(body.get("IdempotencyToken") or "")
            if token:
                previous = cluster.dispatch_tokens.get((namespace, job_id, token))
                child = cluster.jobs.get((namespace, previous)) if previous else None
                if child is not None and child["Status"] != "dead":
                    return self._answer({
                        "Index": self.store.index, "JobCreateIndex": child["CreateIndex"],
                        "EvalID": "", "EvalCreateIndex": 0, "DispatchedJobID": child["ID"],
                    }, self.store.index)
            child_id = f"{job_id}/dispatch-{int(time.time())}-{uuid.uuid4().hex[:8]}"
            spec = _jobspec.spec_of(parent)
            spec.update(ID=child_id, Name=child_id, ParentID=job_id, Dispatched=True,
                        Meta={**(parent.get("Meta") or {}), **meta},
                        Payload=base64.b64encode(base64.b64decode(payload)).decode()
                        if payload else None)
            result = cluster.register(spec)
            if token:
                cluster.dispatch_tokens[(namespace, job_id, token)] = child_id
            child = cluster.job(namespace, child_id)
            return self._answer({
                "Index": result["Index"], "JobCreateIndex": child["CreateIndex"],
                "EvalID": result["EvalID"], "EvalCreateIndex": result["EvalCreateIndex"],
                "DispatchedJobID": child_id,
            }, result["Index"])

    def _periodic_force(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        with self.store.lock:
            parent = self.cluster.job(namespace, job_id)
            if not parent.get("Periodic"):
                raise HttpError(500, "can't force run non-periodic job")
            child_id = f"{job_id}/periodic-{int(time.time())}"
            spec = _jobspec.spec_of(parent)
            spec.update(ID=child_id, Name=child_id, ParentID=job_id, Periodic=None)
            result = self.cluster.register(spec)
            return self._answer({"EvalID": result["EvalID"],
                                 "EvalCreateIndex": result["EvalCreateIndex"],
                                 "Index": result["Index"]}, result["Index"])

    def _revert(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        if "JobVersion" not in body:
            raise HttpError(400, "JobVersion must be specified")
        enforce = body.get("EnforcePriorVersion")
        result = self.cluster.revert(namespace, job_id, int(body["JobVersion"]),
                                     None if enforce is None else int(enforce))
        return self._answer(result, result["Index"])

    def _stable(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        jmi = self.cluster.set_stable(namespace, job_id, int(body.get("JobVersion") or 0),
                                      bool(body.get("Stable")))
        index = self.store.index
        return self._answer({"JobModifyIndex": jmi, "Index": index}, index)

    def _scale(self, namespace: str, job_id: str, body: dict[str, Any]) -> Response:
        target = body.get("Target") or {}
        group_name = target.get("Group")
        count = body.get("Count")
        with self.store.lock:
            job = self.cluster.job(namespace, job_id)
            spec = copy.deepcopy(_jobspec.spec_of(job))
            group = next((g for g in spec["TaskGroups"] if g["Name"] == group_name), None)
            if group is None:
                raise HttpError(400, f'Task group "{group_name}" specified for scaling does '
                                     "not exist in job")
            if count is not None:
                group["Count"] = int(count)
            result = self.cluster.register(spec, triggered_by="job-scaling")
            return self._answer(result, result["Index"])

    # --- evaluations, allocations, deployments, nodes -----------------------------------------

    def _h_evals(self, req: Request) -> Response:
        cluster = self.cluster
        prefix = req.query.get("prefix", "")
        pred = _predicate(req)
        return self._blocking(req, lambda: cluster.tables["evals"], lambda: [
            copy.deepcopy(e) for e in sorted(cluster.evals.values(),
                                             key=lambda e: e["CreateIndex"])
            if e["ID"].startswith(prefix) and (pred is None or pred(e))
            and _in_namespace(req, e)])

    def _one(self, req: Request, items: Callable[[], dict[str, Any]], table: str,
             missing: str) -> Response:
        """A blocking read of the object whose ID is in the path; 404 `missing` if it is gone."""
        key = req.params[0]
        cluster = self.cluster

        def build() -> Any:
            item = items().get(key)
            if item is None:
                raise HttpError(404, missing)
            return copy.deepcopy(item)

        return self._blocking(req, lambda: _modify_index(items().get(key), cluster.tables[table]),
                              build)

    def _h_eval(self, req: Request) -> Response:
        return self._one(req, lambda: self.cluster.evals, "evals", "eval not found")

    def _h_eval_allocs(self, req: Request) -> Response:
        eval_id = req.params[0]
        cluster = self.cluster
        return self._blocking(req, lambda: cluster.tables["allocs"], lambda: [
            _alloc_stub(a) for a in cluster.allocs.values() if a["EvalID"] == eval_id])

    def _h_allocs(self, req: Request) -> Response:
        cluster = self.cluster
        prefix = req.query.get("prefix", "")
        pred = _predicate(req)
        return self._blocking(req, lambda: cluster.tables["allocs"], lambda: [
            _alloc_stub(a) for a in sorted(cluster.allocs.values(),
                                           key=lambda a: a["CreateIndex"])
            if a["ID"].startswith(prefix) and (pred is None or pred(a))
            and _in_namespace(req, a)])

    def _h_alloc(self, req: Request) -> Response:
        return self._one(req, lambda: self.cluster.allocs, "allocs", "alloc not found")

    def _h_logs(self, req: Request) -> Response:
        alloc_id, task, kind = req.params[0], req.query.get("task", ""), req.query.get("type", "")
        with self.store.lock:
            alloc = self.cluster.allocs.get(alloc_id)
            if alloc is None:
                raise HttpError(404, "alloc not found")
            if task not in alloc["TaskStates"]:
                raise HttpError(400, f"unknown task name {task!r}")
        if kind not in ("stdout", "stderr"):
            raise HttpError(400, "must include a type: stdout or stderr")
        return Response(raw=self.cluster.runner.logs(alloc_id, task, kind),
                        content_type="text/plain")

    def _h_deployments(self, req: Request) -> Response:
        cluster = self.cluster
        prefix = req.query.get("prefix", "")
        return self._blocking(req, lambda: cluster.tables["deployment"], lambda: [
            copy.deepcopy(d) for d in sorted(cluster.deployments.values(),
                                             key=lambda d: d["CreateIndex"])
            if d["ID"].startswith(prefix) and _in_namespace(req, d)])

    def _h_deployment(self, req: Request) -> Response:
        return self._one(req, lambda: self.cluster.deployments, "deployment",
                         "deployment not found")

    def _h_deployment_allocs(self, req: Request) -> Response:
        dep_id = req.params[0]
        cluster = self.cluster
        return self._blocking(req, lambda: cluster.tables["allocs"], lambda: [
            _alloc_stub(a) for a in cluster.allocs.values() if a["DeploymentID"] == dep_id])

    def _h_promote(self, req: Request) -> Response:
        body = req.json() if req.body.strip() else {}
        groups = None if body.get("All") or not body.get("Groups") else list(body["Groups"])
        result = self.cluster.promote(req.params[0], groups)
        return self._answer(result, result["Index"])

    def _h_fail(self, req: Request) -> Response:
        result = self.cluster.fail_deployment(req.params[0])
        return self._answer(result, result["Index"])

    def _h_pause(self, req: Request) -> Response:
        body = req.json() if req.body.strip() else {}
        result = self.cluster.pause_deployment(req.params[0], bool(body.get("Pause")))
        return self._answer(result, result["Index"])

    def _h_alloc_stop(self, req: Request) -> Response:
        result = self.cluster.stop_allocation(req.params[0])
        return self._answer(result, result["Index"])

    def _h_nodes(self, req: Request) -> Response:
        cluster = self.cluster

        def build() -> list[dict[str, Any]]:
            out = []
            for node in cluster.nodes:
                full = cluster.node_json(node)
                out.append({k: full[k] for k in (
                    "ID", "Name", "Datacenter", "NodeClass", "NodePool", "Drain",
                    "SchedulingEligibility", "Status", "StatusDescription", "Drivers",
                    "CreateIndex", "ModifyIndex")} | {"Address": node.address,
                                                      "Version": "1.8.0"})
            return out

        return self._blocking(req, lambda: cluster.tables["nodes"], build)

    def _node_by_id(self, node_id: str) -> NodeSpec:
        node = next((n for n in self.cluster.nodes if n.id == node_id or n.name == node_id),
                    None)
        if node is None:
            raise HttpError(404, "node not found")
        return node

    def _h_node(self, req: Request) -> Response:
        node = self._node_by_id(req.params[0])
        return self._blocking(req, lambda: self.cluster.tables["nodes"],
                              lambda: self.cluster.node_json(node))

    def _h_node_allocs(self, req: Request) -> Response:
        node = self._node_by_id(req.params[0])
        cluster = self.cluster
        return self._blocking(req, lambda: cluster.tables["allocs"], lambda: [
            copy.deepcopy(a) for a in cluster.allocs.values() if a["NodeID"] == node.id])


_STUB_FIELDS = (
    "ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobVersion",
    "TaskGroup", "AllocatedResources", "DesiredStatus", "DesiredDescription", "ClientStatus",
    "ClientDescription", "DesiredTransition", "TaskStates", "DeploymentStatus",
    "FollowupEvalID", "RescheduleTracker", "PreviousAllocation", "NextAllocation",
    "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime", "NetworkStatus",
)


def _alloc_stub(alloc: Mapping[str, Any]) -> dict[str, Any]:
    stub = {k: copy.deepcopy(alloc.get(k)) for k in _STUB_FIELDS}
    stub["JobType"] = alloc["Job"]["Type"]
    stub["AllocatedResources"] = None
    return stub


def _modify_index(obj: Mapping[str, Any] | None, table: int) -> int:
    return int(obj["ModifyIndex"]) if obj is not None else table


def _in_namespace(req: Request, obj: Mapping[str, Any]) -> bool:
    namespace = req.query.get("namespace") or "default"
    return namespace == "*" or obj.get("Namespace") == namespace


def _predicate(req: Request) -> Any:
    text = req.query.get("filter")
    if not text:
        return None
    try:
        return compile_filter(text)
    except FilterError as exc:
        raise HttpError(400, f"failed to read filter expression: {exc}") from exc


def _parse_var_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out
