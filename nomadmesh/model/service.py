"""Service registrations (Consul or Nomad) and their health checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import SECOND, Kind, extra_fields, field

CHECK_TYPES = ("http", "tcp", "script", "grpc")
ADDRESS_MODES = ("alloc", "auto", "driver", "host")
# Consul service names: letters, digits and dashes; Nomad interpolations are allowed inside.
_SERVICE_NAME = re.compile(r"^(?:[A-Za-z0-9-]|\$\{[^}]+\})+$")


@attrs.frozen(slots=False)
class CheckRestart:
    """Restart a task whose check stays unhealthy (`check_restart` block)."""

    limit: int | None = field("Limit", Kind.INT)
    grace: int | None = field("Grace", Kind.DURATION)
    ignore_warnings: bool | None = field("IgnoreWarnings", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if isinstance(self.limit, int) and self.limit < 0:
            yield Problem(f"{path}.limit", "limit cannot be negative")


@attrs.frozen(slots=False)
class Check:
    """A health check of a service (`check` block)."""

    type: str | None = field("Type", Kind.STR)
    name: str | None = field("Name", Kind.STR)
    port: str | None = field("PortLabel", Kind.STR)
    path: str | None = field("Path", Kind.STR)
    protocol: str | None = field("Protocol", Kind.STR)
    method: str | None = field("Method", Kind.STR)
    header: dict[str, object] | None = field("Header", Kind.ANY, hcl_block=True)
    body: str | None = field("Body", Kind.STR)
    command: str | None = field("Command", Kind.STR)
    args: tuple[str, ...] = field("Args", Kind.STRS)
    interval: int | None = field("Interval", Kind.DURATION)
    timeout: int | None = field("Timeout", Kind.DURATION)
    initial_status: str | None = field("InitialStatus", Kind.STR)
    address_mode: str | None = field("AddressMode", Kind.STR)
    expose: bool | None = field("Expose", Kind.BOOL)
    grpc_service: str | None = field("GRPCService", Kind.STR)
    grpc_use_tls: bool | None = field("GRPCUseTLS", Kind.BOOL)
    tls_server_name: str | None = field("TLSServerName", Kind.STR)
    tls_skip_verify: bool | None = field("TLSSkipVerify", Kind.BOOL)
    task: str | None = field("TaskName", Kind.STR)
    success_before_passing: int | None = field("SuccessBeforePassing", Kind.INT)
    failures_before_critical: int | None = field("FailuresBeforeCritical", Kind.INT)
    failures_before_warning: int | None = field("FailuresBeforeWarning", Kind.INT)
    on_update: str | None = field("OnUpdate", Kind.STR)
    check_restart: CheckRestart | None = field("CheckRestart", Kind.BLOCK, block=CheckRestart)
    extra: dict[str, object] = extra_fields()

    def problems(self, path: str) -> Iterator[Problem]:
        kind = self.type
        if kind not in CHECK_TYPES:
            yield Problem(f"{path}.type", f"check type {kind!r} must be one of "
                          + ", ".join(CHECK_TYPES))
        if kind == "http" and not self.path:
            yield Problem(f"{path}.path", "an http check needs a path")
        if kind == "script" and not self.command:
            yield Problem(f"{path}.command", "a script check needs a command")
        if isinstance(self.interval, int) and self.interval < SECOND:
            yield Problem(f"{path}.interval", "interval must be at least 1s")
        if self.interval is None:
            yield Problem(f"{path}.interval", "a check needs an interval")
        if self.timeout is None:
            yield Problem(f"{path}.timeout", "a check needs a timeout")
        elif isinstance(self.timeout, int) and self.timeout < SECOND:
            yield Problem(f"{path}.timeout", "timeout must be at least 1s")
        if self.initial_status not in (None, "", "passing", "warning", "critical"):
            yield Problem(f"{path}.initial_status",
                          f"{self.initial_status!r} must be passing, warning or critical")
        if self.address_mode not in (None, "", *ADDRESS_MODES):
            yield Problem(f"{path}.address_mode", f"{self.address_mode!r} is not an address mode")
        if self.on_update not in (None, "", "require_healthy", "ignore_warnings", "ignore"):
            yield Problem(f"{path}.on_update", f"{self.on_update!r} is not an on_update mode")


@attrs.frozen(slots=False)
class Service:
    """A service registration for a group or task (`service` block)."""

    name: str | None = field("Name", Kind.STR)
    port: str | None = field("PortLabel", Kind.STR)
    provider: str | None = field("Provider", Kind.STR)
    tags: tuple[str, ...] = field("Tags", Kind.STRS)
    canary_tags: tuple[str, ...] = field("CanaryTags", Kind.STRS)
    enable_tag_override: bool | None = field("EnableTagOverride", Kind.BOOL)
    address: str | None = field("Address", Kind.STR)
    address_mode: str | None = field("AddressMode", Kind.STR)
    task: str | None = field("TaskName", Kind.STR)
    on_update: str | None = field("OnUpdate", Kind.STR)
    meta: dict[str, str] = field("Meta", Kind.MAP)
    canary_meta: dict[str, str] = field("CanaryMeta", Kind.MAP)
    tagged_addresses: dict[str, str] = field("TaggedAddresses", Kind.MAP)
    checks: tuple[Check, ...] = field("Checks", Kind.BLOCKS, hcl="check", block=Check)
    check_restart: CheckRestart | None = field("CheckRestart", Kind.BLOCK, block=CheckRestart)
    # Consul Connect is passed through loosely: kept in Nomad's JSON form, round-tripped exactly.
    connect: dict[str, object] | None = field("Connect", Kind.ANY)
    extra: dict[str, object] = extra_fields()

    def problems(self, path: str) -> Iterator[Problem]:
        if self.name is not None and not _SERVICE_NAME.match(self.name):
            yield Problem(f"{path}.name", f"service name {self.name!r} may only hold letters, "
                          "digits, dashes and ${...} interpolations")
        if self.provider not in (None, "", "consul", "nomad"):
            yield Problem(f"{path}.provider", f"provider {self.provider!r} must be consul or nomad")
        if self.address_mode not in (None, "", *ADDRESS_MODES):
            yield Problem(f"{path}.address_mode", f"{self.address_mode!r} is not an address mode")
        if self.provider == "nomad" and self.connect:
            yield Problem(f"{path}.connect", "Consul Connect needs provider consul")
