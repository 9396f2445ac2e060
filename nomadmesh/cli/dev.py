"""`nomadmesh dev`: run the Nomad and Consul emulators locally until interrupted."""

from __future__ import annotations

import signal
from typing import Any

import click

from nomadmesh.cli import cli
from nomadmesh.cli._signals import StopSignals
from nomadmesh.errors import NomadmeshError
from nomadmesh.testing.cluster import LocalCluster


def hcl_parser(text: str, variables: str) -> dict[str, Any]:
    """HCL for the emulator's `/v1/jobs/parse`: nomadmesh's own parser (not independent)."""
    from nomadmesh.hcl import parse_var_file
    from nomadmesh.model import Job

    try:
        values = parse_var_file(variables, filename="Variables") if variables.strip() else {}
        job: dict[str, Any] = Job.from_hcl(text, variables=values, validate=False).to_api()
    except (NomadmeshError, ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    if job.get("Name") is None:  # jobspec2/parse_job.go:15: the name defaults to the ID
        job["Name"] = job.get("ID")
    return job


@cli.command()
@click.option("--nomad-port", type=int, default=4646, show_default=True,
              help="Port of the Nomad API emulator (0 picks a free one).")
@click.option("--consul-port", type=int, default=8500, show_default=True,
              help="Port of the Consul API emulator (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def dev(nomad_port: int, consul_port: int, host: str) -> None:
    """Run emulated Nomad and Consul APIs on loopback until Ctrl+C (no real cluster needed)."""
    with StopSignals() as signals, LocalCluster(
            host=host, nomad_port=nomad_port, consul_port=consul_port,
            hcl_parser=hcl_parser) as cluster:
        click.echo(f"Nomad API emulator:  {cluster.nomad.url}")
        click.echo(f"Consul API emulator: {cluster.consul.url}")
        click.echo("These are emulators (see docs/emulators.md); point clients at them with:")
        for name, value in cluster.env.items():
            click.echo(f"export {name}={value}")
        click.echo("Press Ctrl+C to stop.", err=True)
        if signals.wait() == signal.SIGINT:
            click.echo("stopping", err=True)
