"""The `nomadmesh` command line: one click group; each area adds its verbs from its own module."""

from __future__ import annotations

import importlib
import sys

import click

from nomadmesh.errors import InputError, NomadmeshError

# Each module registers its commands on `cli` when imported; listed here so that the order of
# `nomadmesh --help` is stable and a missing area fails loudly rather than silently.
COMMAND_MODULES = (
    "nomadmesh.cli.jobs",
    "nomadmesh.cli.fmt",
    "nomadmesh.cli.deploy",
    "nomadmesh.cli.mesh",
    "nomadmesh.cli.packs",
    "nomadmesh.cli.xds",
    "nomadmesh.cli.dev",
    "nomadmesh.cli.demo",
)

EXIT_FAILED = 1
EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nomadmesh")
def cli() -> None:
    """Package Nomad jobs as typed Python and run them as an Envoy service mesh."""


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: nomadmesh errors become one line per problem and an exit code."""
    _load_commands()
    try:
        code = cli.main(args=argv, prog_name="nomadmesh", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except NomadmeshError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
