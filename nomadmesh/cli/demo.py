"""`nomadmesh demo` (the whole mesh on this machine) and `nomadmesh logs JOB TASK`."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from types import FrameType

import click

from nomadmesh.cli import cli
from nomadmesh.deploy import NomadClient
from nomadmesh.errors import NomadmeshError, NotFound


@cli.command()
@click.option("--once", is_flag=True,
              help="Exit after the check: 0 when the mesh answered as expected, 1 otherwise.")
@click.option("--examples", type=click.Path(file_okay=False, exists=True), default=None,
              help="The examples directory (default: the one of this source checkout).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds each step may take.")
def demo(once: bool, examples: str | None, timeout: float) -> None:
    """Run the original design locally: control plane, service-a/b and edge-router with real
    Envoy sidecars; send requests through the mesh and scale service-a to 3."""
    from nomadmesh.demo import Demo, addresses_text

    started = time.monotonic()
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with Demo(examples, say=click.echo, timeout=timeout) as run:
            click.echo(f"Nomad (emulated, running tasks locally): {run.cluster.nomad.url}")
            click.echo(f"Consul (emulated):                       {run.cluster.consul.url}")
            run.deploy()
            run.check()
            run.resilience()
            run.zero_trust()
            run.scale(3)
            click.echo(f"check passed in {time.monotonic() - started:.1f}s")
            click.echo("explore:")
            for line in addresses_text(run.explore()):
                click.echo(line)
            click.echo(f"  logs: NOMAD_ADDR={run.cluster.nomad.url} nomadmesh logs service-b "
                       "service-b-app")
            if once:
                return
            click.echo("Press Ctrl+C to stop.", err=True)
            with contextlib.suppress(KeyboardInterrupt):
                stopped.wait()
            click.echo("stopping", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command()
@click.argument("job_id")
@click.argument("task")
@click.option("--stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("--alloc", "alloc_prefix", default="", metavar="ID",
              help="Only the allocation whose ID starts with this (default: every one).")
def logs(job_id: str, task: str, stderr: bool, alloc_prefix: str) -> None:
    """Print what TASK of JOB wrote, per allocation (NOMAD_ADDR selects the cluster)."""
    kind = "stderr" if stderr else "stdout"
    with NomadClient.from_env() as client:
        allocations = [a for a in client.status(job_id).allocations
                       if a.id.startswith(alloc_prefix)]
        if not allocations:
            raise NomadmeshError(f"job {job_id!r} has no allocation"
                                 + (f" starting with {alloc_prefix!r}" if alloc_prefix else ""))
        for alloc in allocations:
            try:
                text = client.logs(alloc.id, task, stderr=stderr)
            except NotFound:
                raise NomadmeshError(f"allocation {alloc.id[:8]} of {job_id!r} is gone") from None
            click.echo(f"==> {job_id} {alloc.group} {alloc.id[:8]} {task} ({kind})")
            click.echo(text, nl=False)
