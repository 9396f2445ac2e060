"""Feasibility and ranking of nodes for a task group, as scheduler/feasible (stack.go, rank.go).

A `Stack` is built per scheduling run over the ready nodes of the job's datacenters and node
pool. `select(group)` filters nodes as Nomad's GenericStack does (job constraints, drivers,
group and task constraints, distinct_hosts, distinct_property), fits the group's resources on
what the node already runs plus what the plan adds (CPU, memory, disk, reserved and dynamic
ports), scores the survivors (bin packing, job anti-affinity, rescheduling penalty) and picks
the best. Every filter and exhaustion is counted in an `AllocMetric` with Nomad's reasons, which
becomes `FailedTGAllocs` when nothing fits.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

DYNAMIC_PORTS = (20000, 32000)


def new_metric() -> dict[str, Any]:
    """A zeroed structs.AllocMetric."""
    return {
        "NodesEvaluated": 0, "NodesFiltered": 0, "NodesInPool": 0, "NodesAvailable": None,
        "NodePool": "", "ClassFiltered": None, "ConstraintFiltered": None,
        "NodesExhausted": 0, "ClassExhausted": None, "DimensionExhausted": None,
        "QuotaExhausted": None, "ResourcesExhausted": None, "Scores": None,
        "ScoreMetaData": None, "AllocationTime": 0, "CoalescedFailures": 0,
    }


def _count(metric: dict[str, Any], field: str, key: str) -> None:
    counts = dict(metric[field] or {})
    counts[key] = counts.get(key, 0) + 1
    metric[field] = counts


def filter_node(metric: dict[str, Any], node: Mapping[str, Any], reason: str) -> None:
    """AllocMetric.FilterNode (alloc.go:1104)."""
    metric["NodesFiltered"] += 1
    if node.get("NodeClass"):
        _count(metric, "ClassFiltered", node["NodeClass"])
    if reason:
        _count(metric, "ConstraintFiltered", reason)


def exhausted_node(metric: dict[str, Any], node: Mapping[str, Any], dimension: str) -> None:
    """AllocMetric.ExhaustedNode (alloc.go:1120)."""
    metric["NodesExhausted"] += 1
    if node.get("NodeClass"):
        _count(metric, "ClassExhausted", node["NodeClass"])
    if dimension:
        _count(metric, "DimensionExhausted", dimension)


def exhaust_resources(metric: dict[str, Any], group: Mapping[str, Any]) -> None:
    """AllocMetric.ExhaustResources (alloc.go:1146): what the group asked of the dimensions."""
    dims = metric.get("DimensionExhausted")
    if not dims:
        return
    out = dict(metric.get("ResourcesExhausted") or {})
    for task in group.get("Tasks") or ():
        res = dict(out.get(task["Name"]) or {"CPU": 0, "MemoryMB": 0})
        if dims.get("memory"):
            res["MemoryMB"] += int((task.get("Resources") or {}).get("MemoryMB") or 0)
        if dims.get("cpu"):
            res["CPU"] += int((task.get("Resources") or {}).get("CPU") or 0)
        out[task["Name"]] = res
    metric["ResourcesExhausted"] = out


# --- constraints (feasible.go) ---------------------------------------------------------------


def resolve_target(target: str, node: Mapping[str, Any]) -> tuple[str, bool]:
    """resolveTarget (feasible.go:1095): a literal, or a node attribute/meta/field."""
    if not target.startswith("${"):
        return target, True
    fields = {"${node.unique.id}": "ID", "${node.datacenter}": "Datacenter",
              "${node.unique.name}": "Name", "${node.class}": "NodeClass",
              "${node.pool}": "NodePool"}
    if target in fields:
        return str(node.get(fields[target]) or ""), True
    for prefix, table in (("${attr.", "Attributes"), ("${meta.", "Meta")):
        if target.startswith(prefix):
            name = target[len(prefix):].removesuffix("}")
            values = node.get(table) or {}
            return (str(values[name]), True) if name in values else ("", False)
    return "", False


def constraint_text(constraint: Mapping[str, Any]) -> str:
    """Constraint.String: `LTarget Operand RTarget`."""
    return (f"{constraint.get('LTarget', '')} {constraint.get('Operand', '')} "
            f"{constraint.get('RTarget', '')}")


def check_constraint(operand: str, left: str, right: str, l_found: bool,
                     r_found: bool) -> bool:
    """checkConstraint (feasible.go:1136)."""
    if operand in ("distinct_hosts", "distinct_property"):
        return True
    if operand in ("=", "==", "is"):
        return l_found and r_found and left == right
    if operand in ("!=", "not"):
        return (left, l_found) != (right, r_found)
    if operand in ("<", "<=", ">", ">="):
        return l_found and r_found and _order(operand, left, right)
    if operand == "is_set":
        return l_found
    if operand == "is_not_set":
        return not l_found
    if operand in ("version", "semver"):
        return l_found and r_found and _version_matches(left, right)
    if operand == "regexp":
        try:
            return l_found and r_found and re.search(right, left) is not None
        except re.error:
            return False
    if operand in ("set_contains", "set_contains_all"):
        have = {x.strip() for x in left.split(",")}
        return l_found and r_found and all(x.strip() in have for x in right.split(","))
    if operand == "set_contains_any":
        have = {x.strip() for x in left.split(",")}
        return l_found and r_found and any(x.strip() in have for x in right.split(","))
    return False


def _order(operand: str, left: str, right: str) -> bool:
    """checkOrder: as integers, else floats, else lexically."""
    for convert in (int, float):
        try:
            return _compare(operand, convert(left), convert(right))
        except ValueError:
            continue
    return _compare(operand, left, right)


def _compare(operand: str, a: Any, b: Any) -> bool:
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operand])


_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def _version(text: str) -> tuple[int, ...] | None:
    match = _VERSION.match(text)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _version_matches(left: str, spec: str) -> bool:
    """A version constraint ("~> 1.2", ">= 1.0, < 2") against a version (go-version rules)."""
    have = _version(left)
    if have is None:
        return False
    for part in spec.split(","):
        match = re.match(r"^\s*(~>|>=|<=|!=|=|>|<)?\s*(.+?)\s*$", part)
        want = _version(match.group(2)) if match else None
        if match is None or want is None:
            return False
        op = match.group(1) or "="
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        if op == "~>":
            upper = want[:-1] if len(want) > 1 else want
            ok = a >= b and have[:len(upper)] == upper
        else:
            ok = {"=": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b,
                  "<=": a <= b}[op]
        if not ok:
            return False
    return True


def in_datacenters(node: Mapping[str, Any], datacenters: Iterable[str]) -> bool:
    """Node.IsInAnyDC: datacenters may be globs."""
    return any(fnmatch.fnmatchcase(node["Datacenter"], dc) for dc in datacenters)


# --- resources and ports ---------------------------------------------------------------------


def group_ports(group: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The group network's ReservedPorts or DynamicPorts."""
    out: list[dict[str, Any]] = []
    for network in group.get("Networks") or ():
        out.extend(network.get(kind) or ())
    return out


