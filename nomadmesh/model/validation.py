"""Validation as a Nomad server does it: `structs.Job.Validate()` and everything it calls, run on the
job as the server stores it (`canonicalize(job)`: admission mutators run before validators,
nomad/job_endpoint_hooks.go:178), with Nomad's messages and nomadmesh paths in HCL names.

Every rule cites its source in nomad/structs at aa026cc99cfb. Before the rules, every field's type
is checked (a wrong Python type would make Nomad's decoder answer 400). Nomad's own warnings and
nomadmesh's extra checks (messages starting "nomadmesh:") are `warnings()`: they never refuse a
job Nomad accepts.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh._gc import collector_paused
from nomadmesh.errors import Problem
from nomadmesh.model._base import (
    INT_RANGES,
    SECOND,
    Kind,
    compile_generated,
    compiled_on_first_use,
    go_quote,
    json_problem,
    label_spec,
    specs,
    type_problems,
)
from nomadmesh.model._copy import MEMO_LIMIT

if TYPE_CHECKING:
    from nomadmesh.model.group import Group
    from nomadmesh.model.job import Job
    from nomadmesh.model.placement import Affinity, Constraint, Spread
    from nomadmesh.model.policies import (
        Disconnect,
        MigrateStrategy,
        ReschedulePolicy,
        RestartPolicy,
        UpdateStrategy,
    )
    from nomadmesh.model.resources import EphemeralDisk, Resources
    from nomadmesh.model.service import Check, Service
    from nomadmesh.model.task import Task


def problems(obj: Any, path: str | None = None) -> Iterator[Problem]:
    """Every problem in `obj`: its types and its blocks' types, then (a Job) Nomad's rules.

    A Job's root path is `job[<id>]`; any other model object is type-checked only.
    """
    from nomadmesh.model.job import Job

    if path is None:
        path = f"job[{obj.id}]" if isinstance(obj, Job) else ""
    found = types(obj, path)
    if found:
        return iter(found)
    if isinstance(obj, Job):
        return iter(refusals(obj, path))
    return iter(block_rules(obj, path))


def refusals(job: Job, path: str) -> list[Problem]:
    """What Nomad's rules refuse in a well-typed job, checked on the job as the server stores it.

    The stored form is tens of thousands of short-lived objects on a large job and makes no
    reference cycles, so the cyclic collector is paused while it is built and walked.
    """
    with collector_paused():
        return job_rules(stored_for_rules(job), path)


def block_rules(obj: Any, path: str) -> list[Problem]:
    """Nomad's own rules for a block checked on its own (a sidecar's resources, logs, restart
    policy), on its canonical form as a task would get it."""
    from nomadmesh.model.policies import RestartPolicy
    from nomadmesh.model.resources import LogConfig, Resources

    out: list[Problem] = []
    f = _Found(out, path)
    if isinstance(obj, Resources):
        _resources(obj.canonicalize(), f)
    elif isinstance(obj, LogConfig):
        _logs(obj.canonicalize(), None, f)
    elif isinstance(obj, RestartPolicy):
        _restart(obj, f)
    return out


def stored_for_rules(job: Job) -> Job:
    """The job as the server validates it, without the Go zeros the rules read as zero anyway
    and the defaults they never read (nomadmesh.model.server.for_rules)."""
    from nomadmesh.model.server import for_rules

    return for_rules(job.canonicalize(server=False))


def types(obj: Any, path: str) -> list[Problem]:
    """Type problems of `obj` and every block inside it, with paths in HCL names."""
    out: list[Problem] = []
    _type_checker(type(obj))(obj, path, out)
    return out


_Checker = Callable[[Any, str, list[Problem]], None]
_checkers: dict[type, _Checker] = {}
_TESTS = {
    Kind.STR: "type(v) is str",
    Kind.BOOL: "type(v) is bool",
    Kind.STRS: "type(v) is tuple and (not v or set(map(type, v)) == STR)",
    Kind.MAP: "isinstance(v, Mapping) and (not v or set(map(type, v.values())) == STR)",
    Kind.MAP_STRS: "False",  # rare: always checked field by field
    Kind.ANY: "isinstance(v, Mapping) and json_problem(v, '') is None",
}


def _type_checker(cls: type) -> _Checker:
    """Compile a type checker for one class: a fast test per field, and the thorough messages of
    `type_problems` for an object that fails one; then the blocks inside it."""
    try:
        return _checkers[cls]
    except KeyError:
        pass
    namespace: dict[str, Any] = {"STR": {str}, "INT": {int}, "Mapping": Mapping,
                                 "json_problem": json_problem, "thorough": _thorough_types}
    lines = ["def check(obj, path, out):"]
    children: list[str] = []
    for i, s in enumerate(specs(cls)):
        if s.block is None:
            if s.kind in (Kind.INT, Kind.DURATION, Kind.INTS):
                low, high = INT_RANGES["int64" if s.kind is Kind.DURATION else s.go_int]
                test = (f"type(v) is int and {low} <= v <= {high}" if s.kind is not Kind.INTS else
                        f"type(v) is tuple and (not v or (set(map(type, v)) == INT and "
                        f"{low} <= min(v) and max(v) <= {high}))")
            else:
                test = _TESTS[s.kind]
            lines.append(f"    v = obj.{s.name}")
            lines.append(f"    if v is not None and not ({test}): return thorough(obj, path, out)")
            continue
        namespace[f"B{i}"] = s.block
        namespace[f"sub{i}"] = compiled_on_first_use(_type_checker, _checkers, s.block, namespace,
                                                     f"sub{i}")
        at = f"path + {'.' + s.where!r}"
        if s.kind is Kind.BLOCK:
            lines.append(f"    v = obj.{s.name}")
            lines.append(f"    if v is not None and type(v) is not B{i}: return thorough(obj, path, out)")
            children += [f"    v = obj.{s.name}", f"    if v is not None: sub{i}(v, {at}, out)"]
        elif s.kind is Kind.BLOCKS:
            lab = label_spec(s.block)
            lines.append(f"    v = obj.{s.name}")
            lines.append(f"    if type(v) is not tuple or (v and set(map(type, v)) != {{B{i}}}): "
                         "return thorough(obj, path, out)")
            tag = (f"x.{lab.name} if type(x.{lab.name}) is str and x.{lab.name} else n"
                   if lab is not None else "n")
            children += [f"    for n, x in enumerate(obj.{s.name}):",
                         f"        sub{i}(x, f'{{path}}.{s.where}[{{{tag}}}]', out)"]
        else:
            lines.append(f"    v = obj.{s.name}")
            lines.append(f"    if not isinstance(v, Mapping) or (v and set(map(type, v.values())) != "
                         f"{{B{i}}}): return thorough(obj, path, out)")
            children += [f"    for k, x in obj.{s.name}.items():",
                         f"        sub{i}(x, f'{{path}}.{s.where}[{{k}}]', out)"]
        if s.label:
            lines.append(f"    if obj.{s.name} is None: return thorough(obj, path, out)")
    lab = label_spec(cls)
    if lab is not None:
        lines.append(f"    if type(obj.{lab.name}) is not str: return thorough(obj, path, out)")
    lines += children or ["    return None"]
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile_generated("\n".join(lines), f"<nomadmesh types {cls.__name__}>"), namespace)
    result: _Checker = namespace["check"]
    _checkers[cls] = result
    return result


def _thorough_types(obj: Any, path: str, out: list[Problem]) -> None:
    """Every type problem of an object a fast test refused, then its well-typed blocks."""
    own = list(type_problems(obj, path))
    out.extend(own)
    bad = {p.path for p in own}
    for s in specs(type(obj)):
        value = getattr(obj, s.name)
        if not value or s.block is None:
            continue
        at = f"{path}.{s.where}"
        if at in bad:
            continue
        check = _type_checker(s.block)
        if s.kind is Kind.BLOCK:
            check(value, at, out)
        elif s.kind is Kind.BLOCKS:
            lab = label_spec(s.block)
            for i, x in enumerate(value):
                tag = getattr(x, lab.name, None) if lab is not None else None
                check(x, f"{at}[{tag if isinstance(tag, str) and tag else i}]", out)
        elif s.kind is Kind.BLOCK_MAP:
            for k, x in value.items():
                check(x, f"{at}[{k}]", out)


# --- Go's formatting, for messages quoted from Nomad -------------------------------------------


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "1m30s", "1h0m0s", "1.5s", "500ms", "0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < SECOND:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= scale:
                return sign + _fraction(ns, scale) + unit
    hours, rest = divmod(ns, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    seconds = _fraction(rest, SECOND) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _go_list(items: Iterable[str]) -> str:
    """Go's %v of a []string: `[a b c]`."""
    return "[" + " ".join(items) + "]"


class _Found:
    """Problems collected under one path prefix (joined only when a problem is added: most
    blocks have none)."""

    __slots__ = ("_args", "_parent", "_where", "out")

    def __init__(self, out: list[Problem], path: str, parent: _Found | None = None,
                 args: tuple[Any, ...] = ()) -> None:
        self.out = out
        self._where = path
        self._parent = parent
        self._args = args

    @property
    def path(self) -> str:
        """The full path of this prefix."""
        where = self._where % self._args if self._args else self._where
        return where if self._parent is None else f"{self._parent.path}.{where}"

    def add(self, message: str, where: str = "") -> None:
        path = self.path
        self.out.append(Problem(f"{path}.{where}" if where else path, message))

    def at(self, where: str, *args: Any) -> _Found:
        """The prefix `where` below this one; with `args`, `where % args`, formatted only when a
        problem is added (`f.at("group[%s]", name)` costs no string for a block without one)."""
        return _Found(self.out, where, self, args)


class _Once:
    """Rule results of blocks within one run of the rules, each found once and reported again
    under each path (`run`). Past `MEMO_LIMIT` results with fewer hits it stops keeping
    (nomadmesh.model._copy.Memo)."""

    __slots__ = ("_hits", "_kept", "on")

    def __init__(self) -> None:
        self.on = True  # false once it stopped keeping
        # key -> (the inputs, kept so that no id is reused, ((path below the block, message),))
        self._kept: dict[Any, tuple[Any, tuple[tuple[str, str], ...]]] = {}
        self._hits = 0

    def block(self, block: Any, rule: Callable[[Any, _Found], None], f: _Found,
              where: str) -> None:
        """`run` for a rule that reads nothing but the block: keyed on its identity."""
        self.run(id(block), block, rule, (block,), f, where)

    def run(self, key: Any, keep: Any, rule: Callable[..., None], args: tuple[Any, ...],
            f: _Found, where: str) -> None:
        """`rule(*args, f.at(where))`, found once per `key`: for rules that read nothing but
        `args`, of blocks a job shares (a decoded job's equal blocks of scalar fields are one
        object, and so are their canonical forms, see nomadmesh.model._copy.Memo). `key` holds
        the ids of `args`, `keep` those objects (each class of block has one rule here, so the
        ids alone tell the rule). The problems come in the rule's order, at its place, with the
        same paths."""
        if self.on:
            hit = self._kept.get(key)
            if hit is not None:
                self._hits += 1
                if hit[1]:
                    base = f.at(where).path
                    f.out.extend(Problem(base + below, message) for below, message in hit[1])
                return
        at = f.at(where)
        n = len(f.out)
        rule(*args, at)
        if not self.on:
            return
        found: tuple[tuple[str, str], ...] = ()
        if len(f.out) > n:
            # Every path the rule makes starts with its prefix's.
            cut = len(at.path)
            found = tuple((p.path[cut:], p.message) for p in f.out[n:])
        kept = self._kept
        kept[key] = (keep, found)
        if len(kept) >= MEMO_LIMIT and self._hits < len(kept):
            self.on = False
            kept.clear()


