"""Mesh verbs: inject sidecars, apply the mesh config, show a sidecar's bootstrap and effective
config, Prometheus config."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from nomadmesh.cli import cli
from nomadmesh.cli._offline import load_jobs
from nomadmesh.cli._options import job_variables, parse_assignments, render_jobs
from nomadmesh.mesh import Mesh, inject, sidecar_task
from nomadmesh.mesh.config import (
    app_service_name,
    apply_config,
    apply_nomad_config,
    config_entries,
    effective_route,
    service_upstreams,
)
from nomadmesh.mesh.node import node_bootstrap, write_node_files
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


@cli.group("mesh")
def mesh_group() -> None:
    """The mesh's traffic config, kept apart from the jobs (changing it restarts nothing)."""


@mesh_group.command("apply")
@click.argument("path", type=click.Path(dir_okay=False))
@job_variables
@mesh_option
@click.option("--consul", envvar="CONSUL_HTTP_ADDR", default="127.0.0.1:8500",
              show_default="$CONSUL_HTTP_ADDR or 127.0.0.1:8500",
              help="Consul HTTP address the control plane watches.")
@click.option("--nomad", "nomad_address", metavar="ADDR", default=None,
              help="Write Nomad Variables at this Nomad address instead of Consul KV (a mesh "
                   "with Nomad discovery; the token and TLS settings from NOMAD_*).")
@click.option("--namespace", default=None,
              help="With --nomad: the namespace of the variables (default: NOMAD_NAMESPACE, else "
                   "\"default\").")
@click.option("--dry-run", is_flag=True, help="Print the documents instead of writing them.")
def apply_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                  mesh_file: str | None, consul: str, nomad_address: str | None,
                  namespace: str | None, dry_run: bool) -> None:
    """Write each meshed service's upstreams and traffic policy to Consul KV, or with --nomad
    to Nomad Variables (`nomadmesh/mesh/<service>`), where the control plane reads them."""
    entries = config_entries(load_jobs(path, variables, var_files), _mesh(mesh_file))
    if dry_run:
        click.echo(json.dumps({k: json.loads(v) for k, v in entries.items()}, indent=2))
        return
    if nomad_address is not None:
        from nomadmesh.deploy import NomadClient

        client = NomadClient.from_env(address=nomad_address)
        try:
            changed = apply_nomad_config(entries, client, namespace)
        finally:
            client.close()
    else:
        changed = apply_config(entries, consul=consul)
    click.echo(f"{len(changed)} of {len(entries)} service config(s) changed", err=True)
    for key in changed:
        click.echo(key)


@cli.group()
def sidecar() -> None:
    """Inspect the Envoy sidecars nomadmesh injects."""


@sidecar.command("config")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--group", "-g", "group_name", default=None, help="Only this task group.")
@job_variables
@mesh_option
def config_command(path: str, group_name: str | None, variables: dict[str, str],
                   var_files: tuple[str, ...], mesh_file: str | None) -> None:
    """Print each meshed service's routes with its effective policy, every default filled in.

    This is what the control plane serves the service's sidecars.
    """
    mesh = _mesh(mesh_file)
    out: dict[str, object] = {}
    for job in load_jobs(path, variables, var_files):
        wanted = {app_service_name(g) for g in job.groups if group_name in (None, g.name)}
        for service, upstreams in service_upstreams(job, mesh).items():
            if service in wanted:
                out[service] = [effective_route(u, mesh.policy) for u in upstreams]
    if not out:
        raise click.UsageError("no meshed group" + (f" named {group_name!r}" if group_name else ""))
    click.echo(json.dumps(out, indent=2))


@sidecar.command("bootstrap")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--group", "-g", "group_name", required=True, help="The task group's name.")
@click.option("--job", "job_id", default=None, help="The job's ID, when the file holds several.")
@click.option("--env", "env", multiple=True, metavar="K=V",
              help="A runtime value (NOMAD_ALLOC_ID, NOMAD_PORT_<label>, ...); repeatable.")
@click.option("--xds", "xds", default="127.0.0.1:18000", show_default=True,
              help="Control-plane instance to use when the mesh finds it through Consul.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Write every file the sidecar's templates render (the bootstrap and the "
                   "control plane instances it reads) under DIR as the task directory.")
@job_variables
@mesh_option
def bootstrap_command(path: str, group_name: str, job_id: str | None, env: tuple[str, ...],
                      xds: str, directory: str | None, variables: dict[str, str],
                      var_files: tuple[str, ...], mesh_file: str | None) -> None:
    """Print a group's sidecar bootstrap as Envoy would read it on a node.

    With --dir, the files are written there and `envoy --mode validate -c
    DIR/secrets/envoy_bootstrap.json` checks them as the node would start them.
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
    values = parse_assignments(env, what="--env")
    services = {mesh.control_plane: [(host, int(port))]}
    if directory is not None:
        try:
            written = write_node_files(injected, Path(directory), values, services)
        except OSError as exc:
            raise click.UsageError(f"cannot write to {directory}: {exc.strerror}") from None
        click.echo(str(written))
        return
    click.echo(json.dumps(node_bootstrap(injected, values, services=services), indent=2))


@sidecar.command("prometheus-config")
@mesh_option
@click.option("--consul", envvar="CONSUL_HTTP_ADDR", default=DEFAULT_CONSUL,
              show_default=f"$CONSUL_HTTP_ADDR or {DEFAULT_CONSUL}",
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
