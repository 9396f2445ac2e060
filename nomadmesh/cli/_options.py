"""Options shared by the verbs that read job files (--var, --var-file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from nomadmesh.loader import load_all
from nomadmesh.model import Job

F = TypeVar("F", bound=Callable[..., Any])


def parse_assignments(values: tuple[str, ...], what: str = "--var") -> dict[str, str]:
    """`K=V` strings to a dict; a missing `=` is a usage error naming the value."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


def job_variables(fn: F) -> F:
    """Add `--var K=V` (repeatable) and `--var-file F` (repeatable) to a command."""

    def to_dict(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
        return parse_assignments(value)

    fn = click.option("--var-file", "var_files", multiple=True,
                      type=click.Path(dir_okay=False),
                      help="Variable values from an HCL or JSON file (repeatable).")(fn)
    fn = click.option("--var", "variables", multiple=True, callback=to_dict, metavar="K=V",
                      help="Set an input variable (repeatable); wins over --var-file.")(fn)
    return fn


def load_jobs(path: str, variables: dict[str, str], var_files: tuple[str, ...],
              deployment: str | None = None) -> list[Job]:
    """Load every job a file (or pack) defines; input problems surface as InputErrors."""
    return load_all(path, variables=variables, var_files=var_files, deployment=deployment)


deployment_option = click.option(
    "--name", "deployment", default=None, metavar="DEPLOYMENT",
    help="For packs: the deployment (pack instance) name the jobs are tied to.")


def render_jobs(jobs: list[Job], output: str) -> str:
    """Jobs as one registration payload (a list for several) in JSON, or as HCL."""
    if output == "hcl":
        return "\n".join(j.to_hcl() for j in jobs)
    payloads = [j.to_register_body() for j in jobs]
    body = payloads[0] if len(payloads) == 1 else payloads
    return json.dumps(body, indent=2) + "\n"
