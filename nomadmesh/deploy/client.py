"""`NomadClient`: validate, plan, register, run and watch, stop, inspect, revert, dispatch, promote."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from nomadmesh.deploy import diagnose
from nomadmesh.deploy._http import NomadHttp, Reply, Retry, blocking_params, blocking_timeout
from nomadmesh.deploy.config import NomadConfig
from nomadmesh.deploy.consul import ServiceHealth
from nomadmesh.deploy.diagnose import Diagnosis, Finding
from nomadmesh.deploy.plan import Plan
from nomadmesh.deploy.results import (
    META_DIGEST,
    META_SOURCE,
    META_TOOL,
    META_VERSION,
    Allocation,
    DeployEvent,
    DeployResult,
    DispatchResult,
    GroupProgress,
    JobStatus,
    JobVersion,
    Owner,
    RegisterResult,
)
from nomadmesh.deploy.watch import Fetch, Watch
from nomadmesh.errors import (
    ApiError,
    ConflictError,
    DeploymentFailed,
    DeployTimeout,
    NomadmeshError,
    NotFound,
    OwnershipError,
    Problem,
    ValidationError,
)
from nomadmesh.model import Job

TOOL = "nomadmesh"
DEFAULT_RUN_TIMEOUT = 600.0
WATCH_WAIT = 30.0

JobLike = Job | Mapping[str, Any]
OnEvent = Callable[[DeployEvent], None]

_ROLLBACK = re.compile(r"rolling back to job version (\d+)")
_NEEDS_PROMOTION = "requires manual promotion"
_TERMINAL_DEPLOYMENT = ("successful", "failed", "cancelled")
_TERMINAL_ALLOC = ("complete", "failed", "lost")


@functools.cache
def _tool_version() -> str:
    try:
        return metadata.version("nomadmesh")
    except metadata.PackageNotFoundError:
        return "0+unknown"


OWNERSHIP_KEYS = frozenset({META_TOOL, META_VERSION, META_DIGEST, META_SOURCE})


class NomadClient:
    """A client of one Nomad API; a context manager. The token is never shown."""

    def __init__(self, address: str | None = None, *, token: str | None = None,
                 namespace: str | None = None, region: str | None = None,
                 ca_cert: str | None = None, ca_path: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None,
                 tls_server_name: str | None = None, skip_verify: bool | None = None,
                 timeout: float | None = None, retry: Retry | None = None,
                 consul: ServiceHealth | str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        """Explicit arguments win over NOMAD_* variables of `env` (default: no environment)."""
        self.config = NomadConfig.from_env(
            env if env is not None else {}, address=address, token=token, namespace=namespace,
            region=region, ca_cert=ca_cert, ca_path=ca_path, client_cert=client_cert,
            client_key=client_key, tls_server_name=tls_server_name, skip_verify=skip_verify,
            timeout=timeout)
        self._http = NomadHttp(self.config, retry=retry or Retry())
        self.consul = ServiceHealth(consul) if isinstance(consul, str) else consul

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> NomadClient:
        """Settings as the Nomad CLI reads them (NOMAD_ADDR, NOMAD_TOKEN, ...; CONSUL_HTTP_ADDR
        for service health); explicit keyword arguments win."""
        env = os.environ if env is None else env
        if "consul" not in explicit and env.get("CONSUL_HTTP_ADDR"):
            explicit["consul"] = ServiceHealth.from_env(env)
        return cls(env=env, **explicit)

    @property
    def address(self) -> str:
        return self.config.address

    def __repr__(self) -> str:
        token = "set" if self.config.has_token else "none"
        return (f"NomadClient(address={self.config.address!r}, namespace="
                f"{self.config.namespace!r}, region={self.config.region!r}, token=<{token}>)")

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()
        if self.consul is not None:
            self.consul.close()

    def __enter__(self) -> NomadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- jobs in, plans and registrations out -------------------------------------------------

    def payload(self, job: JobLike, *, source: str | None = None,
                namespace: str | None = None) -> dict[str, Any]:
        """The API JSON nomadmesh submits for `job`: its own form plus ownership meta (and the
        namespace of the call, which wins over the job's)."""
        api = dict(job.to_api() if isinstance(job, Job) else job.get("Job", job))
        # Only the ownership keys are ours to rewrite; the digest covers everything else.
        meta = {k: v for k, v in (api.get("Meta") or {}).items() if k not in OWNERSHIP_KEYS}
        body = json.dumps({**api, "Meta": meta}, sort_keys=True, separators=(",", ":"))
        meta[META_TOOL] = TOOL
        meta[META_VERSION] = _tool_version()
        meta[META_DIGEST] = hashlib.sha256(body.encode()).hexdigest()[:16]
        if source:
            meta[META_SOURCE] = source
        api["Meta"] = meta
        if namespace:
            api["Namespace"] = namespace
        return api

    def validate(self, job: JobLike, *, namespace: str | None = None,
                 region: str | None = None) -> str:
        """Server-side validation; raises ValidationError with paths, returns Nomad's warnings."""
        api = self._api_job(job)
        reply = self._http.call("post", ("validate", "job"), body={"Job": api},
                                params=self._params(api, namespace, region),
                                retry=self._http.retry)
        body = reply.body or {}
        errors = body.get("ValidationErrors") or []
        if errors:
            raise ValidationError([_problem(api.get("ID", ""), e) for e in errors],
                                  subject=f"job {api.get('ID')!r}")
        return str(body.get("Warnings") or "")

    def plan(self, job: JobLike, *, namespace: str | None = None,
             region: str | None = None, source: str | None = None) -> Plan:
        """Dry-run `job`: the diff, per-group counts, failed placements and the modify index."""
        api = self.payload(job, source=source, namespace=namespace)
        # A plan changes nothing on the server, so it is as safe to repeat as a read.
        reply = self._submit("post", ("job", api["ID"], "plan"),
                             {"Job": api, "Diff": True, "PolicyOverride": False},
                             self._params(api, namespace, region), retry=self._http.retry)
        return Plan.from_api(api["ID"], reply.body or {})

    def register(self, job: JobLike, *, enforce_index: int | None = None,
                 preserve_counts: bool = False, namespace: str | None = None,
                 region: str | None = None, source: str | None = None,
                 timeout: float | None = None) -> RegisterResult:
        """Submit `job` in one request. With `enforce_index` (0 = must not exist yet), a
        concurrent change raises ConflictError and nothing is overwritten."""
        api = self.payload(job, source=source, namespace=namespace)
        return self._register(api, enforce_index, preserve_counts,
                              self._params(api, namespace, region), timeout)

    def _register(self, api: dict[str, Any], enforce_index: int | None, preserve_counts: bool,
                  params: dict[str, Any], timeout: float | None) -> RegisterResult:
        body: dict[str, Any] = {"Job": api}
        if enforce_index is not None:
            body["EnforceIndex"] = True
            body["JobModifyIndex"] = enforce_index
        if preserve_counts:
            body["PreserveCounts"] = True
        # Repeating a register is safe only when the index makes a second copy impossible.
        retry = self._http.retry if enforce_index is not None else None
        try:
            reply = self._submit("post", ("job", api["ID"]), body, params, retry=retry,
                                 timeout=timeout)
        except ConflictError:
            if retry is None or not self._landed(api, params):
                raise
            return self._recover_register(api, params)
        data = reply.body or {}
        return RegisterResult(api["ID"], str(data.get("EvalID") or ""),
                              int(data.get("JobModifyIndex") or 0), str(data.get("Warnings") or ""))

    def _landed(self, api: Mapping[str, Any], params: dict[str, Any]) -> bool:
        """After a retried register hit a conflict: did our own first attempt get through?"""
        try:
            current = self._http.call("get", ("job", api["ID"]), params=params).body or {}
        except NotFound:
            return False
        ours = (api.get("Meta") or {}).get(META_DIGEST)
        return bool(ours) and (current.get("Meta") or {}).get(META_DIGEST) == ours

    def _recover_register(self, api: Mapping[str, Any], params: dict[str, Any]) -> RegisterResult:
        current = self._http.call("get", ("job", api["ID"]), params=params).body or {}
        evals = self._http.call("get", ("job", api["ID"], "evaluations"), params=params).body or []
        jmi = int(current.get("JobModifyIndex") or 0)
        ev = next((e for e in evals if int(e.get("JobModifyIndex") or 0) == jmi), None)
        return RegisterResult(api["ID"], str((ev or {}).get("ID") or ""), jmi)

    # --- the deploy loop ----------------------------------------------------------------------

    def run(self, job: JobLike, *, wait: bool = True, timeout: float = DEFAULT_RUN_TIMEOUT,
            on_event: OnEvent | None = None, check_index: int | None = None,
            promote: bool = False, allow_foreign: bool = False, source: str | None = None,
            namespace: str | None = None, region: str | None = None) -> DeployResult:
        """Plan, register under the plan's index, follow the evaluation and deployment.

        Returns a result when the job is healthy (services), complete (batch), placed (system),
        registered (periodic/parameterized) or awaiting promotion; raises DeploymentFailed with
        a diagnosis otherwise (DeployTimeout after `timeout` seconds).
        """
        deadline = time.monotonic() + timeout
        api = self.payload(job, source=source, namespace=namespace)
        job_id = api["ID"]
        params = self._params(api, namespace, region)
        emit = on_event or (lambda _event: None)
        self._check_owner(api, params, allow_foreign)
        plan_reply = self._submit("post", ("job", job_id, "plan"),
                                  {"Job": api, "Diff": True}, params, retry=self._http.retry)
        plan = Plan.from_api(job_id, plan_reply.body or {})
        index = plan.job_modify_index if check_index is None else check_index
        emit(DeployEvent("plan", ", ".join(f"{g.name}: {g.summary()}" for g in plan.groups)
                         or "no groups"))
        registered = self._register(api, index, False, params, None)
        emit(DeployEvent("register", f"registered at index {registered.job_modify_index}"
                         + (f", evaluation {registered.eval_id[:8]}" if registered.eval_id else "")))
        if not wait:
            return DeployResult(job_id, "registered", eval_id=registered.eval_id or None)
        run = _Run(self, job_id, api, params, deadline, emit, promote)
        return run.follow(registered)

    def _check_owner(self, api: Mapping[str, Any], params: dict[str, Any],
                     allow_foreign: bool) -> None:
        try:
            current = self._http.call("get", ("job", api["ID"]), params=params).body or {}
        except NotFound:
            return
        owner = Owner.from_meta(current.get("Meta"))
        if owner.tool and owner.tool != TOOL and not allow_foreign:
            raise OwnershipError(
                f"job {api['ID']!r} is managed by {owner}; refusing to overwrite it "
                "(pass allow_foreign=True / --force-owner to take it over)")

    # --- other verbs ----------------------------------------------------------------------------

    def stop(self, job_id: str, *, purge: bool = False, namespace: str | None = None,
             region: str | None = None) -> RegisterResult:
        """Deregister a job (stopping its allocations); `purge` also forgets it."""
        params = self._http.params(namespace, region, {"purge": "true" if purge else None})
        data = self._http.call("delete", ("job", job_id), params=params).body or {}
        return RegisterResult(job_id, str(data.get("EvalID") or ""),
                              int(data.get("JobModifyIndex") or 0))

    def job(self, job_id: str, *, namespace: str | None = None,
            region: str | None = None) -> dict[str, Any]:
        """The job as the server holds it (Nomad JSON, server defaults applied)."""
        body: dict[str, Any] = self._http.call(
            "get", ("job", job_id), params=self._http.params(namespace, region)).body
        return body

    def jobs(self, *, namespace: str | None = None, region: str | None = None,
             prefix: str | None = None, meta: bool = False) -> list[dict[str, Any]]:
        """The job list stubs (`GET /v1/jobs`); namespace "*" lists every namespace, `meta`
        includes each job's meta."""
        extra = {"prefix": prefix, "meta": "true" if meta else None}
        body = self._http.call("get", ("jobs",), params=self._http.params(namespace, region, extra))
        return list(body.body or [])

    def logs(self, alloc_id: str, task: str, *, stderr: bool = False,
             region: str | None = None) -> str:
        """What a task of an allocation wrote to stdout (or stderr), from the start."""
        params = self._http.params(None, region, {"task": task, "type": "stderr" if stderr
                                                  else "stdout", "plain": "true",
                                                  "origin": "start"})
        text = self._http.call("get", ("client", "fs", "logs", alloc_id), params=params).body
        return text if isinstance(text, str) else ""

    def status(self, job_id: str, *, namespace: str | None = None,
               region: str | None = None) -> JobStatus:
        """The job now: status, version, owner, group summary, allocations, latest deployment,
        and (with Consul) each service's instances and check states."""
        params = self._http.params(namespace, region)
        job = self._http.call("get", ("job", job_id), params=params).body or {}
        summary = self._http.call("get", ("job", job_id, "summary"), params=params).body or {}
        allocs = self._http.call("get", ("job", job_id, "allocations"), params=params).body or []
        dep = self._http.call("get", ("job", job_id, "deployment"), params=params).body or {}
        services: tuple[Any, ...] = ()
        if self.consul is not None:
            services = tuple(self.consul.instances(_service_names(job)))
        return JobStatus(
            job_id=job_id, type=str(job.get("Type") or ""), status=str(job.get("Status") or ""),
            version=int(job.get("Version") or 0), stable=bool(job.get("Stable")),
            stopped=bool(job.get("Stop")), owner=Owner.from_meta(job.get("Meta")),
            summary={g: {k: int(v) for k, v in (c or {}).items()}
                     for g, c in (summary.get("Summary") or {}).items()},
            allocations=tuple(Allocation.from_api(a) for a in allocs),
            deployment_id=dep.get("ID"), deployment_status=dep.get("Status"),
            deployment_description=str(dep.get("StatusDescription") or ""),
            groups=_progress(dep), services=services)

    def history(self, job_id: str, *, namespace: str | None = None,
                region: str | None = None) -> list[JobVersion]:
        """Every stored version of the job, newest first, with who submitted it."""
        params = self._http.params(namespace, region, {"diffs": "true"})
        body = self._http.call("get", ("job", job_id, "versions"), params=params).body or {}
        versions = body.get("Versions") or []
        diffs = body.get("Diffs") or []
        out = []
        for i, v in enumerate(versions):
            changes: tuple[str, ...] = ()
            if i < len(diffs) and diffs[i]:
                changes = tuple(text.strip() for _, text in Plan(job_id, 0, diffs[i]).lines()[1:])
            out.append(JobVersion(int(v.get("Version") or 0), bool(v.get("Stable")),
                                  int(v.get("SubmitTime") or 0), int(v.get("JobModifyIndex") or 0),
                                  Owner.from_meta(v.get("Meta")), changes))
        return out

    def revert(self, job_id: str, version: int, *, enforce_prior_version: int | None = None,
               namespace: str | None = None, region: str | None = None) -> RegisterResult:
        """Register an earlier version of the job again."""
        body: dict[str, Any] = {"JobID": job_id, "JobVersion": version}
        if enforce_prior_version is not None:
            body["EnforcePriorVersion"] = enforce_prior_version
        data = self._http.call("post", ("job", job_id, "revert"), body=body,
                               params=self._http.params(namespace, region)).body or {}
        return RegisterResult(job_id, str(data.get("EvalID") or ""),
                              int(data.get("JobModifyIndex") or 0))

    def dispatch(self, job_id: str, *, meta: Mapping[str, str] | None = None,
                 payload: bytes | str | None = None, idempotency_token: str | None = None,
                 namespace: str | None = None, region: str | None = None) -> DispatchResult:
        """Start a child of a parameterized job with meta and an optional payload."""
        body: dict[str, Any] = {"JobID": job_id, "Meta": dict(meta or {})}
        if payload is not None:
            raw = payload.encode() if isinstance(payload, str) else payload
            body["Payload"] = base64.b64encode(raw).decode()
        if idempotency_token:
            body["IdempotencyToken"] = idempotency_token
        data = self._http.call("post", ("job", job_id, "dispatch"), body=body,
                               params=self._http.params(namespace, region)).body or {}
        return DispatchResult(job_id, str(data.get("DispatchedJobID") or ""),
                              str(data.get("EvalID") or ""))

    def promote(self, job_id: str, *, groups: list[str] | None = None,
                namespace: str | None = None, region: str | None = None) -> str:
        """Promote the canaries of the job's latest deployment; returns the deployment ID."""
        params = self._http.params(namespace, region)
        dep = self._http.call("get", ("job", job_id, "deployment"), params=params).body
        if not dep:
            raise NotFound(f"job {job_id!r} has no deployment to promote")
        body: dict[str, Any] = {"DeploymentID": dep["ID"]}
        if groups:
            body["Groups"] = groups
        else:
            body["All"] = True
        self._http.call("post", ("deployment", "promote", dep["ID"]), body=body, params=params)
        return str(dep["ID"])

    # --- plumbing -------------------------------------------------------------------------------

    def _api_job(self, job: JobLike) -> dict[str, Any]:
        return dict(job.to_api() if isinstance(job, Job) else job.get("Job", job))

    def _params(self, api: Mapping[str, Any], namespace: str | None,
                region: str | None) -> dict[str, Any]:
        return self._http.params(namespace or api.get("Namespace"), region or api.get("Region"))

    def _submit(self, method: str, path: tuple[str, ...], body: Any, params: dict[str, Any],
                *, retry: Retry | None = None, timeout: float | None = None) -> Reply:
        """A write whose 4xx/5xx validation text becomes a ValidationError with paths."""
        try:
            return self._http.call(method, path, body=body, params=params, retry=retry,
                                   timeout=timeout)
        except ConflictError:
            raise
        except ApiError as exc:
            if exc.status in (400, 500) and "error occurred" in exc.body:
                job_id = str((body.get("Job") or {}).get("ID") or "")
                problems = [_problem(job_id, line[2:].strip())
                            for line in exc.body.splitlines() if line.strip().startswith("* ")]
                raise ValidationError(problems or [_problem(job_id, exc.body.strip())],
                                      subject=f"job {job_id!r}") from None
            raise

    def _get(self, path: tuple[str, ...], params: dict[str, Any]) -> Any:
        return self._http.call("get", path, params=params).body

    def _blocking(self, path: tuple[str, ...], params: dict[str, Any]) -> Fetch:
        def fetch(index: int, wait: float, cancelled: Callable[[], bool]) -> Reply:
            return self._http.call("get", path, params={**params, **blocking_params(index, wait)},
                                   timeout=blocking_timeout(wait), cancelled=cancelled)
        return fetch


class _Run:
    """One followed deploy: evaluation, then deployment or allocations, then Consul services."""

    def __init__(self, client: NomadClient, job_id: str, api: Mapping[str, Any],
                 params: dict[str, Any], deadline: float, emit: OnEvent, promote: bool) -> None:
        self.client = client
        self.job_id = job_id
        self.api = api
        self.params = params
        self.deadline = deadline
        self.emit = emit
        self.auto_promote = promote
        self.events: list[DeployEvent] = []
        self.groups: tuple[GroupProgress, ...] = ()
        self.seen_events: dict[tuple[str, str], int] = {}
        self.alloc_status: dict[str, str] = {}
        self.job_version: int | None = None
        self.eval_id: str | None = None
        self.deployment_id: str | None = None
        self.promoted = False

    def event(self, event: DeployEvent) -> None:
        self.events.append(event)
        self.emit(event)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def result(self, status: str, **extra: Any) -> DeployResult:
        return DeployResult(self.job_id, status, job_version=self.job_version,
                            eval_id=self.eval_id, deployment_id=self.deployment_id,
                            groups=self.groups, promoted=self.promoted,
                            events=tuple(self.events), **extra)

    def fail(self, diagnosis: Diagnosis, status: str = "failed", *,
             timeout: bool = False, **extra: Any) -> DeploymentFailed:
        result = self.result(status, diagnosis=diagnosis, **extra)
        kind = DeployTimeout if timeout else DeploymentFailed
        return kind(self.job_id, diagnosis.sentences(), result=result)

    # --- stages ----------------------------------------------------------------------------------

    def follow(self, registered: RegisterResult) -> DeployResult:
        job = self.client._get(("job", self.job_id), self.params) or {}
        self.job_version = int(job.get("Version") or 0)
        if job.get("ParameterizedJob") or job.get("Periodic"):
            kind = "parameterized" if job.get("ParameterizedJob") else "periodic"
            self.event(DeployEvent("done", f"{kind} job registered; runs are started by "
                                   + ("dispatch" if kind == "parameterized" else "its schedule")))
            return self.result("registered")
        if not registered.eval_id:
            return self.result("registered")
        self.eval_id = registered.eval_id
        evaluation = self.follow_eval(registered.eval_id)
        failed = diagnose.placement_failures(self.job_id, evaluation.get("FailedTGAllocs"))
        if failed:
            for f in failed:
                self.event(DeployEvent("placement", f.message, group=f.group))
            raise self.fail(failed)
        if evaluation.get("Status") != "complete":
            raise self.fail(Diagnosis((Finding(
                "evaluation", self.job_id, f"evaluation {self.eval_id[:8]} "
                f"{evaluation.get('Status')}: {evaluation.get('StatusDescription') or ''}"),)))
        job_type = str(job.get("Type") or "service")
        if evaluation.get("DeploymentID"):
            result = self.follow_deployment(str(evaluation["DeploymentID"]))
        else:
            result = self.follow_allocations(job_type)
        if self.client.consul is not None and result.status == "healthy":
            expected = _service_counts(self.api)
            services = self.client.consul.wait_passing(expected, self.remaining())
            for name, n in services.items():
                self.event(DeployEvent("service", f"{name}: {n} passing in Consul"))
            short = [Finding("service", self.job_id,
                             f"service {name!r}: {services.get(name, 0)}/{want} instances "
                             "passing in Consul before the timeout")
                     for name, want in expected.items() if services.get(name, 0) < want]
            if short:
                raise self.fail(Diagnosis(tuple(short)), "timeout", timeout=True,
                                services=services)
            result = self.result(result.status, services=services)
        return result

    def follow_eval(self, eval_id: str) -> dict[str, Any]:
        fetch = self.client._blocking(("evaluation", eval_id), self.params)
        with Watch() as watch:
            watch.follow("eval", fetch, wait=WATCH_WAIT)
            while True:
                body = self.next(watch)
                status = body.get("Status")
                if status not in ("pending", None):
                    self.event(DeployEvent("evaluation", f"evaluation {eval_id[:8]} {status}"))
                    return dict(body)

    def next(self, watch: Watch) -> Any:
        item = watch.next(self.remaining())
        if item is None:
            raise self.fail(self.current_diagnosis(), "timeout", timeout=True)
        _name, body = item
        if isinstance(body, NomadmeshError):
            raise body
        return body

    def current_diagnosis(self) -> Diagnosis:
        message = "did not finish before the timeout"
        if self.deployment_id:
            try:
                allocs = self.client._get(("deployment", "allocations", self.deployment_id),
                                          self.params) or []
            except NomadmeshError:
                allocs = []
            found = diagnose.allocation_failures(self.job_id, allocs)
            pending = ", ".join(str(g) for g in self.groups)
            return found + Diagnosis((Finding("timeout", self.job_id,
                                              f"deployment {message}" +
                                              (f" ({pending})" if pending else "")),))
        return Diagnosis((Finding("timeout", self.job_id, f"job {message}"),))

    def follow_deployment(self, deployment_id: str) -> DeployResult:
        self.deployment_id = deployment_id
        reverted_to: int | None = None
        failed_diagnosis = Diagnosis()
        with Watch() as watch:
            watch.follow(f"dep:{deployment_id}",
                         self.client._blocking(("deployment", deployment_id), self.params),
                         wait=WATCH_WAIT)
            watch.follow("allocs", self.client._blocking(("job", self.job_id, "allocations"),
                                                         self.params), wait=WATCH_WAIT)
            while True:
                item = watch.next(self.remaining())
                if item is None:
                    raise self.fail(failed_diagnosis + self.current_diagnosis(), "timeout",
                                    timeout=True, reverted_to=reverted_to)
                name, body = item
                if isinstance(body, NomadmeshError):
                    raise body
                if name == "allocs":
                    self.on_allocs(body or [])
                    continue
                if name == "latest":
                    if not body or body.get("ID") == deployment_id:
                        continue
                    watch.unfollow("latest")
                    deployment_id = self.deployment_id = str(body["ID"])
                    self.event(DeployEvent("deployment", f"following rollback deployment "
                                           f"{deployment_id[:8]} (version {body.get('JobVersion')})"))
                    watch.follow(f"dep:{deployment_id}", self.client._blocking(
                        ("deployment", deployment_id), self.params), wait=WATCH_WAIT)
                    continue
                dep = body or {}
                self.on_progress(dep)
                status = dep.get("Status")
                if status == "running" and self.canaries_ready(dep):
                    if not self.auto_promote:
                        self.flush_allocs()
                        return self.result("awaiting-promotion")
                    self.client._http.call("post", ("deployment", "promote", deployment_id),
                                           body={"DeploymentID": deployment_id, "All": True},
                                           params=self.params)
                    self.promoted = True
                    self.event(DeployEvent("promote", "canaries healthy; promoted"))
                    continue
                if status not in _TERMINAL_DEPLOYMENT:
                    continue
                self.flush_allocs()
                if status == "successful":
                    if reverted_to is not None:
                        raise self.fail(failed_diagnosis + Diagnosis((Finding(
                            "revert", self.job_id,
                            f"rolled back to version {reverted_to}; the rollback is healthy"),)),
                            "reverted", reverted_to=reverted_to)
                    return self.result("healthy")
                diagnosis = self.deployment_diagnosis(dep)
                match = _ROLLBACK.search(str(dep.get("StatusDescription") or ""))
                if match and reverted_to is None:
                    reverted_to = int(match.group(1))
                    failed_diagnosis = diagnosis
                    self.event(DeployEvent("revert", f"auto-revert to version {reverted_to}"))
                    watch.unfollow(f"dep:{deployment_id}")
                    watch.follow("latest", self.client._blocking(
                        ("job", self.job_id, "deployment"), self.params), wait=WATCH_WAIT)
                    continue
                if reverted_to is not None:
                    diagnosis = failed_diagnosis + diagnosis + Diagnosis((Finding(
                        "revert", self.job_id,
                        f"the rollback to version {reverted_to} {status} too"),))
                raise self.fail(diagnosis, "reverted" if reverted_to is not None else "failed",
                                reverted_to=reverted_to)

    def deployment_diagnosis(self, dep: Mapping[str, Any]) -> Diagnosis:
        allocs = self.client._get(("deployment", "allocations", str(dep["ID"])), self.params) or []
        found = diagnose.allocation_failures(self.job_id, allocs)
        return Diagnosis((diagnose.deployment_finding(self.job_id, dep),)) + found

    def canaries_ready(self, dep: Mapping[str, Any]) -> bool:
        """Whether the deployment waits only for someone to promote its healthy canaries."""
        states = dep.get("TaskGroups") or {}
        waiting = [s for s in states.values()
                   if int(s.get("DesiredCanaries") or 0) > 0 and not s.get("Promoted")]
        if not waiting or any(s.get("AutoPromote") for s in waiting):
            return False
        if _NEEDS_PROMOTION in str(dep.get("StatusDescription") or ""):
            return True
        return all(len(s.get("PlacedCanaries") or ()) >= int(s["DesiredCanaries"])
                   and int(s.get("HealthyAllocs") or 0) >= int(s["DesiredCanaries"])
                   for s in waiting)

    def on_progress(self, dep: Mapping[str, Any]) -> None:
        groups = _progress(dep)
        if groups != self.groups:
            self.groups = groups
            self.event(DeployEvent("progress", "; ".join(str(g) for g in groups),
                                   groups=groups))

    def flush_allocs(self) -> None:
        """Report the allocation events the follower has not delivered yet."""
        self.on_allocs(self.client._get(("job", self.job_id, "allocations"), self.params) or [])

    def on_allocs(self, allocs: list[Mapping[str, Any]]) -> None:
        for alloc in allocs:
            alloc_id = str(alloc.get("ID") or "")
            group = alloc.get("TaskGroup")
            status = str(alloc.get("ClientStatus") or "")
            if self.alloc_status.get(alloc_id) != status:
                self.alloc_status[alloc_id] = status
                self.event(DeployEvent("allocation", status, group=group, alloc_id=alloc_id))
            for task, state in (alloc.get("TaskStates") or {}).items():
                events = state.get("Events") or []
                seen = self.seen_events.get((alloc_id, task), 0)
                for ev in events[seen:]:
                    text = str(ev.get("DisplayMessage") or ev.get("Message") or "")
                    self.event(DeployEvent("task", f"{ev.get('Type')}" + (
                        f": {text}" if text else ""), group=group, task=task, alloc_id=alloc_id))
                self.seen_events[(alloc_id, task)] = len(events)

    def follow_allocations(self, job_type: str) -> DeployResult:
        """Jobs without a deployment: batch until complete, others until placed and running."""
        with Watch() as watch:
            watch.follow("allocs", self.client._blocking(("job", self.job_id, "allocations"),
                                                         self.params), wait=WATCH_WAIT)
            while True:
                allocs = [a for a in self.next(watch) or []
                          if int(a.get("JobVersion") or 0) == self.job_version]
                self.on_allocs(allocs)
                current = [a for a in allocs if a.get("DesiredStatus") == "run"
                           or job_type in ("batch", "sysbatch")]
                failed = [a for a in current if a.get("ClientStatus") == "failed"
                          and not a.get("NextAllocation")]
                if failed:
                    raise self.fail(diagnose.allocation_failures(self.job_id, failed))
                if not current:
                    continue
                if job_type in ("batch", "sysbatch"):
                    if all(a.get("ClientStatus") in _TERMINAL_ALLOC for a in current):
                        return self.result("complete")
                elif all(a.get("ClientStatus") == "running" for a in current):
                    return self.result("placed" if job_type == "system" else "healthy")


def _progress(dep: Mapping[str, Any]) -> tuple[GroupProgress, ...]:
    return tuple(GroupProgress.from_deployment_state(n, s)
                 for n, s in sorted((dep.get("TaskGroups") or {}).items()))


def _service_counts(api: Mapping[str, Any]) -> dict[str, int]:
    """Consul services the job registers, with how many passing instances to expect."""
    counts: dict[str, int] = {}
    for group in api.get("TaskGroups") or ():
        n = int(group.get("Count") if group.get("Count") is not None else 1)
        services = list(group.get("Services") or ())
        for task in group.get("Tasks") or ():
            services.extend(task.get("Services") or ())
        for svc in services:
            if (svc.get("Provider") or "consul") != "consul" or not svc.get("Name"):
                continue
            counts[svc["Name"]] = counts.get(svc["Name"], 0) + n
    return counts


def _service_names(api: Mapping[str, Any]) -> list[str]:
    return sorted(_service_counts(api))


_LOCATED = re.compile(r"^(job\[[^\]]*\]\S*): (.+)$", re.S)
_GROUP = re.compile(r'[Tt]ask group "?([^"\s:]+)"?')
_TASK = re.compile(r'[Tt]ask "?([^"\s:]+)"? validation')


def _problem(job_id: str, text: str) -> Problem:
    """A Nomad validation message with a nomadmesh path guessed from its group/task names."""
    located = _LOCATED.match(text.strip())
    if located:
        return Problem(located.group(1), located.group(2))
    path = f"job[{job_id}]"
    group = _GROUP.search(text)
    if group:
        path += f".group[{group.group(1)}]"
        task = _TASK.search(text)
        if task:
            path += f".task[{task.group(1)}]"
    return Problem(path, text.strip())
