"""`structs.Job.Validate` and the admission validators on a structs job dict (aa026cc).

Each function returns the entries of the go-multierror its Go counterpart builds: a nested
multierror is wrapped as Go's `fmt.Errorf("... failed: %v", err)` does (its text embedded) and a
flattened one (`multierror.Append` of a multierror) is spliced in. Texts are Nomad's, verbatim.
Not emulated: driver config validation (done by clients), Consul/Nomad service check details
beyond what is below, CSI volume rules beyond the basic ones, Sentinel and ACL checks.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from nomadmesh.testing.nomad_api.errors import AgentPanic, multierror
from nomadmesh.testing.nomad_api.periodic import CronError, parse_cron, valid_time_zone

Obj = dict[str, Any]
SECOND = 1_000_000_000
_MAX_UINT16 = 65535


def go_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < SECOND:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    seconds = _fraction(rest, SECOND) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _q(text: str) -> str:
    """Go's %q for printable text."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + out.replace("\t", "\\t").replace("\r", "\\r") + '"'


def _nested(prefix: str, errors: list[str]) -> list[str]:
    """`fmt.Errorf(prefix + "%v", mErr)` when mErr has errors."""
    return [prefix + multierror(errors)] if errors else []


def validate_job(j: Obj) -> list[str]:
    """nomad/structs/structs.go:4737 Job.Validate."""
    errs: list[str] = []
    if j["Region"] == "" and j["Multiregion"] is None:
        errs.append("Missing job region")
    if j["ID"] == "":
        errs.append("Missing job ID")
    elif " " in j["ID"]:
        errs.append("Job ID contains a space")
    elif "\0" in j["ID"]:
        errs.append("Job ID contains a null character")
    if j["Name"] == "":
        errs.append("Missing job name")
    elif "\0" in j["Name"]:
        errs.append("Job Name contains a null character")
    if j["Namespace"] == "":
        errs.append("Job must be in a namespace")
    if j["Type"] == "":
        errs.append("Missing job type")
    elif j["Type"] not in ("_core", "service", "batch", "system", "sysbatch"):
        errs.append(f"Invalid job type: {_q(j['Type'])}")
    if not j["Datacenters"] and j["Multiregion"] is None:
        errs.append("Missing job datacenters")
    else:
        errs += ["Job datacenter must be non-empty string"
                 for dc in j["Datacenters"] or () if dc == ""]
    if not j["TaskGroups"]:
        errs.append("Missing job task groups")
    errs += _constraints(j["Constraints"])
    system = j["Type"] == "system"
    errs += _affinities(j["Affinities"], system)
    errs += _spreads(j["Spreads"], system)
    if j["UI"] is not None and len(j["UI"]["Description"]) > 1000:
        errs.append("UI description must be under 1000 characters, currently "
                    f"{len(j['UI']['Description'])}")
    if j["VersionTag"] is not None and len(j["VersionTag"]["Description"]) > 1000:
        errs.append("Tagged version description must be under 1000 characters, currently "
                    f"{len(j['VersionTag']['Description'])}")
    seen: dict[str, int] = {}
    for idx, tg in enumerate(j["TaskGroups"] or ()):
        if tg["Name"] == "":
            errs.append(f"Job task group {idx + 1} missing name")
        elif tg["Name"] in seen:
            errs.append(f"Job task group {idx + 1} redefines '{tg['Name']}' from group "
                        f"{seen[tg['Name']] + 1}")
        else:
            seen[tg["Name"]] = idx
        if tg["ShutdownDelay"] is not None and tg["ShutdownDelay"] < 0:
            errs.append("ShutdownDelay must be a positive value")
        if system and tg["Count"] > 1:
            errs.append(f"Job task group {tg['Name']} has count {tg['Count']}. Count cannot "
                        "exceed 1 with system scheduler")
    for tg in j["TaskGroups"] or ():
        errs += _nested(f"Task group {tg['Name']} validation failed: ", validate_group(tg, j))
    p = j["Periodic"]
    if p is not None and p["Enabled"]:
        if j["Type"] not in ("batch", "sysbatch"):
            errs.append('Periodic can only be used with "batch" or "sysbatch" scheduler')
        periodic = _periodic(p)
        if periodic:
            errs.append(multierror(periodic))
    if j["ParameterizedJob"] is not None and not j["Dispatched"]:
        if j["Type"] not in ("batch", "sysbatch"):
            errs.append('Parameterized job can only be used with "batch" or "sysbatch" scheduler')
        pj = j["ParameterizedJob"]
        pj_errs = []
        if pj["Payload"] not in ("optional", "required", "forbidden"):
            pj_errs.append(f"Unknown payload requirement: {_q(pj['Payload'])}")
        both = [k for k in pj["MetaOptional"] or () if k in (pj["MetaRequired"] or ())]
        if both:
            pj_errs.append("Required and optional meta keys should be disjoint. Following keys "
                           f"exist in both: [{' '.join(both)}]")
        if pj_errs:
            errs.append(multierror(pj_errs))
    if j["Multiregion"] is not None:
        errs.append("Multiregion jobs are unlicensed.")  # structs_ce.go:44
    return errs


def _periodic(p: Obj) -> list[str]:
    """nomad/structs/structs.go PeriodicConfig.Validate."""
    errs = []
    if p["Spec"] != "" and p["Specs"]:
        errs.append("Only cron or crons may be used")
    if p["Spec"] == "" and not p["Specs"]:
        errs.append("Must specify a spec")
    if p["TimeZone"] != "" and not valid_time_zone(p["TimeZone"]):
        errs.append(f"Invalid time zone {_q(p['TimeZone'])}: unknown time zone {p['TimeZone']}")
    if p["SpecType"] == "cron":
        for spec in ([p["Spec"]] if p["Spec"] else []) + list(p["Specs"] or ()):
            try:
                parse_cron(spec)
            except CronError as exc:
                errs.append(f"Invalid cron spec {_q(spec)}: {exc}")
    elif p["SpecType"] != "test":
        errs.append(f"Unknown periodic specification type {_q(p['SpecType'])}")
    return errs


def _constraints(cs: list[Obj | None] | None, *, task: bool = False) -> list[str]:
    errs = []
    for idx, c in enumerate(cs or ()):
        if c is None:  # Constraint.Validate on a nil pointer: the server panics
            raise AgentPanic("panic in Validate: runtime error: invalid memory address or nil "
                             "pointer dereference")
        inner = validate_constraint(c)
        if inner:
            errs.append(f"Constraint {idx + 1} validation failed: {multierror(inner)}")
        if task and c["Operand"] in ("distinct_hosts", "distinct_property"):
            errs.append(f"Constraint {idx + 1} has disallowed Operand at task level: "
                        f"{c['Operand']}")
    return errs


def _affinities(affs: list[Obj] | None, system: bool) -> list[str]:
    return _placement(affs, system, "affinity", "Affinity", _affinity)


def _spreads(spreads: list[Obj] | None, system: bool) -> list[str]:
    return _placement(spreads, system, "spread", "Spread", _spread)


def _placement(blocks: list[Obj] | None, system: bool, block: str, label: str,
               check: Callable[[Obj], list[str]]) -> list[str]:
    """The affinity and spread rules of Job/TaskGroup/Task.Validate (none in system jobs)."""
    if system:
        return [f"System jobs may not have an {block} block" if block == "affinity" else
                f"System jobs may not have a {block} block"] if blocks is not None else []
    errs = []
    for idx, item in enumerate(blocks or ()):
        inner = check(item)
        if inner:
            errs.append(f"{label} {idx + 1} validation failed: {multierror(inner)}")
    return errs


