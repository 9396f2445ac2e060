"""What the deploy client returns: small immutable records that print and render in notebooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from nomadmesh.deploy.diagnose import Diagnosis

# The meta keys nomadmesh keeps on a job: only what stays the same from one submit to the next
# (any Meta change replaces every allocation, scheduler/util.go tasksUpdated). The owner tool on
# every job it submits; the pack and deployment name on a pack's jobs (packs/pack.py).
META_TOOL = "nomadmesh.tool"
META_PACK = "nomadmesh.pack"
META_DEPLOYMENT = "nomadmesh.deployment"
# Keys older versions wrote that change between submits; never written again (the register
# body's Submission records where a job came from), kept at their old value where they exist.
VOLATILE_META = ("nomadmesh.version", "nomadmesh.digest", "nomadmesh.source",
                 "nomadmesh.pack_version", "nomadmesh.variables_digest")


@attrs.frozen
class Owner:
    """Who deployed a job, read from its meta: the tool, its version and what it deployed from."""

    tool: str | None = None
    version: str | None = None
    source: str | None = None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> Owner:
        """Recognise nomadmesh's keys, Nomad Pack's `pack.*` keys and a generic `managed-by`."""
        meta = meta or {}
        if meta.get(META_TOOL):
            pack = meta.get(META_PACK)
            return cls(str(meta[META_TOOL]), source=(
                f"pack {pack} (deployment {meta.get(META_DEPLOYMENT)})" if pack else None))
        if any(k.startswith("pack.") for k in meta):
            return cls("nomad-pack", meta.get("pack.version"),
                       meta.get("pack.path") or meta.get("pack.name"))
        for key in ("managed-by", "managed_by", "managedBy"):
            if meta.get(key):
                return cls(str(meta[key]))
        return cls()

    def __str__(self) -> str:
        if not self.tool:
            return "unknown (no ownership meta)"
        text = self.tool + (f" {self.version}" if self.version else "")
        if self.source:
            text += f" from {self.source}"
        return text


@attrs.frozen
class RegisterResult:
    """A job accepted by Nomad: the evaluation it created and its new modify index."""

    job_id: str
    eval_id: str
    job_modify_index: int
    warnings: str = ""


@attrs.frozen
class GroupProgress:
    """One group's rollout: desired, placed, healthy and unhealthy allocations, canaries."""

    name: str
    desired: int = 0
    placed: int = 0
    healthy: int = 0
    unhealthy: int = 0
    desired_canaries: int = 0
    placed_canaries: int = 0
    promoted: bool = False
    auto_revert: bool = False

    @classmethod
    def from_deployment_state(cls, name: str, state: Mapping[str, Any]) -> GroupProgress:
        return cls(name, desired=int(state.get("DesiredTotal") or 0),
                   placed=int(state.get("PlacedAllocs") or 0),
                   healthy=int(state.get("HealthyAllocs") or 0),
                   unhealthy=int(state.get("UnhealthyAllocs") or 0),
                   desired_canaries=int(state.get("DesiredCanaries") or 0),
                   placed_canaries=len(state.get("PlacedCanaries") or ()),
                   promoted=bool(state.get("Promoted")),
                   auto_revert=bool(state.get("AutoRevert")))

    def __str__(self) -> str:
        text = f"{self.name}: {self.healthy}/{self.desired} healthy, {self.placed} placed"
        if self.unhealthy:
            text += f", {self.unhealthy} unhealthy"
        if self.desired_canaries:
            text += f", canaries {self.placed_canaries}/{self.desired_canaries}"
            text += " (promoted)" if self.promoted else ""
        return text


@attrs.frozen
class DeployEvent:
    """Something that happened while watching: an evaluation, a task event, a progress change."""

    kind: str
    message: str
    group: str | None = None
    task: str | None = None
    alloc_id: str | None = None
    groups: tuple[GroupProgress, ...] = ()

    def __str__(self) -> str:
        where = " ".join(p for p in (
            f"group {self.group!r}" if self.group else "",
            f"task {self.task!r}" if self.task else "",
            f"(alloc {self.alloc_id[:8]})" if self.alloc_id else "") if p)
        return f"[{self.kind}] " + (f"{where}: " if where else "") + self.message


