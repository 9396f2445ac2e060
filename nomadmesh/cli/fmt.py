"""`nomadmesh fmt`: `nomad fmt` (command/fmt.go) with nomadmesh.hcl's formatter (hclwrite's rules)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import click

from nomadmesh.cli import cli
from nomadmesh.errors import HclError, InputError

NOMAD_SUFFIXES = (".nomad", ".hcl")


def _bool(_ctx: click.Context, _param: click.Parameter, value: str) -> bool:
    text = value.lower()
    if text in ("1", "t", "true"):
        return True
    if text in ("0", "f", "false"):
        return False
    raise click.BadParameter(f"{value!r} is not a boolean (true or false)")


@cli.command("fmt")
@click.argument("paths", nargs=-1, metavar="[PATH|-]...")
@click.option("-check", "--check", is_flag=True, help="Do not write; exit 1 if any file is not formatted.")
@click.option(
    "-list",
    "--list",
    "list_",
    default="true",
    is_flag=False,
    flag_value="true",
    callback=_bool,
    metavar="BOOL",
    show_default=True,
    help="Print the name of each file whose formatting changes.",
)
@click.option(
    "-write",
    "--write",
    default="true",
    is_flag=False,
    flag_value="true",
    callback=_bool,
    metavar="BOOL",
    show_default=True,
    help="Overwrite files that change.",
)
@click.option("-recursive", "--recursive", is_flag=True, help="Descend into subdirectories.")
def fmt(paths: tuple[str, ...], check: bool, list_: bool, write: bool, recursive: bool) -> None:
    """Format HCL job files as `nomad fmt` does (layout only; order and comments stay)."""
    from nomadmesh.hcl import format_source

    if paths[:1] == ("-",):
        text = sys.stdin.read()
        try:
            click.echo(format_source(text, filename="<stdin>"), nl=False)
        except HclError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        return
    to_stdout = not list_ and not write
    if check:
        write = False
    failed = False
    unformatted = False
    for path in _files(paths or (".",), recursive):
        if isinstance(path, InputError):
            click.echo(str(path), err=True)
            failed = True
            continue
        try:
            original = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"Failed to read file {path}: {exc}", err=True)
            failed = True
            continue
        try:
            formatted = format_source(original, filename=str(path))
        except HclError as exc:
            click.echo(str(exc), err=True)
            failed = True
            continue
        if formatted != original:
            unformatted = True
            if list_:
                click.echo(str(path))
            if write:
                try:
                    path.write_text(formatted, encoding="utf-8")
                except OSError as exc:
                    click.echo(f"Failed to write file {path}: {exc.strerror}", err=True)
                    failed = True
        if to_stdout:
            click.echo(formatted, nl=False)
    if failed or (check and unformatted):
        sys.exit(1)


def _files(paths: tuple[str, ...], recursive: bool) -> list[Path | InputError]:
    """The files `nomad fmt` processes, in its order; a bad path is an error in the list."""
    out: list[Path | InputError] = []
    for raw in paths:
        p = Path(raw)
        try:  # one stat, as command/fmt.go:173; any failure (ENAMETOOLONG, EACCES, NUL) is "no file"
            mode = p.stat().st_mode
        except (OSError, ValueError):
            out.append(InputError(f"No file or directory at {raw}"))
            continue
        if stat.S_ISDIR(mode):
            out.extend(_directory(p, recursive))
        elif p.suffix in NOMAD_SUFFIXES and stat.S_ISREG(mode):
            out.append(p)
        else:
            out.append(InputError(f"{raw}: only .nomad and .hcl files can be processed using fmt"))
    return out


def _directory(p: Path, recursive: bool) -> list[Path | InputError]:
    try:
        entries = sorted(os.scandir(p), key=lambda e: e.name)
    except OSError:
        return [InputError(f"Failed to list directory {p}")]
    out: list[Path | InputError] = []
    for entry in entries:
        sub = p / entry.name
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as exc:
            out.append(InputError(f"Failed to read file {sub}: {exc.strerror}"))
            continue
        if is_dir:
            if recursive:
                out.extend(_directory(sub, recursive))
        elif is_file and sub.suffix in NOMAD_SUFFIXES:
            out.append(sub)
    return out
