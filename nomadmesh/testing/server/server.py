"""The emulated Nomad server: its state store, the cluster loop and the watchers fed by commits.

`Server` ties together what nomad/server.go starts: the state store, the eval broker and
worker, the deployment watcher and the periodic dispatcher. Every write goes through
`write(fn)` (one transaction); the watchers learn what changed from the commit's touched keys
and do their work on the loop. The RPC endpoints live in `job_endpoint` and in the watchers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from nomadmesh.testing import nomad_api as api
from nomadmesh.testing.config import Timings
from nomadmesh.testing.nomad_api import NomadApiError
from nomadmesh.testing.server.deploymentwatcher import DeploymentWatcher
from nomadmesh.testing.server.loop import Loop
from nomadmesh.testing.server.periodic import PeriodicDispatch
from nomadmesh.testing.server.state import StateStore, Txn
from nomadmesh.testing.server.worker import Worker

T = TypeVar("T")


class Server:
    """One region's server: state, scheduling, deployments, periodic launches."""

    def __init__(self, *, region: str, timings: Timings,
                 port_free: Callable[[str, int], bool], node_pools: tuple[str, ...] = (),
                 name: str = "nomad-emulator") -> None:
        self.region = region
        self.config = api.ServerConfig(region=region, node_pools=tuple(sorted(
            {"all", "default", *node_pools})))
        self.timings = timings
        self.port_free = port_free
        self.state = StateStore()
        self.loop = Loop(f"{name}-loop")
        self.worker = Worker(self, port_free)
        self.deployments = DeploymentWatcher(self)
        self.periodic = PeriodicDispatch(self)
        self.state.listeners.extend([self.worker.on_commit, self.deployments.on_commit,
                                     self.periodic.on_commit])

    def start(self) -> None:
        """Start the loop and pick up where the state is (pending evals, deployments...)."""
        self.loop.start()
        self.loop.call_soon(self.worker.restore)
        self.loop.call_soon(self.deployments.restore)
        self.loop.call_soon(self.periodic.restore)

    def stop(self) -> None:
        """Stop the loop (state and pending timers are kept)."""
        self.loop.stop()

    def write(self, fn: Callable[[Txn], T]) -> T:
        """Run `fn` in one state store transaction and commit it."""
        with self.state.txn() as txn:
            return fn(txn)

    def check_region(self, region: str) -> None:
        """A request for another region has nowhere to go (nomad/rpc.go forwardRegion)."""
        if region and region != self.region:
            raise NomadApiError(500, "No path to region")

    # --- the jobspec side (nomadmesh.testing.nomad_api) ----------------------------------------

    @staticmethod
    def update_kind(old: Mapping[str, Any], new: Mapping[str, Any], group: str) -> str:
        """scheduler/util.go tasksUpdated: ignore, inplace or destructive."""
        return str(api.update_kind(dict(old), dict(new), group))

    @staticmethod
    def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """structs.Job.SpecChanged."""
        return api.spec_changed(dict(old), dict(new))

    @staticmethod
    def multierror(errors: list[str]) -> str:
        """go-multierror's text."""
        return api.multierror(errors)
