"""`NomadClient`: validate, plan, register, run and watch, stop, inspect, revert, dispatch, promote."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from nomadmesh.deploy import diagnose
from nomadmesh.deploy._http import Answer, NomadHttp, Retry, problem
from nomadmesh.deploy.api import NomadApi
from nomadmesh.deploy.config import NomadConfig
from nomadmesh.deploy.diagnose import Diagnosis, Finding
from nomadmesh.deploy.results import (
    META_DEPLOYMENT,
    META_PACK,
    META_TOOL,
    VOLATILE_META,
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
from nomadmesh.errors import (
    ApiError,
    ConflictError,
    DeploymentFailed,
    DeployTimeout,
    NomadmeshError,
    NotFound,
    OwnershipError,
    ValidationError,
)

TOOL = "nomadmesh"
DEFAULT_RUN_TIMEOUT = 600.0
WATCH_WAIT = 30.0
DIAGNOSIS_GRACE = 2.0

if TYPE_CHECKING:  # the model, plans, Consul and watches are not imported to read a job's
    # status (CLI start-up): each is imported where it is used
    from nomadmesh.deploy.consul import ServiceHealth
    from nomadmesh.deploy.plan import Plan
    from nomadmesh.deploy.watch import Watch
    from nomadmesh.model import Job

JobLike: TypeAlias = "Job | Mapping[str, Any]"
OnEvent = Callable[[DeployEvent], None]

_ROLLBACK = re.compile(r"rolling back to job version (\d+)")
_TERMINAL_DEPLOYMENT = ("successful", "failed", "cancelled")
_TERMINAL_ALLOC = ("complete", "failed", "lost")


class SubmissionLike(Protocol):
    """Where a job came from, as Nomad's `api.JobSubmission` (the model's `Job.submission`)."""

    @property
    def source(self) -> str | None: ...

    @property
    def format(self) -> str | None: ...

    @property
    def variable_flags(self) -> Mapping[str, str]: ...

    @property
    def variables(self) -> str | None: ...


class NomadClient:
    """A client of one Nomad API; a context manager. The token is never shown."""

    def __init__(self, address: str | None = None, *, token: str | None = None,
                 http_auth: str | None = None, namespace: str | None = None,
                 region: str | None = None, ca_cert: str | None = None,
                 ca_path: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, tls_server_name: str | None = None,
                 skip_verify: bool | None = None, timeout: float | None = None,
                 retry: Retry | None = None, consul: ServiceHealth | str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        """Explicit arguments win over NOMAD_* variables of `env` (default: no environment)."""
        self.config = NomadConfig.from_env(
            env if env is not None else {}, address=address, token=token, http_auth=http_auth,
            namespace=namespace, region=region, ca_cert=ca_cert, ca_path=ca_path,
            client_cert=client_cert, client_key=client_key, tls_server_name=tls_server_name,
            skip_verify=skip_verify, timeout=timeout)
        self._http = NomadHttp(self.config, retry=retry or Retry())
        self.api = NomadApi(self._http)
        if isinstance(consul, str):
            from nomadmesh.deploy.consul import ServiceHealth

            consul = ServiceHealth(consul)
        self.consul = consul

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> NomadClient:
        """Settings as the Nomad CLI reads them (NOMAD_ADDR, NOMAD_TOKEN, NOMAD_HTTP_AUTH, ...;
        CONSUL_HTTP_ADDR for service health); explicit keyword arguments win."""
        env = os.environ if env is None else env
        if "consul" not in explicit and env.get("CONSUL_HTTP_ADDR"):
            from nomadmesh.deploy.consul import ServiceHealth

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

    def payload(self, job: JobLike, *, namespace: str | None = None,
                current: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The API JSON nomadmesh submits for `job`: its own form, `nomadmesh.tool` in Meta (and
        the namespace of the call, which wins over the job's).

        Meta holds only what stays the same from one submit to the next: any Meta change makes
        Nomad replace every allocation (scheduler/util.go tasksUpdated compares
        CombinedTaskMeta). Keys older nomadmesh versions wrote (`nomadmesh.version`, `.digest`,
        `.source`, `.pack_version`, `.variables_digest`) are dropped from a new job and kept at
        the server's `current` value on an existing one, so that upgrading restarts nothing.
        """
        api = _api_job(job)
        meta = {k: v for k, v in (api.get("Meta") or {}).items() if k not in VOLATILE_META}
        kept = (current or {}).get("Meta") or {}
        meta.update({k: kept[k] for k in VOLATILE_META if k in kept})
        meta[META_TOOL] = TOOL
        api["Meta"] = meta
        if namespace:
            api["Namespace"] = namespace
        return api

    def submission(self, job: JobLike, api: Mapping[str, Any]) -> dict[str, Any]:
        """The register body's `Submission`: the job's own source, format and variables when it
        was loaded from a file, else the JSON nomadmesh submits (shown in Nomad's UI)."""
        if isinstance(job, Mapping) and isinstance(job.get("Submission"), Mapping):
            return dict(job["Submission"])
        sub: SubmissionLike | None = getattr(job, "submission", None)
        if sub is not None:
            # Raw values: the agent query-escapes VariableFlags itself (command/agent/
            # job_endpoint.go:1009 apiJobSubmissionToStructs) and unescapes them on read.
            return {"Source": sub.source or "", "Format": sub.format or "",
                    "VariableFlags": dict(sub.variable_flags), "Variables": sub.variables or ""}
        return {"Source": json.dumps({"Job": api}, indent=2, sort_keys=True), "Format": "json",
                "VariableFlags": {}, "Variables": ""}

    def validate(self, job: JobLike, *, namespace: str | None = None,
                 region: str | None = None) -> str:
        """Server-side validation; raises ValidationError with paths, returns Nomad's warnings."""
        api = _api_job(job)
        body = self.api.validate({"Job": api}, self._params(api, namespace, region))
        errors = body.get("ValidationErrors") or []
        if errors:
            raise ValidationError([problem(str(api.get("ID", "")), str(e)) for e in errors],
                                  subject=f"job {api.get('ID')!r}")
        return str(body.get("Warnings") or "")

    def plan(self, job: JobLike, *, namespace: str | None = None, region: str | None = None,
             preserve_counts: bool = True, timeout: float | None = None) -> Plan:
        """Dry-run `job` as `run` would submit it: the diff, per-group counts, failed
        placements, the modify index, and the exit code `nomad job plan` would give."""
        deadline = None if timeout is None else time.monotonic() + timeout
        api = _checked(job)
        params = self._params(api, namespace, region)
        current = self.api.job_or_none(api["ID"], params, deadline=deadline)
        api = self.payload(api, namespace=namespace, current=current)
        if preserve_counts and current is not None:
            api = self._preserve_counts(api, current, params, deadline)
        return self._plan(api, params, deadline)

    def _plan(self, api: dict[str, Any], params: dict[str, Any],
              deadline: float | None) -> Plan:
        reply = self.api.plan(api["ID"], {"Job": api, "Diff": True, "PolicyOverride": False},
                              params, deadline=deadline)
        from nomadmesh.deploy.plan import Plan

        return Plan.from_api(api["ID"], reply)

    def register(self, job: JobLike, *, enforce_index: int | None = None,
                 preserve_counts: bool = False, namespace: str | None = None,
                 region: str | None = None, timeout: float | None = None) -> RegisterResult:
        """Submit `job` in one request (no ownership check, no plan). With `enforce_index`
        (0 = must not exist yet), a concurrent change raises ConflictError and nothing is
        overwritten; `preserve_counts` is Nomad's (every existing group keeps its count)."""
        api = self.payload(job, namespace=namespace)
        return self._register(api, self.submission(job, api), enforce_index,
                              self._params(api, namespace, region), preserve_counts,
                              timeout=timeout)

    def _register(self, api: dict[str, Any], submission: dict[str, Any],
                  enforce_index: int | None, params: dict[str, Any],
                  preserve_counts: bool = False, *, timeout: float | None = None,
                  deadline: float | None = None) -> RegisterResult:
        body: dict[str, Any] = {"Job": api, "Submission": submission}
        if enforce_index is not None:
            body["EnforceIndex"] = True
            body["JobModifyIndex"] = enforce_index
        if preserve_counts:
            body["PreserveCounts"] = True
        try:
            data = self.api.register(api["ID"], body, params, deadline=deadline, timeout=timeout)
        except ConflictError:
            # A repeated register that meets a conflict may have met its own first attempt,
            # which landed although its answer was lost.
            if enforce_index is None or self._http.retry.attempts <= 1:
                raise
            landed = self._landed(api, submission, params, deadline)
            if landed is None:
                raise
            return landed
        return RegisterResult(api["ID"], str(data.get("EvalID") or ""),
                              int(data.get("JobModifyIndex") or 0), str(data.get("Warnings") or ""))

    def _landed(self, api: Mapping[str, Any], submission: Mapping[str, Any],
                params: dict[str, Any], deadline: float | None) -> RegisterResult | None:
        """After a repeated register hit a conflict: the registration, if the server's current
        version was submitted with exactly our source and variables (our own first attempt)."""
        current = self.api.job_or_none(api["ID"], params, deadline=deadline)
        if current is None:
            return None
        stored = self.api.submission(api["ID"], int(current.get("Version") or 0), params,
                                     deadline=deadline)
        keys = ("Source", "Format", "Variables")
        if stored is None or any(stored.get(k) != submission.get(k) for k in keys) or (
                dict(stored.get("VariableFlags") or {}) != dict(submission["VariableFlags"])):
            return None
        jmi = int(current.get("JobModifyIndex") or 0)
        evals = self.api.evaluations(api["ID"], params)
        ev = next((e for e in evals if int(e.get("JobModifyIndex") or 0) == jmi), None)
        return RegisterResult(api["ID"], str((ev or {}).get("ID") or ""), jmi)

    # --- the deploy loop ----------------------------------------------------------------------

    def run(self, job: JobLike, *, wait: bool = True, timeout: float = DEFAULT_RUN_TIMEOUT,
            on_event: OnEvent | None = None, check_index: int | None = None,
            promote: bool = False, allow_foreign: bool = False, preserve_counts: bool = True,
            namespace: str | None = None, region: str | None = None) -> DeployResult:
        """Validate, check ownership, plan, register under the plan's index, follow the
        evaluation and deployment; `timeout` bounds all of it, retries included.

        Returns a result when the job is healthy (services), complete (batch), placed (system),
        registered (periodic/parameterized) or awaiting promotion; raises DeploymentFailed with
        a diagnosis otherwise (DeployTimeout after `timeout` seconds).
        """
        deadline = time.monotonic() + timeout
        api = _checked(job)
        params = self._params(api, namespace, region)
        before: list[DeployEvent] = []

        def emit(event: DeployEvent) -> None:
            before.append(event)
            if on_event is not None:
                on_event(event)

        current = self.api.job_or_none(api["ID"], params, deadline=deadline)
        _check_owner(api, current, allow_foreign)
        api = self.payload(api, namespace=namespace, current=current)
        if preserve_counts and current is not None:
            api = self._preserve_counts(api, current, params, deadline, emit)
        plan = self._plan(api, params, deadline)
        index = plan.job_modify_index if check_index is None else check_index
        emit(DeployEvent("plan", ", ".join(f"{g.name}: {g.summary()}" for g in plan.groups)
                         or "no groups"))
        registered = self._register(api, self.submission(job, api), index, params,
                                    deadline=deadline)
        emit(DeployEvent("register", f"registered at index {registered.job_modify_index}"
                         + (f", evaluation {registered.eval_id[:8]}" if registered.eval_id else "")))
        if not wait:
            return DeployResult(api["ID"], "registered", eval_id=registered.eval_id or None)
        run = _Run(self, api["ID"], api, params, deadline, on_event or (lambda _event: None),
                   promote)
        run.events.extend(before)
        return run.follow(registered)

    def _preserve_counts(self, api: dict[str, Any], current: Mapping[str, Any],
                         params: dict[str, Any], deadline: float | None,
                         emit: OnEvent | None = None) -> dict[str, Any]:
        """Keep the running count of each group that was scaled since its count was last set by
        a submit, when the job file still says that count (the rest of the file applies)."""
        running = {str(g.get("Name")): int(g.get("Count") or 0)
                   for g in current.get("TaskGroups") or ()}
        wanted = {str(g.get("Name")): int(g.get("Count") if g.get("Count") is not None else 1)
                  for g in api.get("TaskGroups") or ()}
        if all(running.get(name, count) == count for name, count in wanted.items()):
            return api
        try:
            status = self.api.scale_status(api["ID"], params, deadline=deadline)
        except ApiError as missing:
            # Nomad has answered `GET /v1/job/<id>/scale` since 0.11; without it no scaling is
            # known and the job file's counts apply.
            if missing.status not in (404, 405):
                raise
            return api
        keep: dict[str, int] = {}
        for name, count in wanted.items():
            events = ((status.get("TaskGroups") or {}).get(name) or {}).get("Events") or []
            before = count_before_scaling(events, running.get(name))
            if name in running and running[name] != count and before == count:
                keep[name] = running[name]
        if not keep:
            return api
        groups = [{**g, "Count": keep[g["Name"]]} if g.get("Name") in keep else g
                  for g in api["TaskGroups"]]
        if emit is not None:
            for name, count in sorted(keep.items()):
                emit(DeployEvent("scale", f"keeping count {count} (scaled since the job file "
                                 f"set {wanted[name]})", group=name))
        return {**api, "TaskGroups": groups}

    def _params(self, api: Mapping[str, Any], namespace: str | None,
                region: str | None) -> dict[str, Any]:
        return self._http.params(namespace or api.get("Namespace"), region or api.get("Region"))

    # --- other verbs ----------------------------------------------------------------------------

    def stop(self, job_id: str, *, purge: bool = False, namespace: str | None = None,
             region: str | None = None) -> RegisterResult:
        """Deregister a job (stopping its allocations); `purge` also forgets it."""
        params = self._http.params(namespace, region, {"purge": "true" if purge else None})
        data = self.api.deregister(job_id, params)
        return RegisterResult(job_id, str(data.get("EvalID") or ""),
                              int(data.get("JobModifyIndex") or 0))

    def job(self, job_id: str, *, namespace: str | None = None,
            region: str | None = None) -> dict[str, Any]:
        """The job as the server holds it (Nomad JSON, server defaults applied)."""
        return self.api.job(job_id, self._http.params(namespace, region))

    def jobs(self, *, namespace: str | None = None, region: str | None = None,
             prefix: str | None = None, meta: bool = False) -> list[dict[str, Any]]:
        """The job list stubs (`GET /v1/jobs`); namespace "*" lists every namespace, `meta`
        includes each job's meta."""
        extra = {"prefix": prefix, "meta": "true" if meta else None}
        return self.api.jobs(self._http.params(namespace, region, extra))

    def logs(self, alloc_id: str, task: str, *, stderr: bool = False, origin: str = "start",
             offset: int = 0, region: str | None = None) -> str:
        """What a task of an allocation wrote to stdout (or stderr): from the start, or with
        `origin="end"` the last `offset` bytes."""
        return self.api.logs(alloc_id, self._log_params(task, stderr, origin, offset, region))

    def follow_logs(self, alloc_id: str, task: str, *, stderr: bool = False,
                    origin: str = "start", offset: int = 0,
                    region: str | None = None) -> Iterator[str]:
        """The task's output as it is written (`follow=true`), chunk by chunk, until the task's
        log ends or the caller stops iterating."""
        params = {**self._log_params(task, stderr, origin, offset, region), "follow": "true"}
        return self.api.follow_logs(alloc_id, params)

    def _log_params(self, task: str, stderr: bool, origin: str, offset: int,
                    region: str | None) -> dict[str, Any]:
        if origin not in ("start", "end"):
            raise ValueError(f"origin must be 'start' or 'end', not {origin!r}")
        return self._http.params(None, region, {
            "task": task, "type": "stderr" if stderr else "stdout", "plain": "true",
            "origin": origin, "offset": offset or None})

    def versions(self, job_id: str, *, namespace: str | None = None,
                 region: str | None = None) -> list[dict[str, Any]]:
        """The stored versions of the job as Nomad returns them (newest first)."""
        body = self.api.versions(job_id, self._http.params(namespace, region))
        return list(body.get("Versions") or [])

    def status(self, job_id: str, *, namespace: str | None = None,
               region: str | None = None) -> JobStatus:
        """The job now: status, version, owner, group summary, allocations, latest deployment,
        and (with Consul) the instances of its current allocations with their check states."""
        params = self._http.params(namespace, region)
        job = self.api.job(job_id, params)
        summary = self.api.summary(job_id, params)
        allocs = self.api.allocations(job_id, params)
        dep = self.api.latest_deployment(job_id, params) or {}
        services: tuple[Any, ...] = ()
        if self.consul is not None:
            services = tuple(self.consul.instances(_service_names(job),
                                                   alloc_ids=_live_alloc_ids(allocs)))
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
        body = self.api.versions(job_id, self._http.params(namespace, region, {"diffs": "true"}))
        versions = body.get("Versions") or []
        diffs = body.get("Diffs") or []
        from nomadmesh.deploy.plan import Plan

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
        data = self.api.revert(job_id, body, self._http.params(namespace, region))
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
        data = self.api.dispatch(job_id, body, self._http.params(namespace, region))
        return DispatchResult(job_id, str(data.get("DispatchedJobID") or ""),
                              str(data.get("EvalID") or ""))

    def promote(self, job_id: str, *, groups: list[str] | None = None,
                namespace: str | None = None, region: str | None = None) -> str:
        """Promote the canaries of the job's latest deployment; returns the deployment ID."""
        params = self._http.params(namespace, region)
        dep = self.api.latest_deployment(job_id, params)
        if not dep:
            raise NotFound(f"job {job_id!r} has no deployment to promote")
        body: dict[str, Any] = {"DeploymentID": dep["ID"]}
        if groups:
            body["Groups"] = groups
        else:
            body["All"] = True
        self.api.promote(str(dep["ID"]), body, params)
        return str(dep["ID"])


