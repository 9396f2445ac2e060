"""The click group behind `nomadmesh`: verbs loaded on demand, Go-style flags, `nomad`'s exit codes."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from nomadmesh.cli import (
    COMMANDS,
    DESCRIPTION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    WIDTH,
    _terminal,
    top_help,
    verb,
)
from nomadmesh.errors import InputError, NomadmeshError

# Go's strconv.ParseBool, which Nomad's flag package uses for `-detach=false` and the like.
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class Failed(click.ClickException):
    """An error already worded for the user, with the exit code of the verb that met it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NomadmeshGroup(click.Group):
    """The top-level group: each verb's module is imported only when that verb is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [v.name for v in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = verb(cmd_name)
        if entry is None:
            return None
        if cmd_name not in self.commands:
            importlib.import_module(entry.module)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(top_help())

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if verb(name) is None and not name.startswith("-"):
            known = ", ".join(v.name for v in COMMANDS)
            raise click.UsageError(f"no such command {name!r}; the commands are: {known}")
        return super().resolve_command(ctx, args)


class NomadCommand(click.Command):
    """A verb that `nomad` also has: its flags parse as Go's flag package parses them
    (`-detach=false`, `-var=k=v`, `--var k=v`) and its errors exit with `nomad`'s code."""

    def __init__(self, *args: Any, error_exit: int = EXIT_FAILED, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_exit = error_exit

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._go_booleans(args))
        except click.UsageError as exc:
            raise Failed(_usage_message(exc, ctx), self.error_exit) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NomadmeshError as exc:
            raise Failed(str(exc), self.error_exit) from None
        except click.UsageError as exc:
            raise Failed(_usage_message(exc, ctx), self.error_exit) from None

    def _go_booleans(self, args: list[str]) -> list[str]:
        """`-flag=true` becomes `-flag`, `-flag=false` its off switch (or nothing)."""
        flags = {name: p for p in self.params if isinstance(p, click.Option) and p.is_flag
                 and not p.count for name in p.opts}
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                return out + args[i:]
            name, sep, value = arg.partition("=")
            option = flags.get(name) if sep else None
            if option is None:
                out.append(arg)
            elif value in _GO_TRUE:
                out.append(name)
            elif value in _GO_FALSE:
                out.extend(option.secondary_opts[:1])
            else:
                raise click.UsageError(f'invalid boolean value "{value}" for {name}: parse error',
                                       ctx=None)
        return out


@click.group(cls=NomadmeshGroup, help=DESCRIPTION,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": WIDTH,
                               "terminal_width": WIDTH})
def cli() -> None:
    """The group every verb's module adds its commands to (its help is `top_help()`)."""


def run(args: Sequence[str]) -> int:
    """Run the CLI on `args`; the exit code. Color flags are global, as in `nomad` (meta.go:261)."""
    rest = _terminal.configure(args, os.environ)
    try:
        code = cli.main(args=rest, prog_name="nomadmesh", standalone_mode=False,
                        color=_terminal.click_color())
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except Failed as exc:
        _error(exc.format_message())
        return exc.code
    except click.ClickException as exc:
        _error(_usage_message(exc, getattr(exc, "ctx", None)))
        return exc.exit_code
    except InputError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except NomadmeshError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except BrokenPipeError:
        # `nomadmesh status | head`: the reader left; nothing more to say, as a Go tool does.
        sys.stderr.close()
        return EXIT_FAILED
    return code if isinstance(code, int) else 0


def _error(message: str) -> None:
    click.echo(_terminal.error_line(message), err=True, color=_terminal.color(sys.stderr))


def _usage_message(exc: click.ClickException, ctx: click.Context | None) -> str:
    message = exc.format_message()
    if isinstance(exc, click.UsageError) and ctx is not None:
        return f"{message} (see `{ctx.command_path} --help`)"
    return message
