"""Offline job verbs: render and validate work on files without a cluster (fmt: cli/fmt.py)."""

from __future__ import annotations

import sys

import click

from nomadmesh.cli import cli
from nomadmesh.cli._options import deployment_option, job_variables, load_jobs, render_jobs
from nomadmesh.errors import ValidationError


@cli.command()
@click.argument("path", metavar="PATH|PACK")
@job_variables
@deployment_option
@click.option("--output", "-f", "output", type=click.Choice(["json", "hcl"]), default="json",
              show_default=True, help="Registration payload as JSON, or the job as HCL.")
@click.option("--inject", "with_sidecars", is_flag=True,
              help="Add Envoy sidecars to meshed groups first (see `nomadmesh inject`).")
@click.option("--mesh", "mesh_file", type=click.Path(dir_okay=False, exists=True),
              help="Mesh settings (TOML or YAML) for --inject.")
def render(path: str, variables: dict[str, str], var_files: tuple[str, ...],
           deployment: str | None, output: str, with_sidecars: bool, mesh_file: str | None) -> None:
    """Print the registration payload {"Job": ...} (or HCL) for a job file or a pack."""
    jobs = load_jobs(path, variables, var_files, deployment)
    if with_sidecars:
        from nomadmesh.mesh import Mesh, inject

        mesh = Mesh.from_file(mesh_file) if mesh_file else Mesh()
        jobs = [inject(job, mesh) for job in jobs]
    elif mesh_file:
        raise click.UsageError("--mesh only applies with --inject")
    click.echo(render_jobs(jobs, output), nl=False)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@job_variables
def validate(path: str, variables: dict[str, str], var_files: tuple[str, ...]) -> None:
    """Check a job file offline; exit 0 when valid, 1 with every problem listed."""
    try:
        jobs = load_jobs(path, variables, var_files)
    except ValidationError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        click.echo(f"{len(exc.problems)} problem(s) found", err=True)
        sys.exit(1)
    for job in jobs:
        tasks = sum(len(g.tasks) for g in job.groups)
        click.echo(f"{path}: job {job.id!r} is valid ({len(job.groups)} group(s), {tasks} task(s))")
