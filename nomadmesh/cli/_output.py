"""Writing a verb's output to standard output or a file, with one error line for each way a
file cannot be written (issue 16: unwritable file, missing directory, unsearchable directory)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from nomadmesh.errors import OutputError


def write_output(text: str, path: str | None) -> None:
    """`text` to standard output, or to the file `path` (created or replaced)."""
    if path is None or path == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_why(Path(path), exc)}") from None


def _why(path: Path, exc: OSError) -> str:
    parent = path.parent
    if exc.errno == errno.ENOENT:
        return f"directory {str(parent)!r} does not exist"
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is not a directory"
    if exc.errno == errno.EACCES:
        closed = _closed_directory(parent)
        if closed is not None:
            return f"permission denied: directory {str(closed)!r} cannot be searched"
        if path.exists():
            return "permission denied: the file is not writable"
        return f"permission denied: directory {str(parent)!r} is not writable"
    return exc.strerror or str(exc)


def _closed_directory(directory: Path) -> Path | None:
    """The first directory on the way to `directory` that this user cannot search (x bit)."""
    current = Path(directory.anchor) if directory.is_absolute() else Path(".")
    for part in directory.parts[1:] if directory.is_absolute() else directory.parts:
        current = current / part
        if not os.access(current, os.X_OK):
            return current
    return None