# --- the job -----------------------------------------------------------------------------------

JOB_TYPES = ("service", "batch", "system", "sysbatch", "_core")


def job_rules(job: Job, path: str) -> list[Problem]:
    """nomad/structs/structs.go:4737 Job.Validate, on the job as the server stores it."""
    out: list[Problem] = []
    f = _Found(out, path)
    if not job.region and job.multiregion is None:
        f.add("Missing job region", "region")
    if not job.id:
        f.add("Missing job ID")
    elif " " in job.id:
        f.add("Job ID contains a space")
    elif "\x00" in job.id:
        f.add("Job ID contains a null character")
    if not job.name:
        f.add("Missing job name", "name")
    elif "\x00" in job.name:
        f.add("Job Name contains a null character", "name")
    if not job.namespace:
        f.add("Job must be in a namespace", "namespace")
    job_type = job.type or ""
    if job_type == "":
        f.add("Missing job type", "type")
    elif job_type not in JOB_TYPES:
        f.add(f"Invalid job type: {go_quote(job_type)}", "type")
    if not job.datacenters and not _multiregion(job):
        f.add("Missing job datacenters", "datacenters")
    for i, dc in enumerate(job.datacenters):
        if dc == "":
            f.add("Job datacenter must be non-empty string", f"datacenters[{i}]")
    if not job.groups:
        f.add("Missing job task groups")
    _constraints(job.constraints, f)
    _affinities_and_spreads(job.affinities, job.spreads, job_type, f)
    if job.ui is not None and len(job.ui.description or "") > 1000:
        f.add(f"UI description must be under 1000 characters, currently "
              f"{len((job.ui.description or '').encode(errors='surrogatepass'))}", "ui.description")
    seen: dict[str, int] = {}
    for i, g in enumerate(job.groups):
        where = f.at("group[%s]", g.name or i)
        if not g.name:
            where.add(f"Job task group {i + 1} missing name")
        elif g.name in seen:
            where.add(f"Job task group {i + 1} redefines '{g.name}' from group {seen[g.name] + 1}")
        else:
            seen[g.name] = i
        if g.shutdown_delay is not None and g.shutdown_delay < 0:
            where.add("ShutdownDelay must be a positive value", "shutdown_delay")
        if job_type == "system" and (g.count or 0) > 1:
            where.add(f"Job task group {g.name} has count {g.count}. Count cannot exceed 1 with "
                      "system scheduler", "count")
    once = _Once()
    for i, g in enumerate(job.groups):
        _group(g, job, f.at(f"group[{g.name or i}]"), once)
    if job.periodic is not None and job.periodic.enabled:
        if job_type not in ("batch", "sysbatch"):
            f.add('Periodic can only be used with "batch" or "sysbatch" scheduler', "periodic")
        _periodic(job, f.at("periodic"))
    if job.parameterized is not None and not job.server.get("Dispatched"):
        if job_type not in ("batch", "sysbatch"):
            f.add('Parameterized job can only be used with "batch" or "sysbatch" scheduler',
                  "parameterized")
        p = job.parameterized
        if (p.payload or "") not in ("optional", "required", "forbidden"):
            f.add(f"Unknown payload requirement: {go_quote(p.payload or '')}", "parameterized.payload")
        both = [k for k in p.meta_required if k in p.meta_optional]
        if both:
            f.add("Required and optional meta keys should be disjoint. Following keys exist in "
                  f"both: {_go_list(both)}", "parameterized")
    if _multiregion(job):
        # nomad/structs/structs_ce.go:44: Nomad CE refuses multiregion jobs.
        f.add("Multiregion jobs are unlicensed.", "multiregion")
    _admission(job, f)
    return out


def _admission(job: Job, f: _Found) -> None:
    """The validating admission hooks that depend on the job alone: nomad/job_endpoint_hooks.go:490
    jobValidate (with the default job_max_priority, 100) and Nomad CE's Consul and Vault hooks
    (nomad/job_endpoint_hook_consul_ce.go:14, job_endpoint_hook_vault_ce.go:17). Those that read
    the cluster's configuration or state (Vault enabled, node pool exists, namespace rules) are not
    checked here. First the errors of the mutating hooks (nomadmesh.model.server)."""
    from nomadmesh.model.server import admission_problems

    f.out.extend(admission_problems(job, f.path))
    if job.type == "_core":
        f.add("job type cannot be core", "type")
    if not 1 <= (job.priority or 0) <= 100:
        f.add("job priority must be between [1, 100]", "priority")
    namespaces = set()
    for g in job.groups:
        where = f.at(f"group[{g.name}]")
        if g.consul is not None and g.consul.cluster not in ("", "default", None):
            where.add("non-default Consul cluster requires Nomad Enterprise", "consul.cluster")
        for i, s in enumerate(g.services):
            _service_admission(s, f"task group {g.name}", where.at("service[%s]", i))
        for t in g.tasks:
            if not t.services and t.consul is None and t.vault is None:
                continue  # nothing to check
            at = where.at("task[%s]", t.name)
            for i, s in enumerate(t.services):
                _service_admission(s, f"task {t.name}", at.at("service[%s]", i))
            if t.consul is not None and t.consul.cluster not in ("", "default", None):
                at.add("non-default Consul cluster requires Nomad Enterprise", "consul.cluster")
            if t.vault is not None:
                if t.vault.cluster not in ("", "default", None):
                    at.add("non-default Vault cluster requires Nomad Enterprise", "vault.cluster")
                if t.vault.namespace:
                    namespaces.add(t.vault.namespace)
    if namespaces:
        f.add("multiple Vault namespaces requires Nomad Enterprise, Namespaces: "
              + ", ".join(sorted(namespaces)))


def _service_admission(s: Service, parent: str, f: _Found) -> None:
    if s.identity is not None and not s.identity.name:
        f.add(f"Service {s.name} in {parent} has an identity with an empty name", "identity.name")
    if (s.provider or "consul") == "consul" and s.cluster not in ("", "default", None):
        f.add("non-default Consul cluster requires Nomad Enterprise", "cluster")


def _multiregion(job: Job) -> bool:
    return job.multiregion is not None and bool(job.multiregion.regions)


def _affinities_and_spreads(affinities: tuple[Affinity, ...], spreads: tuple[Spread, ...],
                            job_type: str, f: _Found) -> None:
    if job_type == "system":
        if affinities:
            f.add("System jobs may not have an affinity block", "affinity")
        if spreads:
            f.add("System jobs may not have a spread block", "spread")
        return
    for i, a in enumerate(affinities):
        _affinity(a, f.at(f"affinity[{i}]"))
    for i, s in enumerate(spreads):
        _spread(s, f.at(f"spread[{i}]"))


# Cron fields as cronexpr reads them: numbers, names, ranges, steps, lists, L, W, #, ?.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-#]+$")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _cron_problem(spec: str) -> str | None:
    """A syntax check of a cron spec in cronexpr's shape (5 to 7 fields, or a macro)."""
    text = spec.strip()
    if text in _CRON_MACROS:
        return None
    fields = text.split()
    if not 5 <= len(fields) <= 7:
        return f"syntax error in cron spec: expected 5 to 7 fields, got {len(fields)}"
    for field_ in fields:
        if not _CRON_FIELD.match(field_):
            return f"syntax error in field {field_!r}"
    return None