_COMPARE = ("=", "==", "is", "!=", "not", "<", "<=", ">", ">=")
_VERSION = r"v?\d+(?:\.\d+)*(?:-?[0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*)?(?:\+[0-9A-Za-z\-~.]+)?"
# hashicorp/go-version constraint.go (`version`) and helper/constraints/semver (`semver`):
# comma-separated "<operator> <version>" parts; semver has no pessimistic "~>"
_CONSTRAINT = {
    "version": re.compile(rf"^\s*(|=|!=|>|<|>=|<=|~>)\s*({_VERSION})\s*$"),
    "semver": re.compile(rf"^\s*(|=|!=|>|<|>=|<=)\s*({_VERSION})\s*$"),
}


def _malformed(kind: str, rtarget: str) -> str | None:
    """The first comma-separated part go-version / semver NewConstraint refuses, if any."""
    return next((part for part in rtarget.split(",") if not _CONSTRAINT[kind].match(part)), None)


def _operand(op: str, rtarget: str, noun: str, set_text: str) -> list[str] | None:
    """The operand rules Constraint.Validate and Affinity.Validate share (None: not shared)."""
    if op in ("set_contains_all", "set_contains_any", "set_contains"):
        return [set_text] if rtarget == "" else []
    if op == "regexp":
        try:
            re.compile(rtarget)
        except re.error as exc:
            return [f"Regular expression failed to compile: {exc}"]
        return []
    if op in ("version", "semver"):
        part = _malformed(op, rtarget)
        if part is None:
            return []
        return [f"{op.capitalize()} {noun} is invalid: Malformed constraint: {part}"]
    if op in _COMPARE:
        return [f"Operator {_q(op)} requires an RTarget"] if rtarget == "" else []
    return None


def validate_constraint(c: Obj) -> list[str]:
    """nomad/structs/structs.go Constraint.Validate."""
    errs = []
    op, rtarget = c["Operand"], c["RTarget"]
    if op == "":
        errs.append("Missing constraint operand")
    shared = _operand(op, rtarget, "constraint", "Set contains constraint requires an RTarget")
    if shared is not None:
        errs += shared
    elif op == "distinct_property":
        if rtarget != "":
            if not rtarget.isdigit():
                errs.append(f"Failed to convert RTarget {_q(rtarget)} to uint64: "
                            f"strconv.ParseUint: parsing {_q(rtarget)}: invalid syntax")
            elif int(rtarget) < 1:
                errs.append(f"Distinct Property must have an allowed count of 1 or greater: "
                            f"{int(rtarget)} < 1")
    elif op in ("is_set", "is_not_set"):
        if rtarget != "":
            errs.append(f"Operator {_q(op)} does not support an RTarget")
    elif op != "distinct_hosts":
        errs.append(f"Unknown constraint type {_q(op)}")
    if op != "distinct_hosts":
        ltarget = c["LTarget"]
        if ltarget == "":
            errs.append("no attribute provided but is required by operator")
        elif ltarget.startswith("$"):  # constraint.go:34 validateConstraintAttribute
            if not ltarget.startswith("${"):
                errs.append(f"attribute {_q(ltarget)} is missing an opening brace")
            elif not ltarget.endswith("}"):
                errs.append(f"attribute {_q(ltarget)} is missing a closing brace")
            elif ltarget not in ("${node.unique.id}", "${node.datacenter}",
                                 "${node.unique.name}", "${node.class}", "${node.pool}") and \
                    not ltarget.startswith(("${attr.", "${device.", "${meta.")):
                errs.append(f"unsupported attribute {_q(ltarget)}")
    return errs


def _affinity(a: Obj) -> list[str]:
    """nomad/structs/structs.go Affinity.Validate."""
    errs = []
    op, rtarget = a["Operand"], a["RTarget"]
    if op == "":
        errs.append("Missing affinity operand")
    shared = _operand(op, rtarget, "affinity", "Set contains operators require an RTarget")
    errs += shared if shared is not None else [f"Unknown affinity operator {_q(op)}"]
    if a["LTarget"] == "":
        errs.append("No LTarget provided but is required")
    if a["Weight"] == 0:
        errs.append("Affinity weight cannot be zero")
    if not -100 <= a["Weight"] <= 100:
        errs.append("Affinity weight must be within the range [-100,100]")
    return errs


def _spread(s: Obj) -> list[str]:
    """nomad/structs/structs.go Spread.Validate."""
    errs = []
    if s["Attribute"] == "":
        errs.append("Missing spread attribute")
    if s["Weight"] <= 0 or s["Weight"] > 100:
        errs.append("Spread block must have a positive weight from 0 to 100")
    seen: set[str] = set()
    total = 0
    for target in s["SpreadTarget"] or ():
        if target["Value"] in seen:
            errs.append(f"Spread target value {_q(target['Value'])} already defined")
        seen.add(target["Value"])
        if target["Percent"] > 100:
            errs.append(f"Spread target percentage for value {_q(target['Value'])} must be "
                        "between 0 and 100")
        total += target["Percent"]
    if total > 100:
        errs.append(f"Sum of spread target percentages must not be greater than 100%; got "
                    f"{total}%")
    return errs


def validate_group(tg: Obj, j: Obj) -> list[str]:
    """nomad/structs/structs.go TaskGroup.Validate."""
    errs: list[str] = []
    job_type = j["Type"]
    if tg["Name"] == "":
        errs.append("Missing task group name")
    elif "\0" in tg["Name"]:
        errs.append("Task group name contains null character")
    if tg["Count"] < 0:
        errs.append("Task group count can't be negative")
    if not tg["Tasks"]:
        errs.append("Missing tasks for task group")
    if tg["MaxRunDuration"] is not None:
        if tg["MaxRunDuration"] <= 0:
            errs.append("MaxRunDuration must be greater than zero")
        if job_type not in ("batch", "sysbatch"):
            errs.append(f"Job type {_q(job_type)} does not allow max_run_duration")
    errs += _disconnect(tg["Disconnect"], job_type)
    errs += _constraints(tg["Constraints"])
    errs += _affinities(tg["Affinities"], job_type == "system")
    if tg["RestartPolicy"] is not None:
        errs += _restart(tg["RestartPolicy"])
    else:
        errs.append(f"Task Group {tg['Name']} should have a restart policy")
    errs += _spreads(tg["Spreads"], job_type == "system")
    if job_type in ("system", "sysbatch"):
        if tg["ReschedulePolicy"] is not None:
            errs.append("System or sysbatch jobs should not have a reschedule policy")
    elif tg["ReschedulePolicy"] is not None:
        errs += _reschedule(tg["ReschedulePolicy"])
    else:
        errs.append(f"Task Group {tg['Name']} should have a reschedule policy")
    if tg["EphemeralDisk"] is not None:
        if tg["EphemeralDisk"]["SizeMB"] < 10:
            errs.append(f"minimum DiskMB value is 10; got {tg['EphemeralDisk']['SizeMB']}")
    else:
        errs.append(f"Task Group {tg['Name']} should have an ephemeral disk object")
    if tg["Update"] is not None:
        if job_type not in ("service", "system"):
            errs.append(f"Job type {_q(job_type)} does not allow update block")
        errs += _update(tg["Update"])
    if job_type == "service":
        if tg["Migrate"] is not None:
            errs += _migrate(tg["Migrate"])
    elif tg["Migrate"] is not None:
        errs.append(f"Job type {_q(job_type)} does not allow migrate block")
    names: dict[str, int] = {}
    leaders = mains = 0
    for idx, t in enumerate(tg["Tasks"] or ()):
        if t["Name"] == "":
            errs.append(f"Task {idx + 1} missing name")
        elif t["Name"] in names:
            errs.append(f"Task {idx + 1} redefines '{t['Name']}' from task "
                        f"{names[t['Name']] + 1}")
        else:
            names[t["Name"]] = idx
        leaders += bool(t["Leader"])
        mains += t["Lifecycle"] is None or t["Lifecycle"]["Hook"] == ""  # Task.IsMain
    if leaders > 1:
        errs.append("Only one task may be marked as leader")
    if tg["Tasks"] and mains == 0:
        errs.append(f"Task group {tg['Name']} must have at least one main task")
    canaries = tg["Update"]["Canary"] if tg["Update"] is not None else 0
    for name, volume in (tg["Volumes"] or {}).items():
        inner = _volume(volume, job_type, tg["Count"], canaries)
        if inner:
            errs.append(f"Task group volume validation for {name} failed: {inner}")
    errs += _nested("Task group network validation failed: ", _networks(tg))
    errs += _nested("Task group service validation failed: ", _group_services(tg))
    errs += _nested("Task group scaling policy validation failed: ", _scaling(tg, j))
    for t in tg["Tasks"] or ():
        errs += _nested(f"Task {t['Name']} validation failed: ", validate_task(t, job_type, tg))
    return errs


