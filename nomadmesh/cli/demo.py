"""`nomadmesh demo`: the whole mesh on this machine, checked, then kept up (or not, with --once)."""

from __future__ import annotations

import time

import click

from nomadmesh.cli import cli
from nomadmesh.cli._signals import StopSignals


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
    with StopSignals(interruptible=True) as signals, Demo(examples, say=click.echo, timeout=timeout) as run:
        click.echo(f"Nomad (emulated, running tasks locally): {run.cluster.nomad.url}")
        click.echo(f"Consul (emulated):                       {run.cluster.consul.url}")
        run.deploy()
        run.check()
        run.resilience()
        run.zero_trust()
        run.scale(3)
        click.echo(f"check passed in {time.monotonic() - started:.1f}s")
        if once:
            # The servers stop when this returns: addresses to explore would be dead ends.
            return
        click.echo("explore:")
        for line in addresses_text(run.explore()):
            click.echo(line)
        click.echo(f"  logs: NOMAD_ADDR={run.cluster.nomad.url} nomadmesh logs service-b "
                   "service-b-app")
        click.echo("Press Ctrl+C to stop.", err=True)
        signals.wait()
        click.echo("stopping", err=True)
