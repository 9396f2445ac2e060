"""Service registration by an emulated client, in Consul or in Nomad (`provider = "nomad"`).

As command/agent/consul/service_client.go and client/serviceregistration/nsd: each service of
a group or task becomes one registration with ID `_nomad-task-<alloc>-<task|group-<group>>-
<service>-<port label>` (client/serviceregistration/id.go:27), the address and port of its
port label (the node address when it has none), its tags (canary tags for a canary) and meta
(`external-source: nomad` in Consul). Consul gets the checks too; Nomad-native checks are kept
by the client (`check_statuses`) and only affect the allocation's health.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import attrs

from nomadmesh.testing.server.structs import duration_text

_VARIABLE = re.compile(r"\$\{([A-Za-z_.]+)\}")


@attrs.frozen
class Registration:
    """One service instance of an allocation."""

    id: str
    name: str
    provider: str
    task: str  # "" for a group service
    service: Mapping[str, Any]
    address: str
    port: int
    tags: tuple[str, ...]
    meta: Mapping[str, str]
    ports: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    def check_target(self, check: Mapping[str, Any]) -> tuple[str, int]:
        """A check's address and port: its own port label, else the service's.

        service_client.go:1507 (checks without a custom address use the host address).
        """
        label = check.get("PortLabel") or self.service.get("PortLabel") or ""
        port = self.ports.get(label)
        if port is None:
            return self.address, self.port
        address = self.address if self.service.get("Address") else str(port["HostIP"])
        return address, int(port["Value"])


def check_id(service_id: str, check: Mapping[str, Any]) -> str:
    """MakeCheckID: a stable ID per service and check definition."""
    digest = hashlib.sha1(f"{service_id}/{check.get('Name')}/{check.get('Type')}/"
                          f"{check.get('Path')}/{check.get('PortLabel')}".encode()).hexdigest()
    return f"_nomad-check-{digest}"


def service_name(alloc: Mapping[str, Any], service: Mapping[str, Any], task: str) -> str:
    """The service's name with `${NOMAD_*}`, `${JOB}`, `${TASK}`... interpolated."""
    job = alloc["Job"]
    name = service.get("Name") or f"{job['Name']}-{alloc['TaskGroup']}" + (
        f"-{task}" if task else "")
    values = {"JOB": job["Name"], "TASKGROUP": alloc["TaskGroup"], "TASK": task,
              "NOMAD_JOB_NAME": job["Name"], "NOMAD_JOB_ID": job["ID"],
              "NOMAD_GROUP_NAME": alloc["TaskGroup"], "NOMAD_TASK_NAME": task,
              "NOMAD_NAMESPACE": job["Namespace"], "NOMAD_REGION": job.get("Region", ""),
              "BASE": f"{job['Name']}-{alloc['TaskGroup']}-{task}"}
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), str(name))


def registrations(alloc: Mapping[str, Any], group: Mapping[str, Any], node: Mapping[str, Any],
                  task: str | None) -> list[Registration]:
    """The services of the group (task None) or of one task, as the client registers them."""
    shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
    ports = {p["Label"]: p for p in shared.get("Ports") or ()}
    node_address = (node.get("Attributes") or {}).get("unique.network.ip-address", "127.0.0.1")
    canary = bool((alloc.get("DeploymentStatus") or {}).get("Canary"))
    if task is None:
        services = list(group.get("Services") or ())
        workload = f"group-{group['Name']}"
    else:
        spec: Mapping[str, Any] = next((t for t in group.get("Tasks") or ()
                                        if t["Name"] == task), {})
        services = list(spec.get("Services") or ())
        workload = task
    out = []
    for service in services:
        name = service_name(alloc, service, task or "")
        label = service.get("PortLabel") or ""
        port = ports.get(label)
        tags = tuple(service.get("CanaryTags") if canary and service.get("CanaryTags")
                     else service.get("Tags") or ())
        meta = dict(service.get("CanaryMeta") if canary and service.get("CanaryMeta")
                    else service.get("Meta") or {})
        provider = service.get("Provider") or "consul"
        if provider == "consul":
            meta["external-source"] = "nomad"
        out.append(Registration(
            id=f"_nomad-task-{alloc['ID']}-{workload}-{name}-{label}", name=name,
            provider=provider, task=task or "", service=service,
            address=str(service.get("Address") or (port["HostIP"] if port else node_address)),
            port=int(port["Value"]) if port else 0, tags=tags, meta=meta, ports=ports))
    return out


def consul_definition(reg: Registration, critical: bool, runner_checks: bool) -> dict[str, Any]:
    """The `/v1/agent/service/register` body for a registration (createCheckReg for checks)."""
    checks = []
    for check in reg.service.get("Checks") or ():
        kind = check.get("Type") or "http"
        definition: dict[str, Any] = {
            "CheckID": check_id(reg.id, check), "Name": check.get("Name") or (
                f'service: "{reg.name}" check'),
            "Interval": duration_text(int(check.get("Interval") or 10_000_000_000)),
            "Timeout": duration_text(int(check.get("Timeout") or 2_000_000_000)),
        }
        address, port = reg.check_target(check)
        if kind == "http":
            path = str(check.get("Path") or "/")
            scheme = check.get("Protocol") or "http"
            definition["HTTP"] = f"{scheme}://{address}:{port}{path}"
            if check.get("Method"):
                definition["Method"] = check["Method"]
        elif kind == "tcp":
            definition["TCP"] = f"{address}:{port}"
        elif kind == "grpc":
            definition["GRPC"] = f"{address}:{port}/{check.get('GRPCService') or ''}"
        else:
            definition["TTL"] = duration_text(int(check.get("Interval") or 10_000_000_000)
                                              + 31_000_000_000)
        probed = kind in ("http", "tcp")
        if critical or (runner_checks and probed):
            definition["Status"] = "critical"
        else:
            definition["Status"] = check.get("InitialStatus") or "passing"
        checks.append(definition)
    return {"ID": reg.id, "Name": reg.name, "Tags": list(reg.tags), "Address": reg.address,
            "Port": reg.port, "Meta": dict(reg.meta), "Checks": checks}


def nomad_registration(reg: Registration, alloc: Mapping[str, Any],
                       node: Mapping[str, Any]) -> dict[str, Any]:
    """The structs.ServiceRegistration the client upserts for a Nomad-native service."""
    return {"ID": reg.id, "ServiceName": reg.name, "Namespace": alloc["Namespace"],
            "NodeID": node["ID"], "Datacenter": node["Datacenter"], "JobID": alloc["JobID"],
            "AllocID": alloc["ID"], "Tags": list(reg.tags) or None, "Address": reg.address,
            "Port": reg.port, "CreateIndex": 0, "ModifyIndex": 0}