def count_before_scaling(events: list[Mapping[str, Any]], running: int | None) -> int | None:
    """The count a group had before its latest run of scaling events, if the latest count change
    was a scaling (`nomad job scale`, an autoscaler) and not a submit; None otherwise.

    Scaling events (ScalingEvent, newest first) chain: each one's PreviousCount is the Count of
    the one before. A submit that changed the count in between breaks the chain, so the chain's
    oldest PreviousCount is the count the last submit set.
    """
    counted = [e for e in events if e.get("Count") is not None and not e.get("Error")]
    if not counted or running is None or int(counted[0]["Count"]) != running:
        return None
    before = int(counted[0].get("PreviousCount") or 0)
    for event in counted[1:]:
        if int(event["Count"]) != before:
            break
        before = int(event.get("PreviousCount") or 0)
    return before


def _api_job(job: JobLike) -> dict[str, Any]:
    return dict(job.get("Job", job) if isinstance(job, Mapping) else job.to_api())


def _checked(job: JobLike) -> dict[str, Any]:
    """The API JSON of `job`; a Python-built job is validated first (with paths)."""
    if not isinstance(job, Mapping):
        job.validate()
    api = _api_job(job)
    if not isinstance(api.get("ID"), str) or not api["ID"]:
        raise ValidationError.single("job", "the job has no ID")
    return api


