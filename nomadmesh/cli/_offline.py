"""Job files for the verbs, and `validate`'s check and report, without click (cli/_fast.py runs
`validate` through here without importing click; the click command prints through it too)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

from nomadmesh.cli import EXIT_FAILED, _terminal

if TYPE_CHECKING:
    from nomadmesh.model import Job

class Echo(Protocol):
    """click.echo's signature, as far as these verbs use it."""

    def __call__(self, message: str, *, err: bool = False) -> None: ...


def load_jobs(path: str, variables: dict[str, str], var_files: tuple[str, ...],
              deployment: str | None = None, *, json_input: bool = False) -> list[Job]:
    """Every job a file (`-` for standard input) or pack defines; problems are InputErrors."""
    from nomadmesh.errors import InputError
    from nomadmesh.loader import load_all

    if json_input and (variables or var_files):
        # As `nomad`: "cannot use variables with JSON files." (helpers.go:458)
        raise InputError("-var and -var-file cannot be used with JSON job files (-json)")
    options: dict[str, Any] = {"format": "json"} if json_input else {}
    return load_all(path, variables=variables, var_files=var_files, deployment=deployment,
                    **options)


def check_jobs(path: str, variables: dict[str, str], var_files: tuple[str, ...],
               json_input: bool, echo: Echo) -> int:
    """`validate`'s check and report: 0 when every job is valid, 1 when a problem is found."""
    from nomadmesh.errors import ValidationError

    paint, bold = _terminal.paint, _terminal.BOLD
    try:
        jobs = load_jobs(path, variables, var_files, json_input=json_input)
    except ValidationError as exc:
        echo(paint("Job validation errors:", bold, _terminal.RED, stream=sys.stderr), err=True)
        for problem in exc.problems:
            echo(f"{path}: {problem}", err=True)
        echo(f"{len(exc.problems)} problem(s) found", err=True)
        return EXIT_FAILED
    warnings = [w for job in jobs for w in job.warnings()]
    if warnings:
        # As `nomad job validate` (job_validate.go:162, meta.go FormatWarnings): warnings are
        # printed, in yellow, and do not fail the check.
        echo(paint("Job Warnings:", bold, _terminal.YELLOW))
        for warning in warnings:
            echo(paint(f"{path}: {warning}", _terminal.YELLOW))
    for job in jobs:
        tasks = sum(len(g.tasks) for g in job.groups)
        echo(f"{path}: job {job.id!r} is valid ({len(job.groups)} group(s), {tasks} task(s))")
    echo(paint("Job validation successful", bold, _terminal.GREEN))
    return 0
