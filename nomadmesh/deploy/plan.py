"""A plan: what submitting a job would change, read from Nomad's `POST /v1/job/<id>/plan`."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from nomadmesh.deploy.diagnose import Diagnosis, placement_failures

_MARK = {"Added": "+", "Deleted": "-", "Edited": "+/-", "None": ""}
_COLOR = {"Added": "#1a7f37", "Deleted": "#b00020", "Edited": "#9a6700", "None": "inherit"}
_UPDATE_KEYS = ("Place", "Stop", "InPlaceUpdate", "DestructiveUpdate", "Canary", "Migrate")


@attrs.frozen
class GroupUpdate:
    """What the scheduler would do to one group (`Annotations.DesiredTGUpdates`)."""

    name: str
    place: int = 0
    stop: int = 0
    in_place_update: int = 0
    destructive_update: int = 0
    canary: int = 0
    migrate: int = 0
    ignore: int = 0
    preemptions: int = 0

    @classmethod
    def from_api(cls, name: str, data: Mapping[str, Any]) -> GroupUpdate:
        return cls(name, place=int(data.get("Place") or 0), stop=int(data.get("Stop") or 0),
                   in_place_update=int(data.get("InPlaceUpdate") or 0),
                   destructive_update=int(data.get("DestructiveUpdate") or 0),
                   canary=int(data.get("Canary") or 0), migrate=int(data.get("Migrate") or 0),
                   ignore=int(data.get("Ignore") or 0),
                   preemptions=int(data.get("Preemptions") or 0))

    @property
    def changes(self) -> bool:
        """Whether any allocation would be created, stopped, updated or migrated."""
        return any((self.place, self.stop, self.in_place_update, self.destructive_update,
                    self.canary, self.migrate))

    def summary(self) -> str:
        """`2 place, 1 destructive update` (or `no change`)."""
        parts = [(self.place, "place"), (self.in_place_update, "in-place update"),
                 (self.destructive_update, "destructive update"), (self.canary, "canary"),
                 (self.stop, "stop"), (self.migrate, "migrate"), (self.ignore, "ignore"),
                 (self.preemptions, "preemption")]
        text = ", ".join(f"{n} {word}" for n, word in parts if n)
        return text or "no change"


@attrs.frozen
class Plan:
    """The outcome of a dry run: the diff, per-group counts, failed placements, the index."""

    job_id: str
    job_modify_index: int
    diff: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    groups: tuple[GroupUpdate, ...] = ()
    failed_placements: Diagnosis = Diagnosis()
    warnings: str = ""
    next_periodic_launch: str | None = None
    response: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_api(cls, job_id: str, data: Mapping[str, Any]) -> Plan:
        """Build from a plan response (`JobPlanResponse`)."""
        updates = ((data.get("Annotations") or {}).get("DesiredTGUpdates") or {})
        launch = data.get("NextPeriodicLaunch")
        return cls(
            job_id=job_id,
            job_modify_index=int(data.get("JobModifyIndex") or 0),
            diff=data.get("Diff") or {},
            groups=tuple(GroupUpdate.from_api(n, u) for n, u in sorted(updates.items())),
            failed_placements=placement_failures(job_id, data.get("FailedTGAllocs")),
            warnings=str(data.get("Warnings") or ""),
            next_periodic_launch=None if not launch or str(launch).startswith("0001-")
            else str(launch),
            response=data)

    @property
    def is_new(self) -> bool:
        """Whether the job does not exist yet (a plan of a new job has index 0)."""
        return self.job_modify_index == 0

    @property
    def changes(self) -> bool:
        """Whether submitting would change the job or its allocations."""
        return (self.diff.get("Type") not in (None, "None")) or any(g.changes for g in self.groups)

    @property
    def allocations_change(self) -> bool:
        """Whether an allocation would be created, destroyed, replaced or migrated, as
        `nomad job plan` decides its exit code (command/job_plan.go:416-428: in-place updates
        do not count)."""
        if str(self.diff.get("Type") or "None") == "None":
            return False
        return any(g.place + g.stop + g.migrate + g.destructive_update + g.canary > 0
                   for g in self.groups)

    @property
    def exit_code(self) -> int:
        """`nomad job plan`'s exit code for this plan: 1 when allocations change, else 0 (255,
        an error, is the caller's)."""
        return 1 if self.allocations_change else 0

    def group(self, name: str) -> GroupUpdate | None:
        """The scheduler's counts for one group."""
        return next((g for g in self.groups if g.name == name), None)

    # --- rendering -----------------------------------------------------------------------------

    def lines(self) -> list[tuple[str, str]]:
        """The diff as (change type, text) lines, in the layout of `nomad job plan`."""
        return list(_job_lines(self.diff, self.groups)) if self.diff else []

    def render(self) -> str:
        """The readable plan: diff, scheduler summary, failed placements, the index."""
        out = [text for _, text in self.lines()]
        if not out:
            out.append(f'Job: "{self.job_id}" (no diff)')
        out.append("")
        out.append("Scheduler dry-run:")
        if self.failed_placements:
            out.append("- WARNING: Failed to place all allocations.")
            out.extend(f"  * {f}" for f in self.failed_placements)
        else:
            out.append("- All tasks successfully allocated.")
        for g in self.groups:
            out.append(f"  group {g.name!r}: {g.summary()}")
        if self.warnings:
            out.append(f"Warnings: {self.warnings.strip()}")
        if self.next_periodic_launch:
            out.append(f"Next periodic launch: {self.next_periodic_launch}")
        out.append(f"Job Modify Index: {self.job_modify_index}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        """A summary first (what the scheduler would do per group, failed placements), then
        the diff, folded away for a new job (every field of it is new)."""
        verdict = "a new job" if self.is_new else "changes" if self.changes else "no changes"
        rows = "".join(
            f"<tr><td>{html.escape(g.name)}</td><td>{g.place}</td><td>{g.in_place_update}</td>"
            f"<td>{g.destructive_update}</td><td>{g.canary}</td><td>{g.stop}</td>"
            f"<td>{g.ignore}</td></tr>" for g in self.groups)
        table = ("<table><thead><tr><th>group</th><th>place</th><th>in-place</th>"
                 "<th>destructive</th><th>canary</th><th>stop</th><th>ignore</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>") if rows else ""
        failed = self.failed_placements._repr_html_() if self.failed_placements else ""
        diff = "".join(
            f"<span style='color:{_COLOR.get(kind, 'inherit')}'>{html.escape(text)}</span>\n"
            for kind, text in self.lines()) or html.escape(f'Job: "{self.job_id}" (no diff)\n')
        details = (f"<details><summary>diff</summary><pre>{diff}</pre></details>"
                   if self.is_new else f"<pre>{diff}</pre>")
        return (f"<div><strong>Plan for job {html.escape(self.job_id)}</strong>: {verdict} "
                f"(exit code {self.exit_code}, JobModifyIndex {self.job_modify_index})"
                f"{table}{failed}{details}</div>")

def _job_lines(diff: Mapping[str, Any], groups: tuple[GroupUpdate, ...]) -> Iterator[tuple[str, str]]:
    kind = str(diff.get("Type") or "None")
    yield kind, _prefix(kind, 0) + f'Job: "{diff.get("ID", "")}"'
    yield from _fields_and_objects(diff, 0)
    updates = {g.name: g for g in groups}
    for tg in diff.get("TaskGroups") or ():
        tg_kind = str(tg.get("Type") or "None")
        counts = tg.get("Updates") or {}
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if n)
        if not summary and tg.get("Name") in updates:
            summary = updates[tg["Name"]].summary()
        suffix = f" ({summary})" if summary else ""
        yield tg_kind, _prefix(tg_kind, 1) + f'Task Group: "{tg.get("Name", "")}"{suffix}'
        yield from _fields_and_objects(tg, 1)
        for task in tg.get("Tasks") or ():
            t_kind = str(task.get("Type") or "None")
            notes = ", ".join(task.get("Annotations") or ())
            yield t_kind, _prefix(t_kind, 2) + f'Task: "{task.get("Name", "")}"' + (
                f" ({notes})" if notes else "")
            yield from _fields_and_objects(task, 2)


def _prefix(kind: str, depth: int) -> str:
    return f"{'  ' * depth}{_MARK.get(kind, '?'):<3} " if kind != "None" else "  " * depth + "    "


def _fields_and_objects(node: Mapping[str, Any], depth: int) -> Iterator[tuple[str, str]]:
    for f in node.get("Fields") or ():
        kind = str(f.get("Type") or "None")
        if kind == "None":
            continue
        notes = ", ".join(f.get("Annotations") or ())
        value = {"Added": f'"{f.get("New", "")}"', "Deleted": f'"{f.get("Old", "")}"'}.get(
            kind, f'"{f.get("Old", "")}" => "{f.get("New", "")}"')
        yield kind, _prefix(kind, depth + 1) + f"{f.get('Name', '')}: {value}" + (
            f" ({notes})" if notes else "")
    for obj in node.get("Objects") or ():
        kind = str(obj.get("Type") or "None")
        if kind == "None":
            continue
        yield kind, _prefix(kind, depth + 1) + f"{obj.get('Name', '')} {{"
        yield from _fields_and_objects(obj, depth + 1)
        yield kind, "  " * (depth + 1) + "    }"
