"""Why a deploy failed, in words: one finding per failure, naming group, task and allocation.

Modelled on Levant's failure inspector. Input is Nomad's own JSON: an evaluation's or a plan's
`FailedTGAllocs` (AllocationMetric: nodes evaluated/filtered/exhausted and on which dimension),
allocations with `TaskStates[*].Events`, and a deployment's status description.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

# Nomad's task event types (nomad/structs TaskEvent constants) that explain a failure, with the
# words used for them. Order matters only for display.
_CAUSES = {
    "Driver Failure": "driver failure",
    "Setup Failure": "setup failure",
    "Failed Artifact Download": "artifact download failed",
    "Failed Validation": "task validation failed",
    "Task hook failed": "task hook failed",
    "Template": "template failure",
    "Terminated": "terminated",
    "Sibling Task Failed": "sibling task failed",
    "Killed": "killed",
    "Killing": "killing",
    "Restart Signaled": "restart signaled",
    "Leader Task Dead": "leader task died",
    "Alloc Unhealthy": "unhealthy",
}


@attrs.frozen
class Finding:
    """One failure: what failed, where (job/group/task/allocation) and why, as one sentence."""

    kind: str
    job_id: str
    message: str
    group: str | None = None
    task: str | None = None
    alloc_id: str | None = None

    @property
    def where(self) -> str:
        """`group "web" task "app" (alloc 1a2b3c4d)`, as much of it as is known."""
        parts = []
        if self.group:
            parts.append(f"group {self.group!r}")
        if self.task:
            parts.append(f"task {self.task!r}")
        text = " ".join(parts) or f"job {self.job_id!r}"
        if self.alloc_id:
            text += f" (alloc {self.alloc_id[:8]})"
        return text

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@attrs.frozen
class Diagnosis:
    """Every finding about one failed deploy, in the order they were found."""

    findings: tuple[Finding, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def sentences(self) -> list[str]:
        """One line per finding."""
        return [str(f) for f in self.findings]

    def __str__(self) -> str:
        return "\n".join(self.sentences())

    def __add__(self, other: Diagnosis) -> Diagnosis:
        seen = set(self.findings)
        return Diagnosis(self.findings + tuple(f for f in other.findings if f not in seen))

    def _repr_html_(self) -> str:
        import html  # notebooks only: the CLI's status never renders HTML

        if not self.findings:
            return "<p><em>no failures found</em></p>"
        rows = "".join(
            f"<tr><td>{html.escape(f.kind)}</td><td>{html.escape(f.group or '')}</td>"
            f"<td>{html.escape(f.task or '')}</td><td><code>{html.escape((f.alloc_id or '')[:8])}"
            f"</code></td><td style='color:#b00020'>{html.escape(f.message)}</td></tr>"
            for f in self.findings)
        return ("<table><thead><tr><th>kind</th><th>group</th><th>task</th><th>alloc</th>"
                f"<th>why</th></tr></thead><tbody>{rows}</tbody></table>")


def placement_failures(job_id: str, failed_tg_allocs: Mapping[str, Any] | None) -> Diagnosis:
    """Findings for groups the scheduler could not place, from `FailedTGAllocs` metrics."""
    findings = []
    for group, metric in sorted((failed_tg_allocs or {}).items()):
        findings.append(Finding("placement", job_id, _placement_sentence(metric or {}),
                                group=group))
    return Diagnosis(tuple(findings))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _placement_sentence(metric: Mapping[str, Any]) -> str:
    reasons: list[str] = []
    evaluated = int(metric.get("NodesEvaluated") or 0)
    if evaluated == 0:
        reasons.append("no nodes were eligible for evaluation")
    for dc, available in sorted((metric.get("NodesAvailable") or {}).items()):
        if not available:
            reasons.append(f"no nodes are available in datacenter {dc!r}")
    for cls, n in sorted((metric.get("ClassFiltered") or {}).items()):
        reasons.append(f"class {cls!r} filtered {_plural(n, 'node')}")
    for constraint, n in sorted((metric.get("ConstraintFiltered") or {}).items()):
        reasons.append(f"constraint {constraint!r} filtered {_plural(n, 'node')}")
    exhausted = int(metric.get("NodesExhausted") or 0)
    dimensions = metric.get("DimensionExhausted") or {}
    if dimensions:
        reasons.extend(f"{dim} exhausted on {_plural(n, 'node')}"
                       for dim, n in sorted(dimensions.items()))
    elif exhausted:
        reasons.append(f"resources exhausted on {_plural(exhausted, 'node')}")
    for cls, n in sorted((metric.get("ClassExhausted") or {}).items()):
        reasons.append(f"class {cls!r} exhausted on {_plural(n, 'node')}")
    reasons.extend(f"quota limit hit: {q}" for q in metric.get("QuotaExhausted") or ())
    if not reasons:
        reasons.append("no node fits (the scheduler gave no detail)")
    coalesced = int(metric.get("CoalescedFailures") or 0)
    count = f"{coalesced + 1} allocations" if coalesced else "an allocation"
    evaluated_text = f" ({_plural(evaluated, 'node')} evaluated)" if evaluated else ""
    return f"could not place {count}{evaluated_text}: " + "; ".join(reasons)


def allocation_failures(job_id: str, allocations: Iterable[Mapping[str, Any]]) -> Diagnosis:
    """Findings for failed or unhealthy allocations, from their task events."""
    findings: list[Finding] = []
    for alloc in allocations:
        findings.extend(_alloc_findings(job_id, alloc))
    return Diagnosis(tuple(findings))


def alloc_failed(alloc: Mapping[str, Any]) -> bool:
    """Whether an allocation failed or was judged unhealthy by its deployment."""
    if alloc.get("ClientStatus") in ("failed", "lost"):
        return True
    health = (alloc.get("DeploymentStatus") or {}).get("Healthy")
    if health is False:
        return True
    return any(state.get("Failed") for state in (alloc.get("TaskStates") or {}).values())


def _alloc_findings(job_id: str, alloc: Mapping[str, Any]) -> list[Finding]:
    if not alloc_failed(alloc):
        return []
    alloc_id = str(alloc.get("ID") or "")
    group = alloc.get("TaskGroup")
    states: Mapping[str, Any] = alloc.get("TaskStates") or {}
    findings: list[Finding] = []
    # Tasks that failed on their own first; tasks killed because a sibling failed after.
    ordered = sorted(states.items(), key=lambda kv: (_sibling_only(kv[1]), kv[0]))
    for task, state in ordered:
        message = task_failure(state)
        if message:
            findings.append(Finding("task", job_id, message, group=group, task=task,
                                    alloc_id=alloc_id))
    if not findings:
        status = alloc.get("ClientStatus") or "unknown"
        desc = alloc.get("ClientDescription") or ""
        why = "allocation unhealthy" if status == "running" else f"allocation {status}"
        if desc:
            why += f": {desc}"
        elif status == "running":
            why += ": tasks are running but did not pass health checks before the deadline"
        findings.append(Finding("allocation", job_id, why, group=group, alloc_id=alloc_id))
    return findings


def _sibling_only(state: Mapping[str, Any]) -> bool:
    return any(e.get("Type") == "Sibling Task Failed" for e in state.get("Events") or ())


def task_failure(state: Mapping[str, Any]) -> str | None:
    """One sentence on why a task failed, from its events; None when nothing went wrong."""
    events = list(state.get("Events") or ())
    causes = [e for e in events if e.get("Type") in _CAUSES and _is_failure(e)]
    not_restarting = [e for e in events if e.get("Type") == "Not Restarting"]
    if not causes and not not_restarting and not state.get("Failed"):
        return None
    parts = []
    if causes:
        parts.append(_event_text(causes[-1]))
    if not_restarting:
        reason = _detail(not_restarting[-1], "RestartReason") or "restart policy exhausted"
        parts.append(f"not restarting ({reason})")
    restarts = int(state.get("Restarts") or 0)
    if restarts:
        parts.append(f"restarted {_plural(restarts, 'time')}")
    if not parts:
        parts.append("task failed (no event explains it)")
    return "; ".join(parts)


def _is_failure(event: Mapping[str, Any]) -> bool:
    kind = event.get("Type")
    if kind == "Terminated":
        return int(event.get("ExitCode") or 0) != 0 or int(event.get("Signal") or 0) != 0 \
            or bool(event.get("OOMKilled") or _detail(event, "oom_killed") == "true")
    if kind in ("Killing", "Killed", "Restart Signaled"):
        return bool(event.get("FailsTask") or event.get("KillError")
                    or "template" in str(event.get("DisplayMessage") or "").lower())
    return True


def _detail(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if value:
        return str(value)
    details = event.get("Details") or {}
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key).lstrip("_")
    return str(details.get(snake) or "")


def _event_text(event: Mapping[str, Any]) -> str:
    kind = str(event.get("Type"))
    words = _CAUSES.get(kind, kind.lower())
    display = str(event.get("DisplayMessage") or event.get("Message") or "")
    if kind == "Terminated":
        code = int(event.get("ExitCode") or 0)
        signal = int(event.get("Signal") or 0)
        text = f"exited with code {code}"
        if signal:
            text += f" on signal {signal}"
        if event.get("OOMKilled") or _detail(event, "oom_killed") == "true":
            text += " (out of memory)"
        message = str(event.get("Message") or "")
        return text + (f": {message}" if message else "")
    specific = {
        "Driver Failure": "DriverError",
        "Setup Failure": "SetupError",
        "Failed Artifact Download": "DownloadError",
        "Failed Validation": "ValidationError",
        "Killed": "KillError",
        "Killing": "KillReason",
        "Sibling Task Failed": "FailedSibling",
    }.get(kind)
    detail = _detail(event, specific) if specific else ""
    if kind == "Sibling Task Failed" and detail:
        return f"killed because sibling task {detail!r} failed"
    if kind in ("Killing", "Killed") and "template" in display.lower():
        return f"template failure: {display}"
    return f"{words}: {detail or display}" if (detail or display) else words


def deployment_finding(job_id: str, deployment: Mapping[str, Any]) -> Finding:
    """The deployment's own verdict (`Failed due to unhealthy allocations`, progress deadline)."""
    status = deployment.get("Status") or "unknown"
    description = deployment.get("StatusDescription") or ""
    ident = str(deployment.get("ID") or "")[:8]
    return Finding("deployment", job_id,
                   f"deployment {ident} {status}" + (f": {description}" if description else ""))
