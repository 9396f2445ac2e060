"""Local, real-HTTP emulators of the Nomad and Consul APIs for tests, demos and notebooks."""

from nomadmesh.testing._http import EmulatorError, Faults
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.nomad import NomadEmulator
from nomadmesh.testing.scheduler import NodeSpec, TaskHandle, TaskRunner, Timings

__all__ = [
    "ConsulEmulator",
    "EmulatorError",
    "Faults",
    "NodeSpec",
    "NomadEmulator",
    "TaskHandle",
    "TaskRunner",
    "Timings",
]