def _restart(r: Obj) -> list[str]:
    """nomad/structs/structs.go RestartPolicy.Validate."""
    errs = []
    if r["Mode"] not in ("delay", "fail"):
        errs.append(f"Unsupported restart mode: {_q(r['Mode'])}")
    if r["Attempts"] == 0 and r["Mode"] != "fail":
        errs.append(f"Restart policy {_q(r['Mode'])} with {r['Attempts']} attempts is ambiguous")
    if r["Interval"] < 5 * SECOND:
        errs.append(f"Interval can not be less than 5s (got {go_duration(r['Interval'])})")
    if r["Attempts"] * r["Delay"] > r["Interval"]:
        errs.append(f"Nomad can't restart the TaskGroup {r['Attempts']} times in an interval of "
                    f"{go_duration(r['Interval'])} with a delay of {go_duration(r['Delay'])}")
    return errs


def _reschedule(r: Obj) -> list[str]:
    """nomad/structs/structs.go ReschedulePolicy.Validate (without the viability cross-check)."""
    if not (r["Attempts"] > 0 or r["Unlimited"]):
        return []
    errs = []
    if r["Attempts"] > 0:
        if r["Interval"] <= 0:
            errs.append("Interval must be a non zero value if Attempts > 0")
        if r["Unlimited"]:
            errs.append(f"Reschedule Policy with Attempts = {r['Attempts']}, Interval = "
                        f"{go_duration(r['Interval'])}, and Unlimited = true is ambiguous")
            errs.append("If Attempts >0, Unlimited cannot also be set to true")
    if r["Delay"] < 5 * SECOND:
        errs.append(f"Delay cannot be less than 5s (got {go_duration(r['Delay'])})")
    if r["DelayFunction"] not in ("constant", "exponential", "fibonacci"):
        errs.append(f"Invalid delay function {_q(r['DelayFunction'])}, must be one of "
                    '["constant" "exponential" "fibonacci"]')
    if r["DelayFunction"] != "constant":
        if r["MaxDelay"] < 5 * SECOND:
            errs.append(f"Max Delay cannot be less than 5s (got {go_duration(r['Delay'])})")
        if r["MaxDelay"] < r["Delay"]:
            errs.append(f"Max Delay cannot be less than Delay {go_duration(r['Delay'])} (got "
                        f"{go_duration(r['MaxDelay'])})")
    if not r["Unlimited"] and r["Interval"] < 15 * SECOND:
        errs.append(f"Interval cannot be less than 15s (got {go_duration(r['Interval'])})")
    return errs


def _update(u: Obj) -> list[str]:
    """nomad/structs/structs.go UpdateStrategy.Validate."""
    errs = []
    d = go_duration
    if u["HealthCheck"] not in ("checks", "task_states", "manual"):
        errs.append(f"Invalid health check given: {_q(u['HealthCheck'])}")
    if u["MaxParallel"] < 0:
        errs.append(f"Max parallel can not be less than zero: {u['MaxParallel']} < 0")
    if u["Canary"] < 0:
        errs.append(f"Canary count can not be less than zero: {u['Canary']} < 0")
    if u["Canary"] == 0 and u["AutoPromote"]:
        errs.append("Auto Promote requires a Canary count greater than zero")
    if u["MinHealthyTime"] < 0:
        errs.append(f"Minimum healthy time may not be less than zero: {d(u['MinHealthyTime'])}")
    if u["HealthyDeadline"] <= 0:
        errs.append(f"Healthy deadline must be greater than zero: {d(u['HealthyDeadline'])}")
    if u["ProgressDeadline"] < 0:
        errs.append(f"Progress deadline must be zero or greater: {d(u['ProgressDeadline'])}")
    if u["MinHealthyTime"] >= u["HealthyDeadline"]:
        errs.append("Minimum healthy time must be less than healthy deadline: "
                    f"{d(u['MinHealthyTime'])} > {d(u['HealthyDeadline'])}")
    if u["ProgressDeadline"] != 0 and u["HealthyDeadline"] >= u["ProgressDeadline"]:
        errs.append("Healthy deadline must be less than progress deadline: "
                    f"{d(u['HealthyDeadline'])} > {d(u['ProgressDeadline'])}")
    if u["Stagger"] <= 0:
        errs.append(f"Stagger must be greater than zero: {d(u['Stagger'])}")
    return errs


def _migrate(m: Obj) -> list[str]:
    """nomad/structs/structs.go:6836 MigrateStrategy.Validate."""
    errs = []
    if m["MaxParallel"] < 0:
        errs.append(f"MaxParallel must be >= 0 but found {m['MaxParallel']}")
    if m["HealthCheck"] == "":
        if m["MaxParallel"] > 0:
            errs.append("Missing HealthCheck")
    elif m["HealthCheck"] not in ("checks", "task_states"):
        errs.append(f"Invalid HealthCheck: {_q(m['HealthCheck'])}")
    if m["MinHealthyTime"] < 0:
        errs.append(f"MinHealthyTime is {go_duration(m['MinHealthyTime'])} and must be >= 0")
    if m["HealthyDeadline"] < 0:
        errs.append(f"HealthyDeadline is {go_duration(m['HealthyDeadline'])} and must be >= 0")
    if m["MinHealthyTime"] > m["HealthyDeadline"]:
        errs.append("MinHealthyTime must be less than HealthyDeadline")
    return errs


def _networks(tg: Obj) -> list[str]:
    """nomad/structs/structs.go TaskGroup.validateNetworks."""
    errs = []
    labels: dict[str, str] = {}
    static: dict[str, dict[int, str]] = {}
    for net in tg["Networks"] or ():
        for port in (net["ReservedPorts"] or []) + (net["DynamicPorts"] or []):
            if port["Label"] in labels:
                errs.append(f"Port label {port['Label']} already in use by {labels[port['Label']]}")
            else:
                labels[port["Label"]] = "taskgroup network"
            if port["Value"] != 0:
                ports = static.setdefault(port["HostNetwork"] or "default", {})
                if port["Value"] in ports:
                    if not port["IgnoreCollision"]:
                        errs.append(f"Static port {port['Value']} already reserved by "
                                    f"{ports[port['Value']]}")
                elif port["Value"] > _MAX_UINT16:
                    errs.append(f"Port {port['Label']} ({port['Value']}) cannot be greater than "
                                f"{_MAX_UINT16}")
                else:
                    ports[port["Value"]] = f"taskgroup network:{port['Label']}"
            if port["To"] < -1:
                errs.append(f"Port {_q(port['Label'])} cannot be mapped to negative value "
                            f"{port['To']}")
            elif port["To"] > _MAX_UINT16:
                errs.append(f"Port {_q(port['Label'])} cannot be mapped to a port ({port['To']}) "
                            f"greater than {_MAX_UINT16}")
            if port["IgnoreCollision"] and net["Mode"] not in ("", "host"):
                errs.append(f"Port {_q(port['Label'])} collision may not be ignored on non-host "
                            f"network mode {_q(net['Mode'])}")
    for t in tg["Tasks"] or ():
        for net in (t["Resources"] or {}).get("Networks") or ():
            for port in (net["ReservedPorts"] or []) + (net["DynamicPorts"] or []):
                if port["Label"] in labels:
                    errs.append(f"Port label {port['Label']} already in use by "
                                f"{labels[port['Label']]}")
                if port["Value"] != 0:
                    ports = static.setdefault(port["HostNetwork"] or "default", {})
                    if port["Value"] in ports:
                        errs.append(f"Static port {port['Value']} already reserved by "
                                    f"{ports[port['Value']]}")
                    elif port["Value"] > _MAX_UINT16:
                        errs.append(f"Port {port['Label']} ({port['Value']}) cannot be greater "
                                    f"than {_MAX_UINT16}")
                    else:
                        ports[port["Value"]] = f"{t['Name']}:{port['Label']}"
    return errs


