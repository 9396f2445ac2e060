"""How a job looks in a notebook: a compact repr and an HTML table of groups, tasks and ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from nomadmesh.model.group import Group
    from nomadmesh.model.job import Job
    from nomadmesh.model.task import Task


def compact_repr(obj: Any) -> str:
    """`Cls('label', field=value, ...)` showing only the fields that differ from their defaults."""
    parts = []
    for a in attrs.fields(type(obj)):
        if not a.repr:
            continue
        value = getattr(obj, a.name)
        if a.default is attrs.NOTHING:
            parts.append(repr(value))
        elif value != a.default:
            parts.append(f"{a.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def job_html(job: Job) -> str:
    """A job as an HTML table: one row per task, with its group's count, network and ports."""
    from html import escape  # here: only the notebook's HTML needs it, not every model import

    head = (f"<div><strong>job {escape(job.id)}</strong> "
            f"<span style='color:#666'>({escape(job.type or 'service')}"
            f"{', ' + escape(', '.join(job.datacenters)) if job.datacenters else ''})</span>")
    rows = []
    for group in job.groups:
        for i, task in enumerate(group.tasks):
            group_cells = _group_cells(group, len(group.tasks)) if i == 0 else ""
            rows.append(f"<tr>{group_cells}{_task_cells(task)}</tr>")
    table = ("<table><thead><tr><th>group</th><th>count</th><th>network</th><th>ports</th>"
             "<th>services</th><th>task</th><th>driver</th><th>runs</th><th>cpu / memory</th>"
             "<th>lifecycle</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return head + table + "</div>"


def _group_cells(group: Group, span: int) -> str:
    from html import escape  # (see job_html)

    ports = ", ".join(
        f"{p.label}" + (f":{p.static}" if p.static else "") + (f"→{p.to}" if p.to else "")
        for p in group.ports)
    mode = ", ".join(n.mode or "host" for n in group.networks) or "—"
    services = ", ".join(f"{s.name or '(default)'}" + (f" @{s.port}" if s.port else "")
                         for s in group.services) or "—"
    count = "1 (default)" if group.count is None else str(group.count)
    cells = (group.name, count, mode, ports or "—", services)
    return "".join(f"<td rowspan='{span}'>{escape(c)}</td>" for c in cells)


def _task_cells(task: Task) -> str:
    from html import escape  # (see job_html)

    runs = task.config.get("image") or task.config.get("command") or ""
    res = task.resources
    size = f"{res.cpu or '—'} MHz / {res.memory or '—'} MB" if res is not None else "defaults"
    hook = ""
    if task.lifecycle is not None and task.lifecycle.hook:
        hook = task.lifecycle.hook + (" (sidecar)" if task.lifecycle.sidecar else "")
    cells = (task.name, task.driver or "", str(runs), size, hook or "main")
    return "".join(f"<td>{escape(c)}</td>" for c in cells)
