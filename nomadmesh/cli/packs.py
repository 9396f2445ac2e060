"""`nomadmesh pack ...`: list, inspect, scaffold, render, plan, run, stop and status of packs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from nomadmesh.cli import cli
from nomadmesh.cli._group import NomadCommand
from nomadmesh.cli._options import (
    Connection,
    connection_options,
    format_option,
    mesh_options,
    parse_assignments,
    render_jobs,
    with_sidecars,
)
from nomadmesh.cli._output import write_output
from nomadmesh.packs import FoundPack, find_pack, list_packs
from nomadmesh.packs.registry import PATH_ENV

if TYPE_CHECKING:
    from nomadmesh.deploy import DeployEvent
    from nomadmesh.model import Job

F = TypeVar("F", bound=Callable[..., Any])
EXIT_PLAN_ERROR = 255


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
    fn = mesh_options(fn)
    fn = click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
                      help="Deployment name (default: the pack's name); job IDs derive from it.")(fn)
    fn = click.option("-var-file", "--var-file", "var_files", multiple=True, metavar="FILE",
                      type=click.Path(dir_okay=False),
                      help="Variable values from an HCL, JSON, YAML or TOML file (repeatable).")(fn)
    fn = click.option("-var", "--var", "variables", multiple=True, metavar="PATH=VALUE",
                      callback=lambda _ctx, _param, value: parse_assignments(value),
                      help="Set a variable, nested ones by dotted path (repeatable; wins over "
                           "--var-file and NOMADMESH_VAR_*).")(fn)
    return click.argument("ref", metavar="PACK")(fn)


def _render(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
            deployment: str | None, inject: bool, mesh_file: str | None) -> list[Job]:
    found = _find(ref)
    jobs = found.pack.render(found.pack.resolve(values=variables, var_files=var_files),
                             deployment=deployment)
    return with_sidecars(jobs, inject, mesh_file)


@pack_group.command("list")
@click.pass_obj
def list_command(search_path: list[str]) -> None:
    """Packs installed (entry points) and in the search path, with versions and origins."""
    found = list_packs(search_path=search_path)
    if not found:
        click.echo("no packs found: install a pack distribution (entry point group "
                   f"'nomadmesh.packs'), or search a directory with `nomadmesh pack --path DIR "
                   f"list` or ${PATH_ENV}")
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
    from nomadmesh.packs.scaffold import new_pack

    created = new_pack(name, directory)
    click.echo(f"created {created} (pack, test, README); try: nomadmesh pack info {created}")


@pack_group.command("render")
@rendering
@format_option(("json", "hcl"), "Registration payloads as JSON, or the jobs as HCL.")
@click.option("--out", "out_file", default=None, metavar="FILE",
              help="Write to FILE instead of standard output.")
def render_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                   deployment: str | None, inject: bool, mesh_file: str | None,
                   output_format: str, out_file: str | None) -> None:
    """Print the jobs a pack renders (every variable checked first)."""
    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)
    if output_format == "hcl":
        write_output(render_jobs(jobs, "hcl"), out_file)
    else:
        write_output(json.dumps([j.to_register_body() for j in jobs], indent=2) + "\n", out_file)


@pack_group.command("plan", cls=NomadCommand, error_exit=EXIT_PLAN_ERROR)
@rendering
@click.option("-verbose", "--verbose", is_flag=True,
              help="Show every field of added and removed groups and tasks too.")
@click.option("-json-output", "--json-output", "json_output", is_flag=True,
              help="Print Nomad's plan responses as JSON.")
@click.option("--prune", is_flag=True,
              help="Plan as `pack run --prune` would run (dropped jobs count as changes).")
@connection_options
def plan_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                 deployment: str | None, inject: bool, mesh_file: str | None, verbose: bool,
                 json_output: bool, prune: bool, connection: Connection) -> None:
    """Dry-run a deployment: each job's diff, and the jobs this version would drop.

    Exit 0 when nothing would change, 1 when allocations or jobs would, 255 on error.
    """
    from nomadmesh.cli.deploy import plan_pack_command

    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)
    with connection.client() as client:
        sys.exit(plan_pack_command(client, jobs, _find(ref).pack.version, verbose=verbose,
                                   show_diff=True,
                                   json_output=json_output, prune=prune))


@pack_group.command("run", cls=NomadCommand)
@rendering
@click.option("--prune", is_flag=True,
              help="Stop the deployment's jobs that this version no longer produces.")
@click.option("-detach", "--detach", is_flag=True, help="Register and return without watching.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for each job to become healthy.")
@connection_options
def run_command(ref: str, variables: dict[str, str], var_files: tuple[str, ...],
                deployment: str | None, inject: bool, mesh_file: str | None, prune: bool,
                detach: bool, timeout: float, connection: Connection) -> None:
    """Deploy a pack: run every job; dropped jobs are stopped only with --prune.

    Exit 0 when every job is healthy, 2 when allocations could not be placed, 1 on any other
    failure, as `nomad job run`.
    """
    from nomadmesh.cli.deploy import print_failure
    from nomadmesh.errors import DeploymentFailed
    from nomadmesh.packs.deploy import run_pack

    jobs = _render(ref, variables, var_files, deployment, inject, mesh_file)

    def show(event: DeployEvent) -> None:
        click.echo(f"  {event.kind}: {event.message}", err=True)

    with connection.client() as client:
        try:
            result = run_pack(client, jobs, prune=prune, wait=not detach, timeout=timeout,
                              on_event=show)
        except DeploymentFailed as exc:
            sys.exit(print_failure(exc))
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
@click.option("-purge", "--purge", is_flag=True,
              help="Also forget the jobs (nomad job stop -purge).")
@connection_options
def stop_command(pack_name: str | None, deployment: str, purge: bool,
                 connection: Connection) -> None:
    """Stop every job of a deployment (matched by its meta, exact job IDs)."""
    from nomadmesh.packs.deploy import stop_pack

    with connection.client() as client:
        for job_id in stop_pack(client, deployment, pack=pack_name, purge=purge):
            click.echo(f"job {job_id!r}: stopped" + (" and purged" if purge else ""))


@pack_group.command("status")
@click.argument("pack_name", metavar="[PACK]", required=False)
@click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
              help="Only this deployment.")
@click.option("--all", "include_stopped", is_flag=True, help="Include stopped jobs.")
@connection_options
def status_command(pack_name: str | None, deployment: str | None, include_stopped: bool,
                   connection: Connection) -> None:
    """Pack deployments on the cluster and their jobs."""
    from nomadmesh.packs.deploy import deployments

    with connection.client() as client:
        found = deployments(client, deployment=deployment, pack=pack_name,
                            include_stopped=include_stopped)
    if not found:
        click.echo("no pack deployments found")
        return
    rows = [(d.deployment, d.pack, j.version or "-", j.id, j.type,
             "stopped" if j.stopped else j.status) for d in found for j in d.jobs]
    _table(("DEPLOYMENT", "PACK", "VERSION", "JOB", "TYPE", "STATUS"), rows)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