_SERVICE_NAME = re.compile(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])$")


def _service(s: Obj) -> list[str]:
    """nomad/structs/services.go Service.Validate (name, address mode, on_update, provider)."""
    errs = []
    stripped = re.sub(r"\$\{[a-zA-Z0-9_\-\.]+\}", "ENV-VAR", s["Name"])
    if not _SERVICE_NAME.match(stripped):
        errs.append("Service name must be valid per RFC 1123 and can contain only alphanumeric "
                    "characters or dashes and must be no longer than 63 characters: "
                    f"{_q(s['Name'])}")
    mode = s["AddressMode"]
    if mode in ("host", "driver", "alloc", "alloc_ipv6"):
        if s["Address"] != "":
            errs.append('Service address_mode must be "auto" if address is set')
    elif mode not in ("", "auto"):
        errs.append(f'Service address_mode must be "auto", "host", or "driver"; not {_q(mode)}')
    if s["OnUpdate"] not in ("", "ignore", "require_healthy", "ignore_warnings"):
        errs.append('Service on_update must be "require_healthy", "ignore_warnings", or '
                    f'"ignore"; not {_q(s["OnUpdate"])}')
    if s["Provider"] == "consul":
        errs += _consul_service(s)
    elif s["Provider"] == "nomad":
        errs += _nomad_service(s)
    else:
        errs.append(f'Service provider must be "consul", or "nomad"; not {_q(s["Provider"])}')
    if s["Identity"] is not None and not s["Identity"]["Audience"]:
        errs.append("Service identity must provide at least one target aud value")
    return errs


_CONSUL_SERVICE_KINDS = ("", "api-gateway", "ingress-gateway", "mesh-gateway",
                         "terminating-gateway")  # consul/api ServiceKind* (services.go:877)


def _check_port(s: Obj, c: Obj) -> str | None:
    """nomad/structs/services.go validateCheckPort."""
    if s["PortLabel"] == "" and c["PortLabel"] == "" and c["Type"] in ("grpc", "http", "tcp"):
        return (f"Check {c['Name']} invalid: check requires a port but neither check nor "
                f"service {_q(s['Name'])} have a port")
    return None


def _consul_service(s: Obj) -> list[str]:
    """nomad/structs/services.go validateConsulService."""
    errs = []
    connect = s["Connect"]
    sidecar = connect is not None and connect["SidecarService"] is not None
    for c in s["Checks"] or ():
        port = _check_port(s, c)
        if port is not None:
            errs.append(port)
        elif c["Type"] == "tcp" and sidecar:
            errs.append(f"Check {c['Name']} invalid: tcp checks are not valid for Connect "
                        "enabled services")
        elif (err := _check(c, consul=True)) is not None:
            errs.append(f"Check {c['Name']} invalid: {err}")
    if s["Kind"] not in _CONSUL_SERVICE_KINDS:
        errs.append(f"Service {s['Name']} kind must be one of consul service kind or empty")
    if connect is not None:
        kinds = sidecar + bool(connect["Native"]) + (connect["Gateway"] is not None)
        if kinds != 1:  # services.go:1334 ConsulConnect.Validate
            errs.append("Consul Connect must be exclusively native, make use of a sidecar, or "
                        "represent a Gateway")
        if connect["Native"] and not s["TaskName"]:
            errs.append(f"Service {s['Name']} is Connect Native and requires setting the task")
        if connect["Native"] and s["PortLabel"] == "":
            errs.append(f"Service {s['Name']} is Connect Native and requires setting the port")
    return errs


def _nomad_service(s: Obj) -> list[str]:
    """nomad/structs/services.go validateNomadService."""
    errs = []
    for c in s["Checks"] or ():
        port = _check_port(s, c)
        if port is not None:
            errs.append(port)
        elif (err := _check(c, consul=False)) is not None:
            errs.append(err)
    if s["Connect"] is not None:
        errs.append("Service with provider nomad cannot include Connect blocks")
    return errs


def _check(c: Obj, *, consul: bool) -> str | None:
    """nomad/structs/services.go ServiceCheck validateCommon + validateConsul / validateNomad."""
    allowed = ["grpc", "tcp", "http", "script"] if consul else ["tcp", "http"]
    kind = c["Type"].lower()
    d = go_duration
    if kind not in allowed:
        return f"invalid check type ({_q(kind)}), must be one of {', '.join(allowed)}"
    if kind == "http":
        if c["Path"] == "":
            return "http type must have http path"
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", c["Path"]):
            return "http type must have relative http path"
    if kind == "script" and c["Command"] == "":
        return "script type must have a valid script path"
    if c["Interval"] == 0:
        return "missing required value interval. Interval cannot be less than 1s"
    if c["Interval"] < SECOND:
        return f"interval ({d(c['Interval'])}) cannot be lower than 1s"
    if c["Timeout"] == 0:
        return "missing required value timeout. Timeout cannot be less than 1s"
    if c["Timeout"] < SECOND:
        return f"timeout ({d(c['Timeout'])}) is lower than required minimum timeout 1s"
    if c["InitialStatus"] not in ("", "passing", "warning", "critical"):
        return (f"invalid initial check state ({c['InitialStatus']}), must be one of "
                '"passing", "warning", "critical" or empty')
    if c["AddressMode"] == "auto":
        return 'invalid address_mode "auto" - auto only valid for services'
    if c["AddressMode"] not in ("", "host", "driver", "alloc", "alloc_ipv6"):
        return f"invalid address_mode {_q(c['AddressMode'])}"
    if c["OnUpdate"] not in ("", "ignore", "require_healthy", "ignore_warnings"):
        return ('on_update must be "require_healthy", "ignore_warnings", or "ignore"; got '
                f"{_q(c['OnUpdate'])}")
    restart = c["CheckRestart"]
    if restart is not None:
        if c["OnUpdate"] == "ignore":
            return f"on_update value {_q(c['OnUpdate'])} is not compatible with check_restart"
        if not restart["IgnoreWarnings"] and c["OnUpdate"] == "ignore_warnings":
            return ('on_update value "ignore_warnings" not supported with check_restart '
                    'ignore_warnings value "false"')
        restart_errs = []  # structs.go:7793 CheckRestart.Validate
        if restart["Limit"] < 0:
            restart_errs.append(f"limit must be greater than or equal to 0 but found "
                                f"{restart['Limit']}")
        if restart["Grace"] < 0:
            restart_errs.append(f"grace period must be greater than or equal to 0 but found "
                                f"{restart['Grace']}")
        if restart_errs:
            return multierror(restart_errs)
    return _consul_check(c, kind) if consul else _nomad_check(c)


def _consul_check(c: Obj, kind: str) -> str | None:
    """nomad/structs/services.go ServiceCheck.validateConsul (after validateCommon)."""
    if c["Expose"] and kind not in ("grpc", "http"):
        return "expose may only be set on HTTP or gRPC checks"
    for key, name in (("SuccessBeforePassing", "success_before_passing"),
                      ("FailuresBeforeCritical", "failures_before_critical"),
                      ("FailuresBeforeWarning", "failures_before_warning")):
        if c[key] < 0:
            return f"{name} must be non-negative"
        if c[key] > 0 and c["Type"] not in ("tcp", "http", "grpc"):
            return f"{name} not supported for check of type {_q(c['Type'])}"
    if len(c["Notes"]) > 255:
        return "notes must not be longer than 255 characters"
    return None


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE")


