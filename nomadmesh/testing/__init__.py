"""Local, real-HTTP emulators of the Nomad and Consul APIs for tests, demos and notebooks."""

from nomadmesh.testing._http import EmulatorError, Faults
from nomadmesh.testing.client.runner import TaskHandle, TaskRunner
from nomadmesh.testing.config import HttpLimits, NodeSpec, Timings
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.nomad import NomadEmulator

__all__ = [
    "ConsulEmulator",
    "EmulatorError",
    "Faults",
    "HttpLimits",
    "NodeSpec",
    "NomadEmulator",
    "TaskHandle",
    "TaskRunner",
    "Timings",
]