def _periodic(job: Job, f: _Found) -> None:
    """nomad/structs/structs.go:5911 PeriodicConfig.Validate."""
    p = job.periodic
    assert p is not None
    if p.cron and p.crons:
        f.add("Only cron or crons may be used")
    if not p.cron and not p.crons:
        f.add("Must specify a spec", "cron")
    if p.time_zone:
        import zoneinfo  # only jobs with a time zone pay for the tz database loader

        try:
            zoneinfo.ZoneInfo(p.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            # Go's time.LoadLocation: "unknown time zone X" (or a path error, for a directory).
            f.add(f"Invalid time zone {go_quote(p.time_zone)}: unknown time zone {p.time_zone}",
                  "time_zone")
    if p.spec_type == "cron":
        for spec in ([p.cron] if p.cron else []) + list(p.crons):
            problem = _cron_problem(spec)
            if problem is not None:
                f.add(f"Invalid cron spec {go_quote(spec)}: {problem}", "cron")
    elif p.spec_type != "_internal_test":
        f.add(f"Unknown periodic specification type {go_quote(p.spec_type or '')}", "spec_type")


# --- placement -----------------------------------------------------------------------------------

_EQUALITY = ("=", "==", "is", "!=", "not", "<", "<=", ">", ">=")
_EXACT_TARGETS = ("${node.unique.id}", "${node.datacenter}", "${node.unique.name}",
                  "${node.class}", "${node.pool}")
_PREFIX_TARGETS = ("${attr.", "${device.", "${meta.")
# hashicorp/go-version's VersionRegexpRaw and constraint operators (go-version/constraint.go).
_VERSION = (r"v?([0-9]+(\.[0-9]+)*?)(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|"
            r"(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?(\+([0-9A-Za-z\-~]+"
            r"(\.[0-9A-Za-z\-~]+)*))??")
_VERSION_CONSTRAINT = re.compile(r"^\s*(=|!=|>|<|>=|<=|~>)?\s*(" + _VERSION + r")\s*$")
# Masterminds/semver's constraint grammar, in its permissive shape: operators, x-ranges, hyphens.
_SEMVER_PART = re.compile(r"^\s*(=|!=|>|<|>=|=>|<=|=<|~|~>|\^)?\s*v?(\d+|[xX*])(\.(\d+|[xX*]))?"
                          r"(\.(\d+|[xX*]))?(-[0-9A-Za-z\-.]+)?(\+[0-9A-Za-z\-.]+)?\s*$")


def _attribute_problem(target: str) -> str | None:
    """nomad/structs/constraint.go:34 validateConstraintAttribute."""
    if not target.startswith("$"):
        return None
    if not target.startswith("${"):
        return f"attribute {go_quote(target)} is missing an opening brace"
    if not target.endswith("}"):
        return f"attribute {go_quote(target)} is missing a closing brace"
    if target in _EXACT_TARGETS or target.startswith(_PREFIX_TARGETS):
        return None
    return f"unsupported attribute {go_quote(target)}"


@functools.lru_cache(maxsize=1024)  # pure; a job repeats its targets group by group
def _regexp_problem(pattern: str) -> str | None:
    """Go's regexp (RE2) refuses what Python's re compiles too: look-arounds, back-references."""
    if re.search(r"\(\?<?[=!]|\\[1-9]", pattern):
        return "error parsing regexp: invalid or unsupported Perl syntax"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"error parsing regexp: {exc}"
    return None


@functools.lru_cache(maxsize=1024)  # pure; a job repeats its targets group by group
def _version_problem(text: str) -> str | None:
    for part in text.split(","):
        if not _VERSION_CONSTRAINT.match(part):
            return f"Malformed constraint: {part}"
    return None


@functools.lru_cache(maxsize=1024)  # pure; a job repeats its targets group by group
def _semver_problem(text: str) -> str | None:
    for alternative in text.split("||"):
        for part in re.split(r"\s*,\s*|\s+(?![^\d\s]*\d)(?<![=<>~^!])", alternative.strip()):
            if " - " in part or not part:
                continue
            if not _SEMVER_PART.match(part):
                return f"improper constraint: {text}"
    return None


_TARGET_RULES = ("set_contains_all", "set_contains_any", "set_contains", "regexp", "version", "semver")


def _target(op: str, rtarget: str, noun: str, set_message: str) -> tuple[str, str] | None:
    """The RTarget checks constraints and affinities share (structs.go:10030, :10170): the
    problem's message and where, or None."""
    if op.startswith("set_contains"):
        return (set_message, "value") if not rtarget else None
    if op == "regexp":
        problem = _regexp_problem(rtarget)
        return None if problem is None else (f"Regular expression failed to compile: {problem}",
                                             "value")
    problem = _version_problem(rtarget) if op == "version" else _semver_problem(rtarget)
    return None if problem is None else (f"{op.capitalize()} {noun} is invalid: {problem}", "value")


def _constraints(constraints: tuple[Constraint, ...], f: _Found, *, task: bool = False) -> None:
    """Every constraint's problems, under `constraint[<i>]` (a path made only for a problem)."""
    for i, c in enumerate(constraints):
        found = _constraint_problems(c.operator or "", c.value or "", c.attribute or "")
        if task and c.operator in ("distinct_hosts", "distinct_property"):
            # nomad/structs/structs.go:8268
            found += ((f"Constraint has disallowed Operand at task level: {c.operator}",
                       "operator"),)
        if found:
            at = f.at(f"constraint[{i}]")
            for message, where in found:
                at.add(message, where)


def _constraint(c: Constraint, f: _Found) -> None:
    """nomad/structs/structs.go:10021 Constraint.Validate."""
    for message, where in _constraint_problems(c.operator or "", c.value or "", c.attribute or ""):
        f.add(message, where)


@functools.lru_cache(maxsize=4096)  # pure; a job repeats its constraints group by group
def _constraint_problems(op: str, rtarget: str, attribute: str) -> tuple[tuple[str, str], ...]:
    """nomad/structs/structs.go:10021 Constraint.Validate: each problem's message and where."""
    out: list[tuple[str, str]] = []
    if op == "":
        out.append(("Missing constraint operand", "operator"))
    require_ltarget = True
    if op == "distinct_hosts":
        require_ltarget = False
    elif op in _TARGET_RULES:
        problem = _target(op, rtarget, "constraint", "Set contains constraint requires an RTarget")
        if problem is not None:
            out.append(problem)
    elif op == "distinct_property":
        if rtarget:
            if not rtarget.isdigit() or int(rtarget) >= 2**64:
                out.append((f"Failed to convert RTarget {go_quote(rtarget)} to uint64: "
                            f"strconv.ParseUint: parsing {go_quote(rtarget)}: invalid syntax",
                            "value"))
            elif int(rtarget) < 1:
                out.append(("Distinct Property must have an allowed count of 1 or greater: "
                            f"{rtarget} < 1", "value"))
    elif op in ("is_set", "is_not_set"):
        if rtarget:
            out.append((f"Operator {go_quote(op)} does not support an RTarget", "value"))
    elif op in _EQUALITY:
        if not rtarget:
            out.append((f"Operator {go_quote(op)} requires an RTarget", "value"))
    elif op:
        out.append((f"Unknown constraint type {go_quote(op)}", "operator"))
    if require_ltarget:
        if not attribute:
            out.append(("no attribute provided but is required by operator", "attribute"))
        else:
            message = _attribute_problem(attribute)
            if message is not None:
                out.append((message, "attribute"))
    return tuple(out)


def _affinity(a: Affinity, f: _Found) -> None:
    """nomad/structs/structs.go:10161 Affinity.Validate."""
    op, rtarget = a.operator or "", a.value or ""
    if op == "":
        f.add("Missing affinity operand", "operator")
    if op in _TARGET_RULES:
        problem = _target(op, rtarget, "affinity", "Set contains operators require an RTarget")
        if problem is not None:
            f.add(*problem)
    elif op in _EQUALITY:
        if not rtarget:
            f.add(f"Operator {go_quote(op)} requires an RTarget", "value")
    else:
        f.add(f"Unknown affinity operator {go_quote(op)}", "operator")
    if not a.attribute:
        f.add("No LTarget provided but is required", "attribute")
    weight = a.weight or 0
    if weight == 0:
        f.add("Affinity weight cannot be zero", "weight")
    if not -100 <= weight <= 100:
        f.add("Affinity weight must be within the range [-100,100]", "weight")


def _spread(s: Spread, f: _Found) -> None:
    """nomad/structs/structs.go:10290 Spread.Validate."""
    if not s.attribute:
        f.add("Missing spread attribute", "attribute")
    if not 0 < (s.weight or 0) <= 100:
        f.add("Spread block must have a positive weight from 0 to 100", "weight")
    seen: set[str] = set()
    total = 0
    for t in s.targets:
        if t.value in seen:
            f.add(f"Spread target value {go_quote(t.value)} already defined", f"target[{t.value}]")
        seen.add(t.value)
        if (t.percent or 0) > 100:
            f.add(f"Spread target percentage for value {go_quote(t.value)} must be between 0 and 100",
                  f"target[{t.value}].percent")
        total += t.percent or 0
    if total > 100:
        f.add(f"Sum of spread target percentages must not be greater than 100%; got {total}%",
              "target")


# --- the group -----------------------------------------------------------------------------------


def _group(g: Group, job: Job, f: _Found, seen: _Once) -> None:
    """nomad/structs/structs.go:7111 TaskGroup.Validate(job); `seen`: the run's (`_Once`)."""
    job_type = job.type or ""
    count = g.count or 0
    if not g.name:
        f.add("Missing task group name")
    elif "\x00" in g.name:
        f.add("Task group name contains null character")
    if count < 0:
        f.add("Task group count can't be negative", "count")
    injected = _connect_tasks(g)
    if not g.tasks and not injected:
        f.add("Missing tasks for task group")
    if g.disconnect is not None:
        _disconnect(g.disconnect, job_type, f.at("disconnect"))
    if g.max_run_duration is not None:
        if g.max_run_duration <= 0:
            f.add("MaxRunDuration must be greater than zero", "max_run_duration")
        if job_type not in ("batch", "sysbatch"):
            f.add(f"Job type {go_quote(job_type)} does not allow max_run_duration", "max_run_duration")
    _constraints(g.constraints, f)
    if g.affinities:
        _affinities_and_spreads(g.affinities, (), job_type, f)
    if g.restart is not None:
        seen.block(g.restart, _restart, f, "restart")
    else:
        f.add(f"Task Group {g.name} should have a restart policy", "restart")
    if g.spreads:
        _affinities_and_spreads((), g.spreads, job_type, f)
    if job_type in ("system", "sysbatch"):
        if g.reschedule is not None:
            f.add("System or sysbatch jobs should not have a reschedule policy", "reschedule")
    elif g.reschedule is not None:
        seen.block(g.reschedule, _reschedule, f, "reschedule")
    else:
        f.add(f"Task Group {g.name} should have a reschedule policy", "reschedule")
    if g.ephemeral_disk is not None:
        if (g.ephemeral_disk.size or 0) < 10:  # structs.go:10399
            f.add(f"minimum DiskMB value is 10; got {g.ephemeral_disk.size or 0}",
                  "ephemeral_disk.size")
    else:
        f.add(f"Task Group {g.name} should have an ephemeral disk object", "ephemeral_disk")
    if g.update is not None:
        if job_type not in ("service", "system"):
            f.add(f"Job type {go_quote(job_type)} does not allow update block", "update")
        seen.block(g.update, _update, f, "update")
    if job_type == "service":
        if g.migrate is not None:
            seen.block(g.migrate, _migrate, f, "migrate")
    elif g.migrate is not None:
        f.add(f"Job type {go_quote(job_type)} does not allow migrate block", "migrate")
    tasks: dict[str, int] = {}
    leaders = mains = 0
    for i, t in enumerate(g.tasks):
        if not t.name:
            f.add(f"Task {i + 1} missing name", f"task[{i}]")
        elif t.name in tasks:
            f.add(f"Task {i + 1} redefines '{t.name}' from task {tasks[t.name] + 1}", f"task[{t.name}]")
        else:
            tasks[t.name] = i
        leaders += bool(t.leader)
        mains += t.is_main
    if leaders > 1:
        f.add("Only one task may be marked as leader")
    mains += sum(injected)
    if (g.tasks or injected) and mains == 0:
        f.add(f"Task group {g.name} must have at least one main task")
    canaries = g.update.canary or 0 if g.update is not None else 0
    for name, volume in g.volumes.items():
        _volume(volume, job_type, count, canaries, f.at(f"volume[{name}]"))
    _group_networks(g, f)
    _group_services(g, f)
    for i, s in enumerate(g.services):
        if not s.task:
            for j, check in enumerate(s.checks):
                if check.type == "script" and not check.task:
                    f.add(f"Service [{g.name}]->{s.name} or Check {check.name} must specify task "
                          "parameter",
                          f"service[{i}].check[{j}].task")
    if g.scaling is not None:
        _scaling(g, job, f.at("scaling"))
    for i, t in enumerate(g.tasks):
        _task(t, job_type, g, f.at(f"task[{t.name or i}]"), seen)


def _connect_tasks(g: Group) -> list[bool]:
    """The tasks nomad/job_endpoint_hook_connect.go:274 groupConnectHook adds before validation, as
    "is it a main task": a prestart sidecar per Connect sidecar service without its
    `connect-proxy:<service>` task, a main gateway task per gateway without its task."""
    kinds = {t.kind for t in g.tasks if t.kind}
    out = []
    for s in g.services:
        if s.connect is None:
            continue
        if s.connect.sidecar_service is not None and f"connect-proxy:{s.name}" not in kinds:
            out.append(False)
        elif s.connect.gateway is not None and not any(
                k.startswith("connect-") and k.endswith(f":{s.name}") for k in kinds):
            out.append(True)
    return out


def _disconnect(d: Disconnect, job_type: str, f: _Found) -> None:
    """nomad/structs/group.go:66 DisconnectStrategy.Validate."""
    if d.stop_on_client_after is not None:
        if d.stop_on_client_after < 0:
            f.add("stop_after cannot be a negative duration", "stop_on_client_after")
        if job_type not in ("service", "batch"):
            f.add("stop_after can only be used with service or batch job types", "stop_on_client_after")
    if (d.lost_after or 0) < 0:
        f.add("lost_after cannot be a negative duration", "lost_after")
    if d.stop_on_client_after is not None and d.lost_after:
        f.add("Disconnect cannot be configured with both lost_after and stop_after")
    if (d.reconcile or "") not in ("", "best_score", "longest_running", "keep_original",
                                   "keep_replacement"):
        f.add(f"reconcile option is invalid: {d.reconcile}", "reconcile")


def _restart(r: RestartPolicy, f: _Found) -> None:
    """nomad/structs/structs.go:6565 RestartPolicy.Validate."""
    mode, attempts = r.mode or "", r.attempts or 0
    interval, delay = r.interval or 0, r.delay or 0
    if mode not in ("delay", "fail"):
        f.add(f"Unsupported restart mode: {go_quote(mode)}", "mode")
    if attempts == 0 and mode != "fail":
        f.add(f"Restart policy {go_quote(mode)} with {attempts} attempts is ambiguous", "attempts")
    if interval < 5 * SECOND:
        f.add(f"Interval can not be less than 5s (got {go_duration(interval)})", "interval")
    if attempts * delay > interval:
        f.add(f"Nomad can't restart the TaskGroup {attempts} times in an interval of "
              f"{go_duration(interval)} with a delay of {go_duration(delay)}")


_DELAY_FUNCTIONS = ("constant", "exponential", "fibonacci")


def _reschedule(r: ReschedulePolicy, f: _Found) -> None:
    """nomad/structs/structs.go:6647 ReschedulePolicy.Validate."""
    attempts, unlimited = r.attempts or 0, bool(r.unlimited)
    if not (attempts > 0 or unlimited):
        return
    interval, delay, max_delay = r.interval or 0, r.delay or 0, r.max_delay or 0
    function = r.delay_function or ""
    if attempts > 0:
        if interval <= 0:
            f.add("Interval must be a non zero value if Attempts > 0", "interval")
        if unlimited:
            f.add(f"Reschedule Policy with Attempts = {attempts}, Interval = {go_duration(interval)}, "
                  f"and Unlimited = true is ambiguous")
            f.add("If Attempts >0, Unlimited cannot also be set to true", "unlimited")
    pre_check = True
    if delay < 5 * SECOND:
        f.add(f"Delay cannot be less than 5s (got {go_duration(delay)})", "delay")
        pre_check = False
    if function not in _DELAY_FUNCTIONS:
        f.add(f"Invalid delay function {go_quote(function)}, must be one of "
              '["constant" "exponential" "fibonacci"]', "delay_function")
        pre_check = False
    if function != "constant":
        if max_delay < 5 * SECOND:
            f.add(f"Max Delay cannot be less than 5s (got {go_duration(delay)})", "max_delay")
            pre_check = False
        if max_delay < delay:
            f.add(f"Max Delay cannot be less than Delay {go_duration(delay)} "
                  f"(got {go_duration(max_delay)})", "max_delay")
            pre_check = False
    if not unlimited:
        if interval < 15 * SECOND:
            f.add(f"Interval cannot be less than 15s (got {go_duration(interval)})", "interval")
        if pre_check:
            _reschedule_delays(attempts, interval, delay, max_delay, function, f)


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
# Nomad's fibonacci check builds one delay per attempt (structs.go:6761-6778): past this many
# steps that cannot be followed exactly, it is refused by nomadmesh instead (Nomad would allocate
# one 8-byte duration per attempt, gigabytes for the attempts that get here).
FIBONACCI_STEPS_MAX = 100_000


def _i64(value: int) -> int:
    """`value` as Go's int64 arithmetic leaves it: wrapped, two's complement."""
    return (value + 2**63) % 2**64 - 2**63


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncated toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _go_round_second(d: int) -> int:
    """time.Duration.Round(time.Second) (go/src/time/time.go Round): half away from zero,
    saturating on overflow."""
    m = SECOND
    r = abs(d) % m  # Go's d % m, made non-negative as Round does for d < 0
    half = r + r < m
    if d < 0:
        if half:
            return d + r
        d1 = _i64(d - m + r)
        return d1 if d1 < d else _I64_MIN
    if half:
        return d - r
    d1 = _i64(d + m - r)
    return d1 if d1 > d else _I64_MAX


def _reschedule_delays(attempts: int, interval: int, delay: int, max_delay: int, function: str,
                       f: _Found) -> None:
    """nomad/structs/structs.go:6716 validateDelayParams and :6733 viableAttempts, with Go's
    int64 arithmetic (a product or sum that overflows wraps), in bounded time for any attempts:
    Nomad loops once per attempt, so the repeating part is counted instead of walked."""
    possible, recommended, valid = 0, 0, True
    if function == "constant":
        recommended = _i64(attempts * delay)
        if interval < recommended:
            possible, valid = _go_div(interval, delay), False
    elif function == "exponential":
        # time.Duration(math.Pow(2, i)): exact up to 2**62; from i = 63 the float is out of
        # int64's range and amd64's conversion gives the minimum int64 (Go's spec leaves the
        # value to the implementation; Nomad's servers are built for amd64 first).
        for i in range(min(attempts, 63)):
            next_delay = _i64((1 << i) * delay)
            recommended = _i64(recommended + max_delay) if next_delay > max_delay else next_delay
            if recommended < interval:
                possible += 1
        if attempts > 63:
            # Every later step: next_delay is min int64 times delay (0 or min int64), never above
            # max_delay (at least 5s here), so the interval recommended is that value each time.
            recommended = _i64(_I64_MIN * delay)
            if recommended < interval:
                possible += attempts - 63
        valid = possible >= attempts
    else:
        outcome = _fibonacci(attempts, interval, delay, max_delay)
        if outcome is None:
            f.add(f"nomadmesh: {attempts} attempts with delay function \"fibonacci\" are too many "
                  f"to check as Nomad does (it builds one delay per attempt)", "attempts")
            return
        possible, recommended, valid = outcome
    if valid:
        return
    possible = max(possible, 0)
    if function == "constant":
        f.add(f"Nomad can only make {possible} attempts in {go_duration(interval)} with initial delay "
              f"{go_duration(delay)} and delay function {go_quote(function)}")
    else:
        f.add(f"Nomad can only make {possible} attempts in {go_duration(interval)} with initial delay "
              f"{go_duration(delay)}, delay function {go_quote(function)}, and delay ceiling "
              f"{go_duration(max_delay)}")
    f.add(f"Set the interval to at least {go_duration(_go_round_second(recommended))} to "
          f"accommodate {attempts} attempts", "interval")


def _fibonacci(attempts: int, interval: int, delay: int,
               max_delay: int) -> tuple[int, int, bool] | None:
    """viableAttempts' fibonacci case (structs.go:6760-6789): (possible, recommended, valid), or
    None when it cannot be followed in FIBONACCI_STEPS_MAX steps.

    Nomad's slots are delay, delay, then sums of the last two until one exceeds max_delay (that
    slot is max_delay), then each the last plus max_delay. From the ceiling at slot k the slots
    are (j + 1) * max_delay for j = 0, 1, ... (int64 arithmetic), so only the slots before it and
    the wrapped part of the progression need walking."""
    count = max(attempts, 2)  # the slots Nomad builds: two, then one per attempt from the third
    slots = [delay, delay]
    ceiling = -1  # the index of the slot that reached max_delay
    while len(slots) < count:
        if len(slots) > FIBONACCI_STEPS_MAX:
            return None
        next_delay = _i64(slots[-1] + slots[-2])
        if next_delay > max_delay:
            ceiling = len(slots)
            slots.append(max_delay)
            break
        slots.append(next_delay)

    def slot(k: int) -> int:
        return slots[k] if ceiling < 0 or k <= ceiling else _i64((k - ceiling + 1) * max_delay)

    recommended = slot(count - 1)
    if interval >= recommended:
        return 0, recommended, True
    for k, value in enumerate(slots):  # Nomad: the index of the first slot above the interval
        if value > interval:
            return k, recommended, False
    # The first slot of the progression (j + 1) * max_delay above the interval, j >= 1.
    if ceiling >= 0:
        j = interval // max_delay  # (j + 1) * max_delay > interval >= j * max_delay, unwrapped
        if (j + 1) * max_delay <= _I64_MAX:
            if ceiling + j < count:
                return ceiling + j, recommended, False
        else:
            start = len(slots)
            for k in range(start, min(count, start + FIBONACCI_STEPS_MAX)):
                if slot(k) > interval:
                    return k, recommended, False
            if count > start + FIBONACCI_STEPS_MAX:
                return None
    return 0, recommended, False


def _update(u: UpdateStrategy, f: _Found) -> None:
    """nomad/structs/structs.go:5464 UpdateStrategy.Validate."""
    mht, hd, pd = u.min_healthy_time or 0, u.healthy_deadline or 0, u.progress_deadline or 0
    if (u.health_check or "") not in ("checks", "task_states", "manual"):
        f.add(f"Invalid health check given: {go_quote(u.health_check or '')}", "health_check")
    if (u.max_parallel or 0) < 0:
        f.add(f"Max parallel can not be less than zero: {u.max_parallel} < 0", "max_parallel")
    if (u.canary or 0) < 0:
        f.add(f"Canary count can not be less than zero: {u.canary} < 0", "canary")
    if not u.canary and u.auto_promote:
        f.add("Auto Promote requires a Canary count greater than zero", "auto_promote")
    if mht < 0:
        f.add(f"Minimum healthy time may not be less than zero: {go_duration(mht)}", "min_healthy_time")
    if hd <= 0:
        f.add(f"Healthy deadline must be greater than zero: {go_duration(hd)}", "healthy_deadline")
    if pd < 0:
        f.add(f"Progress deadline must be zero or greater: {go_duration(pd)}", "progress_deadline")
    if mht >= hd:
        f.add(f"Minimum healthy time must be less than healthy deadline: {go_duration(mht)} > "
              f"{go_duration(hd)}", "min_healthy_time")
    if pd != 0 and hd >= pd:
        f.add(f"Healthy deadline must be less than progress deadline: {go_duration(hd)} > "
              f"{go_duration(pd)}", "healthy_deadline")
    if (u.stagger or 0) <= 0:
        f.add(f"Stagger must be greater than zero: {go_duration(u.stagger or 0)}", "stagger")


def _migrate(m: MigrateStrategy, f: _Found) -> None:
    """nomad/structs/structs.go:6836 MigrateStrategy.Validate."""
    max_parallel = m.max_parallel or 0
    mht, hd = m.min_healthy_time or 0, m.healthy_deadline or 0
    if max_parallel < 0:
        f.add(f"MaxParallel must be >= 0 but found {max_parallel}", "max_parallel")
    check = m.health_check or ""
    if check == "":
        if max_parallel > 0:
            f.add("Missing HealthCheck", "health_check")
    elif check not in ("checks", "task_states"):
        f.add(f"Invalid HealthCheck: {go_quote(check)}", "health_check")
    if mht < 0:
        f.add(f"MinHealthyTime is {go_duration(mht)} and must be >= 0", "min_healthy_time")
    if hd < 0:
        f.add(f"HealthyDeadline is {go_duration(hd)} and must be >= 0", "healthy_deadline")
    if mht > hd:
        f.add("MinHealthyTime must be less than HealthyDeadline", "min_healthy_time")


_HOST_ACCESS = ("single-node-reader-only", "single-node-writer", "single-node-single-writer",
                "single-node-multi-writer", "")


def _volume(v: Any, job_type: str, count: int, canaries: int, f: _Found) -> None:
    """nomad/structs/volumes.go:147 VolumeRequest.Validate."""
    kind = v.type or ""
    if kind not in ("host", "csi"):
        f.add(f"volume has unrecognized type {kind}", "type")
        return
    mode, read_only, per_alloc = v.access_mode or "", bool(v.read_only), bool(v.per_alloc)
    if not v.source:
        f.add("volume has an empty source", "source")
    if per_alloc:
        if job_type in ("system", "sysbatch"):
            f.add("volume cannot be per_alloc for system or sysbatch jobs", "per_alloc")
        if canaries > 0:
            f.add("volume cannot be per_alloc when canaries are in use", "per_alloc")
        if v.sticky:
            f.add("volume cannot be per_alloc and sticky at the same time", "per_alloc")
    if kind == "host":
        if v.mount_options is not None:
            f.add("host volumes cannot have mount options", "mount_options")
        if mode == "single-node-reader-only" and not read_only:
            f.add(f"{mode} volumes must be read-only", "read_only")
        elif mode not in _HOST_ACCESS:
            f.add(f"host volumes cannot be mounted with {mode} access mode", "access_mode")
        return
    attachment = v.attachment_mode or ""
    if attachment == "":
        f.add("CSI volumes must have an attachment mode", "attachment_mode")
    elif attachment == "block-device" and v.mount_options is not None:
        f.add("block devices cannot have mount options", "mount_options")
    if mode == "":
        f.add("CSI volumes must have an access mode", "access_mode")
    elif mode == "single-node-reader-only":
        if not read_only:
            f.add(f"{mode} volumes must be read-only", "read_only")
        if count > 1 and not per_alloc:
            f.add(f"volume with {mode} access mode allows only one reader", "access_mode")
    elif mode == "single-node-writer":
        if count > 1 and not per_alloc:
            f.add(f"volume with {mode} access mode allows only one reader or writer", "access_mode")
    elif mode == "multi-node-reader-only":
        if not read_only:
            f.add(f"{mode} volumes must be read-only", "read_only")
    elif mode == "multi-node-single-writer" and not read_only and count > 1 and not per_alloc:
        f.add(f"volume with {mode} access mode allows only one writer", "access_mode")


def _is_dns_name(name: str) -> bool:
    """miekg/dns IsDomainName: labels of at most 63 octets, 255 in all."""
    if name in (".", ""):
        return name == "."
    labels = name.rstrip(".").split(".")
    return len(name) <= 255 and all(0 < len(label.encode(errors="surrogatepass")) <= 63 for label in labels) \
        and "\\" not in name


def _group_networks(g: Group, f: _Found) -> None:
    """nomad/structs/structs.go:7314 TaskGroup.validateNetworks."""
    labels: dict[str, str] = {}
    statics: dict[str, dict[int, str]] = {}
    cni_keys: set[str] = set()
    for i, net in enumerate(g.networks):
        where = f.at(f"network[{i}]") if len(g.networks) > 1 else f.at("network")
        for p in net.ports:
            at = f"port[{p.label}]"
            if p.label in labels:
                where.add(f"Port label {p.label} already in use by {labels[p.label]}", at)
            else:
                labels[p.label] = "taskgroup network"
            if p.static:
                index = statics.setdefault(p.host_network or "default", {})
                if p.static in index:
                    if not p.ignore_collision:
                        where.add(f"Static port {p.static} already reserved by {index[p.static]}",
                                  f"{at}.static")
                elif p.static > 65535:
                    where.add(f"Port {p.label} ({p.static}) cannot be greater than 65535", f"{at}.static")
                else:
                    index[p.static] = f"taskgroup network:{p.label}"
            to = p.to or 0
            if to < -1:
                where.add(f"Port {go_quote(p.label)} cannot be mapped to negative value {to}", f"{at}.to")
            elif to > 65535:
                where.add(f"Port {go_quote(p.label)} cannot be mapped to a port ({to}) greater than "
                          "65535", f"{at}.to")
            if p.ignore_collision and (net.mode or "") not in ("", "host"):
                where.add(f"Port {go_quote(p.label)} collision may not be ignored on non-host network "
                          f"mode {go_quote(net.mode or '')}", f"{at}.ignore_collision")
        if net.cni is not None:
            for k, v in net.cni.args.items():
                if k in cni_keys:
                    where.add(f"duplicate CNI arg {go_quote(k)}", f"cni.args.{k}")
                cni_keys.add(k)
                if ";" in k:
                    where.add(f"invalid ';' character in CNI arg key {go_quote(k)}", f"cni.args.{k}")
                if ";" in v:
                    where.add(f"invalid ';' character in CNI arg value {go_quote(v)}", f"cni.args.{k}")
        if net.hostname and "${" not in net.hostname and not _is_dns_name(net.hostname):
            where.add("Hostname is not a valid DNS name", "hostname")
    for t in g.tasks:
        if t.resources is None:
            continue
        for net in t.resources.networks:
            for p in net.ports:
                at = f"task[{t.name}].resources.network.port[{p.label}]"
                if p.label in labels:
                    f.add(f"Port label {p.label} already in use by {labels[p.label]}", at)
                if p.static:
                    index = statics.setdefault(p.host_network or "default", {})
                    if p.static in index:
                        f.add(f"Static port {p.static} already reserved by {index[p.static]}", at)
                    elif p.static > 65535:
                        f.add(f"Port {p.label} ({p.static}) cannot be greater than 65535", at)
                    else:
                        index[p.static] = f"{t.name}:{p.label}"


def _group_services(g: Group, f: _Found) -> None:
    """nomad/structs/structs.go:7443 TaskGroup.validateServices."""
    tasks = {t.name for t in g.tasks}
    ids: set[tuple[str, str, str]] = set()
    duplicates: list[tuple[str, str, str]] = []
    providers: set[str] = set()
    for t in g.tasks:
        for i, s in enumerate(t.services):
            at = f"task[{t.name}].service[{i}]"
            if s.task and s.task != t.name:
                f.add(f"Service {s.name} is invalid: may only specify task the service belongs to, "
                      f"got {go_quote(s.task)}", f"{at}.task")
            for j, c in enumerate(s.checks):
                if c.task and c.task != t.name:
                    f.add(f"Check {c.name} is invalid: may only specify task the check belongs to, "
                          f"got {go_quote(c.task)}", f"{at}.check[{j}].task")
            key = (s.name or "", t.name, s.port or "")
            if key in ids and key not in duplicates:
                duplicates.append(key)
            ids.add(key)
            providers.add(s.provider or "")
    for i, s in enumerate(g.services):
        where = f.at(f"service[{i}]")
        key = (s.name or "", "group", s.port or "")
        if key in ids and key not in duplicates:
            duplicates.append(key)
        ids.add(key)
        providers.add(s.provider or "")
        before = len(f.out)
        _service(s, where)
        if len(f.out) > before:
            continue
        if s.address_mode == "driver":
            where.add(f"service {go_quote(s.name or '')} cannot use address_mode=\"driver\", only "
                      'services defined in a "task" block can use this mode', "address_mode")
        for j, c in enumerate(s.checks):
            if c.task:
                if c.address_mode == "driver":
                    where.add(f"Check {go_quote(s.name or '')} invalid: cannot use "
                              'address_mode="driver", only checks defined in a "task" service block '
                              "can use this mode", f"check[{j}].address_mode")
                if c.task not in tasks:
                    where.add(f"Check {c.name} invalid: refers to non-existent task {c.task}",
                              f"check[{j}].task")
    if duplicates:
        names = ", ".join(f"{task}->{name}" + (f":{port}" if port else "")
                          for name, task, port in sorted(duplicates, key=lambda d: (d[1], d[0], d[2])))
        f.add(f"Services are not unique: {names}", "service")
    if len(providers) > 1:
        f.add("Multiple service providers used: task group services must use the same provider",
              "service")


def _scaling(g: Group, job: Job, f: _Found) -> None:
    """nomad/structs/structs.go:7594 validateScalingPolicy and :6427 ScalingPolicy.Validate."""
    s = g.scaling
    assert s is not None
    low, high, count = s.min or 0, s.max or 0, g.count or 0
    if not s.type:
        f.add("Scaling policy invalid: missing scaling policy type", "type")
    elif s.type != "horizontal":
        f.add(f'Scaling policy invalid: scaling policy type "{s.type}" is not valid', "type")
    if high < 0:
        f.add("Scaling policy invalid: maximum count must be specified and non-negative", "max")
    elif high < low:
        f.add("Scaling policy invalid: maximum count must not be less than minimum count", "max")
    if low < 0:
        f.add("Scaling policy invalid: minimum count must be specified and non-negative", "min")
    if high < count:
        f.add("Scaling policy invalid: task group count must not be greater than maximum count in "
              "scaling policy", "max")
    if count < low and not (_multiregion(job) and count == 0 and job.region == "global"):
        f.add("Scaling policy invalid: task group count must not be less than minimum count in "
              "scaling policy", "min")


# --- services and checks ---------------------------------------------------------------------------

_SERVICE_NAME = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
_ENV = re.compile(r"\$\{[^}]*\}")
_ADDRESS_MODES = ("host", "driver", "alloc", "alloc_ipv6")
_SERVICE_KINDS = ("", "api-gateway", "ingress-gateway", "mesh-gateway", "terminating-gateway")
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE")


def _service(s: Service, f: _Found) -> None:
    """nomad/structs/services.go:761 Service.Validate."""
    name = s.name or ""
    if not _SERVICE_NAME.match(_ENV.sub("ENV-VAR", name) if "${" in name else name):
        f.add("Service name must be valid per RFC 1123 and can contain only alphanumeric characters "
              f"or dashes and must be no longer than 63 characters: {go_quote(name)}", "name")
    mode = s.address_mode or ""
    if mode in _ADDRESS_MODES:
        if s.address:
            f.add('Service address_mode must be "auto" if address is set', "address_mode")
    elif mode not in ("", "auto"):
        f.add(f'Service address_mode must be "auto", "host", or "driver"; not {go_quote(mode)}',
              "address_mode")
    if (s.on_update or "") not in ("", "ignore", "require_healthy", "ignore_warnings"):
        f.add('Service on_update must be "require_healthy", "ignore_warnings", or "ignore"; not '
              f"{go_quote(s.on_update or '')}", "on_update")
    provider = s.provider or ""
    if provider == "consul":
        _consul_service(s, f)
    elif provider == "nomad":
        _nomad_service(s, f)
    else:
        f.add(f'Service provider must be "consul", or "nomad"; not {go_quote(provider)}', "provider")
    if s.identity is not None and not s.identity.aud:
        f.add("Service identity must provide at least one target aud value", "identity.aud")


def _check_needs_port(c: Check) -> bool:
    """nomad/structs/services.go:463 ServiceCheck.RequiresPort."""
    return c.type in ("grpc", "http", "tcp")


def _consul_service(s: Service, f: _Found) -> None:
    """nomad/structs/services.go:852 validateConsulService."""
    for j, c in enumerate(s.checks):
        where = f.at(f"check[{j}]")
        if not s.port and not c.port and _check_needs_port(c):
            where.add(f"Check {c.name} invalid: check requires a port but neither check nor service "
                      f"{go_quote(s.name or '')} have a port", "port")
            continue
        if c.type == "tcp" and s.connect is not None and s.connect.sidecar_service is not None:
            where.add(f"Check {c.name} invalid: tcp checks are not valid for Connect enabled services",
                      "type")
            continue
        problem = _check_common(c, ("grpc", "tcp", "http", "script")) or _check_consul(c)
        if problem is not None:
            where.add(f"Check {c.name} invalid: {problem[0]}", problem[1])
    if (s.kind or "") not in _SERVICE_KINDS:
        f.add(f"Service {s.name} kind must be one of consul service kind or empty", "kind")
    if s.connect is not None:
        _connect(s.connect, f.at("connect"))
        if s.connect.native and not s.task:
            # The Connect hook infers the task of a one-task group first (server._native_task).
            f.add(f"Service {s.name} is Connect Native and requires setting the task", "task")
        if s.connect.native and not s.port:
            f.add(f"Service {s.name} is Connect Native and requires setting the port", "port")


def _nomad_service(s: Service, f: _Found) -> None:
    """nomad/structs/services.go:907 validateNomadService."""
    for j, c in enumerate(s.checks):
        where = f.at(f"check[{j}]")
        if not s.port and not c.port and _check_needs_port(c):
            where.add(f"Check {c.name} invalid: check requires a port but neither check nor service "
                      f"{go_quote(s.name or '')} have a port", "port")
            continue
        problem = _check_common(c, ("tcp", "http")) or _check_nomad(c)
        if problem is not None:
            where.add(problem[0], problem[1])
    if s.connect is not None:
        f.add("Service with provider nomad cannot include Connect blocks", "connect")


_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # a scheme: not a relative path


def _check_common(c: Check, allowed: tuple[str, ...]) -> tuple[str, str] | None:
    """nomad/structs/services.go:257 ServiceCheck.validateCommon: the first problem, as Go returns."""
    kind = (c.type or "").lower()
    if kind not in allowed:
        return f"invalid check type ({go_quote(kind)}), must be one of {', '.join(allowed)}", "type"
    if kind == "http":
        if not c.path:
            return "http type must have http path", "path"
        if _ABSOLUTE_URL.match(c.path):
            return "http type must have relative http path", "path"
    if kind == "script" and not c.command:
        return "script type must have a valid script path", "command"
    interval, timeout = c.interval or 0, c.timeout or 0
    if interval == 0:
        return "missing required value interval. Interval cannot be less than 1s", "interval"
    if interval < SECOND:
        return f"interval ({go_duration(interval)}) cannot be lower than 1s", "interval"
    if timeout == 0:
        return "missing required value timeout. Timeout cannot be less than 1s", "timeout"
    if timeout < SECOND:
        return f"timeout ({go_duration(timeout)}) is lower than required minimum timeout 1s", "timeout"
    if (c.initial_status or "") not in ("", "passing", "warning", "critical"):
        return (f"invalid initial check state ({c.initial_status}), must be one of \"passing\", "
                '"warning", "critical" or empty', "initial_status")
    mode = c.address_mode or ""
    if mode == "auto":
        return 'invalid address_mode "auto" - auto only valid for services', "address_mode"
    if mode not in ("", *_ADDRESS_MODES):
        return f"invalid address_mode {go_quote(mode)}", "address_mode"
    on_update = c.on_update or ""
    if on_update not in ("", "ignore", "require_healthy", "ignore_warnings"):
        return ('on_update must be "require_healthy", "ignore_warnings", or "ignore"; got '
                f"{go_quote(on_update)}", "on_update")
    restart = c.check_restart
    if restart is not None:
        if on_update == "ignore":
            return 'on_update value "ignore" is not compatible with check_restart', "on_update"
        if not restart.ignore_warnings and on_update == "ignore_warnings":
            return ('on_update value "ignore_warnings" not supported with check_restart '
                    'ignore_warnings value "false"', "on_update")
        if (restart.limit or 0) < 0:
            return f"limit must be greater than or equal to 0 but found {restart.limit}", \
                "check_restart.limit"
        if (restart.grace or 0) < 0:
            return f"grace period must be greater than or equal to 0 but found {restart.grace}", \
                "check_restart.grace"
    return None


def _check_consul(c: Check) -> tuple[str, str] | None:
    """nomad/structs/services.go:412 ServiceCheck.validateConsul (after validateCommon)."""
    kind = (c.type or "").lower()
    if c.expose and kind not in ("grpc", "http"):
        return "expose may only be set on HTTP or gRPC checks", "expose"
    for name, value in (("success_before_passing", c.success_before_passing),
                        ("failures_before_critical", c.failures_before_critical),
                        ("failures_before_warning", c.failures_before_warning)):
        if (value or 0) < 0:
            return f"{name} must be non-negative", name
        if (value or 0) > 0 and c.type not in ("tcp", "http", "grpc"):
            return f"{name} not supported for check of type {go_quote(c.type or '')}", name
    if len(c.notes or "") > 255:
        return "notes must not be longer than 255 characters", "notes"
    return None


def _check_nomad(c: Check) -> tuple[str, str] | None:
    """nomad/structs/services.go:351 ServiceCheck.validateNomad (after validateCommon)."""
    if c.expose:
        return "expose may only be set for Consul service checks", "expose"
    if c.on_update == "ignore_warnings":
        return "on_update may only be set to ignore_warnings for Consul service checks", "on_update"
    if c.check_restart is not None and c.check_restart.ignore_warnings:
        return "ignore_warnings on check_restart only supported for Consul service checks", \
            "check_restart.ignore_warnings"
    if c.address_mode == "driver":
        return "address_mode = driver may only be set for Consul service checks", "address_mode"
    if c.type == "http" and c.method and c.method not in _HTTP_METHODS:
        return f"method type {go_quote(c.method)} not supported in Nomad http check", "method"
    for name in ("success_before_passing", "failures_before_critical", "failures_before_warning",
                 "tls_server_name"):
        if getattr(c, name):
            return f"{name} may only be set for Consul service checks", name
    return None


def _connect(c: Any, f: _Found) -> None:
    """nomad/structs/services.go:1334 ConsulConnect.Validate (gateway internals not checked)."""
    count = 0
    if c.sidecar_service is not None:
        proxy = c.sidecar_service.proxy
        if proxy is not None and proxy.transparent_proxy is not None:
            _transparent_proxy(proxy.transparent_proxy, f.at("sidecar_service.proxy.transparent_proxy"))
        count += 1
    count += bool(c.native) + (c.gateway is not None)
    if count != 1:
        f.add("Consul Connect must be exclusively native, make use of a sidecar, or represent a Gateway")


def _transparent_proxy(tp: Any, f: _Found) -> None:
    """nomad/structs/connect.go:117 ConsulTransparentProxy.Validate."""
    for cidr in tp.exclude_outbound_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
            if "/" not in cidr:
                raise ValueError(cidr)
        except ValueError:
            f.add("could not parse transparent proxy excluded outbound CIDR as network prefix: "
                  f"netip.ParsePrefix({go_quote(cidr)}): no '/'" if "/" not in cidr else
                  "could not parse transparent proxy excluded outbound CIDR as network prefix: "
                  f"netip.ParsePrefix({go_quote(cidr)}): bad prefix", "exclude_outbound_cidrs")
    for uid in ([tp.uid] if tp.uid else []) + list(tp.exclude_uids):
        if not (uid.isdigit() and int(uid) <= 65535):
            reason = "value out of range" if uid.isdigit() else "invalid syntax"
            f.add(f"transparent proxy block has invalid UID field: invalid user ID {go_quote(uid)}: "
                  f"{reason}", "uid")
    for port in tp.exclude_inbound_ports:
        if not (port.isdigit() and int(port) <= 65535):
            f.add(f"transparent proxy block has invalid ExcludeInboundPorts value {go_quote(port)}",
                  "exclude_inbound_ports")


# --- the task ------------------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"^[a-zA-Z0-9_]{1,128}$")
_IDENTITY_NAME = re.compile(r"^[a-zA-Z0-9-_]{1,128}$")
_ACTION_NAME = re.compile(r"^[^\x00\s]{1,128}$")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_CHECKSUM_LENGTHS = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


def _escapes(prefix: str, path: str) -> bool:
    """helper/escapingfs/escapes.go:62 PathEscapesAllocViaRelative (filepath.Join joins an absolute
    path as a relative one)."""
    if ".." not in path:
        return False  # joined under the allocation and cleaned, it cannot climb out of it
    alloc = "/alloc-dir/alloc-id"
    full = posixpath.normpath("/".join((alloc, prefix, path)))
    return posixpath.relpath(full, alloc).startswith("..")


def _task(t: Task, job_type: str, g: Group, f: _Found, seen: _Once) -> None:
    """nomad/structs/structs.go:8202 Task.Validate(jobType, tg); `seen`: the run's (`_Once`)."""
    if not t.name:
        f.add("Missing task name")
    if t.name == "alloc":
        f.add('Task cannot be named "alloc"')
    if "/" in t.name or "\\" in t.name:
        f.add("Task name cannot include slashes")
    elif "\x00" in t.name:
        f.add("Task name cannot include null characters")
    if not t.driver:
        f.add("Missing task driver", "driver")
    kill_timeout = t.kill_timeout or 0
    if kill_timeout < 0:
        f.add("KillTimeout must be a positive value", "kill_timeout")
    elif (job_type == "service" and g.update is not None and (g.update.progress_deadline or 0) > 0
          and kill_timeout > (g.update.progress_deadline or 0)):
        f.add(f"KillTimout ({go_duration(kill_timeout)}) longer than the group's ProgressDeadline "
              f"({go_duration(g.update.progress_deadline or 0)})", "kill_timeout")
    if (t.shutdown_delay or 0) < 0:
        f.add("ShutdownDelay must be a positive value", "shutdown_delay")
    if t.resources is None:
        f.add("Missing task resources", "resources")
    else:
        seen.block(t.resources, _resources, f, "resources")
    if t.logs is None:
        f.add("Missing Log Config", "logs")
    else:
        # LogConfig.Validate reads the group's disk only.
        disk = g.ephemeral_disk
        seen.run((id(t.logs), id(disk)), (t.logs, disk), _logs, (t.logs, disk), f, "logs")
    if t.constraints:
        _constraints(t.constraints, f, task=True)
    if t.affinities:
        _affinities_and_spreads(t.affinities, (), job_type, f)
    if t.services:
        _task_services(t, g, f)
    for i, a in enumerate(t.artifacts):
        _artifact(a, f.at(f"artifact[{i}]"))
    if t.vault is not None:
        mode = t.vault.change_mode or ""
        if mode == "signal":
            if not t.vault.change_signal:
                f.add('Vault validation failed: Signal must be specified when using change mode '
                      '"signal"', "vault.change_signal")
        elif mode not in ("noop", "restart"):
            f.add(f"Vault validation failed: Unknown change mode {go_quote(mode)}", "vault.change_mode")
    destinations: dict[str, int] = {}
    for i, tmpl in enumerate(t.templates):
        seen.block(tmpl, _template, f, f"template[{i}]")
        dest = tmpl.destination or ""
        if dest in destinations:
            f.add(f"Template {i + 1} has same destination as {destinations[dest]}",
                  f"template[{i}].destination")
        else:
            destinations[dest] = i + 1
    reported: dict[str, bool] = {}
    for action in t.actions:
        at = f.at(f"action[{action.name}]")
        if not action.command:
            at.add(f"Action {action.name} validation failed: command cannot be empty", "command")
        if not _ACTION_NAME.match(action.name):
            at.add(f"Action {action.name} validation failed: invalid name '{action.name}'")
        if action.name in reported and not reported[action.name]:
            at.add(f"Action {action.name} defined multiple times")
            reported[action.name] = True
            continue
        reported[action.name] = False
    if t.dispatch_payload is not None and _escapes("task/local/", t.dispatch_payload.file or ""):
        f.add("Dispatch Payload validation failed: destination escapes allocation directory",
              "dispatch_payload.file")
    if t.lifecycle is not None:
        hook = t.lifecycle.hook or ""
        if hook == "":
            f.add("Lifecycle validation failed: no lifecycle hook provided", "lifecycle.hook")
        elif hook not in ("prestart", "poststart", "poststop"):
            f.add(f"Lifecycle validation failed: invalid hook: {hook}", "lifecycle.hook")
    kind = t.kind or ""
    if kind.startswith("connect-proxy:") and len(kind) > len("connect-proxy:"):
        if t.services:
            f.add("Connect proxy task must not have a service block", "service")
        if t.leader:
            f.add("Connect proxy task must not have leader set", "leader")
        _connect_proxy_service(kind.split(":", 1)[1], g, f)
    for i, vm in enumerate(t.volume_mounts):
        mount = f"volume_mount[{i}]"
        if (vm.volume or "") not in g.volumes:
            f.add(f"Volume Mount ({i}) references undefined volume {vm.volume or ''}", f"{mount}.volume")
        if not vm.volume:
            f.add(f'Volume Mount ({i}) is invalid: "volume mount references an empty volume"',
                  f"{mount}.volume")
        if (vm.propagation_mode or "") not in ("", "private", "host-to-task", "bidirectional"):
            f.add(f'Volume Mount ({i}) is invalid: "volume mount has an invalid propagation mode: '
                  f'{go_quote(vm.propagation_mode or "")}"', f"{mount}.propagation_mode")
        if (vm.selinux_label or "") not in ("", "z", "Z"):
            f.add(f'Volume Mount ({i}) is invalid: "volume mount has an invalid SELinux label: '
                  f'"{vm.selinux_label}""', f"{mount}.selinux_label")
    plugin = t.csi_plugin
    if plugin is not None:
        if not plugin.id:
            f.add("CSIPluginConfig must have a non-empty PluginID", "csi_plugin.id")
        if plugin.type not in ("node", "controller", "monolith"):
            f.add("CSIPluginConfig PluginType must be one of 'node', 'controller', or 'monolith', "
                  f'got: "{plugin.type or ""}"', "csi_plugin.type")
        stage, mount = plugin.stage_publish_base_dir or "", plugin.mount_dir or ""
        if stage and mount and _is_subdirectory(mount, stage):
            f.add("CSIPluginConfig StagePublishBaseDir must not be a subdirectory of MountDir, got: "
                  f'StagePublishBaseDir="{stage}" MountDir="{mount}"', "csi_plugin")
    if t.identity is not None:
        _identity(t.identity, f.at("identity"))
    for i, wid in enumerate(t.identities):
        where = f.at(f"identity[{wid.name or i}]")
        if wid.name == "default":
            where.add("Duplicate default identities found")
        _identity(wid, where)
    secrets: set[str] = set()
    for i, s in enumerate(t.secrets):
        where = f.at(f"secret[{s.name or i}]")
        if s.name in secrets:
            where.add(f"Duplicate secret {go_quote(s.name)} found")
        secrets.add(s.name)
        if s.provider == "vault" and t.vault is None:
            where.add(f'Secret {go_quote(s.name)} has provider "vault" but no vault block', "provider")
        _secret(s, where)


def _is_subdirectory(base: str, path: str) -> bool:
    """helper/funcs.go:573 IsSubdirectory: `path` is `base` or below it (false where Go's
    filepath.Rel refuses, e.g. one path absolute and the other relative)."""
    rel = _go_rel(base, path)
    return rel is not None and not rel.startswith("..")


def _go_clean(path: str) -> str:
    """Go's filepath.Clean on Unix (POSIX's normpath, except that Go keeps one leading slash)."""
    cleaned = posixpath.normpath(path)
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def _go_rel(base_path: str, target_path: str) -> str | None:
    """Go's filepath.Rel on Unix (path/filepath/path.go Rel), None where it returns an error.
    Unlike posixpath.relpath it never consults the working directory."""
    base, targ = _go_clean(base_path), _go_clean(target_path)
    if targ == base:
        return "."
    if base == ".":
        base = ""
    if base.startswith("/") != targ.startswith("/"):
        return None
    base_parts = [p for p in base.split("/") if p]  # clean: only a leading "/" makes an empty one
    targ_parts = [p for p in targ.split("/") if p]
    common = 0
    while (common < len(base_parts) and common < len(targ_parts)
           and base_parts[common] == targ_parts[common]):
        common += 1
    rest = base_parts[common:]
    if rest and rest[0] == "..":
        return None
    up = [".."] * len(rest)
    return "/".join(up + targ_parts[common:]) or "."


def _identity(wid: Any, f: _Found) -> None:
    """nomad/structs/workload_id.go:451 WorkloadIdentity.Validate."""
    name = wid.name or ""
    mode, signal, ttl = wid.change_mode or "", wid.change_signal or "", wid.ttl or 0
    if (_IDENTITY_NAME.match(name) and "" not in wid.aud and not (wid.filepath and not wid.file)
            and ((mode in ("", "noop", "restart") and not signal) or (mode == "signal" and signal))
            and ttl >= 0 and not (ttl > 0 and name in ("", "default"))):
        return
    prefix = f"Identity {go_quote(name)} is invalid: "
    if not _IDENTITY_NAME.match(name):
        f.add(f"{prefix}invalid name {go_quote(name)}. Must match regex ^[a-zA-Z0-9-_]{{1,128}}$", "name")
    for i, aud in enumerate(wid.aud):
        if aud == "":
            f.add(f"{prefix}an empty string is an invalid audience ({i + 1})", "aud")
    if mode in ("", "noop", "restart"):
        if signal:
            f.add(f'{prefix}can only use change_signal={go_quote(signal)} with change_mode="signal"',
                  "change_signal")
    elif mode == "signal":
        if not signal:
            f.add(f'{prefix}change_signal must be specified when using change_mode="signal"',
                  "change_signal")
    else:
        f.add(f"{prefix}invalid change_mode: {mode}", "change_mode")
    if ttl > 0 and name in ("", "default"):
        f.add(f"{prefix}ttl for default identity not yet supported", "ttl")
    if ttl < 0:
        f.add(f"{prefix}ttl must be >= 0", "ttl")
    if wid.filepath and not wid.file:
        f.add(f"{prefix}file parameter must be true in order to specify filepath", "filepath")


def _secret(s: Any, f: _Found) -> None:
    """nomad/structs/structs.go:10590 Secret.Validate."""
    prefix = f"Secret {go_quote(s.name)} is invalid: "
    if not s.name:
        f.add(f"{prefix}secret name cannot be empty")
    if not _SECRET_NAME.match(s.name):
        f.add(f"{prefix}secret name must match regex ^[a-zA-Z0-9_]{{1,128}}$")
    if not s.provider:
        f.add(f"{prefix}secret provider cannot be empty", "provider")
    if not s.path:
        f.add(f"{prefix}secret path cannot be empty", "path")
    if s.provider in ("nomad", "vault"):
        if s.env:
            f.add(f"{prefix}{s.provider} provider cannot use the env block", "env")
    elif s.config:
        f.add(f"{prefix}custom plugin provider {s.provider} cannot use the config block", "config")


def _connect_proxy_service(service: str, g: Group, f: _Found) -> None:
    """nomad/structs/structs.go:8740 ValidateConnectProxyService."""
    names = [s.name or "" for s in g.services
             if s.connect is not None and s.connect.sidecar_service is not None]
    if service in names:
        return
    if not names:
        f.add(f"No Connect services in task group with Connect proxy ({go_quote(service)})", "kind")
    else:
        f.add(f"Connect proxy service name ({go_quote(service)}) not found in Connect services from "
              f"task group: {_go_list(names)}", "kind")


def _resources(r: Resources, f: _Found) -> None:
    """nomad/structs/structs.go:2420 Resources.Validate."""
    cpu, cores, memory = r.cpu or 0, r.cores or 0, r.memory or 0
    if cores > 0 and cpu > 0:
        f.add("Task can only ask for 'cpu' or 'cores' resource, not both.", "cores")
    if cores < 0:
        f.add(f"cores value ({cores}) cannot be negative", "cores")
    if cpu < 1 and cores == 0:  # structs.go:2598 MeetsMinResources
        f.add(f"minimum CPU value is 1; got {cpu}", "cpu")
    if memory < 10:
        f.add(f"minimum MemoryMB value is 10; got {memory}", "memory")
    if (r.disk or 0) > 0:
        f.add("Task can't ask for disk resources, they have to be specified at the task group level.",
              "disk")
    devices = set()
    for i, d in enumerate(r.devices):
        _device(d, i, f.at(f"device[{d.name or i}]"))
        devices.add(d.name)
    if r.numa is not None:
        for name in r.numa.devices:
            if name not in devices:
                f.add(f"numa device {go_quote(name)} not requested as task resource", "numa.devices")
        if (r.numa.affinity or "") not in ("none", "prefer", "require"):
            f.add("numa affinity must be one of none, prefer, or require", "numa.affinity")
    memory_max = r.memory_max or 0
    if memory_max not in (0, -1) and memory_max < memory:
        f.add(f"MemoryMaxMB value ({memory_max}) should be larger than MemoryMB value ({memory})",
              "memory_max")
    secrets = r.secrets or 0
    if secrets > memory:
        f.add(f"SecretsMB value ({secrets}) cannot be larger than MemoryMB value ({memory})", "secrets")
    if secrets < 0:
        f.add(f"SecretsMB value ({secrets}) cannot be negative", "secrets")


def _device(d: Any, index: int, f: _Found) -> None:
    """nomad/structs/structs.go:3125 RequestedDevice.Validate."""
    prefix = f"device {index + 1} failed validation: "
    if not d.name:
        f.add(f"{prefix}device name must be given as one of the following: type, vendor/type, or "
              "vendor/type/name")
    for i, c in enumerate(d.constraints):
        if c.operator in ("distinct_hosts", "distinct_property"):
            f.add(f"{prefix}Constraint {i + 1} validation failed: using unsupported operand "
                  f"{go_quote(c.operator or '')}", f"constraint[{i}].operator")
        else:
            _constraint(c, f.at(f"constraint[{i}]"))
    for i, a in enumerate(d.affinities):
        _affinity(a, f.at(f"affinity[{i}]"))


def _logs(logs: Any, disk: EphemeralDisk | None, f: _Found) -> None:
    """nomad/structs/structs.go:7866 LogConfig.Validate(disk): the group's disk is all it reads
    of the group."""
    files, size = logs.max_files or 0, logs.max_file_size or 0
    if files < 1:
        f.add(f"minimum number of files is 1; got {files}", "max_files")
    if size < 1:
        f.add(f"minimum file size is 1MB; got {size}", "max_file_size")
    if disk is not None and (disk.size or 0) <= files * size:
        f.add(f"log storage ({files * size} MB) must be less than requested disk capacity "
              f"({disk.size or 0} MB)")


def _artifact(a: Any, f: _Found) -> None:
    """nomad/structs/structs.go:9889 TaskArtifact.Validate."""
    if not a.source:
        f.add("source must be specified", "source")
    if (a.mode or "") not in ("", "any", "file", "dir"):
        f.add(f"invalid artifact mode {go_quote(a.mode or '')}; must be one of: any, file, dir", "mode")
    if _escapes("task", a.destination or ""):
        f.add("destination escapes allocation directory", "destination")
    check = a.options.get("checksum")
    if check is None or "${" in check:
        return
    check = check.strip()
    if not check:
        f.add("checksum value cannot be empty", "options.checksum")
        return
    parts = check.split(":")
    if len(parts) != 2:
        f.add(f'checksum must be given as "type:value"; got {go_quote(check)}', "options.checksum")
        return
    kind, value = parts
    if len(value) % 2 or any(c not in _HEX_DIGITS for c in value):
        f.add("invalid checksum: encoding/hex: invalid byte" if len(value) % 2 == 0 else
              "invalid checksum: encoding/hex: odd length hex string", "options.checksum")
        return
    if kind not in _CHECKSUM_LENGTHS:
        f.add(f"unsupported checksum type: {kind}", "options.checksum")
    elif len(value) // 2 != _CHECKSUM_LENGTHS[kind]:
        f.add(f"invalid {kind} checksum: {value}", "options.checksum")


_OCTAL = frozenset("01234567")


def _template(t: Any, f: _Found) -> None:
    """nomad/structs/structs.go:8933 Template.Validate."""
    if not t.source and not t.data:
        f.add("Must specify a source path or have an embedded template")
    if not t.destination:
        f.add("Must specify a destination for the template", "destination")
    if _escapes("task", t.destination or ""):
        f.add("destination escapes allocation directory", "destination")
    mode = t.change_mode or ""
    if mode == "signal":
        if not t.change_signal:
            f.add("Must specify signal value when change mode is signal", "change_signal")
        if t.env:
            f.add("cannot use signals with env var templates", "env")
    elif mode == "script":
        if t.change_script is None:
            f.add("must specify change script configuration value when change mode is script",
                  "change_script")
        elif not t.change_script.command:
            f.add("must specify script path value when change mode is script",
                  "change_script.command")
    elif mode not in ("noop", "restart"):
        f.add("Invalid change mode. Must be one of the following: noop, signal, script, restart",
              "change_mode")
    if (t.splay or 0) < 0:
        f.add("Must specify positive splay value", "splay")
    if t.perms and not (_OCTAL.issuperset(t.perms) and int(t.perms, 8) < 4096):
        reason = "value out of range" if _OCTAL.issuperset(t.perms) else "invalid syntax"
        f.add(f"Failed to parse {go_quote(t.perms)} as octal: strconv.ParseUint: parsing "
              f"{go_quote(t.perms)}: {reason}", "perms")
    wait = t.wait
    if wait is not None and wait.min is not None and wait.max is not None and wait.min > wait.max:
        f.add(f"wait min {go_duration(wait.min)} is greater than max {go_duration(wait.max)}", "wait")


_NUMERIC_PORT = re.compile(r"[+-]?\d+")


def _task_services(t: Task, g: Group, f: _Found) -> None:
    """nomad/structs/structs.go:8440 validateServices(task, tg.Networks)."""
    if not t.services:
        return  # nothing to check: no service, so no port label referenced
    ports: dict[str, set[str]] = {}
    known: set[tuple[str, str]] = set()
    for i, s in enumerate(t.services):
        where = f.at(f"service[{i}]")
        name = s.name or ""
        own: list[Problem] = []
        _service(s, _Found(own, where.path))
        prefix = f"service[{i}] {go_quote(name)} validation failed: "
        f.out.extend(Problem(p.path, prefix + p.message) for p in own)
        if s.address_mode in ("alloc", "alloc_ipv6"):
            where.add(f'service {go_quote(name)} cannot use address_mode="{s.address_mode}", only '
                      'services defined in a "group" block can use this mode', "address_mode")
        if (name, s.port or "") in known:
            where.add(f"service {go_quote(name)} is duplicate")
        known.add((name, s.port or ""))
        if s.port and not (s.address_mode == "driver" and s.port.lstrip("-").isdigit()):
            ports.setdefault(s.port, set()).add(name)
        if s.connect is not None:
            where.add(f'service {go_quote(name)} cannot have "connect" block, only services defined '
                      'in a "group" block can', "connect")
        checks: set[str] = set()
        for j, c in enumerate(s.checks):
            at = f"check[{j}]"
            if (c.name or "") in checks:
                where.add(f"check {go_quote(c.name or '')} is duplicate", at)
            checks.add(c.name or "")
            if c.address_mode in ("alloc", "alloc_ipv6"):
                where.add(f'check {go_quote(name)} cannot use address_mode="{c.address_mode}", only '
                          'checks defined in a "group" service block can use this mode',
                          f"{at}.address_mode")
            if not _check_needs_port(c):
                continue
            port = c.port or s.port or ""
            if not port:
                where.add(f"check {go_quote(c.name or '')} is missing a port", at)
                continue
            numeric = bool(_NUMERIC_PORT.fullmatch(port))
            if c.address_mode == "driver" and numeric:
                if int(port) <= 0:
                    where.add(f"check {go_quote(c.name or '')} has invalid numeric port {int(port)}",
                              f"{at}.port")
                continue
            if numeric:
                where.add(f"check {go_quote(c.name or '')} cannot use a numeric port {int(port)} "
                          'without setting address_mode="driver"', f"{at}.port")
                continue
            ports.setdefault(port, set()).add(name)
    labels: set[str] = set()
    if g.networks:
        labels |= {p.label for p in g.networks[0].ports}
    if t.resources is not None:
        for net in t.resources.networks:
            labels |= {p.label for p in net.ports}
    for port in sorted(ports):
        if port not in labels:
            f.add(f"port label {go_quote(port)} referenced by services {', '.join(sorted(ports[port]))} "
                  "does not exist", "service")


# --- warnings: Nomad's, and nomadmesh's own --------------------------------------------------------

_FLOAT64_EXACT = 2**53


def job_warnings(job: Job, path: str) -> list[Problem]:
    """What Nomad warns about (nomad/structs/structs.go:7690 TaskGroup.Warnings, :8580
    Task.Warnings) and what nomadmesh checks beyond Nomad, each message starting "nomadmesh:"."""
    out: list[Problem] = []
    for g in stored_for_rules(job).groups:
        f = _Found(out, f"{path}.group[{g.name}]")
        count, update = g.count or 0, g.update
        if update is not None and count > 1 and (update.max_parallel or 0) > count:
            f.add(f"Update max parallel count is greater than task group count "
                  f"({update.max_parallel} > {count}). A destructive change would result in the "
                  "simultaneous replacement of all allocations.", "update.max_parallel")
        if g.max_client_disconnect is not None:
            f.add("MaxClientDisconnect is deprecated and ignored in favor of Disconnect.LostAfter",
                  "max_client_disconnect")
        if g.stop_after_client_disconnect is not None:
            f.add("StopAfterClientDisconnect is deprecated and ignored favor of "
                  "Disconnect.StopOnClientAfter", "stop_after_client_disconnect")
        if g.prevent_reschedule_on_lost:
            f.add("PreventRescheduleOnLost is deprecated and ignored in favor of Disconnect.Replace",
                  "prevent_reschedule_on_lost")
        if g.networks and (g.networks[0].mbits or 0) > 0:
            f.add("mbits has been deprecated as of Nomad 0.12.0. Please remove mbits from the network "
                  "block", "network.mbits")
        for t in g.tasks:
            at = f.at(f"task[{t.name}]")
            if t.resources is not None and t.resources.memory_max:
                # nomad/job_endpoint_hooks.go:625, under the default scheduler configuration.
                at.add("Memory oversubscription is not enabled; Task "
                       f'"{g.name}.{t.name}" memory_max value will be ignored. Update the Scheduler '
                       "Configuration to allow oversubscription.", "resources.memory_max")
            if t.resources is not None and t.resources.iops:
                at.add("IOPS has been deprecated as of Nomad 0.9.0. Please remove IOPS from resource "
                       "block.", "resources.iops")
            if t.resources is not None and t.resources.networks:
                at.add("task network resources have been deprecated as of Nomad 0.12.0. Please "
                       "configure networking via group network block.", "resources.network")
            for i, tmpl in enumerate(t.templates):
                if tmpl.vault_grace:
                    at.add("VaultGrace has been deprecated as of Nomad 0.11 and ignored since Vault "
                           "0.5. Please remove VaultGrace / vault_grace from template block.",
                           f"template[{i}].vault_grace")
    out.extend(_nomadmesh_checks(job, path))
    return out


def _nomadmesh_checks(job: Job, path: str) -> Iterator[Problem]:
    """nomadmesh's checks beyond Nomad: things Nomad accepts that do not do what they seem to."""
    for g in job.groups:
        where = f"{path}.group[{g.name}]"
        labels = {p.label for p in g.ports}
        for i, s in enumerate(g.services):
            if s.port and s.port not in labels and not s.port.isdigit() and "${" not in s.port:
                known = ", ".join(sorted(labels)) or "none declared"
                yield Problem(f"{where}.service[{i}].port",
                              f"nomadmesh: port {s.port!r} is not a port label of the group "
                              f"(ports: {known})")
        for t in g.tasks:
            yield from _big_numbers(t.config, f"{where}.task[{t.name}].config")


def _big_numbers(value: Any, path: str) -> Iterator[Problem]:
    """Integers Nomad stores as float64 (task config) lose precision beyond 2**53."""
    if type(value) is int and abs(value) > _FLOAT64_EXACT:
        yield Problem(path, f"nomadmesh: Nomad keeps task config numbers as float64, so {value} "
                            f"becomes {int(float(value))}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _big_numbers(v, f"{path}.{k}")
    elif isinstance(value, tuple):
        for i, v in enumerate(value):
            yield from _big_numbers(v, f"{path}[{i}]")
