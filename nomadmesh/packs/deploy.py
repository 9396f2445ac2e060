"""Deploying packs: plan, run (`prune` stops jobs a new version dropped), stop and status.

A deployment is the set of jobs whose meta names the same pack and deployment name. Nomad Pack
deregisters jobs a new pack version no longer renders without saying so; here `plan_pack` lists
them, and `run_pack` stops them only with `prune=True`. Jobs are always matched by exact ID.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from nomadmesh.deploy import DeployEvent, DeployResult, NomadClient, Plan
from nomadmesh.errors import InputError, NotFound, OwnershipError
from nomadmesh.model import Job
from nomadmesh.packs.definition import META_DEPLOYMENT, META_PACK, META_PACK_VERSION, META_VARIABLES_DIGEST


@attrs.frozen
class DeployedJob:
    """A job on the server that belongs to a pack deployment, read from its meta."""

    id: str
    namespace: str
    pack: str
    version: str
    deployment: str
    variables_digest: str
    type: str
    status: str
    stopped: bool

    @classmethod
    def from_stub(cls, stub: Mapping[str, Any]) -> DeployedJob | None:
        """From a `GET /v1/jobs?meta=true` entry; None when the job is not from a pack.

        Children of periodic and parameterized jobs inherit their parent's meta but were never
        rendered by the pack; they are not the deployment's jobs (and are never pruned).
        """
        meta = stub.get("Meta") or {}
        if not meta.get(META_PACK) or not meta.get(META_DEPLOYMENT) or stub.get("ParentID"):
            return None
        return cls(str(stub["ID"]), str(stub.get("Namespace") or "default"), str(meta[META_PACK]),
                   str(meta.get(META_PACK_VERSION) or ""), str(meta[META_DEPLOYMENT]),
                   str(meta.get(META_VARIABLES_DIGEST) or ""), str(stub.get("Type") or ""),
                   str(stub.get("Status") or ""), bool(stub.get("Stop")))


@attrs.frozen
class PackDeployment:
    """One deployment of a pack: its name, the pack and version, and its jobs."""

    pack: str
    deployment: str
    jobs: tuple[DeployedJob, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        """The pack versions its jobs were rendered from, where known (more than one
        mid-upgrade): only jobs submitted by nomadmesh before 0.2 carry it in their meta."""
        return tuple(sorted({j.version for j in self.jobs if j.version}))


@attrs.frozen
class PackPlan:
    """What running a rendered deployment would do: a plan per job, and the jobs it drops."""

    pack: str
    version: str
    deployment: str
    plans: tuple[Plan, ...]
    dropped: tuple[str, ...]
    prune: bool = False

    @property
    def exit_code(self) -> int:
        """`nomad job plan`'s rule over the deployment: 1 when any job's allocations would
        change (or, with `prune`, a dropped job would be stopped), else 0."""
        return 1 if any(p.exit_code for p in self.plans) or (self.prune and self.dropped) else 0

    def render(self) -> str:
        """Every job's plan, then the jobs that only `--prune` would stop."""
        out = [f"Pack {self.pack} {self.version}, deployment {self.deployment!r}", ""]
        for plan in self.plans:
            out += [plan.render(), ""]
        if self.dropped:
            out.append("Jobs this version no longer produces (stopped only with --prune):")
            out += [f"  - {job_id}" for job_id in self.dropped]
        return "\n".join(out).rstrip() + "\n"


@attrs.frozen
class PackRun:
    """The outcome of running a deployment: each job's result, what was pruned or left."""

    deployment: str
    results: tuple[DeployResult, ...]
    pruned: tuple[str, ...] = ()
    left_running: tuple[str, ...] = ()


def deployments(client: NomadClient, *, deployment: str | None = None, pack: str | None = None,
                namespace: str | None = None, include_stopped: bool = False
                ) -> list[PackDeployment]:
    """Pack deployments on the server (optionally one deployment name or pack), by name."""
    grouped: dict[tuple[str, str], list[DeployedJob]] = {}
    for job in _deployed_jobs(client, namespace):
        if (deployment is not None and job.deployment != deployment) or (
                pack is not None and job.pack != pack) or (job.stopped and not include_stopped):
            continue
        grouped.setdefault((job.pack, job.deployment), []).append(job)
    return [PackDeployment(p, d, tuple(sorted(jobs, key=lambda j: j.id)))
            for (p, d), jobs in sorted(grouped.items())]


