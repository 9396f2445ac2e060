"""`nomadmesh pack ...`: list, inspect, scaffold, render, plan, run, stop and status of packs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from nomadmesh.cli import cli
from nomadmesh.cli._options import parse_assignments
from nomadmesh.deploy import DeployEvent, NomadClient
from nomadmesh.model import Job
from nomadmesh.packs import FoundPack, find_pack, list_packs
from nomadmesh.packs.deploy import deployments, plan_pack, run_pack, stop_pack
from nomadmesh.packs.registry import PATH_ENV
from nomadmesh.packs.scaffold import new_pack

F = TypeVar("F", bound=Callable[..., Any])


@cli.group("pack")
@click.option("--path", "search_path", multiple=True, type=click.Path(file_okay=False),
              help=f"A directory of packs to search by name (repeatable; adds to ${PATH_ENV}).")
@click.pass_context
def pack_group(ctx: click.Context, search_path: tuple[str, ...]) -> None:
    """Reusable, parameterized job packages written in Python."""
    env_path = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    ctx.obj = [*search_path, *env_path]


def _find(ref: str) -> FoundPack:
    return find_pack(ref, search_path=click.get_current_context().find_object(list))


def rendering(fn: F) -> F:
    """The options of the verbs that render a pack: REF, variables, deployment name, mesh."""
    fn = click.option("--mesh", "mesh_file", type=click.Path(dir_okay=False, exists=True),
                      help="Mesh settings (TOML or YAML) for --inject.")(fn)
    fn = click.option("--inject", is_flag=True,
                      help="Inject the Envoy sidecar into meshed groups after rendering.")(fn)
    fn = click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
                      help="Deployment name (default: the pack's name); job IDs derive from it.")(fn)
    fn = click.option("--var-file", "var_files", multiple=True, type=click.Path(dir_okay=False),
                      help="Variable values from an HCL, JSON, YAML or TOML file (repeatable).")(fn)
    fn = click.option("--var", "variables", multiple=True, metavar="PATH=VALUE",
                      callback=lambda _ctx, _param, value: parse_assignments(value),
                      help="Set a variable, nested ones by dotted path (repeatable; wins over "
                           "--var-file and NOMADMESH_VAR_*).")(fn)
    return click.argument("ref", metavar="PACK")(fn)


def _render(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
            deployment: str | None, inject: bool, mesh_file: str | None) -> list[Job]:
    found = _find(ref)
    jobs = found.pack.render(found.pack.resolve(values=variables, var_files=var_files),
                             deployment=deployment)
    if not inject:
        return jobs
    from nomadmesh.mesh import Mesh

    mesh = Mesh.from_file(mesh_file) if mesh_file else Mesh()
    return [mesh.inject(job) for job in jobs]


@pack_group.command("list")
@click.pass_obj
def list_command(search_path: list[str]) -> None:
    """Packs installed (entry points) and in the search path, with versions and origins."""
    found = list_packs(search_path=search_path)
    if not found:
        click.echo(f"no packs found (install one, or use --path / ${PATH_ENV})")
        return
    rows = [(f.pack.name, f.pack.version, f.pack.description, f.origin) for f in found]
    _table(("NAME", "VERSION", "DESCRIPTION", "FROM"), rows)


@pack_group.command("info")
@click.argument("ref", metavar="PACK")
def info_command(ref: str) -> None:
    """A pack's metadata, dependencies and variables (types, defaults, descriptions)."""
    found = _find(ref)
    p = found.pack
    click.echo(f"{p.name} {p.version}" + (f" - {p.description}" if p.description else ""))
    if p.url:
        click.echo(f"url: {p.url}")
    click.echo(f"from: {found.origin}")
    for field, dep in p.dependencies().items():
        click.echo(f"dependency: {field} -> {dep.name} {dep.version}")
    click.echo("")
    rows = [(v.path, v.type, "(required)" if v.required else json.dumps(v.default, default=str),
             v.description) for v in p.describe()]
    _table(("VARIABLE", "TYPE", "DEFAULT", "DESCRIPTION"), rows)


