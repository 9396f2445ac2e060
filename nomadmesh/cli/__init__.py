"""The `nomadmesh` command line: a table of verbs, each loaded from its own module when used.

Nothing here imports click or any verb's module: `nomadmesh --help` and `--version` are answered
from the table below, the plain command lines of `validate` and `status` by `_fast` (no click),
and a verb's module (with click and its own dependencies) is imported only when that verb runs.
Each module registers its commands on the click group `cli` when imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from nomadmesh.cli._group import NomadmeshGroup

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
WIDTH = 100


class Verb:
    """One top-level command: its name, the module that defines it, its one-line summary.

    A plain class, not a NamedTuple: typing compiles a NamedTuple's field types at import, which
    every command line would pay."""

    __slots__ = ("module", "name", "summary")

    def __init__(self, name: str, module: str, summary: str) -> None:
        self.name = name
        self.module = module
        self.summary = summary

    def __repr__(self) -> str:
        return f"Verb({self.name!r}, {self.module!r})"


# In the order `nomadmesh --help` lists them. A test checks each summary against the first line
# of the command's own help, so the table cannot drift from the commands it names.
COMMANDS: tuple[Verb, ...] = (
    Verb("render", "nomadmesh.cli.jobs",
         'Print the registration payload {"Job": ...} (or HCL) for a job file or a pack.'),
    Verb("validate", "nomadmesh.cli.jobs", "Check a job file offline, as `nomad job validate`."),
    Verb("fmt", "nomadmesh.cli.fmt",
         "Format HCL job files as `nomad fmt` does (layout only; order and comments stay)."),
    Verb("plan", "nomadmesh.cli.deploy",
         "Show what submitting a job file or pack would change, as `nomad job plan`."),
    Verb("run", "nomadmesh.cli.deploy",
         "Submit a job file or pack and watch it until healthy, as `nomad job run`."),
    Verb("status", "nomadmesh.cli.deploy",
         "List jobs, or show one: status, versions, allocations, deployment, services."),
    Verb("stop", "nomadmesh.cli.deploy",
         "Stop a job's allocations (and with -purge, remove the job), or a pack deployment."),
    Verb("history", "nomadmesh.cli.deploy",
         "List a job's versions, newest first, with who submitted each and what changed."),
    Verb("revert", "nomadmesh.cli.deploy", "Register an earlier version of a job again."),
    Verb("dispatch", "nomadmesh.cli.deploy", "Start a child of a parameterized job."),
    Verb("promote", "nomadmesh.cli.deploy",
         "Promote the canaries of a job's latest deployment."),
    Verb("logs", "nomadmesh.cli.deploy", "Print (or follow) what a task of a job wrote."),
    Verb("inject", "nomadmesh.cli.mesh",
         "Add an Envoy sidecar to every meshed group of a job file and write the result."),
    Verb("mesh", "nomadmesh.cli.mesh",
         "The mesh's traffic config, kept apart from the jobs (changing it restarts nothing)."),
    Verb("sidecar", "nomadmesh.cli.mesh", "Inspect the Envoy sidecars nomadmesh injects."),
    Verb("pack", "nomadmesh.cli.packs", "Reusable, parameterized job packages written in Python."),
    Verb("xds", "nomadmesh.cli.xds", "The xDS control plane that feeds the Envoy sidecars."),
    Verb("dev", "nomadmesh.cli.dev",
         "Run emulated Nomad and Consul APIs on loopback until Ctrl+C (no real cluster needed)."),
    Verb("demo", "nomadmesh.cli.demo",
         "Run the original design locally: control plane, service-a/b and edge-router with real "
         "Envoy sidecars; send requests through the mesh and scale service-a to 3."),
)

DESCRIPTION = "Package Nomad jobs as typed Python and run them as an Envoy service mesh."
_HELP = ("-h", "--help")


def verb(name: str) -> Verb | None:
    """The table entry of a top-level command, or None."""
    return next((v for v in COMMANDS if v.name == name), None)


def top_help() -> str:
    """`nomadmesh --help`: usage, the verbs and the global options, without importing a verb."""
    width = max(len(v.name) for v in COMMANDS) + 2
    lines = ["Usage: nomadmesh [OPTIONS] COMMAND [ARGS]...", "", f"  {DESCRIPTION}", "",
             "  Every command answers -h / --help. Flags of the verbs `nomad` also has take "
             "Nomad's", "  spelling (-var, -check-index, -address, ...) as well as --long.",
             "", "Options:", "  --version     Show the version and exit.",
             "  -h, --help    Show this message and exit.",
             "  -no-color     No colors, on any command (also NOMAD_CLI_NO_COLOR or NO_COLOR).",
             "  -force-color  Colors even when not on a terminal (also NOMAD_CLI_FORCE_COLOR).",
             "", "Commands:"]
    for v in COMMANDS:
        lines.extend(_wrapped(f"  {v.name:<{width}}", v.summary))
    return "\n".join(lines) + "\n"


def _wrapped(head: str, text: str) -> list[str]:
    room = WIDTH - len(head)
    out: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > room:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return [head + out[0], *(" " * len(head) + rest for rest in out[1:])]


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: one line per error and `nomad`'s exit codes (see `_group.run`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in _HELP:
        sys.stdout.write(top_help())
        sys.exit(0)
    if any("\x00" in arg for arg in args):
        # A real command line cannot hold one (exec takes C strings); main(argv) from Python can.
        sys.stderr.write("error: an argument contains a NUL byte\n")
        sys.exit(EXIT_USAGE)
    if args == ["--version"]:
        from nomadmesh import __version__

        sys.stdout.write(f"nomadmesh, version {__version__}\n")
        sys.exit(0)
    if "validate" in args or "status" in args:
        from nomadmesh.cli._fast import fast_path

        code = fast_path(args)
        if code is not None:
            sys.exit(code)
    from nomadmesh.cli._group import run

    sys.exit(run(args))


def _load_commands() -> None:
    """Import every verb's module (the reference docs and tests list all commands)."""
    import importlib

    for v in COMMANDS:
        importlib.import_module(v.module)


def __getattr__(name: str) -> NomadmeshGroup:
    # `from nomadmesh.cli import cli` (in each verb's module) builds the click group on first use.
    if name == "cli":
        from nomadmesh.cli._group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
