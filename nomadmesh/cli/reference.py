"""The CLI reference (docs/cli.md), generated from the click commands themselves.

Regenerate with `python -m nomadmesh.cli.reference > docs/cli.md`; a test keeps it current.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from nomadmesh.cli import _load_commands, cli

WIDTH = 100  # fixed, so that the output does not depend on the terminal
HEADER = """# Command-line reference

Generated from the CLI itself by `python -m nomadmesh.cli.reference > docs/cli.md`; do not edit.
Every command also answers `-h` / `--help`.
"""


def reference() -> str:
    """Markdown for every command and subcommand: usage, help text, options."""
    _load_commands()
    ctx = cli.make_context("nomadmesh", [], resilient_parsing=True, terminal_width=WIDTH,
                           max_content_width=WIDTH)
    return HEADER + "".join(_sections(cli, ["nomadmesh"], ctx))


def _sections(command: click.Command, path: list[str], ctx: click.Context) -> Iterator[str]:
    name = " ".join(path)
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    command.format_help_text(ctx, formatter)
    command.format_options(ctx, formatter)
    level = "#" * min(len(path) + 1, 4)
    yield f"\n{level} `{name}`\n\n```text\n{formatter.getvalue().rstrip()}\n```\n"
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            child = command.get_command(ctx, sub)
            if child is not None and not child.hidden:
                yield from _sections(child, [*path, sub], child.make_context(
                    sub, [], parent=ctx, resilient_parsing=True))


if __name__ == "__main__":
    print(reference(), end="")
