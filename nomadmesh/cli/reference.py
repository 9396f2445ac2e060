"""The CLI reference (docs/cli.md), generated from the click commands themselves.

Regenerate with `python -m nomadmesh.cli.reference > docs/cli.md`; a test keeps it current.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from nomadmesh.cli import WIDTH, _load_commands, cli, top_help

HEADER = """# Command-line reference

Generated from the CLI itself by `python -m nomadmesh.cli.reference > docs/cli.md`; do not edit.
Every command also answers `-h` / `--help`.

Where a verb is also a `nomad` verb (`validate`, `plan`, `run`, `status`, `stop`, `history`,
`revert`, `dispatch`, `promote`, `logs`), its flags take Nomad's single-dash spelling (`-var k=v`,
`-var-file=F`, `-check-index 7`, `-detach`, `-detach=false`, `-address`, `-namespace`, `-region`,
`-token`, `-json`, ...) as well as the double-dash one, and it exits with `nomad`'s codes: `plan`
0 (no allocation changes), 1 (changes) or 255 (error); `run` 0, 2 (placement failures) or 1 (any
other error); the others 0 or 1. Verbs of nomadmesh's own exit 2 on bad input (usage, files) and 1
on other errors. `-no-color` / `-force-color` (or `NOMAD_CLI_NO_COLOR` / `NOMAD_CLI_FORCE_COLOR`)
apply to every verb.

Flags of these `nomad` verbs that nomadmesh does not take (an error says so, none is ignored):
`-t` (Go templates; use `-json` / `-json-output` and jq), `-ui`, `-policy-override` and
`-vault-namespace`, `-consul-namespace` (Enterprise), `-eval-priority`, `-preserve-resources`,
`-hcl2-strict=false` (nomadmesh is always strict), `-global` and `-no-shutdown-delay` on `stop`,
`-diff-tag`/`-diff-version` on `history`, `-id-prefix-template` and `-priority` on `dispatch`, and
tags as `revert` targets. `logs` takes a job (as `nomad alloc logs -job`), not an allocation ID.
"""


def reference() -> str:
    """Markdown for every command and subcommand: usage, help text, options."""
    _load_commands()
    ctx = cli.make_context("nomadmesh", [], resilient_parsing=True, terminal_width=WIDTH,
                           max_content_width=WIDTH)
    top = f"\n## `nomadmesh`\n\n```text\n{top_help().rstrip()}\n```\n"
    return HEADER + top + "".join(
        section for name in cli.list_commands(ctx)
        if (child := cli.get_command(ctx, name)) is not None and not child.hidden
        for section in _sections(child, ["nomadmesh", name], child.make_context(
            name, [], parent=ctx, resilient_parsing=True)))


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
