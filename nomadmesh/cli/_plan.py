"""`nomadmesh plan` output in the layout of `nomad job plan` (command/job_plan.go at aa026cc).

The annotated diff, the scheduler dry-run, warnings and the job modify index with the command
that submits against it, aligned and colored as Nomad does. One difference, on purpose: values
of duration fields, which Nomad prints as nanoseconds (`"180000000000"`, its flatmap of the
job), print as Go durations (`"3m0s"`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from nomadmesh.cli._terminal import BLUE, BOLD, CYAN, GREEN, LIGHT_YELLOW, RED, YELLOW, paint

if TYPE_CHECKING:
    from nomadmesh.deploy import Plan

Node = Mapping[str, Any]

JOB_MODIFY_INDEX_HELP = """\
To submit the job with version verification run:

nomadmesh run -check-index {index} {args}{path}

When running the job with the check-index flag, the job will only be run if the
job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid."""

# The scheduler's update names as the plan annotates task groups (scheduler/annotate.go:67-87).
_UPDATE_COLORS = {"create": GREEN, "destroy": RED, "migrate": BLUE, "in-place update": CYAN,
                  "create/destroy update": YELLOW, "canary": LIGHT_YELLOW}
_ANNOTATION_COLORS = {"forces create": GREEN, "forces destroy": RED,
                      "forces in-place update": CYAN, "forces create/destroy update": YELLOW}


def format_plan(plan: Plan, *, verbose: bool = False, diff: bool = True) -> str:
    """The diff (unless `diff` is false), the scheduler dry-run and the warnings."""
    out: list[str] = []
    if diff:
        out.append(format_job_diff(plan.diff, verbose).strip() if plan.diff
                   else _marker("None") + _bold(f"Job: {_q(plan.job_id)}"))
        out.append("")
    out.append(_bold("Scheduler dry-run:"))
    out.append(_dry_run(plan))
    out.append("")
    if plan.warnings:
        out.append(paint(f"Job Warnings:\n{plan.warnings}", BOLD, YELLOW))
        out.append("")
    return "\n".join(out) + "\n"


def format_modify_index(index: int, args: Sequence[str], path: str) -> str:
    """The job modify index and the `run -check-index` command that submits against it."""
    run_args = "".join(f"{a} " for a in args)
    return (_bold(f"Job Modify Index: {index}") + "\n"
            + JOB_MODIFY_INDEX_HELP.format(index=index, args=run_args, path=path) + "\n")


def format_job_diff(job: Node, verbose: bool) -> str:
    """A job diff as `nomad job plan` prints it (formatJobDiff, job_plan.go:495)."""
    kind = _type(job)
    out = _marker(kind) + _bold(f"Job: {_q(job.get('ID', ''))}") + "\n"
    fields, objects, groups = _list(job, "Fields"), _list(job, "Objects"), _list(job, "TaskGroups")
    longest_field, longest_marker = _longest(fields, objects)
    longest_marker = max([longest_marker, *(_marker_len(_type(g)) for g in groups)])
    if kind == "Edited" or verbose:
        block = _aligned(fields, objects, 0, longest_field, longest_marker, ())
        out += block + ("\n" if block else "")
    for group in groups:
        out += _group_diff(group, longest_marker - _marker_len(_type(group)), verbose) + "\n"
    return out


def _group_diff(tg: Node, prefix: int, verbose: bool) -> str:
    kind = _type(tg)
    out = _marker(kind) + " " * prefix + _bold(f"Task Group: {_q(tg.get('Name', ''))}")
    updates = tg.get("Updates") or {}
    if updates:
        counts = [paint(f"{updates[k]} {k}", *_codes(_UPDATE_COLORS.get(k)))
                  for k in sorted(updates)]
        out += f" ({', '.join(counts)})\n"
    else:
        out += "\n"
    fields, objects, tasks = _list(tg, "Fields"), _list(tg, "Objects"), _list(tg, "Tasks")
    longest_field, longest_marker = _longest(fields, objects)
    longest_marker = max([longest_marker, *(_marker_len(_type(t)) for t in tasks)])
    start = prefix + 2
    if kind == "Edited" or verbose:
        block = _aligned(fields, objects, start, longest_field, longest_marker, ())
        out += block + ("\n" if block else "")
    for task in tasks:
        out += _task_diff(task, start, longest_marker - _marker_len(_type(task)), verbose) + "\n"
    return out


def _task_diff(task: Node, start: int, prefix: int, verbose: bool) -> str:
    kind = _type(task)
    out = " " * start + _marker(kind) + " " * prefix + _bold(f"Task: {_q(task.get('Name', ''))}")
    notes = task.get("Annotations") or ()
    if notes:
        out += f" ({_annotations(notes)})"
    if kind == "None" or (kind in ("Added", "Deleted") and not verbose):
        return out
    fields, objects = _list(task, "Fields"), _list(task, "Objects")
    longest_field, longest_marker = _longest(fields, objects)
    return out + "\n" + _aligned(fields, objects, start + 2, longest_field, longest_marker, ())


def _object_diff(obj: Node, start: int, prefix: int, path: tuple[str, ...]) -> str:
    kind = _type(obj)
    name = str(obj.get("Name", ""))
    out = " " * start + _marker(kind) + " " * prefix + f"{name} {{\n"
    fields, objects = _list(obj, "Fields"), _list(obj, "Objects")
    longest_field, longest_marker = _longest(fields, objects)
    out += _aligned(fields, objects, start + prefix + 2, longest_field, longest_marker,
                    (*path, name))
    return out + "\n" + " " * (start + _marker_len(kind) + prefix) + "}"


def _field_diff(field: Node, start: int, prefix: int, pad: int, path: tuple[str, ...]) -> str:
    kind = _type(field)
    name = str(field.get("Name", ""))
    old, new = (_value(field.get(k), name, path) for k in ("Old", "New"))
    out = " " * start + _marker(kind) + " " * prefix + f"{name}: " + " " * pad
    out += {"Deleted": _q(old), "Edited": f"{_q(old)} => {_q(new)}"}.get(kind, _q(new))
    notes = field.get("Annotations") or ()
    return out + (f" ({_annotations(notes)})" if notes else "")


def _aligned(fields: Sequence[Node], objects: Sequence[Node], start: int, longest_field: int,
             longest_marker: int, path: tuple[str, ...]) -> str:
    lines = [_field_diff(f, start, longest_marker - _marker_len(_type(f)),
                         longest_field - len(str(f.get("Name", ""))), path) for f in fields]
    lines += [_object_diff(o, start, longest_marker - _marker_len(_type(o)), path)
              for o in objects]
    return "\n".join(lines)


def _longest(fields: Sequence[Node], objects: Sequence[Node]) -> tuple[int, int]:
    longest_field = max((len(str(f.get("Name", ""))) for f in fields), default=0)
    longest_marker = max((_marker_len(_type(n)) for n in (*fields, *objects)), default=0)
    return longest_field, longest_marker


def _dry_run(plan: Plan) -> str:
    """formatDryRun (job_plan.go:440): placement, then the next periodic launch."""
    lines: list[str] = []
    if not plan.failed_placements:
        lines.append(paint("- All tasks successfully allocated.", BOLD, GREEN))
    else:
        lines.append(paint("- WARNING: Failed to place all allocations.", BOLD, YELLOW))
        for finding in plan.failed_placements:
            group = f"Task Group {_q(finding.group)}: " if finding.group else ""
            lines.append(paint(f"  {group}{finding.message}", YELLOW))
    if plan.next_periodic_launch:
        lines.append(paint(f"- If submitted now, next periodic launch would be at "
                           f"{plan.next_periodic_launch}.", GREEN))
    return "\n".join(lines)


def _type(node: Node) -> str:
    return str(node.get("Type") or "None")


def _list(node: Node, key: str) -> list[Node]:
    return [n for n in node.get(key) or () if isinstance(n, Mapping)]


def _marker(kind: str) -> str:
    mark = {"Added": ("+", GREEN), "Deleted": ("-", RED), "Edited": ("+/-", LIGHT_YELLOW)}.get(kind)
    return paint(mark[0], mark[1]) + " " if mark else ""


def _marker_len(kind: str) -> int:
    return {"Added": 2, "Deleted": 2, "Edited": 4}.get(kind, 0)


def _annotations(notes: Sequence[str]) -> str:
    return ", ".join(paint(str(n), *_codes(_ANNOTATION_COLORS.get(str(n)))) for n in notes)


def _codes(code: str | None) -> tuple[str, ...]:
    return (code,) if code else ()


def _bold(text: str) -> str:
    return paint(text, BOLD)


def _q(value: object) -> str:
    """Go's %q for the strings a diff holds."""
    return json.dumps("" if value is None else str(value), ensure_ascii=False)


def _value(raw: object, name: str, path: tuple[str, ...]) -> str:
    text = "" if raw is None else str(raw)
    if text.lstrip("-").isdigit() and _is_duration(name, path):
        from nomadmesh.model.validation import go_duration

        return go_duration(int(text))
    return text


def _is_duration(name: str, path: tuple[str, ...]) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("Min", "Max"):  # a template's wait bounds; a scaling block's are counts
        return "Wait" in name or any("Template" in p for p in path)
    return leaf in _duration_fields()


@cache
def _duration_fields() -> frozenset[str]:
    """Go field names that are time.Duration in Nomad's api structs (from the committed schema)."""
    from nomadmesh.nomad_schema import schema

    return frozenset(f.name for fields in schema().structs.values() for f in fields
                     if f.is_duration and f.name not in ("Min", "Max"))


def plan_json(plan: Plan) -> Mapping[str, Any]:
    """The plan as `nomad job plan -json-output` prints it: Nomad's JobPlanResponse as received."""
    response: Mapping[str, Any] = plan.response
    return response