def alloc_ports(alloc: Mapping[str, Any]) -> set[int]:
    """Host ports an allocation holds on its node."""
    shared = ((alloc.get("AllocatedResources") or {}).get("Shared") or {})
    return {int(p["Value"]) for p in shared.get("Ports") or ()}


def alloc_usage(alloc: Mapping[str, Any]) -> tuple[int, int, int]:
    """CPU (MHz), memory (MB) and disk (MB) an allocation holds."""
    resources = alloc.get("AllocatedResources") or {}
    cpu = memory = 0
    for task in (resources.get("Tasks") or {}).values():
        cpu += int((task.get("Cpu") or {}).get("CpuShares") or 0)
        memory += int((task.get("Memory") or {}).get("MemoryMB") or 0)
    return cpu, memory, int((resources.get("Shared") or {}).get("DiskMB") or 0)


@attrs.define
class Usage:
    """What a node's live allocations (as the plan leaves them) hold: the sums placement needs."""

    cpu: int = 0
    memory: int = 0
    disk: int = 0
    ports: set[int] = attrs.Factory(set)
    jobs: dict[tuple[str, str], int] = attrs.Factory(dict)  # (namespace, job) -> allocations
    groups: dict[tuple[str, str, str], int] = attrs.Factory(dict)  # + task group

    def add(self, alloc: Mapping[str, Any], sign: int = 1) -> None:
        """Count an allocation in (sign 1) or out (sign -1)."""
        cpu, memory, disk = alloc_usage(alloc)
        self.cpu += sign * cpu
        self.memory += sign * memory
        self.disk += sign * disk
        if sign > 0:
            self.ports |= alloc_ports(alloc)
        else:
            self.ports -= alloc_ports(alloc)
        job = (alloc["Namespace"], alloc["JobID"])
        group = (*job, alloc["TaskGroup"])
        self.jobs[job] = self.jobs.get(job, 0) + sign
        self.groups[group] = self.groups.get(group, 0) + sign

    def copy(self) -> Usage:
        """An independent copy."""
        return Usage(self.cpu, self.memory, self.disk, set(self.ports), dict(self.jobs),
                     dict(self.groups))