@attrs.frozen
class DeployResult:
    """How a `run()` ended: healthy, complete, placed, registered, awaiting promotion, failed."""

    job_id: str
    status: str
    job_version: int | None = None
    eval_id: str | None = None
    deployment_id: str | None = None
    groups: tuple[GroupProgress, ...] = ()
    diagnosis: Diagnosis = Diagnosis()
    reverted_to: int | None = None
    promoted: bool = False
    dispatched_job_id: str | None = None
    services: Mapping[str, int] = attrs.field(factory=dict)
    events: tuple[DeployEvent, ...] = attrs.field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """Whether the job reached the state it was submitted for."""
        return self.status in ("healthy", "complete", "placed", "registered",
                               "awaiting-promotion", "unchanged")

    @property
    def exit_code(self) -> int:
        """What `nomad job run` exits with: 0 done, 2 placement failures, 1 any other failure
        (command/monitor.go:188-326)."""
        if self.ok:
            return 0
        return 2 if self.status == "placement-failed" else 1

    def __str__(self) -> str:
        head = f"job {self.job_id!r}: {self.status}"
        if self.job_version is not None:
            head += f" (version {self.job_version})"
        lines = [head, *(f"  {g}" for g in self.groups)]
        if self.reverted_to is not None:
            lines.append(f"  rolled back to version {self.reverted_to}")
        lines.extend(f"  service {name!r}: {n} passing" for name, n in self.services.items())
        lines.extend(f"  * {f}" for f in self.diagnosis)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html  # notebooks only: the CLI's status never renders HTML

        color = "#1a7f37" if self.ok else "#b00020"
        rows = "".join(_progress_row(g) for g in self.groups)
        table = ("<table><thead><tr><th>group</th><th>healthy / desired</th><th>placed</th>"
                 f"<th>unhealthy</th><th>canaries</th></tr></thead><tbody>{rows}</tbody></table>"
                 if rows else "")
        extra = ""
        if self.reverted_to is not None:
            extra += f"<p>rolled back to version {self.reverted_to}</p>"
        if self.diagnosis:
            extra += self.diagnosis._repr_html_()
        version = f" version {self.job_version}" if self.job_version is not None else ""
        return (f"<div><strong>{html.escape(self.job_id)}</strong>{version}: "
                f"<span style='color:{color}'>{html.escape(self.status)}</span>{table}{extra}</div>")


def _progress_row(g: GroupProgress) -> str:
    import html  # notebooks only: the CLI's status never renders HTML

    pct = int(100 * g.healthy / g.desired) if g.desired else 100
    bar = (f"<div style='background:#eee;width:120px'><div style='background:#1a7f37;"
           f"width:{pct}%'>&nbsp;</div></div>")
    canaries = f"{g.placed_canaries}/{g.desired_canaries}" if g.desired_canaries else ""
    return (f"<tr><td>{html.escape(g.name)}</td><td>{bar}{g.healthy}/{g.desired}</td>"
            f"<td>{g.placed}</td><td>{g.unhealthy}</td><td>{canaries}</td></tr>")


@attrs.frozen
class Allocation:
    """One allocation as `status` shows it."""

    id: str
    group: str
    node: str
    client_status: str
    desired_status: str
    job_version: int
    healthy: bool | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Allocation:
        health = (data.get("DeploymentStatus") or {}).get("Healthy")
        return cls(str(data.get("ID") or ""), str(data.get("TaskGroup") or ""),
                   str(data.get("NodeName") or data.get("NodeID") or "")[:16],
                   str(data.get("ClientStatus") or ""), str(data.get("DesiredStatus") or ""),
                   int(data.get("JobVersion") or 0), health)


@attrs.frozen
class ServiceInstance:
    """A service instance registered in Consul, with the states of its checks."""

    service: str
    id: str
    address: str
    port: int
    checks: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def passing(self) -> bool:
        return all(state == "passing" for state in self.checks.values())


