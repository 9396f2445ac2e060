"""Offline job verbs: render, validate and fmt work on files without a cluster."""

from __future__ import annotations

import sys

import click

from nomadmesh.cli import cli
from nomadmesh.cli._group import NomadCommand
from nomadmesh.cli._offline import check_jobs, load_jobs
from nomadmesh.cli._options import (
    deployment_option,
    format_option,
    job_variables,
    json_input,
    mesh_options,
    render_jobs,
    with_sidecars,
)
from nomadmesh.cli._output import write_output


@cli.command()
@click.argument("path", metavar="PATH|PACK|-")
@job_variables
@json_input
@deployment_option
@format_option(("json", "hcl"), "The registration payload as JSON, or the job as HCL.")
@mesh_options
@click.option("--out", "out_file", default=None, metavar="FILE",
              help="Write to FILE instead of standard output.")
def render(path: str, variables: dict[str, str], var_files: tuple[str, ...], json_input: bool,
           deployment: str | None, output_format: str, inject: bool, mesh_file: str | None,
           out_file: str | None) -> None:
    """Print the registration payload {"Job": ...} (or HCL) for a job file or a pack."""
    if mesh_file and not inject:
        raise click.UsageError("--mesh needs --inject")  # before reading anything
    jobs = load_jobs(path, variables, var_files, deployment, json_input=json_input)
    write_output(render_jobs(with_sidecars(jobs, inject, mesh_file), output_format), out_file)


@cli.command(cls=NomadCommand)
@click.argument("path", metavar="PATH|PACK|-")
@job_variables
@json_input
def validate(path: str, variables: dict[str, str], var_files: tuple[str, ...],
             json_input: bool) -> None:
    """Check a job file offline, as `nomad job validate`.

    Exit 0 when every job is valid, 1 when any problem is found (syntax, variables or the rules
    Nomad's server applies), each printed with its file position or field path. Warnings (Nomad's
    own, and nomadmesh's checks marked "nomadmesh:") are printed and do not fail the check.
    """
    code = check_jobs(path, variables, var_files, json_input, echo=click.echo)
    if code:
        sys.exit(code)
