"""Networking: a group's (or, deprecated, a task's) network mode, DNS, CNI and ports
(api/resources.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    BLOCK,
    BLOCKS,
    BOOL,
    INT,
    MAP,
    STRS,
    field,
    go,
    label,
    strings,
    to_tuple,
)


@_base.frozen(slots=False, repr=False)
class Port:
    """A port label; `static` reserves a fixed host port, otherwise Nomad picks one.

    In Nomad's JSON a port with `static` is listed under ReservedPorts (as `Value`), one without
    under DynamicPorts, as Nomad's HCL parser sorts them; the model keeps both in one list so a
    label exists once. A `Value` Nomad reports on a dynamic port is the port it picked, not part
    of the job, and is not kept.
    """

    _go: ClassVar[str] = "Port"

    label: str = label("Label")
    static: int | None = field("Value", INT, hcl="static")
    to: int | None = field("To", INT)
    host_network: str | None = field("HostNetwork")
    ignore_collision: bool | None = field("IgnoreCollision", BOOL)

    @property
    def is_static(self) -> bool:
        """Whether the port reserves a fixed host port."""
        return bool(self.static)


def ports(value: Iterable[Port] | None) -> tuple[Port, ...]:
    """Converter: reserved (static) ports first, then dynamic ones, as Nomad's JSON lists them."""
    items = to_tuple(value)
    if len(items) > 1 and all(type(p) is Port for p in items):
        static = [p for p in items if p.static]
        if static and len(static) < len(items):
            return (*static, *(p for p in items if not p.static))
    return items


@_base.frozen(slots=False, repr=False)
class DNSConfig:
    """DNS settings for bridge-mode allocations (`dns` block)."""

    _go: ClassVar[str] = "DNSConfig"

    servers: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                           metadata=go("Servers", STRS))
    searches: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                            metadata=go("Searches", STRS))
    options: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                           metadata=go("Options", STRS))


@_base.frozen(slots=False, repr=False)
class CNIConfig:
    """Arguments passed to the CNI plugins of a `cni/<name>` network (`cni` block)."""

    _go: ClassVar[str] = "CNIConfig"

    args: Mapping[str, str] = field("Args", MAP)


@_base.frozen(slots=False, repr=False)
class Network:
    """A `network` block: mode (host, bridge, none, cni/<name>) and its ports."""

    _go: ClassVar[str] = "NetworkResource"

    mode: str | None = field("Mode")
    device: str | None = field("Device")
    cidr: str | None = field("CIDR")
    ip: str | None = field("IP")
    dns: DNSConfig | None = field("DNS", BLOCK, block=DNSConfig)
    ports: tuple[Port, ...] = attrs.field(default=(), kw_only=True, converter=ports,
                                          metadata=go("*ports", BLOCKS, hcl="port", block=Port))
    hostname: str | None = field("Hostname")
    mbits: int | None = field("MBits", INT, ptr=True)
    cni: CNIConfig | None = field("CNI", BLOCK, block=CNIConfig)

    def port(self, label: str) -> Port | None:
        """The port with this label, if declared here."""
        for p in self.ports:
            if p.label == label:
                return p
        return None


def networks(value: Iterable[Network] | None) -> tuple[Network, ...]:
    """Converter: any iterable of networks becomes a tuple."""
    return to_tuple(value)
