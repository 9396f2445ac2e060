"""The emulated server's state store, as nomad/state/state_store.go: tables, indexes, snapshots.

Each table maps a primary key to an immutable state object and keeps secondary indexes
(allocations by job, node, deployment and evaluation; evaluations and deployments by job;
service registrations by name, allocation and job). A write is one transaction (`txn()`): it
copies only the tables it touches, gets the next raft index, and on commit publishes a new root
that readers pick up with `snapshot()` without any lock (copy-on-write: a snapshot never changes).
Every table remembers the index of its last write (`table_index`), every object its own
`ModifyIndex`; a commit fires exactly the watch keys it touched (`("allocs",)`,
`("allocs", id)`, `("allocs", "job", (ns, job))`, ...) so blocking queries and the server's own
watchers wake only for what they watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.feasible import Usage
from nomadmesh.testing.watch import Watches, WatchKey

TRACKED_VERSIONS = 6  # structs.JobDefaultTrackedVersions

TABLES = ("jobs", "job_version", "job_summary", "job_submission", "evals", "allocs",
          "deployment", "nodes", "service_registrations", "scaling_event", "periodic_launch",
          "variables", "node_usage", "acl_token", "acl_policy", "acl_bootstrap")

Key = Hashable


def _job_key(obj: Mapping[str, Any]) -> Key:
    return (obj["Namespace"], obj["JobID"])


# Secondary indexes per table: name -> the index key of an object (None: not indexed).
_INDEXES: dict[str, dict[str, Callable[[Mapping[str, Any]], Key | None]]] = {
    "jobs": {"parent": lambda j: (j["Namespace"], j["ParentID"]) if j.get("ParentID") else None},
    "evals": {"job": _job_key},
    "allocs": {"job": _job_key, "node": lambda a: a["NodeID"] or None,
               "deployment": lambda a: a.get("DeploymentID") or None,
               "eval": lambda a: a.get("EvalID") or None},
    "deployment": {"job": _job_key},
    "service_registrations": {"name": lambda r: (r["Namespace"], r["ServiceName"]),
                              "alloc": lambda r: r["AllocID"], "job": _job_key},
    "variables": {"namespace": lambda v: v["Namespace"]},
}


class _Root:
    """One published version of the whole state: never changed once published."""

    __slots__ = ("index", "indexes", "keysets", "table_index", "tables")

    def __init__(self, index: int, tables: dict[str, dict[Key, Any]],
                 indexes: dict[tuple[str, str], dict[Key, tuple[Key, ...]]],
                 table_index: dict[str, int], keysets: dict[str, int]) -> None:
        self.index = index
        self.tables = tables
        self.indexes = indexes
        self.table_index = table_index
        self.keysets = keysets  # per table: the index of the last insert or delete


class Snapshot:
    """A consistent, read-only view of the state at one raft index."""

    def __init__(self, root: _Root) -> None:
        self._root = root

    @property
    def index(self) -> int:
        """The raft index this snapshot was taken at."""
        return self._root.index

    def keyset_index(self, table: str) -> int:
        """The index of the last insert into or delete from a table (not updates)."""
        return self._root.keysets.get(table, 1)

    def table_index(self, *tables: str) -> int:
        """The index of the last write to any of these tables (at least 1)."""
        return max([1, *(self._root.table_index.get(t, 1) for t in tables)])

    def get(self, table: str, key: Key) -> Any:
        """The object under `key` (None when there is none)."""
        return self._root.tables[table].get(key)

    def rows(self, table: str) -> Mapping[Key, Any]:
        """A table's objects by primary key (read only)."""
        return self._root.tables[table]

    def all(self, table: str) -> Iterable[Any]:
        """Every object of a table, in insertion order."""
        return self._root.tables[table].values()

    def keys(self, table: str) -> Iterable[Key]:
        """Every primary key of a table."""
        return self._root.tables[table].keys()

    def count(self, table: str) -> int:
        """How many objects a table holds."""
        return len(self._root.tables[table])

    def by(self, table: str, index: str, key: Key) -> list[Any]:
        """The objects of a table whose `index` key is `key`, oldest first."""
        rows = self._root.tables[table]
        return [rows[pk] for pk in self._root.indexes[(table, index)].get(key, ())]

    # --- Nomad's read functions (state_store.go) ------------------------------------------------

    def job_by_id(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """JobByID."""
        job: dict[str, Any] | None = self.get("jobs", (namespace, job_id))
        return job

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, sorted by namespace and ID."""
        table = self._root.tables["jobs"]
        return [table[k] for k in sorted(table, key=lambda k: tuple(k))]  # type: ignore[arg-type]

    def job_versions(self, namespace: str, job_id: str) -> tuple[dict[str, Any], ...]:
        """JobVersionsByID: newest first."""
        versions: tuple[dict[str, Any], ...] = self.get("job_version", (namespace, job_id)) or ()
        return versions

    def job_by_version(self, namespace: str, job_id: str,
                       version: int) -> dict[str, Any] | None:
        """JobByIDAndVersion."""
        return next((v for v in self.job_versions(namespace, job_id)
                     if v["Version"] == version), None)

    def job_summary(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """JobSummaryByID."""
        summary: dict[str, Any] | None = self.get("job_summary", (namespace, job_id))
        return summary

    def job_submission(self, namespace: str, job_id: str,
                       version: int) -> dict[str, Any] | None:
        """JobSubmission of one job version."""
        sub: dict[str, Any] | None = self.get("job_submission", (namespace, job_id, version))
        return sub

    def children(self, namespace: str, parent_id: str) -> list[dict[str, Any]]:
        """The dispatched and periodic children of a job."""
        return self.by("jobs", "parent", (namespace, parent_id))

    def eval_by_id(self, eval_id: str) -> dict[str, Any] | None:
        """EvalByID."""
        ev: dict[str, Any] | None = self.get("evals", eval_id)
        return ev

    def evals_by_job(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """EvalsByJob, oldest first."""
        return self.by("evals", "job", (namespace, job_id))

    def alloc_by_id(self, alloc_id: str) -> dict[str, Any] | None:
        """AllocByID."""
        alloc: dict[str, Any] | None = self.get("allocs", alloc_id)
        return alloc

    def allocs_by_job(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """AllocsByJob (all, including allocations of a previous job with the same ID)."""
        return self.by("allocs", "job", (namespace, job_id))

    def allocs_by_node(self, node_id: str) -> list[dict[str, Any]]:
        """AllocsByNode."""
        return self.by("allocs", "node", node_id)

    def allocs_by_deployment(self, deployment_id: str) -> list[dict[str, Any]]:
        """AllocsByDeployment."""
        return self.by("allocs", "deployment", deployment_id)

    def allocs_by_eval(self, eval_id: str) -> list[dict[str, Any]]:
        """AllocsByEval."""
        return self.by("allocs", "eval", eval_id)

    def deployment_by_id(self, deployment_id: str) -> dict[str, Any] | None:
        """DeploymentByID."""
        dep: dict[str, Any] | None = self.get("deployment", deployment_id)
        return dep

    def deployments_by_job(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """DeploymentsByJobID, oldest first."""
        return self.by("deployment", "job", (namespace, job_id))

    def latest_deployment(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """LatestDeploymentByJobID: the one created last."""
        deps = self.deployments_by_job(namespace, job_id)
        return max(deps, key=lambda d: d["CreateIndex"]) if deps else None

    def node_by_id(self, node_id: str) -> dict[str, Any] | None:
        """NodeByID."""
        node: dict[str, Any] | None = self.get("nodes", node_id)
        return node

    def nodes(self) -> list[dict[str, Any]]:
        """Every node."""
        return list(self.all("nodes"))

    def services_by_name(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """GetServiceRegistrationByName."""
        return self.by("service_registrations", "name", (namespace, name))

    def services_by_alloc(self, alloc_id: str) -> list[dict[str, Any]]:
        """GetServiceRegistrationsByAllocID."""
        return self.by("service_registrations", "alloc", alloc_id)

    def services_by_job(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """GetServiceRegistrationsByJobID."""
        return self.by("service_registrations", "job", (namespace, job_id))

    def node_usage(self, node_id: str) -> Usage:
        """What the node's live allocations hold (cpu, memory, disk, ports, per job/group)."""
        usage: Usage | None = self.get("node_usage", node_id)
        return Usage() if usage is None else usage

    def variable(self, namespace: str, path: str) -> dict[str, Any] | None:
        """VarGet."""
        var: dict[str, Any] | None = self.get("variables", (namespace, path))
        return var

    def scaling_events(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """ScalingEventsByJob: {group: [events, newest first]}."""
        events: dict[str, Any] | None = self.get("scaling_event", (namespace, job_id))
        return events


class Txn(Snapshot):
    """One write: copies what it changes, gets the next raft index, commits atomically."""

    def __init__(self, root: _Root) -> None:
        super().__init__(_Root(root.index + 1, dict(root.tables), dict(root.indexes),
                               dict(root.table_index), dict(root.keysets)))
        self._copied: set[str] = set()
        self._copied_indexes: set[tuple[str, str]] = set()
        self.touched: set[WatchKey] = set()

    # --- generic writes ---------------------------------------------------------------------

    def _table(self, table: str) -> dict[Key, Any]:
        if table not in self._copied:
            self._root.tables[table] = dict(self._root.tables[table])
            self._copied.add(table)
        self._root.table_index[table] = self._root.index
        self.touched.add((table,))
        return self._root.tables[table]

    def _index(self, table: str, name: str) -> dict[Key, tuple[Key, ...]]:
        pair = (table, name)
        if pair not in self._copied_indexes:
            self._root.indexes[pair] = dict(self._root.indexes[pair])
            self._copied_indexes.add(pair)
        return self._root.indexes[pair]

    def put(self, table: str, key: Key, obj: Any) -> None:
        """Insert or replace an object, keeping the table's secondary indexes."""
        rows = self._table(table)
        old = rows.get(key)
        if old is None:
            self._root.keysets[table] = self._root.index
        rows[key] = obj
        self.touched.add((table, key))
        for name, indexer in _INDEXES.get(table, {}).items():
            new_ikey = indexer(obj)
            old_ikey = indexer(old) if old is not None else None
            if old is not None and old_ikey == new_ikey:
                if new_ikey is not None:
                    self.touched.add((table, name, new_ikey))
                continue
            index = self._index(table, name)
            if old_ikey is not None:
                index[old_ikey] = tuple(k for k in index.get(old_ikey, ()) if k != key)
                self.touched.add((table, name, old_ikey))
            if new_ikey is not None:
                index[new_ikey] = (*index.get(new_ikey, ()), key)
                self.touched.add((table, name, new_ikey))

    def delete(self, table: str, key: Key) -> Any:
        """Remove an object (and its index entries); returns it (None when absent)."""
        rows = self._table(table)
        old = rows.pop(key, None)
        if old is None:
            return None
        self._root.keysets[table] = self._root.index
        self.touched.add((table, key))
        for name, indexer in _INDEXES.get(table, {}).items():
            ikey = indexer(old)
            if ikey is not None:
                index = self._index(table, name)
                remaining = tuple(k for k in index.get(ikey, ()) if k != key)
                if remaining:
                    index[ikey] = remaining
                else:
                    index.pop(ikey, None)
                self.touched.add((table, name, ikey))
        return old

    # --- jobs -------------------------------------------------------------------------------

    def upsert_job(self, job: Mapping[str, Any], *, keep_version: bool = False,
                   submission: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """upsertJobImpl (state_store.go:1800): indexes, version, status, summary, history."""
        key = (job["Namespace"], job["ID"])
        existing = self.job_by_id(*key)
        new = dict(job)
        if existing is not None:
            new["CreateIndex"] = existing["CreateIndex"]
            new["ModifyIndex"] = self.index
            if not keep_version:
                new["JobModifyIndex"] = self.index
                if new.get("Version", 0) <= existing["Version"]:
                    new["Version"] = existing["Version"] + 1
        else:
            new.update(CreateIndex=self.index, ModifyIndex=self.index,
                       JobModifyIndex=self.index, Version=new.get("Version") or 0)
        new["Status"] = self._job_status(new)
        self.put("jobs", key, new)
        self._summary_with_job(new)
        self._upsert_version(new)
        if submission is not None:
            self.put("job_submission", (*key, new["Version"]),
                     {**submission, "Namespace": key[0], "JobID": key[1],
                      "Version": new["Version"], "JobModifyIndex": self.index})
        self._parent_summary(new)
        return new

    def _upsert_version(self, job: dict[str, Any]) -> None:
        """upsertJobVersion (state_store.go:2234): the newest versions, keeping a stable one."""
        key = (job["Namespace"], job["ID"])
        versions = [job, *(v for v in self.job_versions(*key) if v["Version"] != job["Version"])]
        versions.sort(key=lambda v: -int(v["Version"]))
        if len(versions) > TRACKED_VERSIONS:
            stable = next((i for i, v in enumerate(versions) if v["Stable"]), -1)
            if stable == TRACKED_VERSIONS:
                versions[stable - 1], versions[stable] = versions[stable], versions[stable - 1]
            for dropped in versions[TRACKED_VERSIONS:]:
                self.delete("job_submission", (*key, dropped["Version"]))
            versions = versions[:TRACKED_VERSIONS]
        self.put("job_version", key, tuple(versions))

    def delete_job(self, namespace: str, job_id: str) -> dict[str, Any] | None:
        """DeleteJob (purge): the job, its versions, summary, submissions and scaling events."""
        key = (namespace, job_id)
        job = self.delete("jobs", key)
        if job is None:
            return None
        for version in self.job_versions(*key):
            self.delete("job_submission", (*key, version["Version"]))
        self.delete("job_version", key)
        self.delete("job_summary", key)
        self.delete("scaling_event", key)
        self.delete("periodic_launch", key)
        self._parent_summary(job)
        return dict(job)

    def update_job_stability(self, namespace: str, job_id: str, version: int,
                             stable: bool) -> None:
        """UpdateJobStability: mark a version (and the job when it is current) stable."""
        key = (namespace, job_id)
        versions = tuple(s.evolve(v, Stable=stable) if v["Version"] == version else v
                         for v in self.job_versions(*key))
        self.put("job_version", key, versions)
        job = self.job_by_id(*key)
        if job is not None and job["Version"] == version and job["Stable"] != stable:
            self.put("jobs", key, s.evolve(job, Stable=stable, ModifyIndex=self.index))

    def _job_status(self, job: Mapping[str, Any]) -> str:
        """getJobStatus (state_store.go:5585)."""
        if job.get("Type") == "system" or s.is_parameterized(job) or s.is_periodic(job):
            return "dead" if job.get("Stop") else "running"
        key = (job["Namespace"], job["ID"])
        for dep in self.by("deployment", "job", key):
            if dep["Status"] in s.ACTIVE_DEPLOYMENT:
                return "running"
        for alloc in self.by("allocs", "job", key):
            if not s.terminal(alloc):
                return "running"
        has_eval = False
        for ev in self.by("evals", "job", key):
            if ev["Status"] not in s.TERMINAL_EVAL:
                return "pending"
            has_eval = True
        return "dead" if has_eval or job.get("Stop") else "pending"

    def refresh_job_status(self, namespace: str, job_id: str) -> None:
        """setJobStatus: recompute a job's status after its allocations or evaluations moved."""
        job = self.job_by_id(namespace, job_id)
        if job is None:
            return
        status = self._job_status(job)
        if status != job["Status"]:
            new = s.evolve(job, Status=status, ModifyIndex=self.index)
            self.put("jobs", (namespace, job_id), new)
            self._parent_summary(new)

    # --- summaries ----------------------------------------------------------------------------

    def _summary_with_job(self, job: Mapping[str, Any]) -> None:
        """updateSummaryWithJob: a summary per job, a zeroed entry per new group."""
        key = (job["Namespace"], job["ID"])
        summary = self.job_summary(*key)
        if summary is None or summary["CreateIndex"] != job["CreateIndex"]:
            summary = {"JobID": job["ID"], "Namespace": job["Namespace"], "Summary": {},
                       "Children": {"Pending": 0, "Running": 0, "Dead": 0},
                       "CreateIndex": job["CreateIndex"], "ModifyIndex": self.index}
        groups = dict(summary["Summary"])
        changed = False
        for group in job.get("TaskGroups") or ():
            if group["Name"] not in groups:
                groups[group["Name"]] = {"Queued": 0, "Complete": 0, "Failed": 0,
                                         "Running": 0, "Starting": 0, "Lost": 0, "Unknown": 0}
                changed = True
        if changed or self.job_summary(*key) is not summary:
            self.put("job_summary", key, s.evolve(summary, Summary=groups,
                                                   ModifyIndex=self.index))

    def _summary_with_alloc(self, alloc: Mapping[str, Any],
                            existing: Mapping[str, Any] | None) -> None:
        """updateSummaryWithAlloc (state_store.go:6046)."""
        key = (alloc["Namespace"], alloc["JobID"])
        summary = self.job_summary(*key)
        job = alloc.get("Job")
        if summary is None or job is None or summary["CreateIndex"] != job["CreateIndex"]:
            return
        group = dict(summary["Summary"].get(alloc["TaskGroup"]) or {})
        if not group:
            return
        status = alloc["ClientStatus"]
        if existing is None:
            if status != s.CLIENT_PENDING:
                return
            group["Starting"] += 1
            group["Queued"] = max(0, group["Queued"] - 1)
        elif existing["ClientStatus"] != status:
            counter = {"running": "Running", "failed": "Failed", "pending": "Starting",
                       "complete": "Complete", "lost": "Lost", "unknown": "Unknown"}
            if status in counter:
                group[counter[status]] += 1
            before = existing["ClientStatus"]
            if before in ("running", "pending", "lost", "unknown"):
                name = counter[before]
                group[name] = max(0, group[name] - 1)
        else:
            return
        self.put("job_summary", key, s.evolve(
            summary, Summary={**summary["Summary"], alloc["TaskGroup"]: group},
            ModifyIndex=self.index))

    def _parent_summary(self, child: Mapping[str, Any]) -> None:
        """The parent's Children counts (pending, running, dead) follow its children."""
        parent_id = child.get("ParentID")
        if not parent_id:
            return
        key = (child["Namespace"], parent_id)
        summary = self.job_summary(*key)
        if summary is None:
            return
        counts = {"Pending": 0, "Running": 0, "Dead": 0}
        for job in self.children(*key):
            name = {"pending": "Pending", "running": "Running"}.get(job["Status"], "Dead")
            counts[name] += 1
        if counts != summary["Children"]:
            self.put("job_summary", key, s.evolve(summary, Children=counts,
                                                   ModifyIndex=self.index))

    # --- evaluations --------------------------------------------------------------------------

    def upsert_eval(self, ev: Mapping[str, Any]) -> dict[str, Any]:
        """nestedUpsertEval (state_store.go:3474): indexes, queued counts, blocked evals."""
        existing = self.eval_by_id(ev["ID"])
        new = dict(ev)
        new["CreateIndex"] = existing["CreateIndex"] if existing else self.index
        new["ModifyIndex"] = self.index
        key = (new["Namespace"], new["JobID"])
        summary = self.job_summary(*key)
        queued = new.get("QueuedAllocations") or {}
        if summary is not None and queued:
            groups = dict(summary["Summary"])
            changed = False
            for name, count in queued.items():
                if name in groups and groups[name]["Queued"] != count:
                    groups[name] = {**groups[name], "Queued": count}
                    changed = True
            if changed:
                self.put("job_summary", key, s.evolve(summary, Summary=groups,
                                                       ModifyIndex=self.index))
        if new["Status"] == s.EVAL_COMPLETE and not new.get("FailedTGAllocs"):
            for other in self.evals_by_job(*key):
                if other["Status"] == s.EVAL_BLOCKED and other["ID"] != new["ID"]:
                    self.put("evals", other["ID"], s.evolve(
                        other, Status=s.EVAL_CANCELLED,
                        StatusDescription=f'evaluation "{new["ID"]}" successful',
                        ModifyIndex=self.index, ModifyTime=new["ModifyTime"]))
        self.put("evals", new["ID"], new)
        self.refresh_job_status(*key)
        return new

    # --- allocations --------------------------------------------------------------------------

    def upsert_alloc(self, alloc: Mapping[str, Any]) -> dict[str, Any]:
        """upsertAllocsImpl: indexes, summary, deployment counts, services of terminal allocs."""
        existing = self.alloc_by_id(alloc["ID"])
        new = dict(alloc)
        if existing is None:
            new["CreateIndex"] = self.index
            new["ModifyIndex"] = self.index
            new["AllocModifyIndex"] = self.index
        else:
            new["CreateIndex"] = existing["CreateIndex"]
            new["ModifyIndex"] = self.index
        self._deployment_with_alloc(new, existing)
        self._summary_with_alloc(new, existing)
        self._usage_with_alloc(new, existing)
        self.put("allocs", new["ID"], new)
        if s.client_terminal(new):
            self.delete_services_by_alloc(new["ID"])
        self.refresh_job_status(new["Namespace"], new["JobID"])
        return new

    def _usage_with_alloc(self, alloc: Mapping[str, Any],
                          existing: Mapping[str, Any] | None) -> None:
        """Keep each node's sum of what its live allocations hold (placement reads it)."""
        was = existing is not None and not s.terminal(existing)
        live = not s.terminal(alloc)
        moved = was and live and existing is not None and (
            existing["NodeID"] != alloc["NodeID"]
            or existing.get("AllocatedResources") is not alloc.get("AllocatedResources"))
        if was == live and not moved:
            return
        if was and existing is not None:
            self._node_usage(existing, -1)
        if live:
            self._node_usage(alloc, 1)

    def _node_usage(self, alloc: Mapping[str, Any], sign: int) -> None:
        usage = self.get("node_usage", alloc["NodeID"])
        usage = Usage() if usage is None else usage.copy()
        usage.add(alloc, sign)
        self.put("node_usage", alloc["NodeID"], usage)

    def _deployment_with_alloc(self, alloc: dict[str, Any],
                               existing: Mapping[str, Any] | None) -> None:
        """updateDeploymentWithAlloc (state_store.go:5945): placed/healthy/unhealthy counts."""
        dep_id = alloc.get("DeploymentID")
        dep = self.deployment_by_id(dep_id) if dep_id else None
        if dep is None or alloc["TaskGroup"] not in dep["TaskGroups"]:
            return
        placed = healthy = unhealthy = 0
        had_health = existing is not None and s.has_health(existing)
        if existing is None or existing.get("DeploymentID") != dep_id:
            placed = 1
        elif not had_health and s.has_health(alloc):
            if s.is_healthy(alloc):
                healthy = 1
            else:
                unhealthy = 1
        elif existing is not None and had_health and s.has_health(alloc) and (
                s.is_healthy(existing) and not s.is_healthy(alloc)):
            healthy, unhealthy = -1, 1
        if not (placed or healthy or unhealthy):
            return
        if alloc.get("DeploymentStatus") is not None and (healthy or unhealthy):
            alloc["DeploymentStatus"] = {**alloc["DeploymentStatus"], "ModifyIndex": self.index}
        state = dict(dep["TaskGroups"][alloc["TaskGroup"]])
        state["PlacedAllocs"] += placed
        state["HealthyAllocs"] += healthy
        state["UnhealthyAllocs"] += unhealthy
        if s.is_canary(alloc) and alloc["ID"] not in (state["PlacedCanaries"] or ()):
            state["PlacedCanaries"] = [*(state["PlacedCanaries"] or ()), alloc["ID"]]
        progress = int(state.get("ProgressDeadline") or 0)
        if progress:
            if placed and s.parse_rfc3339(state.get("RequireProgressBy")) == 0:
                state["RequireProgressBy"] = s.rfc3339(int(alloc["ModifyTime"]) + progress)
            elif healthy > 0:
                by = s.parse_rfc3339(alloc["DeploymentStatus"].get("Timestamp")) + progress
                if by > s.parse_rfc3339(state.get("RequireProgressBy")):
                    state["RequireProgressBy"] = s.rfc3339(by)
        self.put("deployment", dep["ID"], s.evolve(
            dep, TaskGroups={**dep["TaskGroups"], alloc["TaskGroup"]: state},
            ModifyIndex=self.index, ModifyTime=alloc["ModifyTime"]))

    def update_alloc_from_client(self, update: Mapping[str, Any]) -> dict[str, Any] | None:
        """nestedUpdateAllocFromClient: merge what a client reports into the allocation."""
        existing = self.alloc_by_id(update["ID"])
        if existing is None:
            return None
        new = dict(existing)
        for field in ("ClientStatus", "ClientDescription", "TaskStates", "NetworkStatus",
                      "AllocStates"):
            if field in update:
                new[field] = update[field]
        if update.get("DeploymentStatus") is not None:
            # The client reports health; the server owns Canary (cleared on promotion).
            new["DeploymentStatus"] = {
                **(existing.get("DeploymentStatus") or {"Canary": False, "ModifyIndex": 0}),
                **update["DeploymentStatus"]}
        new["ModifyTime"] = update.get("ModifyTime") or s.now_ns()
        return self.upsert_alloc(new)

    # --- deployments --------------------------------------------------------------------------

    def upsert_deployment(self, dep: Mapping[str, Any]) -> dict[str, Any]:
        """upsertDeploymentImpl."""
        existing = self.deployment_by_id(dep["ID"])
        new = dict(dep)
        new["CreateIndex"] = existing["CreateIndex"] if existing else self.index
        new["ModifyIndex"] = self.index
        self.put("deployment", new["ID"], new)
        self.refresh_job_status(new["Namespace"], new["JobID"])
        return new

    def update_deployment_status(self, deployment_id: str, status: str,
                                 description: str) -> dict[str, Any] | None:
        """updateDeploymentStatusImpl; a successful deployment marks its job version stable."""
        dep = self.deployment_by_id(deployment_id)
        if dep is None:
            return None
        new = self.upsert_deployment(s.evolve(dep, Status=status,
                                              StatusDescription=description,
                                              ModifyTime=s.now_ns()))
        if status == s.DEPLOYMENT_SUCCESSFUL:
            self.update_job_stability(dep["Namespace"], dep["JobID"], dep["JobVersion"], True)
        return new

    # --- service registrations ------------------------------------------------------------------

    def upsert_service(self, reg: Mapping[str, Any]) -> None:
        """upsertServiceRegistrationTxn."""
        existing = self.get("service_registrations", reg["ID"])
        new = dict(reg)
        new["CreateIndex"] = existing["CreateIndex"] if existing else self.index
        new["ModifyIndex"] = self.index
        self.put("service_registrations", new["ID"], new)

    def delete_service(self, service_id: str) -> bool:
        """deleteServiceRegistrationByIDTxn."""
        return self.delete("service_registrations", service_id) is not None

    def delete_services_by_alloc(self, alloc_id: str) -> None:
        """deleteServiceRegistrationByAllocIDTxn."""
        for reg in self.services_by_alloc(alloc_id):
            self.delete("service_registrations", reg["ID"])

    # --- nodes, scaling, periodic ---------------------------------------------------------------

    def upsert_node(self, node: Mapping[str, Any]) -> None:
        """UpsertNode."""
        existing = self.node_by_id(node["ID"])
        new = dict(node)
        new["CreateIndex"] = existing["CreateIndex"] if existing else self.index
        new["ModifyIndex"] = self.index
        self.put("nodes", new["ID"], new)

    def upsert_scaling_event(self, namespace: str, job_id: str, group: str,
                             event: Mapping[str, Any]) -> None:
        """UpsertScalingEvent: newest first, at most 20 per group (structs.JobTrackedScalingEvents)."""
        key = (namespace, job_id)
        current = dict(self.scaling_events(*key) or {})
        events = [{**event, "CreateIndex": self.index}, *(current.get(group) or ())][:20]
        current[group] = events
        self.put("scaling_event", key, current)

    def set_variable(self, namespace: str, path: str, items: Mapping[str, str],
                     cas: int | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """VarSet / VarSetCAS (state_store_variables.go): (stored, conflict)."""
        key = (namespace, path)
        existing = self.variable(*key)
        if cas is not None and ((cas == 0 and existing is not None) or (
                cas != 0 and (existing is None or existing["ModifyIndex"] != cas))):
            return None, existing or _empty_variable(namespace, path)
        now = s.now_ns()
        var = {"Namespace": namespace, "Path": path, "Items": dict(items),
               "CreateIndex": existing["CreateIndex"] if existing else self.index,
               "CreateTime": existing["CreateTime"] if existing else now,
               "ModifyIndex": self.index, "ModifyTime": now}
        self.put("variables", key, var)
        return var, None

    def delete_variable(self, namespace: str, path: str,
                        cas: int | None) -> dict[str, Any] | None:
        """VarDelete / VarDeleteCAS: the conflicting variable, or None when done."""
        key = (namespace, path)
        existing = self.variable(*key)
        if cas is not None and ((cas == 0 and existing is not None) or (
                cas != 0 and (existing is None or existing["ModifyIndex"] != cas))):
            return existing or _empty_variable(namespace, path)
        self.delete("variables", key)
        return None

    def upsert_periodic_launch(self, namespace: str, job_id: str, launch_ns: int) -> None:
        """UpsertPeriodicLaunch."""
        key = (namespace, job_id)
        existing = self.get("periodic_launch", key)
        self.put("periodic_launch", key, {
            "ID": job_id, "Namespace": namespace, "Launch": s.rfc3339(launch_ns),
            "CreateIndex": existing["CreateIndex"] if existing else self.index,
            "ModifyIndex": self.index})


def _empty_variable(namespace: str, path: str) -> dict[str, Any]:
    return {"Namespace": namespace, "Path": path, "Items": None, "CreateIndex": 0,
            "CreateTime": 0, "ModifyIndex": 0, "ModifyTime": 0}


class StateStore:
    """The state of one emulated region: snapshots for readers, one writer at a time."""

    def __init__(self) -> None:
        self._write_lock = threading.Lock()
        self._root = _Root(1, {t: {} for t in TABLES},
                           {(t, name): {} for t, names in _INDEXES.items() for name in names},
                           {t: 1 for t in TABLES}, {t: 1 for t in TABLES})
        self.watches = Watches()
        # Called after every commit with the keys it touched and its index, on the committing
        # thread: the server's own watchers (worker, deployment watcher, clients) hand work to
        # their loop from here.
        self.listeners: list[Callable[[set[WatchKey], int], None]] = []
        # Called inside the write, before its snapshot is visible (keep them quick): caches
        # that must never serve a snapshot newer than what they were told.
        self.precommit: list[Callable[[set[WatchKey], int], None]] = []

    @property
    def index(self) -> int:
        """The latest raft index."""
        return self._root.index

    def snapshot(self) -> Snapshot:
        """A consistent view of the latest state (no lock held, never changes)."""
        return Snapshot(self._root)

    @contextmanager
    def txn(self) -> Iterator[Txn]:
        """One atomic write; nothing of it is visible unless the block finishes normally."""
        with self._write_lock:
            txn = Txn(self._root)
            yield txn
            for hook in self.precommit:
                hook(txn.touched, txn.index)
            self._root = txn._root
        self.watches.fire(txn.touched, txn.index)
        for listener in self.listeners:
            listener(txn.touched, txn.index)

    def scratch(self) -> Txn:
        """A write that is never committed, for dry runs (`/plan`)."""
        return Txn(self._root)
