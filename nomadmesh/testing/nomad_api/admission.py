"""A job from the agent to the state store: conversion, mutators, validators (aa026cc).

`admit` is what `POST /v1/jobs` does between decoding and storing: the agent's namespace and region
choice (command/agent/job_endpoint.go:1025), `ApiJobToStructJob`, then `Job.Register`'s
admission controllers (nomad/job_endpoint_hooks.go); a refused job raises NomadApiError(500) with
the go-multierror text a real agent answers. `validate_response` is `/v1/validate/job`'s body.
"""

from __future__ import annotations

import math
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from nomadmesh.testing.nomad_api import convert
from nomadmesh.testing.nomad_api._json import clone
from nomadmesh.testing.nomad_api.api_canonical import canonicalize_job
from nomadmesh.testing.nomad_api.errors import NomadApiError, multierror
from nomadmesh.testing.nomad_api.server import connect_validate, expose_validate, mutate
from nomadmesh.testing.nomad_api.validate import job_warnings, validate_job

Obj = dict[str, Any]

SERVER_FIELDS = ("Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
                 "ModifyIndex", "JobModifyIndex")


@dataclass(frozen=True)
class ServerConfig:
    """What a server's configuration decides about jobs (a `nomad agent -dev` by default)."""

    region: str = "global"
    node_pools: tuple[str, ...] = ("all", "default")
    vault_clusters: tuple[str, ...] = ()  # none enabled: a job with `vault` is refused
    job_max_priority: int = 100
    job_default_priority: int = 50
    job_max_count: int = 0


@dataclass(frozen=True)
class Admitted:
    """A job the server accepted: structs JSON as stored (server fields zero), and its warnings."""

    job: Obj
    warnings: list[str] = field(default_factory=list)
    region: str = "global"  # the region the request is served by (forwarded when not ours)

    @property
    def warnings_text(self) -> str:
        """helper/warning.go:15 MergeMultierrorWarnings ("" when none), as register answers."""
        if not self.warnings:
            return ""
        head = "1 warning:\n" if len(self.warnings) == 1 else f"{len(self.warnings)} warnings:\n"
        return head + "".join(f"\n* {w.strip()}" for w in self.warnings)


def to_structs(job: Obj, *, config: ServerConfig = ServerConfig(), write_region: str = "",
               write_namespace: str = "", query_region: str = "",
               query_namespace: str = "") -> tuple[Obj, str]:
    """The agent's half: api job -> (structs job, request region) (job_endpoint.go:1025)."""
    j = clone(job)
    namespace = (query_namespace or write_namespace or j["Namespace"] or "default")
    j["Namespace"] = namespace
    request_region, job_region = _regions(j, query_region, write_region, config.region)
    canonicalize_job(j)
    out = convert.job(j)
    out["Region"] = job_region
    return out, request_region


def _regions(job: Obj, query: str, write: str, agent: str) -> tuple[str, str]:
    """command/agent/job_endpoint.go:1057 regionForJob: (request region, job region)."""
    request = job_region = ""
    if query:
        request = job_region = query
    if write:
        request = job_region = write
    if request == "" and job["Region"] is not None:
        request = job_region = job["Region"]
    if request in ("", "global"):
        request = job_region = agent
    mr = job["Multiregion"]
    if mr is not None:
        job_region = "global"
        regions = [r["Name"] for r in mr["Regions"] or () if r is not None]
        if regions and request not in regions:
            request = regions[0]
    return request, job_region


def admit(job: Obj, *, config: ServerConfig = ServerConfig(), write_region: str = "",
          write_namespace: str = "", query_region: str = "",
          query_namespace: str = "") -> Admitted:
    """Convert, mutate and validate a register's job, or raise NomadApiError(500) as Nomad does."""
    sj, region = to_structs(job, config=config, write_region=write_region,
                            write_namespace=write_namespace, query_region=query_region,
                            query_namespace=query_namespace)
    sj = mutate(sj, default_priority=config.job_default_priority)
    errors, warnings = _validators(sj, config)
    if errors:
        raise NomadApiError(500, multierror(errors))
    return Admitted(job=sj, warnings=warnings, region=region)


def validate_response(job: Obj, *, config: ServerConfig = ServerConfig()) -> Obj:
    """nomad/job_endpoint.go:486 Job.Validate's reply (`/v1/validate/job`, status 200)."""
    sj, _ = to_structs(job, config=config)
    sj["Region"] = job["Region"] or "global"  # job_endpoint.go:221 converts without regionForJob
    try:
        sj = mutate(sj, default_priority=config.job_default_priority)
    except NomadApiError as exc:
        return {"DriverConfigValidated": True, "ValidationErrors": [exc.text], "Error": exc.text,
                "Warnings": ""}
    errors, warnings = _validators(sj, config)
    return {"DriverConfigValidated": True, "ValidationErrors": errors or None,
            "Error": multierror(errors) if errors else "",
            "Warnings": Admitted(job=sj, warnings=warnings).warnings_text}


