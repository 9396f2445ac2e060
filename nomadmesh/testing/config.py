"""How an emulated cluster is configured: its client nodes, how fast time runs, HTTP limits."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import attrs

NOMAD_VERSION = "2.0.6"  # the Nomad the emulator follows (hashicorp/nomad aa026cc)
CONSUL_VERSION = "1.17.0"
CNI_VERSION = "1.5.1"
# client/fingerprint/signal.go: the signals a client can send, as `os.signals`
_SIGNALS = ",".join(sorted(s.name for s in signal.Signals
                           if not s.name.startswith(("SIGRT", "SIGCLD", "SIGPOLL", "SIGPWR",
                                                     "SIGSTKFLT"))))


@attrs.define
class NodeSpec:
    """A simulated client node: where allocations can be placed and what it offers."""

    name: str
    datacenter: str = "dc1"
    node_class: str = ""
    node_pool: str = "default"
    cpu: int = 4000
    memory_mb: int = 8192
    disk_mb: int = 50_000
    address: str = "127.0.0.1"
    drivers: tuple[str, ...] = ("docker", "exec", "raw_exec")
    attributes: dict[str, str] = attrs.Factory(dict)
    meta: dict[str, str] = attrs.Factory(dict)
    consul: bool = True  # fingerprinted with a Consul agent (services with provider "consul")
    cni: bool = True  # the CNI reference plugins are installed (bridge networking)
    id: str = attrs.field(default="")

    def __attrs_post_init__(self) -> None:
        if not self.id:
            self.id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.nomad-emulator"))

    def to_node(self, index: int) -> dict[str, Any]:
        """The node as Nomad's `structs.Node` JSON (`GET /v1/node/<id>`), fingerprinted as a
        client would be (client/fingerprint): with Consul's attributes when it has a Consul."""
        attributes = {"kernel.name": "linux", "cpu.arch": "amd64", "os.name": "ubuntu",
                      "unique.network.ip-address": self.address,
                      "unique.hostname": self.name, "nomad.version": NOMAD_VERSION,
                      "nomad.service_discovery": "true", "os.signals": _SIGNALS,
                      **{f"driver.{d}": "1" for d in self.drivers}}
        if self.consul:
            # client/fingerprint/consul.go; the emulated Consul has no gRPC (no Connect)
            attributes.update({
                "consul.server": "true", "consul.version": CONSUL_VERSION, "consul.sku": "oss",
                "consul.revision": "emulator", "unique.consul.name": "consul-emulator",
                "consul.datacenter": "dc1", "consul.segment": "", "consul.connect": "false",
                "consul.grpc": "-1", "consul.ft.namespaces": "false", "consul.dns.port": "-1"})
        if self.cni:
            # client/fingerprint/plugins_cni.go, the plugins bridge networking needs
            attributes.update({f"plugins.cni.version.{plugin}": CNI_VERSION for plugin in (
                "bridge", "firewall", "host-local", "loopback", "portmap")})
        attributes.update(self.attributes)
        return {
            "ID": self.id, "Name": self.name, "Datacenter": self.datacenter,
            "NodeClass": self.node_class, "NodePool": self.node_pool,
            "DrainStrategy": None, "LastDrain": None, "Events": None,
            "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "",
            "HTTPAddr": f"{self.address}:4646", "TLSEnabled": False, "Attributes": attributes,
            "Meta": dict(self.meta),
            "Drivers": {d: {"Detected": True, "Healthy": True, "HealthDescription": "Healthy",
                            "Attributes": None} for d in self.drivers},
            "NodeResources": {"Cpu": {"CpuShares": self.cpu},
                              "Memory": {"MemoryMB": self.memory_mb},
                              "Disk": {"DiskMB": self.disk_mb}, "Networks": None,
                              "MinDynamicPort": 20000, "MaxDynamicPort": 32000},
            "ReservedResources": {"Cpu": {"CpuShares": 0}, "Memory": {"MemoryMB": 0},
                                  "Disk": {"DiskMB": 0}},
            "Version": NOMAD_VERSION, "CreateIndex": index, "ModifyIndex": index,
        }


def default_nodes() -> list[NodeSpec]:
    """Three identical nodes in dc1 (4000 MHz, 8 GiB each)."""
    return [NodeSpec(f"emulated-node-{i}") for i in (1, 2, 3)]


@attrs.define
class Timings:
    """How fast emulated time runs, in seconds.

    Every duration Nomad takes from a job (min_healthy_time, healthy_deadline,
    progress_deadline, restart and reschedule delays) runs `scale` times as fast; the
    overrides, when set, replace the scaled value outright.
    """

    scale: float = 0.005
    start_delay: float = 0.01
    batch_runtime: float = 0.05
    healthy_after: float | None = None
    healthy_deadline: float | None = None
    restart_delay: float | None = None

    def of(self, nanoseconds: int | float) -> float:
        """A Nomad duration (nanoseconds) in emulated seconds."""
        return float(nanoseconds) / 1e9 * self.scale

    def min_healthy(self, nanoseconds: int) -> float:
        """How long a task must run (and its checks pass) before its allocation is healthy."""
        return self.of(nanoseconds) if self.healthy_after is None else self.healthy_after

    def deadline(self, nanoseconds: int) -> float:
        """How long an allocation has to become healthy."""
        return self.of(nanoseconds) if self.healthy_deadline is None else self.healthy_deadline

    def restart(self, nanoseconds: int) -> float:
        """How long a task waits before it is restarted."""
        return self.of(nanoseconds) if self.restart_delay is None else self.restart_delay


@attrs.frozen
class HttpLimits:
    """Limits of the emulators' HTTP servers (a real server has its own; these keep ours safe)."""

    max_body: int = 16 * 1024 * 1024
    max_header: int = 1 << 20  # Go's http.DefaultMaxHeaderBytes
    idle_timeout: float = 60.0
    read_timeout: float = 30.0
    handshake_timeout: float = 5.0  # Nomad's limits.https_handshake_timeout
    workers: int = 16
    max_depth: int = 256  # JSON nesting of a job body (Nomad's decoder allows 10000)