def _nomad_check(c: Obj) -> str | None:
    """nomad/structs/services.go ServiceCheck.validateNomad (after validateCommon)."""
    if c["Expose"]:
        return "expose may only be set for Consul service checks"
    if c["OnUpdate"] == "ignore_warnings":
        return "on_update may only be set to ignore_warnings for Consul service checks"
    if c["CheckRestart"] is not None and c["CheckRestart"]["IgnoreWarnings"]:
        return "ignore_warnings on check_restart only supported for Consul service checks"
    if c["AddressMode"] == "driver":
        return "address_mode = driver may only be set for Consul service checks"
    if c["Type"] == "http" and c["Method"] != "" and c["Method"].upper() not in _HTTP_METHODS:
        return f"method type {_q(c['Method'])} not supported in Nomad http check"
    for key, name in (("SuccessBeforePassing", "success_before_passing"),
                      ("FailuresBeforeCritical", "failures_before_critical"),
                      ("FailuresBeforeWarning", "failures_before_warning"),
                      ("TLSServerName", "tls_server_name")):
        if c[key]:
            return f"{name} may only be set for Consul service checks"
    return None


def _group_services(tg: Obj) -> list[str]:
    """nomad/structs/structs.go TaskGroup.validateServices."""
    errs = []
    tasks = {t["Name"] for t in tg["Tasks"] or ()}
    seen: list[tuple[str, str, str]] = []
    duplicates: list[tuple[str, str, str]] = []
    providers: set[str] = set()
    for t in tg["Tasks"] or ():
        for s in t["Services"] or ():
            if s["TaskName"] != "" and s["TaskName"] != t["Name"]:
                errs.append(f"Service {s['Name']} is invalid: may only specify task the service "
                            f"belongs to, got {_q(s['TaskName'])}")
            for check in s["Checks"] or ():
                if check["TaskName"] != "" and check["TaskName"] != t["Name"]:
                    errs.append(f"Check {check['Name']} is invalid: may only specify task the "
                                f"check belongs to, got {_q(check['TaskName'])}")
            key = (s["Name"], t["Name"], s["PortLabel"])
            (duplicates if key in seen else seen).append(key)
            providers.add(s["Provider"])
    for i, s in enumerate(tg["Services"] or ()):
        key = (s["Name"], "group", s["PortLabel"])
        (duplicates if key in seen else seen).append(key)
        providers.add(s["Provider"])
        inner = _service(s)
        if inner:
            errs.append(f"Service[{i}] {s['Name']} validation failed: {multierror(inner)}")
            continue
        if s["AddressMode"] == "driver":
            errs.append(f"service {_q(s['Name'])} cannot use address_mode=\"driver\", only "
                        "services defined in a \"task\" block can use this mode")
        for check in s["Checks"] or ():
            if check["TaskName"] != "":
                if check["AddressMode"] == "driver":
                    errs.append(f"Check {_q(s['Name'])} invalid: cannot use address_mode="
                                "\"driver\", only checks defined in a \"task\" service block "
                                "can use this mode")
                if check["TaskName"] not in tasks:
                    errs.append(f"Check {check['Name']} invalid: refers to non-existent task "
                                f"{check['TaskName']}")
    if duplicates:
        def text(u: tuple[str, str, str]) -> str:
            return f"{u[1]}->{u[0]}" + (f":{u[2]}" if u[2] else "")
        errs.append("Services are not unique: " + ", ".join(text(u) for u in dict.fromkeys(
            duplicates)))
    if len(providers) > 1:
        errs.append("Multiple service providers used: task group services must use the same "
                    "provider")
    return errs


def _scaling(tg: Obj, j: Obj) -> list[str]:
    """nomad/structs/structs.go TaskGroup.validateScalingPolicy (+ ScalingPolicy.Validate)."""
    p = tg["Scaling"]
    if p is None:
        return []
    errs = []
    if p["Type"] == "":
        errs.append("Scaling policy invalid: missing scaling policy type")
    elif p["Type"] != "horizontal":
        errs.append(f'Scaling policy invalid: scaling policy type "{p["Type"]}" is not valid')
    elif p["Target"]:  # structs.go:6458 validateTargetHorizontal
        errs += [f"Scaling policy invalid: missing target {name.lower()}"
                 for name in ("Namespace", "Job", "Group") if not p["Target"].get(name)]
    if p["Max"] < 0:
        errs.append("Scaling policy invalid: maximum count must be specified and non-negative")
    elif p["Max"] < p["Min"]:
        errs.append("Scaling policy invalid: maximum count must not be less than minimum count")
    if p["Min"] < 0:
        errs.append("Scaling policy invalid: minimum count must be specified and non-negative")
    if p["Max"] < tg["Count"]:
        errs.append("Scaling policy invalid: task group count must not be greater than maximum "
                    "count in scaling policy")
    if tg["Count"] < p["Min"] and not (j["Multiregion"] is not None and tg["Count"] == 0
                                       and j["Region"] == "global"):
        errs.append("Scaling policy invalid: task group count must not be less than minimum "
                    "count in scaling policy")
    return errs


