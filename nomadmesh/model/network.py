"""Group networking: the network mode, DNS and the ports allocations get."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, extra_fields, field, label, to_tuple

NETWORK_MODES = ("host", "bridge", "none")


def _zero_is_unset(value: object) -> object:
    return None if type(value) is int and value == 0 else value


@attrs.frozen(slots=False)
class Port:
    """A port label; `static` reserves a fixed host port, otherwise Nomad picks one.

    In Nomad's JSON a port with `static` is listed under ReservedPorts (as `Value`), one without
    under DynamicPorts; the model keeps both in one list so a label can only exist once.
    """

    label: str = label("Label")
    # Nomad reads a static port of 0 as "no static port"; the model says so too.
    static: int | None = field("Value", Kind.INT, converter=_zero_is_unset)
    to: int | None = field("To", Kind.INT)
    host_network: str | None = field("HostNetwork", Kind.STR)
    ignore_collision: bool | None = field("IgnoreCollision", Kind.BOOL)

    @property
    def is_static(self) -> bool:
        return bool(self.static)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.label:
            yield Problem(path, "a port needs a label")
        elif not self.label.replace("_", "a").isalnum():
            yield Problem(path, f"port label {self.label!r} may only hold letters, digits and _")
        if isinstance(self.static, int) and not 0 <= self.static <= 65535:
            yield Problem(f"{path}.static", f"port {self.static} is outside 0-65535")
        if isinstance(self.to, int) and not -1 <= self.to <= 65535:
            yield Problem(f"{path}.to", f"port {self.to} is outside -1..65535")


def _static_first(ports: object) -> tuple[Port, ...]:
    """Keep reserved (static) ports before dynamic ones, as Nomad's JSON lists them.

    The order is canonical so that a network survives a JSON round trip unchanged.
    """
    items: tuple[Any, ...] = to_tuple(ports)  # type: ignore[arg-type]
    if all(isinstance(p, Port) for p in items):
        return tuple(p for p in items if p.static) + tuple(p for p in items if not p.static)
    return items


@attrs.frozen(slots=False)
class DNSConfig:
    """DNS settings for bridge-mode allocations (`dns` block)."""

    servers: tuple[str, ...] = field("Servers", Kind.STRS)
    searches: tuple[str, ...] = field("Searches", Kind.STRS)
    options: tuple[str, ...] = field("Options", Kind.STRS)


@attrs.frozen(slots=False)
class Network:
    """A group `network` block: mode (host, bridge, cni/<name>) and its ports."""

    mode: str | None = field("Mode", Kind.STR)
    ports: tuple[Port, ...] = field("*ports", Kind.BLOCKS, hcl="port", block=Port,
                                    converter=_static_first)
    hostname: str | None = field("Hostname", Kind.STR)
    dns: DNSConfig | None = field("DNS", Kind.BLOCK, block=DNSConfig)
    mbits: int | None = field("MBits", Kind.INT)
    device: str | None = field("Device", Kind.STR)
    cidr: str | None = field("CIDR", Kind.STR)
    ip: str | None = field("IP", Kind.STR)
    extra: dict[str, object] = extra_fields()

    def port(self, label: str) -> Port | None:
        """The port with this label, if declared here."""
        for p in self.ports:
            if p.label == label:
                return p
        return None

    def problems(self, path: str) -> Iterator[Problem]:
        mode = self.mode
        if mode and mode not in NETWORK_MODES and not mode.startswith("cni/"):
            yield Problem(f"{path}.mode",
                          f"mode {mode!r} must be host, bridge, none or cni/<name>")
        statics: dict[int, str] = {}
        for p in self.ports:
            if p.static and p.static in statics and not p.ignore_collision:
                yield Problem(f"{path}.port[{p.label}].static",
                              f"static port {p.static} is also used by port {statics[p.static]!r}")
            if p.static:
                statics[p.static] = p.label

    def canonicalize(self) -> Network:
        return self if self.mode else attrs.evolve(self, mode="host")
