"""nomadmesh: typed Nomad jobs in Python, Envoy sidecars injected, deployed and watched."""

__version__ = "0.1.0"