def _check_owner(api: Mapping[str, Any], current: Mapping[str, Any] | None,
                 allow_foreign: bool) -> None:
    """Refuse to overwrite a job another tool or another pack deployment owns."""
    if current is None or allow_foreign:
        return
    owner = Owner.from_meta(current.get("Meta"))
    if owner.tool and owner.tool != TOOL:
        raise OwnershipError(
            f"job {api['ID']!r} is managed by {owner}; refusing to overwrite it "
            "(pass allow_foreign=True / --force-owner to take it over)")
    theirs = current.get("Meta") or {}
    ours = api.get("Meta") or {}
    if theirs.get(META_DEPLOYMENT) and (theirs.get(META_PACK), theirs.get(META_DEPLOYMENT)) != (
            ours.get(META_PACK), ours.get(META_DEPLOYMENT)):
        raise OwnershipError(
            f"job {api['ID']!r} belongs to deployment {theirs[META_DEPLOYMENT]!r} of pack "
            f"{theirs.get(META_PACK)!r}; refusing to overwrite it with a plain run "
            "(run the pack, or pass allow_foreign=True / --force-owner to take it over)")


def _live_alloc_ids(allocs: Sequence[Mapping[str, Any]], version: int | None = None) -> set[str]:
    """Allocations meant to run (of `version`, if given): whose service instances count."""
    return {str(a.get("ID")) for a in allocs if a.get("DesiredStatus") == "run"
            and (version is None or int(a.get("JobVersion") or 0) == version)}


