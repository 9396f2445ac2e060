"""A local Nomad + Consul pair in one call, for `nomadmesh dev`, demos and notebooks."""

from __future__ import annotations

from typing import Any

from nomadmesh._running import Running
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.nomad import NomadEmulator


class LocalCluster(Running):
    """A running Consul emulator and a Nomad emulator that registers services in it."""

    def __init__(self, *, host: str = "127.0.0.1", nomad_port: int = 0, consul_port: int = 0,
                 **nomad_options: Any) -> None:
        self.consul = ConsulEmulator(host=host, port=consul_port)
        self.nomad = NomadEmulator(host=host, port=nomad_port, consul=self.consul,
                                   **nomad_options)

    @property
    def env(self) -> dict[str, str]:
        """The variables that point Nomad and Consul clients (CLIs, libraries) at this cluster."""
        return {"NOMAD_ADDR": self.nomad.url, "CONSUL_HTTP_ADDR": self.consul.address}

    def start(self) -> LocalCluster:
        """Start Consul, then Nomad; if Nomad cannot start, Consul is stopped again."""
        self.consul.start()
        try:
            self.nomad.start()
        except BaseException:
            self.consul.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Nomad, then Consul."""
        self.nomad.stop()
        self.consul.stop()




def start_local_cluster(nomad_port: int = 0, consul_port: int = 0,
                        **nomad_options: Any) -> LocalCluster:
    """Start a local emulated cluster (e.g. in a notebook); call `.stop()` when done."""
    return LocalCluster(nomad_port=nomad_port, consul_port=consul_port, **nomad_options).start()