def validate_task(t: Obj, job_type: str, tg: Obj) -> list[str]:
    """nomad/structs/structs.go Task.Validate (the rules a server checks without a client)."""
    errs: list[str] = []
    name = t["Name"]
    if name == "":
        errs.append("Missing task name")
    if name == "alloc":
        errs.append('Task cannot be named "alloc"')
    if "/" in name or "\\" in name:
        errs.append("Task name cannot include slashes")
    elif "\0" in name:
        errs.append("Task name cannot include null characters")
    if t["Driver"] == "":
        errs.append("Missing task driver")
    update = tg["Update"]
    if t["KillTimeout"] < 0:
        errs.append("KillTimeout must be a positive value")
    elif (job_type == "service" and update is not None and update["ProgressDeadline"] > 0
          and t["KillTimeout"] > update["ProgressDeadline"]):
        errs.append(f"KillTimout ({go_duration(t['KillTimeout'])}) longer than the group's "
                    f"ProgressDeadline ({go_duration(update['ProgressDeadline'])})")
    if t["ShutdownDelay"] < 0:
        errs.append("ShutdownDelay must be a positive value")
    if t["Resources"] is None:
        errs.append("Missing task resources")
    else:
        inner = _resources(t["Resources"])
        if inner:
            errs.append(multierror(inner))
    if t["LogConfig"] is None:
        errs.append("Missing Log Config")
    else:
        inner = _log_config(t["LogConfig"], tg["EphemeralDisk"])
        if inner:
            errs.append(multierror(inner))
    errs += _constraints(t["Constraints"], task=True)
    errs += _affinities(t["Affinities"], job_type == "system")
    inner = _task_services(t)
    if inner:
        errs.append(multierror(inner))
    for idx, a in enumerate(t["Artifacts"] or ()):
        inner = _artifact(a)
        if inner:
            errs.append(f"Artifact {idx + 1} validation failed: {multierror(inner)}")
    vault = t["Vault"]
    if vault is not None:  # structs.go Vault.Validate
        vault_errs = []
        if vault["ChangeMode"] == "signal":
            if vault["ChangeSignal"] == "":
                vault_errs.append('Signal must be specified when using change mode "signal"')
        elif vault["ChangeMode"] not in ("noop", "restart"):
            vault_errs.append(f"Unknown change mode {_q(vault['ChangeMode'])}")
        if vault_errs:
            errs.append(f"Vault validation failed: {multierror(vault_errs)}")
    destinations: dict[str, int] = {}
    for idx, tmpl in enumerate(t["Templates"] or ()):
        inner = _template(tmpl)
        if inner:
            errs.append(f"Template {idx + 1} validation failed: {multierror(inner)}")
        if tmpl["DestPath"] in destinations:
            errs.append(f"Template {idx + 1} has same destination as "
                        f"{destinations[tmpl['DestPath']]}")
        else:
            destinations[tmpl["DestPath"]] = idx + 1
    seen_actions: dict[str, bool] = {}
    for action in t["Actions"] or ():  # actions.go Action.Validate
        action_errs = []
        if action["Command"] == "":
            action_errs.append("command cannot be empty")
        if not re.fullmatch(r"[^\x00\s]{1,128}", action["Name"]):
            action_errs.append(f"invalid name '{action['Name']}'")
        if action_errs:
            errs.append(f"Action {action['Name']} validation failed: {multierror(action_errs)}")
        if seen_actions.get(action["Name"]) is False:
            errs.append(f"Action {action['Name']} defined multiple times")
            seen_actions[action["Name"]] = True
            continue
        seen_actions.setdefault(action["Name"], False)
    payload = t["DispatchPayload"]
    if payload is not None and _escapes(payload["File"], "task/local/"):
        errs.append("Dispatch Payload validation failed: destination escapes allocation "
                    "directory")
    lifecycle = t["Lifecycle"]
    if lifecycle is not None:
        if lifecycle["Hook"] == "":
            errs.append("Lifecycle validation failed: no lifecycle hook provided")
        elif lifecycle["Hook"] not in ("prestart", "poststart", "poststop"):
            errs.append(f"Lifecycle validation failed: invalid hook: {lifecycle['Hook']}")
    if str(t["Kind"]).startswith("connect-proxy:"):
        if t["Services"]:
            errs.append("Connect proxy task must not have a service block")
        if t["Leader"]:
            errs.append("Connect proxy task must not have leader set")
        # structs.go:8740 ValidateConnectProxyService
        service = t["Kind"].split(":", 1)[1]
        names = [s["Name"] for s in tg["Services"] or ()
                 if s["Connect"] is not None and s["Connect"]["SidecarService"] is not None]
        if service not in names:
            errs.append(f"No Connect services in task group with Connect proxy ({_q(service)})"
                        if not names else
                        f"Connect proxy service name ({_q(service)}) not found in Connect "
                        f"services from task group: [{' '.join(names)}]")
    csi = t["CSIPluginConfig"]
    if csi is not None:
        if csi["ID"] == "":
            errs.append("CSIPluginConfig must have a non-empty PluginID")
        if csi["Type"] not in ("node", "controller", "monolith"):
            errs.append("CSIPluginConfig PluginType must be one of 'node', 'controller', or "
                        f"'monolith', got: \"{csi['Type']}\"")
        base, mount = csi["StagePublishBaseDir"], csi["MountDir"]
        if base and mount and not posixpath.relpath(base, mount).startswith(".."):
            errs.append("CSIPluginConfig StagePublishBaseDir must not be a subdirectory of "
                        f'MountDir, got: StagePublishBaseDir="{base}" MountDir="{mount}"')
    for idx, vm in enumerate(t["VolumeMounts"] or ()):
        if vm["Volume"] not in (tg["Volumes"] or {}):
            errs.append(f"Volume Mount ({idx}) references undefined volume {vm['Volume']}")
        inner = _volume_mount(vm)
        if inner:
            errs.append(f'Volume Mount ({idx}) is invalid: "{multierror(inner)}"')
    if t["Identity"] is not None:
        inner = _identity(t["Identity"])
        if inner:
            errs.append(f"Identity {_q(t['Identity']['Name'])} is invalid: {multierror(inner)}")
    for wid in t["Identities"] or ():
        if wid["Name"] == "default":
            errs.append("Duplicate default identities found")
        inner = _identity(wid)
        if inner:
            errs.append(f"Identity {_q(wid['Name'])} is invalid: {multierror(inner)}")
    secrets: set[str] = set()
    for secret in t["Secrets"] or ():
        if secret["Name"] in secrets:
            errs.append(f"Duplicate secret {_q(secret['Name'])} found")
        secrets.add(secret["Name"])
        if secret["Provider"] == "vault" and t["Vault"] is None:
            errs.append(f'Secret {_q(secret["Name"])} has provider "vault" but no vault block')
        inner = _secret(secret)
        if inner:
            errs.append(f"Secret {_q(secret['Name'])} is invalid: {multierror(inner)}")
    return errs


def _disconnect(d: Obj | None, job_type: str) -> list[str]:
    """nomad/structs/group.go DisconnectStrategy.Validate."""
    if d is None:
        return []
    errs = []
    if d["StopOnClientAfter"] is not None:
        if d["StopOnClientAfter"] < 0:
            errs.append("stop_after cannot be a negative duration")
        if job_type not in ("service", "batch"):
            errs.append("stop_after can only be used with service or batch job types")
    if d["LostAfter"] < 0:
        errs.append("lost_after cannot be a negative duration")
    if d["StopOnClientAfter"] is not None and d["LostAfter"] != 0:
        errs.append("Disconnect cannot be configured with both lost_after and stop_after")
    if d["Reconcile"] not in ("", "best_score", "longest_running", "keep_original",
                              "keep_replacement"):
        errs.append(f"reconcile option is invalid: {d['Reconcile']}")
    return errs


def _volume(v: Obj, job_type: str, count: int, canaries: int) -> str:
    """nomad/structs/volumes.go:147 VolumeRequest.Validate ("" when valid)."""
    if v["Type"] not in ("host", "csi"):
        return f"volume has unrecognized type {v['Type']}"
    errs = []
    mode = v["AccessMode"]
    if v["Source"] == "":
        errs.append("volume has an empty source")
    if v["PerAlloc"]:
        if job_type in ("system", "sysbatch"):
            errs.append("volume cannot be per_alloc for system or sysbatch jobs")
        if canaries > 0:
            errs.append("volume cannot be per_alloc when canaries are in use")
        if v["Sticky"]:
            errs.append("volume cannot be per_alloc and sticky at the same time")
    if v["Type"] == "host":
        if v["MountOptions"] is not None:
            errs.append("host volumes cannot have mount options")
        if mode == "single-node-reader-only":
            if not v["ReadOnly"]:
                errs.append(f"{mode} volumes must be read-only")
        elif mode not in ("single-node-writer", "single-node-single-writer",
                          "single-node-multi-writer", ""):
            errs.append(f"host volumes cannot be mounted with {mode} access mode")
    else:
        if v["AttachmentMode"] == "":
            errs.append("CSI volumes must have an attachment mode")
        elif v["AttachmentMode"] == "block-device" and v["MountOptions"] is not None:
            errs.append("block devices cannot have mount options")
        single = count > 1 and not v["PerAlloc"]
        if mode == "":
            errs.append("CSI volumes must have an access mode")
        elif mode in ("single-node-reader-only", "multi-node-reader-only"):
            if not v["ReadOnly"]:
                errs.append(f"{mode} volumes must be read-only")
            if mode == "single-node-reader-only" and single:
                errs.append(f"volume with {mode} access mode allows only one reader")
        elif mode == "single-node-writer" and single:
            errs.append(f"volume with {mode} access mode allows only one reader or writer")
        elif mode == "multi-node-single-writer" and not v["ReadOnly"] and single:
            errs.append(f"volume with {mode} access mode allows only one writer")
    return multierror(errs) if errs else ""


def _volume_mount(vm: Obj) -> list[str]:
    """nomad/structs/volumes.go VolumeMount.Validate."""
    errs = []
    if vm["Volume"] == "":
        errs.append("volume mount references an empty volume")
    if vm["PropagationMode"] not in ("", "private", "host-to-task", "bidirectional"):
        errs.append("volume mount has an invalid propagation mode: "
                    f"{_q(vm['PropagationMode'])}")
    if vm["SELinuxLabel"] not in ("", "z", "Z"):
        errs.append(f'volume mount has an invalid SELinux label: "{vm["SELinuxLabel"]}"')
    return errs


