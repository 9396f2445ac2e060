"""Mesh verbs: inject sidecars into job files, show a sidecar's bootstrap, Prometheus config."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from nomadmesh.cli import cli
from nomadmesh.cli._options import job_variables, load_jobs, parse_assignments, render_jobs
from nomadmesh.mesh import Mesh, inject, sidecar_task
from nomadmesh.mesh.node import node_bootstrap
from nomadmesh.mesh.prometheus import (
    DEFAULT_CONSUL,
    DEFAULT_CONTROL_PLANE_METRICS_SERVICE,
    prometheus_config,
)

mesh_option = click.option("--mesh", "mesh_file", type=click.Path(dir_okay=False, exists=True),
                           help="Mesh settings (TOML or YAML); defaults apply without it.")


def _mesh(mesh_file: str | None) -> Mesh:
    return Mesh.from_file(mesh_file) if mesh_file else Mesh()


@cli.command("inject")
@click.argument("path", type=click.Path(dir_okay=False))
@job_variables
@mesh_option
@click.option("--output", "-f", "output", type=click.Choice(["json", "hcl"]), default="json",
              show_default=True, help="Registration payload as JSON, or the job as HCL.")
@click.option("-o", "out", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
def inject_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                   mesh_file: str | None, output: str, out: str | None) -> None:
    """Add an Envoy sidecar to every meshed group of a job file and write the result."""
    mesh = _mesh(mesh_file)
    jobs = [inject(job, mesh) for job in load_jobs(path, variables, var_files)]
    text = render_jobs(jobs, output)
    if out is None:
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(jobs)} injected job(s) to {out}", err=True)


@cli.group()
def sidecar() -> None:
    """Inspect the Envoy sidecars nomadmesh injects."""


@sidecar.command("bootstrap")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--group", "-g", "group_name", required=True, help="The task group's name.")
@click.option("--job", "job_id", default=None, help="The job's ID, when the file holds several.")
@click.option("--env", "env", multiple=True, metavar="K=V",
              help="A runtime value (NOMAD_ALLOC_ID, NOMAD_PORT_<label>, ...); repeatable.")
@click.option("--xds", "xds", default="127.0.0.1:18000", show_default=True,
              help="Control-plane instance to use when the mesh finds it through Consul.")
@job_variables
@mesh_option
def bootstrap_command(path: str, group_name: str, job_id: str | None, env: tuple[str, ...],
                      xds: str, variables: dict[str, str], var_files: tuple[str, ...],
                      mesh_file: str | None) -> None:
    """Print a group's sidecar bootstrap as Envoy would read it on a node.

    Check it with `envoy --mode validate -c FILE`.
    """
    mesh = _mesh(mesh_file)
    jobs = load_jobs(path, variables, var_files)
    candidates = [j for j in jobs if job_id is None or j.id == job_id]
    if not candidates:
        raise click.BadParameter(f"no job {job_id!r} in {path}", param_hint="--job")
    groups = [(j, g) for j in candidates for g in j.groups if g.name == group_name]
    if len(groups) != 1:
        known = ", ".join(f"{j.id}/{g.name}" for j in candidates for g in j.groups)
        what = "no group" if not groups else "several groups"
        raise click.BadParameter(f"{what} named {group_name!r} (groups: {known}); use --job "
                                 "to pick the job", param_hint="--group")
    job, group = groups[0]
    injected = inject(job, mesh).group(group_name) or group
    if sidecar_task(injected) is None:
        raise click.UsageError(f"group {group_name!r} is not meshed (no service, or opted out "
                               "with meta nomadmesh.mesh = \"false\")")
    host, sep, port = xds.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{xds!r} is not host:port", param_hint="--xds")
    bootstrap = node_bootstrap(injected, parse_assignments(env, what="--env"),
                               services={mesh.control_plane: [(host, int(port))]})
    click.echo(json.dumps(bootstrap, indent=2))


@sidecar.command("prometheus-config")
@mesh_option
@click.option("--consul", default=DEFAULT_CONSUL, show_default=True,
              help="Consul HTTP address Prometheus discovers targets from.")
@click.option("--control-plane-service", default=DEFAULT_CONTROL_PLANE_METRICS_SERVICE,
              show_default=True, help="Consul service of the control plane's /metrics.")
@click.option("--control-plane-target", "targets", multiple=True, metavar="HOST:PORT",
              help="Scrape the control plane here instead of discovering it; repeatable.")
@click.option("--output", "-f", "output", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
def prometheus_command(mesh_file: str | None, consul: str, control_plane_service: str,
                       targets: tuple[str, ...], output: str) -> None:
    """Print Prometheus scrape configs finding every sidecar and the control plane in Consul."""
    config = prometheus_config(_mesh(mesh_file), consul=consul,
                               control_plane_service=control_plane_service,
                               control_plane_targets=targets)
    if output == "json":
        click.echo(json.dumps(config, indent=2))
    else:
        click.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
