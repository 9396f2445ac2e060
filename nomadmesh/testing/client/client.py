"""The emulated client agents: they run what the server placed on their nodes.

As client/client.go's alloc watcher, the `Client` follows the allocations of its nodes from
the state store's commits (only those whose server side changed: `AllocModifyIndex`), starts an
`AllocRunner` for each new one, hands updates (in-place changes, stops) to it, and sends what
the runners report back in one write per loop turn (`Node.UpdateAlloc`). It registers services
in Consul (when linked to a Consul emulator) or in Nomad's own catalog, and builds each task's
runtime environment (`NOMAD_*` variables, client/taskenv).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing.client import services as svc
from nomadmesh.testing.client.allocrunner import AllocRunner
from nomadmesh.testing.client.runner import FAILURES, TaskRunner, TaskScript
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.reconciler import reschedule_eligible
from nomadmesh.testing.server.state import Txn
from nomadmesh.testing.watch import WatchKey

if TYPE_CHECKING:
    from nomadmesh.testing.consul import ConsulEmulator
    from nomadmesh.testing.server.server import Server


class Client:
    """The client agents of every emulated node."""

    def __init__(self, server: Server, runner: TaskRunner,
                 consul: ConsulEmulator | None) -> None:
        self.server = server
        self.loop = server.loop
        self.timings = server.timings
        self.runner = runner
        self.consul = consul
        self.runners: dict[str, AllocRunner] = {}
        self._seen: dict[str, int] = {}
        self._scripts: dict[tuple[str, str, str, str], TaskScript] = {}
        self._scripts_lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        server.state.listeners.append(self.on_commit)

    # --- scripted failures ------------------------------------------------------------------

    def script_task(self, namespace: str, job_id: str, group: str, task: str,
                    script: TaskScript) -> None:
        """Make the next allocations' task fail as scripted."""
        if script.fail not in FAILURES:
            raise ValueError(f"fail must be one of {', '.join(FAILURES)}, not {script.fail!r}")
        with self._scripts_lock:
            self._scripts[(namespace, job_id, group, task)] = script

    def clear_scripts(self) -> None:
        """Forget every scripted failure."""
        with self._scripts_lock:
            self._scripts.clear()

    def script_for(self, alloc: Mapping[str, Any], task: str) -> TaskScript | None:
        """The script that applies to this task of this allocation (uses up `times`)."""
        with self._scripts_lock:
            script = self._scripts.get((alloc["Namespace"], alloc["JobID"], alloc["TaskGroup"],
                                        task))
            if script is None or (script.version is not None
                                  and script.version != alloc["Job"]["Version"]):
                return None
            if script.times is not None:
                if script.times <= 0:
                    return None
                script.times -= 1
            return script

    # --- following the server ---------------------------------------------------------------

    def on_commit(self, keys: set[WatchKey], index: int) -> None:
        """Commit listener: allocations that changed."""
        ids = [k[1] for k in keys if len(k) == 2 and k[0] == "allocs"]
        if ids:
            self.loop.call_soon(lambda: self.sync(ids))

    def restore(self) -> None:
        """Pick up every allocation of the state (after a restart)."""
        self.sync([a["ID"] for a in self.server.state.snapshot().all("allocs")])

    def sync(self, alloc_ids: list[str]) -> None:
        """Start, update or stop the runners of these allocations."""
        snap = self.server.state.snapshot()
        for alloc_id in alloc_ids:
            alloc = snap.alloc_by_id(alloc_id)
            if alloc is None:
                continue
            modify = int(alloc.get("AllocModifyIndex") or 0)
            if self._seen.get(alloc_id) == modify:
                continue
            self._seen[alloc_id] = modify
            runner = self.runners.get(alloc_id)
            if runner is not None:
                runner.update(alloc)
                continue
            if s.terminal(alloc):
                continue
            node = snap.node_by_id(alloc["NodeID"])
            if node is None:
                continue
            runner = AllocRunner(self, alloc, node)
            self.runners[alloc_id] = runner
            runner.run()

    def runner_of(self, alloc_id: str) -> AllocRunner | None:
        """The alloc runner of an allocation (None when this client never ran it)."""
        return self.runners.get(alloc_id)

    # --- reporting ------------------------------------------------------------------------------

    def update_alloc(self, update: dict[str, Any]) -> None:
        """Node.UpdateAlloc: queue what a runner reports; one write per loop turn."""
        with self._pending_lock:
            previous = self._pending.get(update["ID"])
            if previous is not None and "DeploymentStatus" in previous:
                update = {"DeploymentStatus": previous["DeploymentStatus"], **update}
            self._pending[update["ID"]] = update
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            self._flush_scheduled = False
        if not pending:
            return

        self.server.write(lambda txn: update_allocs(txn, pending.values(),
                                                    self.timings.scale))

    # --- services -------------------------------------------------------------------------------

    def register_service(self, reg: svc.Registration, runner: AllocRunner,
                         critical: bool) -> None:
        """Register one service instance in its provider."""
        if reg.provider == "nomad":
            runner.check_statuses.update({
                svc.check_id(reg.id, c): "critical" if critical or (
                    self.runner.runs_checks and c.get("Type") in ("http", "tcp")) else "passing"
                for c in reg.service.get("Checks") or ()})
            registration = svc.nomad_registration(reg, runner.alloc, runner.node)
            self.server.write(lambda txn: txn.upsert_service(registration))
        elif self.consul is not None:
            self.consul.register_definition(svc.consul_definition(reg, critical,
                                                                  self.runner.runs_checks))

    def deregister_service(self, reg: svc.Registration) -> None:
        """Remove one service instance from its provider."""
        if reg.provider == "nomad":
            self.server.write(lambda txn: txn.delete_service(reg.id))
        elif self.consul is not None and reg.id in self.consul.service_ids():
            self.consul.deregister(reg.id)

    def check_status(self, reg: svc.Registration, check_id: str, runner: AllocRunner) -> str:
        """The status of one check of a registered service."""
        if reg.provider == "nomad":
            return runner.check_statuses.get(check_id, "critical")
        if self.consul is None:
            return "passing"
        return self.consul.check_status(check_id) or "critical"

    # --- the task environment (client/taskenv) ------------------------------------------------

    def task_env(self, alloc: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, str]:
        """The NOMAD_* variables every task of the allocation gets."""
        job = alloc["Job"]
        index = s.alloc_index(alloc)
        env = {
            "NOMAD_ALLOC_ID": alloc["ID"], "NOMAD_SHORT_ALLOC_ID": alloc["ID"][:8],
            "NOMAD_ALLOC_NAME": alloc["Name"], "NOMAD_ALLOC_INDEX": str(index),
            "NOMAD_JOB_ID": job["ID"], "NOMAD_JOB_NAME": job["Name"],
            "NOMAD_GROUP_NAME": alloc["TaskGroup"], "NOMAD_NAMESPACE": job["Namespace"],
            "NOMAD_REGION": job.get("Region", ""), "NOMAD_DC": node["Datacenter"],
            "NOMAD_JOB_PARENT_ID": job.get("ParentID") or "",
        }
        shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
        for port in shared.get("Ports") or ():
            label = port["Label"]
            env[f"NOMAD_PORT_{label}"] = str(port["To"] if port.get("To", 0) > 0
                                             else port["Value"])
            env[f"NOMAD_HOST_PORT_{label}"] = str(port["Value"])
            env[f"NOMAD_IP_{label}"] = port["HostIP"]
            env[f"NOMAD_ADDR_{label}"] = f"{port['HostIP']}:{port['Value']}"
            env[f"NOMAD_HOST_IP_{label}"] = port["HostIP"]
            env[f"NOMAD_HOST_ADDR_{label}"] = f"{port['HostIP']}:{port['Value']}"
        group = s.lookup_group(job, alloc["TaskGroup"]) or {}
        for key, value in {**(job.get("Meta") or {}), **(group.get("Meta") or {})}.items():
            env[f"NOMAD_META_{key}"] = str(value)
            env[f"NOMAD_META_{key.upper()}"] = str(value)
        return env


