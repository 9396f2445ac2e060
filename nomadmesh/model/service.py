"""Service registrations (Consul or Nomad) and their health checks (api/services.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    BLOCK,
    BLOCKS,
    BOOL,
    DURATION,
    INT,
    MAP,
    MAP_STRS,
    SECOND,
    STRS,
    duration_value,
    evolve,
    field,
    go,
    side,
    strings,
    to_duration,
    to_tuple,
)
from nomadmesh.model._copy import copier
from nomadmesh.model.connect import ConsulConnect
from nomadmesh.model.identity import WorkloadIdentity


@_base.frozen(slots=False, repr=False)
class CheckRestart:
    """Restart a task whose check stays unhealthy (`check_restart` block)."""

    _go: ClassVar[str] = "CheckRestart"

    limit: int | None = field("Limit", INT)
    grace: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                    metadata=go("Grace", DURATION, ptr=True))
    ignore_warnings: bool | None = field("IgnoreWarnings", BOOL)

    def merged(self, override: CheckRestart | None) -> CheckRestart:
        """api/services.go:172 CheckRestart.Merge: a positive limit, a grace, true wins."""
        if override is None:
            return self
        return evolve(
            self,
            limit=override.limit if override.limit is not None and override.limit > 0 else self.limit,
            grace=override.grace if override.grace is not None else self.grace,
            ignore_warnings=True if override.ignore_warnings else self.ignore_warnings,
        )

    def canonicalize(self) -> CheckRestart:
        """api/services.go:144 CheckRestart.Canonicalize: 1s grace."""
        return self if self.grace is not None else evolve(self, grace=SECOND)


@_base.frozen(slots=False, repr=False)
class Check:
    """A health check of a service (`check` block)."""

    _go: ClassVar[str] = "ServiceCheck"

    name: str | None = field("Name")
    type: str | None = field("Type")
    command: str | None = field("Command")
    args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                        metadata=go("Args", STRS))
    path: str | None = field("Path")
    protocol: str | None = field("Protocol")
    port: str | None = field("PortLabel", hcl="port")
    expose: bool | None = field("Expose", BOOL)
    address_mode: str | None = field("AddressMode")
    advertise: str | None = field("Advertise")
    interval: int | None = attrs.field(default=None, kw_only=True, converter=duration_value,
                                       metadata=go("Interval", DURATION))
    timeout: int | None = attrs.field(default=None, kw_only=True, converter=duration_value,
                                      metadata=go("Timeout", DURATION))
    initial_status: str | None = field("InitialStatus")
    notes: str | None = field("Notes")
    tls_server_name: str | None = field("TLSServerName")
    tls_skip_verify: bool | None = field("TLSSkipVerify", BOOL)
    header: Mapping[str, Sequence[str]] = field("Header", MAP_STRS)
    method: str | None = field("Method")
    check_restart: CheckRestart | None = field("CheckRestart", BLOCK, block=CheckRestart)
    grpc_service: str | None = field("GRPCService")
    grpc_use_tls: bool | None = field("GRPCUseTLS", BOOL)
    task: str | None = field("TaskName", hcl="task")
    success_before_passing: int | None = field("SuccessBeforePassing", INT)
    failures_before_critical: int | None = field("FailuresBeforeCritical", INT)
    failures_before_warning: int | None = field("FailuresBeforeWarning", INT)
    body: str | None = field("Body")
    on_update: str | None = field("OnUpdate")


def _checks(value: Iterable[Check] | None) -> tuple[Check, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ServiceWeights:
    """DNS SRV weights of a Consul service by health (`weights` block)."""

    _go: ClassVar[str] = "ServiceWeights"

    passing: int | None = field("Passing", INT)
    warning: int | None = field("Warning", INT)

    def canonicalize(self) -> ServiceWeights:
        """api/services.go:348 ServiceWeights.Canonicalize: at least 1 each."""
        return evolve(self, passing=self.passing if self.passing and self.passing > 0 else 1,
                      warning=self.warning if self.warning and self.warning > 0 else 1)


@_base.frozen(slots=False, repr=False)
class Service:
    """A service registration for a group or task (`service` block)."""

    _go: ClassVar[str] = "Service"
    # structs.Service.Namespace: the server fills it in from the job (nomad/structs/services.go).
    _server: ClassVar[frozenset[str]] = frozenset({"Namespace"})

    name: str | None = field("Name")
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                        metadata=go("Tags", STRS))
    canary_tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                               metadata=go("CanaryTags", STRS))
    enable_tag_override: bool | None = field("EnableTagOverride", BOOL)
    port: str | None = field("PortLabel", hcl="port")
    address_mode: str | None = field("AddressMode")
    address: str | None = field("Address")
    checks: tuple[Check, ...] = attrs.field(default=(), kw_only=True, converter=_checks,
                                            metadata=go("Checks", BLOCKS, hcl="check", block=Check))
    check_restart: CheckRestart | None = field("CheckRestart", BLOCK, block=CheckRestart)
    connect: ConsulConnect | None = field("Connect", BLOCK, block=ConsulConnect)
    meta: Mapping[str, str] = field("Meta", MAP)
    canary_meta: Mapping[str, str] = field("CanaryMeta", MAP)
    tagged_addresses: Mapping[str, str] = field("TaggedAddresses", MAP)
    task: str | None = field("TaskName", hcl="task")
    on_update: str | None = field("OnUpdate")
    identity: WorkloadIdentity | None = field("Identity", BLOCK, block=WorkloadIdentity)
    weights: ServiceWeights | None = field("Weights", BLOCK, block=ServiceWeights)
    provider: str | None = field("Provider")
    cluster: str | None = field("Cluster")
    kind: str | None = field("Kind")
    server: Mapping[str, Any] = side()

    def canonicalize(self, job_name: str, group_name: str, task_name: str | None = None) -> Service:
        """api/services.go:274 Service.Canonicalize(t, tg, job): name, modes, check defaults."""
        name = self.name
        if not name:
            name = f"{job_name}-{group_name}" + (f"-{task_name}" if task_name is not None else "")
        on_update = self.on_update or "require_healthy"
        checks = []
        for check in self.checks:
            restart = (self.check_restart.merged(check.check_restart) if self.check_restart is not None
                       else check.check_restart)
            checks.append(_canonical_check(
                check,
                restart.canonicalize() if restart is not None else None,
                _not_negative(check.success_before_passing),
                _not_negative(check.failures_before_critical),
                _not_negative(check.failures_before_warning),
                check.on_update or on_update,
            ))
        return _canonical_service(
            self,
            name,
            self.address_mode or "auto",
            on_update,
            self.provider or "consul",
            self.cluster or "default",
            self.connect.canonicalize() if self.connect is not None else None,
            self.weights.canonicalize() if self.weights is not None else None,
            tuple(checks),
        )


# Service.canonicalize's copies (see nomadmesh.model._copy), in the order of their arguments.
_canonical_check = copier(Check, (
    "check_restart", "success_before_passing", "failures_before_critical",
    "failures_before_warning", "on_update"), globals(), "_canonical_check")
_canonical_service = copier(Service, (
    "name", "address_mode", "on_update", "provider", "cluster", "connect", "weights", "checks"),
    globals(), "_canonical_service")


def _not_negative(value: int | None) -> int | None:
    return None if value is not None and value < 0 else value


def services(value: Iterable[Service] | None) -> tuple[Service, ...]:
    """Converter: any iterable of services becomes a tuple."""
    return to_tuple(value)