@attrs.frozen
class Option:
    """RankedNode: the chosen node and what the group gets there."""

    node: dict[str, Any]
    resources: dict[str, Any]
    score: float


@attrs.frozen
class SelectOptions:
    """SelectOptions: the allocation's name and the nodes to avoid (rescheduling)."""

    name: str
    penalty_nodes: frozenset[str] = frozenset()


UsageFn = Callable[[str], Usage]
PortFree = Callable[[str, int], bool]


class Stack:
    """GenericStack over the job's ready nodes; `select` records its AllocMetric in `metric`."""

    def __init__(self, job: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]],
                 usage: UsageFn, port_free: PortFree) -> None:
        self.job = job
        self.usage = usage
        self.port_free = port_free
        all_nodes = [dict(n) for n in nodes]
        pool = job.get("NodePool") or "default"
        datacenters = job.get("Datacenters") or ["*"]
        in_pool = [n for n in all_nodes if n.get("NodePool", "default") == pool
                   or pool == "all"]
        self.nodes = sorted((n for n in in_pool if in_datacenters(n, datacenters)
                             and n.get("Status") == "ready"
                             and n.get("SchedulingEligibility") == "eligible"),
                            key=lambda n: n["Name"])
        self.by_dc: dict[str, int] = {}
        for node in self.nodes:
            self.by_dc[node["Datacenter"]] = self.by_dc.get(node["Datacenter"], 0) + 1
        if not self.by_dc:
            self.by_dc = {dc: 0 for dc in datacenters if "*" not in dc}
        self.nodes_in_pool = len(in_pool)
        self.metric = new_metric()

    def fresh_metric(self) -> dict[str, Any]:
        """A zeroed AllocMetric with the pool's node counts."""
        metric = new_metric()
        metric.update(NodesAvailable=dict(self.by_dc), NodesInPool=self.nodes_in_pool,
                      NodePool=self.job.get("NodePool") or "default")
        return metric

    def feasible(self, node: Mapping[str, Any], group: Mapping[str, Any],
                 metric: dict[str, Any]) -> bool:
        """The feasibility checkers, in the order of NewGenericStack (stack.go:404)."""
        for constraint in self.job.get("Constraints") or ():
            if not self._meets(constraint, node):
                filter_node(metric, node, constraint_text(constraint))
                return False
        drivers = node.get("Drivers") or {}
        for task in group.get("Tasks") or ():
            info = drivers.get(task.get("Driver"))
            if not info or not info.get("Detected") or not info.get("Healthy"):
                filter_node(metric, node, "missing drivers")
                return False
        constraints = [*(group.get("Constraints") or ())]
        for task in group.get("Tasks") or ():
            constraints.extend(task.get("Constraints") or ())
        for constraint in constraints:
            if not self._meets(constraint, node):
                filter_node(metric, node, constraint_text(constraint))
                return False
        if not self._distinct_hosts(node, group):
            filter_node(metric, node, "distinct_hosts")
            return False
        reason = self._distinct_property(node, group, constraints)
        if reason:
            filter_node(metric, node, reason)
            return False
        return True

    def _meets(self, constraint: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
        left, l_found = resolve_target(str(constraint.get("LTarget") or ""), node)
        right, r_found = resolve_target(str(constraint.get("RTarget") or ""), node)
        return check_constraint(str(constraint.get("Operand") or "="), left, right, l_found,
                                r_found)

    def _distinct_hosts(self, node: Mapping[str, Any], group: Mapping[str, Any]) -> bool:
        job_level = any(c.get("Operand") == "distinct_hosts"
                        for c in self.job.get("Constraints") or ())
        group_level = any(c.get("Operand") == "distinct_hosts"
                          for c in group.get("Constraints") or ())
        if not (job_level or group_level):
            return True
        return self._count(self.usage(node["ID"]), group, job_level) == 0

    def _count(self, usage: Usage, group: Mapping[str, Any], job_level: bool) -> int:
        job = (self.job["Namespace"], self.job["ID"])
        if job_level:
            return usage.jobs.get(job, 0)
        return usage.groups.get((*job, group["Name"]), 0)

    def _distinct_property(self, node: Mapping[str, Any], group: Mapping[str, Any],
                           constraints: list[Mapping[str, Any]]) -> str:
        for constraint in [*(self.job.get("Constraints") or ()), *constraints]:
            if constraint.get("Operand") != "distinct_property":
                continue
            target = str(constraint.get("LTarget") or "")
            value, found = resolve_target(target, node)
            if not found:
                return f'missing property "{target}"'
            limit = int(constraint.get("RTarget") or 1)
            job_level = constraint in (self.job.get("Constraints") or ())
            used = sum(self._count(self.usage(other["ID"]), group, job_level)
                       for other in self.nodes
                       if resolve_target(target, other) == (value, True))
            if used >= limit:
                return f"distinct_property: {target}={value} used by {used} allocs"
        return ""

    def select(self, group: Mapping[str, Any], options: SelectOptions) -> Option | None:
        """The best feasible node with room for the group, or None (see `metric`)."""
        metric = self.fresh_metric()
        self.metric = metric
        best: Option | None = None
        for node in self.nodes:
            metric["NodesEvaluated"] += 1
            if not self.feasible(node, group, metric):
                continue
            fitted = self.fit(node, group, metric)
            if fitted is None:
                continue
            score = self._score(node, group, fitted, options)
            if best is None or score > best.score:
                best = Option(node, fitted, score)
        return best

    def fit(self, node: Mapping[str, Any], group: Mapping[str, Any],
            metric: dict[str, Any]) -> dict[str, Any] | None:
        """BinPackIterator: the group's AllocatedResources on this node, or None (exhausted)."""
        usage = self.usage(node["ID"])
        used_cpu, used_mem, used_disk = usage.cpu, usage.memory, usage.disk
        used_ports = set(usage.ports)
        resources = node.get("NodeResources") or {}
        address = (node.get("Attributes") or {}).get("unique.network.ip-address", "127.0.0.1")
        reserved = []
        for port in group_ports(group, "ReservedPorts"):
            value = int(port.get("Value") or 0)
            if value in used_ports:
                exhausted_node(metric, node, "network: reserved port collision "
                                             f"{port['Label']}={value}")
                return None
            used_ports.add(value)
            reserved.append({"Label": port["Label"], "Value": value,
                             "To": int(port.get("To") or 0), "HostIP": address})
        dynamic = []
        low, high = (int(resources.get("MinDynamicPort") or DYNAMIC_PORTS[0]),
                     int(resources.get("MaxDynamicPort") or DYNAMIC_PORTS[1]))
        candidate = low
        for port in group_ports(group, "DynamicPorts"):
            while candidate <= high and (candidate in used_ports
                                         or not self.port_free(address, candidate)):
                candidate += 1
            if candidate > high:
                exhausted_node(metric, node, "network: dynamic port selection failed")
                return None
            used_ports.add(candidate)
            dynamic.append({"Label": port["Label"], "Value": candidate,
                            "To": int(port.get("To") or 0), "HostIP": address})
        tasks = {}
        cpu = mem = 0
        for task in group.get("Tasks") or ():
            res = task.get("Resources") or {}
            task_cpu, task_mem = int(res.get("CPU") or 0), int(res.get("MemoryMB") or 0)
            cpu, mem = cpu + task_cpu, mem + task_mem
            tasks[task["Name"]] = {
                "Cpu": {"CpuShares": task_cpu, "ReservedCores": None},
                "Memory": {"MemoryMB": task_mem,
                           "MemoryMaxMB": int(res.get("MemoryMaxMB") or 0)},
                "Networks": None, "Devices": None}
        disk = int((group.get("EphemeralDisk") or {}).get("SizeMB") or 0)
        available = (int((resources.get("Cpu") or {}).get("CpuShares") or 0),
                     int((resources.get("Memory") or {}).get("MemoryMB") or 0),
                     int((resources.get("Disk") or {}).get("DiskMB") or 0))
        for dimension, want, have in (("cpu", used_cpu + cpu, available[0]),
                                      ("memory", used_mem + mem, available[1]),
                                      ("disk", used_disk + disk, available[2])):
            if want > have:
                exhausted_node(metric, node, dimension)
                return None
        networks = None
        if group.get("Networks"):
            mode = (group["Networks"][0].get("Mode") or "host")
            networks = [{
                "Mode": mode, "Device": "", "CIDR": "", "IP": address, "MBits": 0,
                "DNS": group["Networks"][0].get("DNS"),
                "ReservedPorts": [{**p, "HostNetwork": "default"} for p in reserved] or None,
                "DynamicPorts": [{**p, "HostNetwork": "default"} for p in dynamic] or None,
            }]
        return {
            "Tasks": tasks,
            "TaskLifecycles": {t["Name"]: t.get("Lifecycle") for t in group.get("Tasks") or ()},
            "Shared": {"DiskMB": disk, "Networks": networks, "Ports": reserved + dynamic},
        }

    def _score(self, node: Mapping[str, Any], group: Mapping[str, Any],
               fitted: Mapping[str, Any], options: SelectOptions) -> float:
        """Bin packing (ScoreFitBinPack), job anti-affinity, rescheduling penalty, averaged."""
        resources = node.get("NodeResources") or {}
        node_cpu = float((resources.get("Cpu") or {}).get("CpuShares") or 1)
        node_mem = float((resources.get("Memory") or {}).get("MemoryMB") or 1)
        usage = self.usage(node["ID"])
        cpu, mem = usage.cpu, usage.memory
        collisions = self._count(usage, group, False)
        own_cpu, own_mem, _ = alloc_usage({"AllocatedResources": fitted})
        free_cpu = 1 - (cpu + own_cpu) / node_cpu
        free_mem = 1 - (mem + own_mem) / node_mem
        scores = [min(max(20.0 - (10 ** free_cpu + 10 ** free_mem), 0.0), 18.0) / 18.0]
        if collisions:
            scores.append(-(collisions + 1) / max(int(group.get("Count") or 1), 1))
        if node["ID"] in options.penalty_nodes:
            scores.append(-1.0)
        return sum(scores) / len(scores)