class _Run:
    """One followed deploy: evaluation, then deployment or allocations, then Consul services."""

    def __init__(self, client: NomadClient, job_id: str, api: Mapping[str, Any],
                 params: dict[str, Any], deadline: float, emit: OnEvent, promote: bool) -> None:
        self.client = client
        self.api = client.api
        self.job_id = job_id
        self.job = api
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

    def grace(self) -> float:
        """The deadline for reads that explain an outcome already known: a little past the
        run's own, so that a verdict reached at the last moment still gets its diagnosis."""
        return max(self.deadline, time.monotonic() + DIAGNOSIS_GRACE)

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
        job = self.api.job(self.job_id, self.params, deadline=self.deadline)
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
            raise self.fail(failed, "placement-failed")
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
            expected = _service_counts(self.job)
            live = _live_alloc_ids(self.api.allocations(self.job_id, self.params,
                                                        deadline=self.deadline),
                                   self.job_version)
            services = self.client.consul.wait_passing(expected, self.remaining(),
                                                       alloc_ids=live)
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
        fetch = self.api.blocking(("evaluation", eval_id), Answer.OBJECT, self.params)
        with _watch() as watch:
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
                allocs = self.api.deployment_allocations(self.deployment_id, self.params,
                                                         deadline=self.grace())
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
        with _watch() as watch:
            watch.follow(f"dep:{deployment_id}",
                         self.api.blocking(("deployment", deployment_id), Answer.OBJECT,
                                           self.params),
                         wait=WATCH_WAIT)
            watch.follow("allocs", self.api.blocking(("job", self.job_id, "allocations"),
                                                     Answer.LIST, self.params), wait=WATCH_WAIT)
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
                    watch.follow(f"dep:{deployment_id}", self.api.blocking(
                        ("deployment", deployment_id), Answer.OBJECT, self.params),
                        wait=WATCH_WAIT)
                    continue
                dep = body or {}
                self.on_progress(dep)
                status = dep.get("Status")
                if status == "running" and self.canaries_ready(dep):
                    if not self.auto_promote:
                        self.flush_allocs()
                        return self.result("awaiting-promotion")
                    if self.promote(deployment_id):
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
                    watch.follow("latest", self.api.blocking(
                        ("job", self.job_id, "deployment"), Answer.OBJECT_OR_NULL, self.params),
                        wait=WATCH_WAIT)
                    continue
                if reverted_to is not None:
                    diagnosis = failed_diagnosis + diagnosis + Diagnosis((Finding(
                        "revert", self.job_id,
                        f"the rollback to version {reverted_to} {status} too"),))
                raise self.fail(diagnosis, "reverted" if reverted_to is not None else "failed",
                                reverted_to=reverted_to)

    def promote(self, deployment_id: str) -> bool:
        """Promote the canaries; False when Nomad refused because the deployment stopped running
        meanwhile (a canary failed: its failure, and any auto-revert, arrive next)."""
        try:
            self.api.promote(deployment_id, {"DeploymentID": deployment_id, "All": True},
                             self.params, deadline=self.deadline)
        except ApiError as refused:
            dep = self.api.deployment(deployment_id, self.params, deadline=self.grace())
            if dep.get("Status") == "running" and not _unhealthy(dep):
                raise
            self.event(DeployEvent("promote", f"promotion refused, deployment "
                                   f"{dep.get('Status')}: {refused.body.strip()[:200]}"))
            return False
        return True

    def deployment_diagnosis(self, dep: Mapping[str, Any]) -> Diagnosis:
        allocs = self.api.deployment_allocations(str(dep["ID"]), self.params,
                                                 deadline=self.grace())
        found = diagnose.allocation_failures(self.job_id, allocs)
        return Diagnosis((diagnose.deployment_finding(self.job_id, dep),)) + found

    def canaries_ready(self, dep: Mapping[str, Any]) -> bool:
        """Whether the deployment waits only for someone to promote its healthy canaries."""
        states = dep.get("TaskGroups") or {}
        waiting = [s for s in states.values()
                   if int(s.get("DesiredCanaries") or 0) > 0 and not s.get("Promoted")]
        if not waiting or any(s.get("AutoPromote") for s in waiting):
            return False
        # Not the "requires manual promotion" description: Nomad's reconciler writes it when it
        # creates the deployment, before any canary is placed (reconcile_cluster.go:655-663).
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
        self.on_allocs(self.api.allocations(self.job_id, self.params, deadline=self.grace()))

    def on_allocs(self, allocs: Sequence[Mapping[str, Any]]) -> None:
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
        with _watch() as watch:
            watch.follow("allocs", self.api.blocking(("job", self.job_id, "allocations"),
                                                     Answer.LIST, self.params), wait=WATCH_WAIT)
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


def _watch() -> Watch:
    """A new Watch (its module, with its threads and queues, is imported by the first rollout)."""
    from nomadmesh.deploy.watch import Watch

    return Watch()


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


def _unhealthy(dep: Mapping[str, Any]) -> bool:
    """Whether any group of a deployment has unhealthy allocations."""
    return any(int(s.get("UnhealthyAllocs") or 0) > 0
               for s in (dep.get("TaskGroups") or {}).values())