def _identity(wi: Obj) -> list[str]:
    """nomad/structs/workload_id.go:451 WorkloadIdentity.Validate."""
    errs = []
    if not re.fullmatch(r"[a-zA-Z0-9\-_]{1,128}", wi["Name"]):
        errs.append(f"invalid name {_q(wi['Name'])}. Must match regex ^[a-zA-Z0-9-_]{{1,128}}$")
    errs += [f"an empty string is an invalid audience ({i + 1})"
             for i, aud in enumerate(wi["Audience"] or ()) if aud == ""]
    mode, signal = wi["ChangeMode"], wi["ChangeSignal"]
    if mode in ("", "noop", "restart"):
        if signal != "":
            errs.append(f'can only use change_signal={_q(signal)} with change_mode="signal"')
    elif mode == "signal":
        if signal == "":
            errs.append('change_signal must be specified when using change_mode="signal"')
    else:
        errs.append(f"invalid change_mode: {mode}")
    if wi["TTL"] > 0 and wi["Name"] in ("", "default"):
        errs.append("ttl for default identity not yet supported")
    if wi["TTL"] < 0:
        errs.append("ttl must be >= 0")
    if wi["Filepath"] != "" and not wi["File"]:
        errs.append("file parameter must be true in order to specify filepath")
    return errs


def _secret(secret: Obj) -> list[str]:
    """nomad/structs/structs.go Secret.Validate."""
    errs = []
    if secret["Name"] == "":
        errs.append("secret name cannot be empty")
    if not re.fullmatch(r"[a-zA-Z0-9_]{1,128}", secret["Name"]):
        errs.append("secret name must match regex ^[a-zA-Z0-9_]{1,128}$")
    if secret["Provider"] == "":
        errs.append("secret provider cannot be empty")
    if secret["Path"] == "":
        errs.append("secret path cannot be empty")
    if secret["Provider"] in ("nomad", "vault"):
        if secret["Env"]:
            errs.append(f"{secret['Provider']} provider cannot use the env block")
    elif secret["Config"]:
        errs.append(f"custom plugin provider {secret['Provider']} cannot use the config block")
    return errs


def _resources(r: Obj) -> list[str]:
    """nomad/structs/structs.go Resources.Validate."""
    errs = []
    if r["Cores"] > 0 and r["CPU"] > 0:
        errs.append("Task can only ask for 'cpu' or 'cores' resource, not both.")
    if r["Cores"] < 0:
        errs.append(f"cores value ({r['Cores']}) cannot be negative")
    minimum = []
    if r["CPU"] < 1 and r["Cores"] == 0:
        minimum.append(f"minimum CPU value is 1; got {r['CPU']}")
    if r["MemoryMB"] < 10:
        minimum.append(f"minimum MemoryMB value is 10; got {r['MemoryMB']}")
    if minimum:
        errs.append(multierror(minimum))
    if r["DiskMB"] > 0:
        errs.append("Task can't ask for disk resources, they have to be specified at the task "
                    "group level.")
    if r["MemoryMaxMB"] not in (0, -1) and r["MemoryMaxMB"] < r["MemoryMB"]:
        errs.append(f"MemoryMaxMB value ({r['MemoryMaxMB']}) should be larger than MemoryMB "
                    f"value ({r['MemoryMB']})")
    if r["SecretsMB"] > r["MemoryMB"]:
        errs.append(f"SecretsMB value ({r['SecretsMB']}) cannot be larger than MemoryMB value "
                    f"({r['MemoryMB']})")
    if r["SecretsMB"] < 0:
        errs.append(f"SecretsMB value ({r['SecretsMB']}) cannot be negative")
    return errs


def _log_config(log: Obj, disk: Obj | None) -> list[str]:
    """nomad/structs/structs.go LogConfig.Validate."""
    errs = []
    if log["MaxFiles"] < 1:
        errs.append(f"minimum number of files is 1; got {log['MaxFiles']}")
    if log["MaxFileSizeMB"] < 1:
        errs.append(f"minimum file size is 1MB; got {log['MaxFileSizeMB']}")
    if disk is not None:
        usage = log["MaxFiles"] * log["MaxFileSizeMB"]
        if disk["SizeMB"] <= usage:
            errs.append(f"log storage ({usage} MB) must be less than requested disk capacity "
                        f"({disk['SizeMB']} MB)")
    return errs


def _task_services(t: Obj) -> list[str]:
    """nomad/structs/structs.go:8440 validateServices (the task-level rules)."""
    errs = []
    known: set[str] = set()
    for i, s in enumerate(t["Services"] or ()):
        inner = _service(s)
        if inner:
            errs.append(f"service[{i}] {_q(s['Name'])} validation failed: {multierror(inner)}")
        if s["AddressMode"] in ("alloc", "alloc_ipv6"):
            errs.append(f"service {_q(s['Name'])} cannot use address_mode={_q(s['AddressMode'])},"
                        ' only services defined in a "group" block can use this mode')
        if s["Name"] + s["PortLabel"] in known:
            errs.append(f"service {_q(s['Name'])} is duplicate")
        known.add(s["Name"] + s["PortLabel"])
        if s["Connect"] is not None:
            errs.append(f"service {_q(s['Name'])} cannot have \"connect\" block, only services "
                        "defined in a \"group\" block can")
        checks: set[str] = set()
        for check in s["Checks"] or ():
            if check["Name"] in checks:
                errs.append(f"check {_q(check['Name'])} is duplicate")
            checks.add(check["Name"])
    return errs


def _escapes(path: str, prefix: str = "task") -> bool:
    """helper/escapingfs/escapes.go:62 PathEscapesAllocViaRelative(prefix, path)."""
    alloc = "/alloc-dir/alloc-id"
    full = posixpath.normpath(posixpath.join(alloc, prefix, path))
    return posixpath.relpath(full, alloc).startswith("..")


def _artifact(a: Obj) -> list[str]:
    """nomad/structs/structs.go TaskArtifact.Validate (without the checksum option)."""
    errs = []
    if a["GetterSource"] == "":
        errs.append("source must be specified")
    if a["GetterMode"] not in ("", "any", "file", "dir"):
        errs.append(f"invalid artifact mode {_q(a['GetterMode'])}; must be one of: any, file, dir")
    if _escapes(a["RelativeDest"]):
        errs.append("destination escapes allocation directory")
    checksum = _checksum((a["GetterOptions"] or {}).get("checksum"))
    if checksum is not None:
        errs.append(checksum)
    return errs


_CHECKSUM_SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


def _checksum(check: str | None) -> str | None:
    """nomad/structs/structs.go:9921 TaskArtifact.validateChecksum."""
    if check is None or re.search(r"\$\{[a-zA-Z0-9_\-\.]+\}", check):
        return None
    check = check.strip()
    if check == "":
        return "checksum value cannot be empty"
    parts = check.split(":")
    if len(parts) != 2:
        return f'checksum must be given as "type:value"; got {_q(check)}'
    kind, value = parts
    hex_error = _hex_error(value)
    if hex_error is not None:
        return f"invalid checksum: {hex_error}"
    if kind not in _CHECKSUM_SIZES:
        return f"unsupported checksum type: {kind}"
    if len(value) // 2 != _CHECKSUM_SIZES[kind]:
        return f"invalid {kind} checksum: {value}"
    return None


def _hex_error(text: str) -> str | None:
    """encoding/hex DecodeString's error text, or None."""
    data = text.encode()
    for byte in data:
        if chr(byte) not in "0123456789abcdefABCDEF":
            return f"encoding/hex: invalid byte: U+{byte:04X} {_quote_rune(chr(byte))}"
    if len(data) % 2:
        return "encoding/hex: odd length hex string"
    return None


def _quote_rune(char: str) -> str:
    """Go's %q of a rune (as %#U prints it)."""
    return "'\\''" if char == "'" else f"'{char}'"


