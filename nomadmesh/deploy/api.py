"""Nomad's HTTP API as typed endpoints: one method per endpoint, each with its answer's shape.

Every method goes through `NomadHttp.request`, the one boundary where answers become nomadmesh
errors. Reads, plans and validations change nothing and are repeated on transient failures; a
register is repeated only under an enforce index (a second copy is then impossible); other writes
are sent once. Paths and shapes follow Nomad's `api/` package and command/agent/*_endpoint.go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from nomadmesh.deploy._http import (
    NO_RETRY,
    Answer,
    NomadHttp,
    Reply,
    Retry,
    blocking_params,
    blocking_timeout,
)
from nomadmesh.errors import NotFound

Params = Mapping[str, Any]
JsonObject = dict[str, Any]
# fetch(index, wait, cancelled) -> Reply: one blocking query; `cancelled` stops its retries.
Fetch = Callable[[int, float, Callable[[], bool]], Reply]


class NomadApi:
    """The endpoints the deploy client uses, typed; `deadline` bounds a call with its retries."""

    def __init__(self, http: NomadHttp) -> None:
        self.http = http

    def _read(self, path: tuple[str, ...], answer: Answer, params: Params, *,
              deadline: float | None = None) -> Any:
        return self.http.request("get", path, answer, params=params, retry=self.http.retry,
                                 deadline=deadline).body

    def _write(self, method: str, path: tuple[str, ...], body: Any, params: Params, *,
               retry: Retry = NO_RETRY, deadline: float | None = None,
               timeout: float | None = None, subject: str | None = None) -> JsonObject:
        reply = self.http.request(method, path, Answer.OBJECT, params=params, body=body,
                                  retry=retry, deadline=deadline, timeout=timeout,
                                  subject=subject)
        out: JsonObject = reply.body
        return out

    def blocking(self, path: tuple[str, ...], answer: Answer, params: Params) -> Fetch:
        """A blocking query on one read endpoint (`?index=&wait=`), for `watch.Follower`."""
        def fetch(index: int, wait: float, cancelled: Callable[[], bool]) -> Reply:
            return self.http.request("get", path, answer,
                                     params={**params, **blocking_params(index, wait)},
                                     retry=self.http.retry, timeout=blocking_timeout(wait),
                                     cancelled=cancelled)
        return fetch

    # --- jobs (api/jobs.go) -----------------------------------------------------------------

    def job(self, job_id: str, params: Params, *, deadline: float | None = None) -> JsonObject:
        """`GET /v1/job/<id>`: the job with server defaults; NotFound if it does not exist."""
        out: JsonObject = self._read(("job", job_id), Answer.OBJECT, params, deadline=deadline)
        return out

    def job_or_none(self, job_id: str, params: Params, *,
                    deadline: float | None = None) -> JsonObject | None:
        """The job, or None when there is no such job."""
        try:
            return self.job(job_id, params, deadline=deadline)
        except NotFound:
            return None

    def jobs(self, params: Params) -> list[JsonObject]:
        """`GET /v1/jobs`: job list stubs."""
        out: list[JsonObject] = self._read(("jobs",), Answer.LIST, params)
        return out

    def register(self, job_id: str, body: JsonObject, params: Params, *,
                 deadline: float | None = None, timeout: float | None = None) -> JsonObject:
        """`POST /v1/job/<id>` (JobRegisterRequest); repeated only under an enforce index."""
        retry = self.http.retry if body.get("EnforceIndex") else NO_RETRY
        return self._write("post", ("job", job_id), body, params, retry=retry,
                           deadline=deadline, timeout=timeout, subject=job_id)

    def plan(self, job_id: str, body: JsonObject, params: Params, *,
             deadline: float | None = None) -> JsonObject:
        """`POST /v1/job/<id>/plan` (JobPlanRequest): a dry run, as safe to repeat as a read."""
        return self._write("post", ("job", job_id, "plan"), body, params,
                           retry=self.http.retry, deadline=deadline, subject=job_id)

    def validate(self, body: JsonObject, params: Params, *,
                 deadline: float | None = None) -> JsonObject:
        """`POST /v1/validate/job` (JobValidateRequest): 200 with `ValidationErrors`."""
        job_id = str((body.get("Job") or {}).get("ID") or "")
        return self._write("post", ("validate", "job"), body, params, retry=self.http.retry,
                           deadline=deadline, subject=job_id)

    def deregister(self, job_id: str, params: Params) -> JsonObject:
        """`DELETE /v1/job/<id>` (`purge=true` to forget it)."""
        return self._write("delete", ("job", job_id), None, params)

    def versions(self, job_id: str, params: Params) -> JsonObject:
        """`GET /v1/job/<id>/versions` (`diffs=true` for the diff of each to its predecessor)."""
        out: JsonObject = self._read(("job", job_id, "versions"), Answer.OBJECT, params)
        return out

    def summary(self, job_id: str, params: Params) -> JsonObject:
        """`GET /v1/job/<id>/summary`."""
        out: JsonObject = self._read(("job", job_id, "summary"), Answer.OBJECT, params)
        return out

    def allocations(self, job_id: str, params: Params, *,
                    deadline: float | None = None) -> list[JsonObject]:
        """`GET /v1/job/<id>/allocations`: allocation stubs."""
        out: list[JsonObject] = self._read(("job", job_id, "allocations"), Answer.LIST, params,
                                           deadline=deadline)
        return out

    def evaluations(self, job_id: str, params: Params) -> list[JsonObject]:
        """`GET /v1/job/<id>/evaluations`."""
        out: list[JsonObject] = self._read(("job", job_id, "evaluations"), Answer.LIST, params)
        return out

    def latest_deployment(self, job_id: str, params: Params) -> JsonObject | None:
        """`GET /v1/job/<id>/deployment`: the latest deployment, or null when there is none."""
        out: JsonObject | None = self._read(("job", job_id, "deployment"), Answer.OBJECT_OR_NULL,
                                            params)
        return out

    def scale_status(self, job_id: str, params: Params, *,
                     deadline: float | None = None) -> JsonObject:
        """`GET /v1/job/<id>/scale` (JobScaleStatusResponse): per group counts and events."""
        out: JsonObject = self._read(("job", job_id, "scale"), Answer.OBJECT, params,
                                     deadline=deadline)
        return out

    def submission(self, job_id: str, version: int, params: Params, *,
                   deadline: float | None = None) -> JsonObject | None:
        """`GET /v1/job/<id>/submission?version=N`: the source a version was submitted with."""
        try:
            out: JsonObject = self._read(("job", job_id, "submission"), Answer.OBJECT,
                                         {**params, "version": version}, deadline=deadline)
        except NotFound:
            return None
        return out

    def revert(self, job_id: str, body: JsonObject, params: Params) -> JsonObject:
        """`POST /v1/job/<id>/revert` (JobRevertRequest)."""
        return self._write("post", ("job", job_id, "revert"), body, params)

    def dispatch(self, job_id: str, body: JsonObject, params: Params) -> JsonObject:
        """`POST /v1/job/<id>/dispatch` (JobDispatchRequest)."""
        return self._write("post", ("job", job_id, "dispatch"), body, params)

    # --- evaluations, deployments, allocations ------------------------------------------------

    def evaluation_path(self, eval_id: str) -> tuple[str, ...]:
        """`/v1/evaluation/<id>` (an object), for blocking queries."""
        return ("evaluation", eval_id)

    def deployment(self, deployment_id: str, params: Params, *,
                   deadline: float | None = None) -> JsonObject:
        """`GET /v1/deployment/<id>`."""
        out: JsonObject = self._read(("deployment", deployment_id), Answer.OBJECT, params,
                                     deadline=deadline)
        return out

    def deployment_allocations(self, deployment_id: str, params: Params, *,
                               deadline: float | None = None) -> list[JsonObject]:
        """`GET /v1/deployment/allocations/<id>`."""
        out: list[JsonObject] = self._read(("deployment", "allocations", deployment_id),
                                           Answer.LIST, params, deadline=deadline)
        return out

    def promote(self, deployment_id: str, body: JsonObject, params: Params, *,
                deadline: float | None = None) -> JsonObject:
        """`POST /v1/deployment/promote/<id>` (DeploymentPromoteRequest)."""
        return self._write("post", ("deployment", "promote", deployment_id), body, params,
                           deadline=deadline)

    def follow_logs(self, alloc_id: str, params: Params) -> Iterator[str]:
        """`GET /v1/client/fs/logs/<alloc>` with `follow=true`: text as the task writes it."""
        return self.http.stream(("client", "fs", "logs", alloc_id), params=params)

    def logs(self, alloc_id: str, params: Params) -> str:
        """`GET /v1/client/fs/logs/<alloc>` with `plain=true`: the text a task wrote."""
        out: str = self.http.request("get", ("client", "fs", "logs", alloc_id), Answer.TEXT,
                                     params=params, retry=self.http.retry).body
        return out