def plan_pack(client: NomadClient, jobs: Sequence[Job], *, prune: bool = False) -> PackPlan:
    """Plan every rendered job and list the deployment's jobs the render no longer has (which a
    run with `prune` would stop)."""
    pack, version, deployment = _identity(jobs)
    _check_ownership(client, jobs, pack, deployment)
    plans = tuple(client.plan(job) for job in jobs)
    dropped = _dropped(client, jobs, pack, deployment)
    return PackPlan(pack, version, deployment, plans, tuple(j.id for j in dropped), prune)


def run_pack(client: NomadClient, jobs: Sequence[Job], *, prune: bool = False, wait: bool = True,
             timeout: float = 600.0, on_event: Callable[[DeployEvent], None] | None = None
             ) -> PackRun:
    """Run every rendered job, then stop the jobs the render dropped if `prune`, else list them."""
    pack, _, deployment = _identity(jobs)
    _check_ownership(client, jobs, pack, deployment)
    dropped = _dropped(client, jobs, pack, deployment)
    results = tuple(client.run(job, wait=wait, timeout=timeout, on_event=on_event)
                    for job in jobs)
    if not prune:
        return PackRun(deployment, results, left_running=tuple(j.id for j in dropped))
    for job in dropped:
        client.stop(job.id, namespace=job.namespace)
    return PackRun(deployment, results, pruned=tuple(j.id for j in dropped))


def stop_pack(client: NomadClient, deployment: str, *, pack: str | None = None,
              purge: bool = False, namespace: str | None = None) -> list[str]:
    """Stop every job of a deployment (exact IDs from its meta); the IDs stopped."""
    found = deployments(client, deployment=deployment, pack=pack, namespace=namespace)
    if not found:
        raise NotFound(f"no running jobs belong to deployment {deployment!r}"
                       + (f" of pack {pack!r}" if pack else ""))
    if len(found) > 1:
        names = ", ".join(sorted(d.pack for d in found))
        raise InputError(f"deployment {deployment!r} exists for several packs ({names}); "
                         "name the pack")
    stopped = []
    for job in found[0].jobs:
        client.stop(job.id, purge=purge, namespace=job.namespace)
        stopped.append(job.id)
    return stopped


def _identity(jobs: Sequence[Job]) -> tuple[str, str, str]:
    if not jobs:
        raise InputError("a pack deployment needs at least one job")
    keys = {(j.meta.get(META_PACK), j.meta.get(META_PACK_VERSION), j.meta.get(META_DEPLOYMENT))
            for j in jobs}
    pack, version, deployment = next(iter(keys))
    if len(keys) != 1 or not pack or not deployment:
        raise InputError("these jobs are not one rendered pack deployment (their "
                         f"{META_PACK}/{META_DEPLOYMENT} meta differ or are missing)")
    return str(pack), str(version), str(deployment)


def _deployed_jobs(client: NomadClient, namespace: str | None) -> list[DeployedJob]:
    stubs = client.jobs(namespace=namespace or "*", meta=True)
    return [j for j in (DeployedJob.from_stub(s) for s in stubs) if j is not None]


def _key(client: NomadClient, job: Job) -> tuple[str, str]:
    return (job.namespace or client.config.namespace or "default", job.id)


def _dropped(client: NomadClient, jobs: Sequence[Job], pack: str,
             deployment: str) -> tuple[DeployedJob, ...]:
    rendered = {_key(client, j) for j in jobs}
    found = deployments(client, deployment=deployment, pack=pack)
    return tuple(j for d in found for j in d.jobs if (j.namespace, j.id) not in rendered)


def _check_ownership(client: NomadClient, jobs: Sequence[Job], pack: str,
                     deployment: str) -> None:
    """Refuse to take over a job that another pack deployment owns."""
    owners = {(j.namespace, j.id): j for j in _deployed_jobs(client, None) if not j.stopped}
    for job in jobs:
        other = owners.get(_key(client, job))
        if other is not None and (other.pack, other.deployment) != (pack, deployment):
            raise OwnershipError(f"job {job.id!r} belongs to deployment {other.deployment!r} of "
                                 f"pack {other.pack!r}; choose another deployment name (--name)")