@pack_group.command("new")
@click.argument("name")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def new_command(name: str, directory: str) -> None:
    """Scaffold a pack NAME in DIRECTORY (default: here), with a test."""
    created = new_pack(name, directory)
    click.echo(f"created {created} (pack, test, README); try: nomadmesh pack info {created}")


@pack_group.command("render")
@rendering
@click.option("--output", "-f", "output", type=click.Choice(["json", "hcl"]), default="json",
              show_default=True, help="Registration payloads as JSON, or the jobs as HCL.")
def render_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                   deployment: str | None, inject: bool, mesh_file: str | None,
                   output: str) -> None:
    """Print the jobs a pack renders (every variable checked first)."""
    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)
    if output == "hcl":
        click.echo("\n".join(j.to_hcl() for j in jobs), nl=False)
    else:
        click.echo(json.dumps([j.to_register_body() for j in jobs], indent=2))


@pack_group.command("plan")
@rendering
def plan_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                 deployment: str | None, inject: bool, mesh_file: str | None) -> None:
    """Dry-run a deployment: each job's diff, and the jobs this version would drop."""
    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)
    with NomadClient.from_env() as client:
        click.echo(plan_pack(client, jobs).render(), nl=False)


@pack_group.command("run")
@rendering
@click.option("--prune", is_flag=True,
              help="Stop the deployment's jobs that this version no longer produces.")
@click.option("--detach", is_flag=True, help="Register and return without watching.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for each job to become healthy.")
def run_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                deployment: str | None, inject: bool, mesh_file: str | None, prune: bool,
                detach: bool, timeout: float) -> None:
    """Deploy a pack: run every job; dropped jobs are stopped only with --prune."""
    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)

    def show(event: DeployEvent) -> None:
        click.echo(f"  {event.kind}: {event.message}", err=True)

    with NomadClient.from_env() as client:
        result = run_pack(client, jobs, prune=prune, wait=not detach, timeout=timeout,
                          on_event=show)
    for r in result.results:
        click.echo(f"job {r.job_id!r}: {r.status}")
    for job_id in result.pruned:
        click.echo(f"job {job_id!r}: stopped (pruned: no longer in the pack)")
    for job_id in result.left_running:
        click.echo(f"job {job_id!r}: left running although the pack no longer produces it; "
                   "run again with --prune to stop it")


@pack_group.command("stop")
@click.argument("pack_name", metavar="[PACK]", required=False)
@click.option("--name", "deployment", required=True, metavar="DEPLOYMENT",
              help="The deployment whose jobs to stop.")
@click.option("--purge", is_flag=True, help="Also forget the jobs (nomad job stop -purge).")
def stop_command(pack_name: str | None, deployment: str, purge: bool) -> None:
    """Stop every job of a deployment (matched by its meta, exact job IDs)."""
    with NomadClient.from_env() as client:
        for job_id in stop_pack(client, deployment, pack=pack_name, purge=purge):
            click.echo(f"job {job_id!r}: stopped" + (" and purged" if purge else ""))


@pack_group.command("status")
@click.argument("pack_name", metavar="[PACK]", required=False)
@click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
              help="Only this deployment.")
@click.option("--all", "include_stopped", is_flag=True, help="Include stopped jobs.")
def status_command(pack_name: str | None, deployment: str | None, include_stopped: bool) -> None:
    """Pack deployments on the cluster and their jobs."""
    with NomadClient.from_env() as client:
        found = deployments(client, deployment=deployment, pack=pack_name,
                            include_stopped=include_stopped)
    if not found:
        click.echo("no pack deployments found")
        return
    rows = [(d.deployment, d.pack, j.version, j.id, j.type, "stopped" if j.stopped else j.status)
            for d in found for j in d.jobs]
    _table(("DEPLOYMENT", "PACK", "VERSION", "JOB", "TYPE", "STATUS"), rows)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
