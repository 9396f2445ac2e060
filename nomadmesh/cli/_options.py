"""Options shared by the verbs, spelled as `nomad` spells them (`-var`, `-address`, ...).

Every flag that `nomad` has takes Nomad's single-dash form and the double-dash form (Go's flag
package accepts both); flags of our own are double-dash only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

if TYPE_CHECKING:
    from nomadmesh.deploy import NomadClient
    from nomadmesh.model import Job

F = TypeVar("F", bound=Callable[..., Any])


def parse_assignments(values: tuple[str, ...], what: str = "-var") -> dict[str, str]:
    """`K=V` strings to a dict; a missing `=` is a usage error naming the value."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


def job_variables(fn: F) -> F:
    """`-var K=V` and `-var-file F` (both repeatable), as `nomad job run` takes them."""

    def to_dict(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
        return parse_assignments(value)

    fn = click.option("-var-file", "--var-file", "var_files", multiple=True, metavar="FILE",
                      type=click.Path(dir_okay=False),
                      help="Variable values from an HCL or JSON file (repeatable).")(fn)
    fn = click.option("-var", "--var", "variables", multiple=True, callback=to_dict, metavar="K=V",
                      help="Set an input variable (repeatable); wins over -var-file and "
                           "NOMAD_VAR_<name>.")(fn)
    return fn


def json_input(fn: F) -> F:
    """`-json`: the job file is Nomad API JSON, as `nomad job run -json` (helpers.go:532)."""
    return click.option("-json", "--json", "json_input", is_flag=True,
                        help="Read the job file as JSON (with or without an outer \"Job\" key), "
                             "whatever its name.")(fn)


def mesh_options(fn: F) -> F:
    """--inject [--mesh FILE]: add Envoy sidecars to meshed groups first."""
    fn = click.option("--mesh", "mesh_file", type=click.Path(dir_okay=False), default=None,
                      help="Mesh settings for --inject (TOML, YAML or JSON).")(fn)
    return click.option("--inject", is_flag=True,
                        help="Inject Envoy sidecars into meshed groups first "
                             "(see `nomadmesh inject`).")(fn)


def with_sidecars(jobs: list[Job], inject: bool, mesh_file: str | None) -> list[Job]:
    """`jobs` with sidecars injected when --inject was given (--mesh alone is a usage error)."""
    if not inject:
        if mesh_file:
            raise click.UsageError("--mesh needs --inject")
        return jobs
    from nomadmesh.mesh import Mesh

    mesh = Mesh.from_file(mesh_file) if mesh_file else Mesh()
    return [mesh.inject(job) for job in jobs]


deployment_option = click.option(
    "--name", "deployment", default=None, metavar="DEPLOYMENT",
    help="For packs: the deployment (pack instance) name the jobs are tied to.")


def format_option(choices: tuple[str, ...], help: str) -> Callable[[F], F]:
    """`--format` (not `-output`, which in `nomad job run` means "print instead of submit")."""
    return click.option("--format", "output_format", type=click.Choice(choices), default=choices[0],
                        show_default=True, help=help)


def render_jobs(jobs: list[Job], output_format: str) -> str:
    """Jobs as one registration payload (a list for several) in JSON, or as HCL."""
    if output_format == "hcl":
        return "\n".join(j.to_hcl() for j in jobs)
    payloads = [j.to_register_body() for j in jobs]
    body = payloads[0] if len(payloads) == 1 else payloads
    return json.dumps(body, indent=2) + "\n"


@attrs.frozen
class Connection:
    """How to reach Nomad: the connection flags given (NomadConfig's names); flags not given fall
    back to NOMAD_* in `client()`, as in `nomad`. The token is never part of the repr."""

    flags: Mapping[str, str | bool] = attrs.field(factory=dict, repr=False)

    @property
    def namespace(self) -> str | None:
        value = self.flags.get("namespace")
        return value if isinstance(value, str) else None

    def client(self) -> NomadClient:
        """A client for these flags over the NOMAD_* environment (flags win)."""
        from nomadmesh.deploy import NomadClient

        settings: dict[str, Any] = dict(self.flags)
        return NomadClient.from_env(**settings)


_CONNECTION_FLAGS = (
    ("address", "ADDR", "The Nomad API address (default: NOMAD_ADDR, else http://127.0.0.1:4646)."),
    ("region", "REGION", "The region to forward to (default: NOMAD_REGION; a job's own region "
                         "wins)."),
    ("namespace", "NAMESPACE", "The namespace (default: NOMAD_NAMESPACE, else \"default\"; a job's "
                               "own namespace wins)."),
    ("token", "TOKEN", "ACL token; prefer NOMAD_TOKEN, which stays out of shell history and "
                       "process lists. Never printed."),
    ("ca-cert", "FILE", "CA certificate (PEM) to verify the server (default: NOMAD_CACERT)."),
    ("ca-path", "DIR", "Directory of CA certificates (default: NOMAD_CAPATH)."),
    ("client-cert", "FILE", "Client certificate for mutual TLS (default: NOMAD_CLIENT_CERT)."),
    ("client-key", "FILE", "Key of the client certificate (default: NOMAD_CLIENT_KEY)."),
    ("tls-server-name", "NAME", "Server name for TLS (SNI and verification; default: "
                                "NOMAD_TLS_SERVER_NAME)."),
)


def connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Nomad's client flags (command/meta.go:68-83); the command receives `connection`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given: dict[str, str | bool] = {}
        for flag, _, _ in _CONNECTION_FLAGS:
            value = kwargs.pop(flag.replace("-", "_"))
            if value is not None:
                given[flag.replace("-", "_")] = value
        if kwargs.pop("skip_verify"):
            given["skip_verify"] = True
        return fn(*args, connection=Connection(given), **kwargs)

    command: Callable[..., Any] = click.option(
        "-tls-skip-verify", "--tls-skip-verify", "-insecure", "--insecure", "skip_verify",
        is_flag=True, help="Do not verify the server's certificate (not recommended; "
                           "NOMAD_SKIP_VERIFY).")(wrapper)
    for flag, metavar, text in reversed(_CONNECTION_FLAGS):
        command = click.option(f"-{flag}", f"--{flag}", flag.replace("-", "_"), metavar=metavar,
                               default=None, help=text)(command)
    return command


