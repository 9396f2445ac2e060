"""The most common command lines without click (issue 15: "starts fast").

`nomadmesh validate F` (editors and CI hooks run it on every file) and `nomadmesh status [JOB]`
are the verbs users run most; click's import is ~20-35 ms of the few tens of milliseconds their
targets leave. `fast_path` reads the command lines of those verbs whose meaning is plain
(`validate`: a path, `-var`, `-var-file`, `-json`; `status`: an optional job, `-json`, `-short`,
`-verbose`, the connection from NOMAD_*) and runs the same code the click commands run
(cli/_offline.py, cli/_status.py), printing what click would print with the same exit codes. Any
other command line (help, an unknown, malformed or `=`-valued flag, `--`, connection flags, shell
completion, an ASCII stream click would re-wrap) returns None and goes through click as before.
tests/test_cli_fast.py compares both paths' output, so the two cannot drift.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nomadmesh.cli import EXIT_FAILED, EXIT_INTERRUPTED, _terminal

_VALUE_FLAGS = {"-var": "variables", "--var": "variables",
                "-var-file": "var_files", "--var-file": "var_files"}
_JSON_FLAGS = ("-json", "--json")
_STATUS_FLAGS = {"-json": "as_json", "--json": "as_json", "-short": "short", "--short": "short",
                 "-verbose": "verbose", "--verbose": "verbose"}
Run = Callable[[], int]


def fast_path(argv: Sequence[str]) -> int | None:
    """The exit code of `nomadmesh ARGV` run without click, or None when click must run it."""
    if "_NOMADMESH_COMPLETE" in os.environ or not (_as_is(sys.stdout) and _as_is(sys.stderr)):
        return None
    rest = _terminal.configure(argv, os.environ)
    verb, args = (rest[0], rest[1:]) if rest else ("", [])
    run = validate_run(args) if verb == "validate" else status_run(args) if verb == "status" \
        else None
    if run is None:
        return None
    from nomadmesh.errors import NomadmeshError

    try:
        return run()
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


def validate_run(args: Sequence[str]) -> Run | None:
    """`validate ARGS` when its meaning is plain (a path, -var, -var-file, -json), else None."""
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
    if path is None:
        return None
    job_file = path

    def run() -> int:
        from nomadmesh.cli._offline import check_jobs

        return check_jobs(job_file, variables, tuple(var_files), json_input, echo=_echo)

    return run


def status_run(args: Sequence[str]) -> Run | None:
    """`status ARGS` with at most a job and -json/-short/-verbose (the connection from the
    environment, as click's command without connection flags), else None."""
    job_id: str | None = None
    flags = {"as_json": False, "short": False, "verbose": False}
    for arg in args:
        if arg in _STATUS_FLAGS:
            flags[_STATUS_FLAGS[arg]] = True
        elif job_id is None and not arg.startswith("-"):
            job_id = arg
        else:
            return None

    def run() -> int:
        from nomadmesh.cli._status import show_status
        from nomadmesh.deploy import NomadClient

        with NomadClient.from_env() as client:
            show_status(client, job_id, all_namespaces=False, echo=_echo, **flags)
        return 0

    return run


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