def _validators(j: Obj, config: ServerConfig) -> tuple[list[str], list[str]]:
    """nomad/job_endpoint.go:77 validators, each error appended (multierrors flattened)."""
    errors: list[str] = []
    warnings: list[str] = []
    groups = j["TaskGroups"] or []
    tasks = [t for tg in groups for t in tg["Tasks"] or ()]
    for check in (connect_validate, expose_validate):
        error = next((e for tg in groups if (e := check(tg)) is not None), None)
        if error is not None:
            errors.append(error)
    # job_endpoint_hook_vault.go:21: every vault block needs an enabled cluster
    for t in tasks:
        if t["Vault"] is not None and t["Vault"]["Cluster"] not in config.vault_clusters:
            errors.append(f'Vault "{t["Vault"]["Cluster"]}" not enabled but used in the job')
            break
    # job_endpoint_hook_consul_ce.go:14: only the default Consul cluster in CE
    clusters = [tg["Consul"]["Cluster"] for tg in groups if tg["Consul"] is not None]
    clusters += [t["Consul"]["Cluster"] for t in tasks if t["Consul"] is not None]
    clusters += [s["Cluster"] for tg in groups for s in tg["Services"] or ()
                 if s["Provider"] == "consul"]
    if any(c != "default" for c in clusters):
        errors.append("non-default Consul cluster requires Nomad Enterprise")
    # job_endpoint_hook_node_pool.go: the pool must exist
    if j["NodePool"] not in config.node_pools:
        errors.append(f'job "{j["ID"]}" is in nonexistent node pool "{j["NodePool"]}"')
    # job_endpoint_hooks.go jobValidate.Validate
    errors += validate_job(j)
    warnings += job_warnings(j)
    if j["Type"] == "_core":
        errors.append("job type cannot be core")
    if j["Payload"]:
        errors.append("job can't be submitted with a payload, only dispatched")
    if not 1 <= j["Priority"] <= config.job_max_priority:
        errors.append(f"job priority must be between [1, {config.job_max_priority}]")
    total = 0
    for tg in groups:
        total += tg["Count"]
        for s in tg["Services"] or ():
            if s["Identity"] is not None and s["Identity"]["Name"] == "":
                errors.append(f"Service {s['Name']} in task group {tg['Name']} has an identity "
                              "with an empty name")
        for t in tg["Tasks"] or ():
            for s in t["Services"] or ():
                if s["Identity"] is not None and s["Identity"]["Name"] == "":
                    errors.append(f"Service {s['Name']} in task {t['Name']} has an identity "
                                  "with an empty name")
            if t["Vault"] is None:
                for wid in t["Identities"] or ():
                    if wid["Name"].startswith("vault_"):
                        warnings.append(f"Task {t['Name']} has an identity called {wid['Name']} "
                                        "but no vault block")
    if config.job_max_count > 0 and total > config.job_max_count:
        errors.append(f"total count was greater than configured job_max_count: {total} > "
                      f"{config.job_max_count}")
    # job_endpoint_hooks.go memoryOversubscriptionValidate (oversubscription off by default)
    for tg in groups:
        for t in tg["Tasks"] or ():
            if t["Resources"] is not None and t["Resources"]["MemoryMaxMB"] != 0:
                warnings.append(f'Memory oversubscription is not enabled; Task "{tg["Name"]}.'
                                f'{t["Name"]}" memory_max value will be ignored. Update the '
                                "Scheduler Configuration to allow oversubscription.")
    # job_endpoint_hook_numa_ce.go, job_endpoint_hook_sched_ce.go
    if any(t["Resources"] is not None and t["Resources"]["NUMA"] is not None
           and t["Resources"]["NUMA"]["Affinity"] != "none" for t in tasks):
        errors.append("numa scheduling requires Nomad Enterprise")
    if any(t["Schedule"] is not None for t in tasks):
        errors.append("task schedules requires Nomad Enterprise")
    return errors, warnings


def spec_changed(old: Obj | None, new: Obj) -> bool:
    """nomad/structs/structs.go Job.SpecChanged: anything but the server-managed fields."""
    if old is None:
        return True
    return {k: v for k, v in old.items() if k not in SERVER_FIELDS} != {
        k: v for k, v in new.items() if k not in SERVER_FIELDS}