def update_allocs(txn: Txn, updates: Iterable[Mapping[str, Any]], scale: float) -> None:
    """Node.UpdateAlloc (nomad/node_endpoint.go:1520): store what clients report; a failed
    allocation that may be rescheduled gets an `alloc-failure` evaluation, one whose job is
    gone is stopped."""
    now = s.now_ns()
    for update in updates:
        existing = txn.alloc_by_id(update["ID"])
        if existing is None:
            continue
        update = {**update, "ModifyTime": now}
        job = txn.job_by_id(existing["Namespace"], existing["JobID"])
        trigger = ""
        if update.get("ClientStatus") in s.TERMINAL_CLIENT:
            if job is None:
                trigger = s.TRIGGER_JOB_DEREGISTER
            elif (update["ClientStatus"] == s.CLIENT_FAILED and not existing.get("FollowupEvalID")
                  and s.lookup_group(job, existing["TaskGroup"]) is not None
                  and reschedule_eligible(s.evolve(existing, Job=job), now, scale)):
                trigger = s.TRIGGER_RETRY_FAILED_ALLOC
        stored = txn.update_alloc_from_client(update)
        if trigger == s.TRIGGER_JOB_DEREGISTER and stored is not None:
            txn.upsert_alloc(s.evolve(stored, DesiredStatus=s.DESIRED_STOP))
        if trigger:
            txn.upsert_eval(s.new_eval(job or existing["Job"], trigger))