@attrs.frozen
class JobStatus:
    """A job as it is now: status, version, owner, groups, allocations, latest deployment."""

    job_id: str
    type: str
    status: str
    version: int
    stable: bool
    stopped: bool
    owner: Owner
    summary: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    allocations: tuple[Allocation, ...] = ()
    deployment_id: str | None = None
    deployment_status: str | None = None
    deployment_description: str = ""
    groups: tuple[GroupProgress, ...] = ()
    services: tuple[ServiceInstance, ...] = ()

    def __str__(self) -> str:
        lines = [f"ID        = {self.job_id}", f"Type      = {self.type}",
                 f"Status    = {self.status}" + (" (stopped)" if self.stopped else ""),
                 f"Version   = {self.version}" + (" (stable)" if self.stable else ""),
                 f"Owner     = {self.owner}"]
        if self.summary:
            lines.append("Summary")
            for group, counts in sorted(self.summary.items()):
                lines.append(f"  {group}: " + ", ".join(
                    f"{k.lower()} {v}" for k, v in counts.items() if v))
        if self.deployment_id:
            lines.append(f"Deployment {self.deployment_id[:8]} = {self.deployment_status}"
                         + (f" ({self.deployment_description})"
                            if self.deployment_description else ""))
            lines.extend(f"  {g}" for g in self.groups)
        if self.allocations:
            lines.append("Allocations")
            lines.extend(f"  {a.id[:8]}  {a.group:<12} v{a.job_version}  {a.desired_status:<5} "
                         f"{a.client_status}" + ("" if a.healthy is None else
                                                  (" healthy" if a.healthy else " unhealthy"))
                         for a in self.allocations)
        if self.services:
            lines.append("Services (Consul)")
            lines.extend(f"  {s.service} {s.address}:{s.port} " + ", ".join(
                f"{name}={state}" for name, state in s.checks.items())
                for s in self.services)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Tables, for notebooks: the job, its groups, allocations and Consul services."""
        import html  # notebooks only: the CLI's status never renders HTML

        state = self.status + (" (stopped)" if self.stopped else "")
        head = (f"<strong>{html.escape(self.job_id)}</strong> ({html.escape(self.type)}): "
                f"{html.escape(state)}, version {self.version}"
                + (" (stable)" if self.stable else "") + f", owner {html.escape(str(self.owner))}")
        parts = [f"<p>{head}</p>"]
        if self.summary:
            states = ("Queued", "Starting", "Running", "Failed", "Complete", "Lost")
            parts.append(_table(("group", *(s.lower() for s in states)), [
                (g, *(str(c.get(s, 0)) for s in states)) for g, c in sorted(self.summary.items())]))
        if self.deployment_id:
            parts.append(f"<p>deployment <code>{html.escape(self.deployment_id[:8])}</code>: "
                         f"{html.escape(self.deployment_status or '')}"
                         + (f" ({html.escape(self.deployment_description)})"
                            if self.deployment_description else "") + "</p>")
        if self.allocations:
            parts.append(_table(("allocation", "group", "node", "version", "desired", "status",
                                 "health"), [
                (a.id[:8], a.group, a.node, str(a.job_version), a.desired_status, a.client_status,
                 "" if a.healthy is None else ("healthy" if a.healthy else "unhealthy"))
                for a in self.allocations]))
        if self.services:
            parts.append(_table(("service", "instance", "address", "checks"), [
                (s.service, s.id, f"{s.address}:{s.port}",
                 ", ".join(f"{name}: {state}" for name, state in s.checks.items()) or "(none)")
                for s in self.services]))
        return "<div>" + "".join(parts) + "</div>"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    import html  # notebooks only: the CLI's status never renders HTML

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@attrs.frozen
class JobVersion:
    """One entry of a job's history."""

    version: int
    stable: bool
    submit_time: int
    job_modify_index: int
    owner: Owner
    changes: tuple[str, ...] = ()

    def __str__(self) -> str:
        import datetime

        when = datetime.datetime.fromtimestamp(self.submit_time / 1e9, tz=datetime.timezone.utc)
        text = (f"Version {self.version}{' (stable)' if self.stable else ''}  "
                f"{when:%Y-%m-%d %H:%M:%S}Z  index {self.job_modify_index}  by {self.owner}")
        return text + "".join(f"\n    {c}" for c in self.changes)


@attrs.frozen
class DispatchResult:
    """A dispatched child job of a parameterized job."""

    parent_id: str
    dispatched_job_id: str
    eval_id: str