def _template(tmpl: Obj) -> list[str]:
    """nomad/structs/structs.go Template.Validate (without the change script and wait rules)."""
    errs = []
    if tmpl["SourcePath"] == "" and tmpl["EmbeddedTmpl"] == "":
        errs.append("Must specify a source path or have an embedded template")
    if tmpl["DestPath"] == "":
        errs.append("Must specify a destination for the template")
    if _escapes(tmpl["DestPath"]):
        errs.append("destination escapes allocation directory")
    mode = tmpl["ChangeMode"]
    if mode == "signal":
        if tmpl["ChangeSignal"] == "":
            errs.append("Must specify signal value when change mode is signal")
        if tmpl["Envvars"]:
            errs.append("cannot use signals with env var templates")
    elif mode == "script":
        if tmpl["ChangeScript"] is None:
            errs.append("must specify change script configuration value when change mode is "
                        "script")
        elif tmpl["ChangeScript"]["Command"] == "":
            errs.append("must specify script path value when change mode is script")
    elif mode not in ("noop", "restart"):
        errs.append("Invalid change mode. Must be one of the following: noop, signal, script, "
                    "restart")
    if tmpl["Splay"] < 0:
        errs.append("Must specify positive splay value")
    perms = tmpl["Perms"]
    if perms != "" and not re.fullmatch(r"[+]?[0-7_]+", perms):
        errs.append(f"Failed to parse {_q(perms)} as octal: strconv.ParseUint: parsing "
                    f"{_q(perms)}: invalid syntax")
    elif perms != "" and int(perms.replace("_", ""), 8) >= 4096:
        errs.append(f"Failed to parse {_q(perms)} as octal: strconv.ParseUint: parsing "
                    f"{_q(perms)}: value out of range")
    wait = tmpl["Wait"]  # structs.go WaitConfig.Validate
    if wait is not None and wait["Min"] is not None and wait["Max"] is not None and wait[
            "Min"] > wait["Max"]:
        errs.append(f"wait min {go_duration(wait['Min'])} is greater than max "
                    f"{go_duration(wait['Max'])}")
    return errs



def job_warnings(j: Obj) -> list[str]:
    """nomad/structs/structs.go:4956 Job.Warnings: the entries register answers as warnings."""
    out = []
    has_auto, all_auto = False, True
    for tg in j["TaskGroups"] or ():
        inner = _group_warnings(tg)
        if inner:
            out.append(f"Group {_q(tg['Name'])} has warnings: {multierror(inner)}")
        u = tg["Update"]
        if u is not None:
            has_auto = has_auto or u["AutoPromote"]
            all_auto = all_auto and (u["Canary"] == 0 or u["AutoPromote"])
    for tg in j["TaskGroups"] or ():
        out += _shutdown_delay_warnings(tg)
    if has_auto and not all_auto:
        out.append("auto_promote must be true for all groups to enable automatic promotion")
    if j["Periodic"] is not None and j["Periodic"]["Spec"] != "":
        out.append("cron is deprecated and may be removed in a future release. Use crons instead")
    return out


def _identity_warnings(wi: Obj) -> list[str]:
    """nomad/structs/workload_id.go:500 WorkloadIdentity.Warnings."""
    out = []
    audiences = len(wi["Audience"] or ())
    if audiences == 0:
        out.append("identities without an audience are insecure")
    elif audiences > 1:
        out.append("while multiple audiences is allowed, it is more secure to use 1 audience per "
                   "identity")
    if wi["Name"] not in ("", "default") and wi["TTL"] == 0:
        out.append("identities without an expiration are insecure")
    if wi["Env"] and wi["ChangeMode"] != "restart":
        out.append(f'using env={_text_bool(wi["Env"])} without change_mode="restart" may result '
                   "in task not getting updated identity")
    return out


def _text_bool(value: bool) -> str:
    return "true" if value else "false"


def _service_warnings(s: Obj) -> list[str]:
    """Service.Warnings, prefixed as TaskGroup/Task.Warnings do (multierror.Prefix)."""
    if s["Identity"] is None:
        return []
    return [f"Service {_q(s['Name'])}: {w}" for w in _identity_warnings(s["Identity"])]


def _group_warnings(tg: Obj) -> list[str]:
    """nomad/structs/structs.go:7626 TaskGroup.Warnings."""
    out = []
    u = tg["Update"]
    if u is not None and tg["Count"] > 1 and u["MaxParallel"] > tg["Count"]:
        out.append(f"Update max parallel count is greater than task group count "
                   f"({u['MaxParallel']} > {tg['Count']}). A destructive change would result in "
                   "the simultaneous replacement of all allocations.")
    if tg["MaxClientDisconnect"] is not None:
        out.append("MaxClientDisconnect is deprecated and ignored in favor of "
                   "Disconnect.LostAfter")
    if tg["StopAfterClientDisconnect"] is not None:
        out.append("StopAfterClientDisconnect is deprecated and ignored favor of "
                   "Disconnect.StopOnClientAfter")
    if tg["PreventRescheduleOnLost"]:
        out.append("PreventRescheduleOnLost is deprecated and ignored in favor of "
                   "Disconnect.Replace")
    if tg["Networks"] and tg["Networks"][0]["MBits"] > 0:
        out.append("mbits has been deprecated as of Nomad 0.12.0. Please remove mbits from the "
                   "network block")
    for s in tg["Services"] or ():
        out += _service_warnings(s)
    for t in tg["Tasks"] or ():
        inner = _task_warnings(t)
        if inner:
            out.append(f"Task {_q(t['Name'])} has warnings: {multierror(inner)}")
    return out


def _task_warnings(t: Obj) -> list[str]:
    """nomad/structs/structs.go:8598 Task.Warnings."""
    out = []
    resources = t["Resources"]
    if resources is not None and resources["IOPS"] != 0:
        out.append("IOPS has been deprecated as of Nomad 0.9.0. Please remove IOPS from resource "
                   "block.")
    if resources is not None and resources["Networks"]:
        out.append("task network resources have been deprecated as of Nomad 0.12.0. Please "
                   "configure networking via group network block.")
    for idx, tmpl in enumerate(t["Templates"] or ()):
        if tmpl["VaultGrace"] != 0:
            out.append(f"Template[{idx}] VaultGrace has been deprecated as of Nomad 0.11 and "
                       "ignored since Vault 0.5. Please remove VaultGrace / vault_grace from "
                       "template block.")
    for s in t["Services"] or ():
        out += _service_warnings(s)
    for wid in t["Identities"] or ():
        inner = _identity_warnings(wid)
        if inner:
            out.append(multierror([f"Identity[{wid['Name']}] {w}" for w in inner]))
    return out


def _shutdown_delay_warnings(tg: Obj) -> list[str]:
    """nomad/structs/structs.go generateTaskGroupServiceShutdownDelayWarnings."""
    out = []
    referenced: set[str] = set()
    unscoped = False
    task_delay = False
    group_delay = tg["ShutdownDelay"] is not None and tg["ShutdownDelay"] > 0
    for s in tg["Services"] or ():
        if s["TaskName"] != "":
            referenced.add(s["TaskName"])
            continue
        if s["Connect"] is not None and s["Connect"]["SidecarTask"] is not None:
            if s["Connect"]["SidecarTask"]["ShutdownDelay"] is None:
                out.append(f"service {_q(s['Name'])} defines a sidecar task in Consul Connect "
                           "definition, but the task has no shutdown_delay set")
            continue
        unscoped = True
    for t in tg["Tasks"] or ():
        if t["Name"] in referenced and t["ShutdownDelay"] == 0:
            out.append(f"group {_q(tg['Name'])} references task {_q(t['Name'])} in a service "
                       "definition, but the task has no shutdown_delay set")
        if t["ShutdownDelay"] > 0:
            task_delay = True
        elif t["Services"]:
            out.append(f"task {_q(t['Name'])} in group {_q(tg['Name'])} defines services, but has "
                       "no shutdown_delay set")
    if unscoped and not group_delay and not task_delay:
        out.append(f"group {_q(tg['Name'])} defines services, but neither the group nor any of "
                   "its tasks have shutdown_delay set")
    return out