def against_existing(existing: Obj | None, job: Obj, request: Any = None) -> Obj:
    """The admitted job as stored next to `existing`: job_endpoint.go:222-233, state_store:5709."""
    if request is not None and request.enforce_index:
        index = request.job_modify_index
        if existing is not None:
            if index == 0:
                raise NomadApiError(500, "Enforcing job modify index 0: job already exists")
            if index != existing["JobModifyIndex"]:
                raise NomadApiError(500, f"Enforcing job modify index {index}: job exists with "
                                    "conflicting job modify index: "
                                    f"{existing['JobModifyIndex']}")
        elif index != 0:
            raise NomadApiError(500, f"Enforcing job modify index {index}: job does not exist")
    _validate_update(existing, job)
    out = clone(job)
    old_ids = {_policy_key(p): p["ID"] for p in _policies(existing)} if existing else {}
    for policy in _policies(out):  # :398 propagateScalingPolicyIDs
        policy["ID"] = old_ids.get(_policy_key(policy)) or str(uuid.uuid4())
    if existing is not None and request is not None:
        previous = {tg["Name"]: tg for tg in existing["TaskGroups"] or ()}
        for tg in out["TaskGroups"] or ():
            prev = previous.get(tg["Name"])
            if prev is None:
                continue
            if request.preserve_counts:
                tg["Count"] = prev["Count"]
            if request.preserve_resources:
                resources = {t["Name"]: t["Resources"] for t in prev["Tasks"] or ()}
                for t in tg["Tasks"] or ():
                    if t["Name"] in resources:
                        t["Resources"] = clone(resources[t["Name"]])
    return out


def _policies(job: Obj | None) -> list[Obj]:
    """structs.go:6500 Job.GetScalingPolicies (group policies in CE)."""
    return [tg["Scaling"] for tg in (job or {}).get("TaskGroups") or () if tg["Scaling"]]


def _policy_key(policy: Obj) -> str:
    """structs.go:6366 ScalingPolicy.JobKey."""
    target = policy["Target"] or {}
    return f"{policy['Type']}\0{target.get('Group', '')}\0{target.get('Task', '')}"


def _validate_update(old: Obj | None, new: Obj) -> None:
    """nomad/job_endpoint.go:1946 validateJobUpdate."""
    if old is None:
        if new["Dispatched"]:
            raise NomadApiError(500, "job can't be submitted with 'Dispatched' set")
        return
    if old["Type"] != new["Type"]:
        raise NomadApiError(500, f'cannot update job from type "{old["Type"]}" to '
                            f'"{new["Type"]}"')
    for key, noun in (("Periodic", "periodic"), ("ParameterizedJob", "parameterized")):
        was, now = _is(old, key), _is(new, key)
        if was and not now:
            raise NomadApiError(500, f"cannot update {noun} job to being non-{noun}")
        if now and not was:
            raise NomadApiError(500, f"cannot update non-{noun} job to being {noun}")
    if old["Dispatched"] != new["Dispatched"]:
        raise NomadApiError(500, "field 'Dispatched' is read-only")


def _is(job: Obj, key: str) -> bool:
    """Job.IsPeriodic / IsParameterized (structs.go): set, and for a child not inherited."""
    if key == "Periodic":
        return job["Periodic"] is not None
    return job["ParameterizedJob"] is not None and not job["Dispatched"]


def submission(request: Any, job: Obj, *,
               max_size: int = 1_000_000) -> tuple[Obj | None, str | None]:
    """The stored Submission and its warning: job_endpoint.go:1009, hooks' submissionController."""
    sub = request.submission
    if sub is None:
        return None, None
    flags = {k: urllib.parse.quote_plus(v) for k, v in (sub["VariableFlags"] or {}).items()}
    size = len(sub["Source"].encode()) + len(sub["Variables"].encode()) + sum(
        len(k.encode()) + len(v.encode()) for k, v in flags.items())
    if size > max_size:
        return None, (f"job source size of {_si_bytes(size)} exceeds maximum of "
                      f"{_si_bytes(max_size)} and will be discarded")
    return {"Source": sub["Source"], "Format": sub["Format"], "VariableFlags": flags or None,
            "Variables": sub["Variables"], "Namespace": job["Namespace"], "JobID": job["ID"],
            "Version": 0, "JobModifyIndex": 0}, None


def _si_bytes(size: int) -> str:
    """go-humanize Bytes: SI units, one decimal under 10."""
    if size < 10:
        return f"{size} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    exponent = min(math.floor(math.log(size, 1000)), len(units) - 1)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    return (f"{value:.1f} {units[exponent]}" if value < 10 else
            f"{value:.0f} {units[exponent]}")
