"""`validate` without click: the common command lines take a path that imports no click (issue 15).

`nomadmesh validate F` is the verb users run most often offline (editors and CI hooks run it on
every file); click's import alone is ~35 ms of the ~60 ms its target leaves. `fast_validate`
reads the few command lines whose meaning is plain (a path, `-var`, `-var-file`, `-json`) and runs
the same check the click command runs, printing what click would print; any other command line
(help, an unknown or malformed flag, `--`, shell completion, an ASCII stream click re-wraps) returns
None and goes through click as before. A test compares both paths' output on a set of command
lines, so the two cannot drift.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from nomadmesh.cli import EXIT_FAILED, EXIT_INTERRUPTED, _terminal

if TYPE_CHECKING:
    from nomadmesh.model import Job

_VALUE_FLAGS = {"-var": "variables", "--var": "variables",
                "-var-file": "var_files", "--var-file": "var_files"}
_JSON_FLAGS = ("-json", "--json")


class Echo(Protocol):
    """click.echo's signature, as far as the offline verbs use it."""

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


def validate_args(args: Sequence[str]) -> tuple[str, dict[str, str], tuple[str, ...], bool] | None:
    """PATH, -var values, -var-file values and -json of `validate ARGS` when the command line is
    one whose meaning is plain, else None (click then parses it, and words any error)."""
    path: str | None = None
    variables: dict[str, str] = {}
    var_files: list[str] = []
    json_input = False
    i = 0
    while i < len(args):
        arg = args[i]
        name, sep, value = arg.partition("=")
        if name in _VALUE_FLAGS:
            if not sep:
                i += 1
                if i == len(args) or args[i].startswith("-"):
                    return None
                value = args[i]
            if _VALUE_FLAGS[name] == "variables":
                key, eq, val = value.partition("=")
                if not eq or not key:
                    return None
                variables[key] = val
            elif os.path.isdir(value):
                return None  # click.Path(dir_okay=False) words this one
            else:
                var_files.append(value)
        elif arg in _JSON_FLAGS:
            json_input = True
        elif path is None and (arg == "-" or not arg.startswith("-")):
            path = arg
        else:
            return None
        i += 1
    return None if path is None else (path, variables, tuple(var_files), json_input)


def fast_validate(argv: Sequence[str]) -> int | None:
    """The exit code of `nomadmesh ARGV` run without click, or None when click must run it."""
    if "_NOMADMESH_COMPLETE" in os.environ or not (_as_is(sys.stdout) and _as_is(sys.stderr)):
        return None
    rest = _terminal.configure(argv, os.environ)
    parsed = validate_args(rest[1:]) if rest[:1] == ["validate"] else None
    if parsed is None:
        return None
    from nomadmesh.errors import NomadmeshError

    try:
        return check_jobs(*parsed, echo=_echo)
    except NomadmeshError as exc:
        # As NomadCommand.invoke and _group.run: one `error: ...` line, exit 1.
        _write(sys.stderr, _terminal.error_line(str(exc)), _terminal.color(sys.stderr))
        return EXIT_FAILED
    except (EOFError, KeyboardInterrupt):
        _write(sys.stderr, "", None)  # click's blank line after the terminal's ^C
        _write(sys.stderr, "aborted", None)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # As click: the reader left; nothing more is said, the exit code is 1, and the flush at
        # exit writes to /dev/null (the recipe of Python's signal module docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(devnull, stream.fileno())
        return EXIT_FAILED


def _echo(message: str, *, err: bool = False) -> None:
    _write(sys.stderr if err else sys.stdout, message, _terminal.click_color())


def _write(stream: Any, message: str, color: bool | None) -> None:
    """click.echo(message, file=stream, color=color): a newline, ANSI codes stripped from what
    does not go to a terminal (unless color is forced), flushed."""
    if stream is None:
        return
    out = message + "\n"
    if "\x1b" in out and (not color if color is not None else not _isatty(stream)):
        import re

        out = re.sub(r"\033\[[;?0-9]*[a-zA-Z]", "", out)  # click's strip_ansi
    stream.write(out)
    stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # as click's isatty: a stream that cannot say is not a terminal
        return False


def _as_is(stream: Any) -> bool:
    """Whether click.echo writes to `stream` itself, as this path does: a text stream whose
    encoding is set and not ASCII, or one without a binary buffer to re-wrap (click._compat
    _force_correct_text_stream); else click writes UTF-8 to the buffer and click must run."""
    encoding = getattr(stream, "encoding", None)
    if encoding is not None and getattr(stream, "errors", None) is not None:
        try:
            if codecs.lookup(encoding).name != "ascii":
                return True
        except LookupError:
            return True
    return getattr(stream, "buffer", None) is None
