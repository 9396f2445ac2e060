"""Local, real-HTTP emulators of the Nomad and Consul APIs for tests, demos and notebooks."""

from nomadmesh.testing._http import EmulatorError, Faults
from nomadmesh.testing.consul import ConsulEmulator

__all__ = ["ConsulEmulator", "EmulatorError", "Faults"]
