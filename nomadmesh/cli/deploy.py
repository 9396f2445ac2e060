"""Cluster verbs: plan, run (with live progress), status, stop, history, revert, dispatch, promote."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from nomadmesh.cli import EXIT_FAILED, cli
from nomadmesh.cli._options import deployment_option, job_variables, load_jobs, parse_assignments
from nomadmesh.deploy import DeployEvent, DeployResult, NomadClient
from nomadmesh.errors import DeploymentFailed, NomadmeshError
from nomadmesh.model import Job, parse_duration

EXIT_PLAN_CHANGES = 1
EXIT_PLAN_ERROR = 255

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(fn: F) -> F:
    """--address/--namespace/--region; NOMAD_* variables otherwise (the token only from
    NOMAD_TOKEN, so it never lands in shell history or process lists)."""
    fn = click.option("--region", default=None, help="Region (default: NOMAD_REGION).")(fn)
    fn = click.option("--namespace", "-n", default=None,
                      help="Namespace (default: the job's, or NOMAD_NAMESPACE).")(fn)
    fn = click.option("--address", default=None,
                      help="Nomad API address (default: NOMAD_ADDR or http://127.0.0.1:4646).")(fn)
    return fn


def mesh_options(fn: F) -> F:
    """--inject [--mesh FILE]: add Envoy sidecars before planning or submitting."""
    fn = click.option("--mesh", "mesh_file", type=click.Path(dir_okay=False, exists=True),
                      default=None, help="Mesh settings for --inject (TOML or YAML).")(fn)
    fn = click.option("--inject", is_flag=True,
                      help="Inject Envoy sidecars into meshed groups first.")(fn)
    return fn


def _client(address: str | None, region: str | None) -> NomadClient:
    return NomadClient.from_env(address=address, region=region)


def _jobs(path: str, variables: dict[str, str], var_files: tuple[str, ...], inject: bool,
          mesh_file: str | None, deployment: str | None = None) -> list[Job]:
    jobs = load_jobs(path, variables, var_files, deployment)
    if not inject:
        if mesh_file:
            raise click.UsageError("--mesh needs --inject")
        return jobs
    from nomadmesh.mesh import Mesh
    from nomadmesh.mesh import inject as inject_sidecars

    mesh = Mesh.from_file(mesh_file) if mesh_file else Mesh()
    return [inject_sidecars(job, mesh) for job in jobs]


@cli.command("plan")
@click.argument("path", metavar="PATH|PACK")
@job_variables
@deployment_option
@mesh_options
@connection_options
def plan_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                 deployment: str | None, inject: bool, mesh_file: str | None,
                 address: str | None, namespace: str | None, region: str | None) -> None:
    """Show what submitting a job file or pack would change; exit 0 none, 1 changes, 255 error."""
    from nomadmesh.packs import is_pack_ref
    from nomadmesh.packs.deploy import plan_pack

    try:
        jobs = _jobs(path, variables, var_files, inject, mesh_file, deployment)
        with _client(address, region) as client:
            if is_pack_ref(path):
                pack_plan = plan_pack(client, jobs)
                click.echo(pack_plan.render(), nl=False)
                changed = any(p.changes for p in pack_plan.plans) or bool(pack_plan.dropped)
                sys.exit(EXIT_PLAN_CHANGES if changed else 0)
            plans = [client.plan(job, namespace=namespace) for job in jobs]
    except NomadmeshError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PLAN_ERROR)
    for plan in plans:
        click.echo(plan.render())
        click.echo(f"\nTo submit with this plan's index: nomadmesh run --check-index "
                   f"{plan.job_modify_index} {path}")
    sys.exit(EXIT_PLAN_CHANGES if any(p.changes for p in plans) else 0)


@cli.command("run")
@click.argument("path", metavar="PATH|PACK")
@job_variables
@deployment_option
@click.option("--prune", is_flag=True,
              help="For packs: stop the deployment's jobs this version no longer produces.")
@mesh_options
@connection_options
@click.option("--detach", is_flag=True, help="Return once the job is registered.")
@click.option("--timeout", default="10m", show_default=True,
              help="How long to watch the rollout (Go duration).")
@click.option("--check-index", type=int, default=None,
              help="Submit only if the job's modify index is still N (0: must not exist).")
@click.option("--promote", is_flag=True, help="Promote canaries once they are healthy.")
@click.option("--force-owner", is_flag=True,
              help="Overwrite a job that another tool (e.g. Nomad Pack) deployed.")
def run_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                deployment: str | None, prune: bool, inject: bool, mesh_file: str | None,
                address: str | None, namespace: str | None, region: str | None, detach: bool,
                timeout: str, check_index: int | None, promote: bool, force_owner: bool) -> None:
    """Submit a job file or pack and watch it until healthy; exit 0 healthy, 1 failed, 2 bad input."""
    try:
        seconds = parse_duration(timeout) / 1e9
    except (ValueError, NomadmeshError) as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    if seconds <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    jobs = _jobs(path, variables, var_files, inject, mesh_file, deployment)
    from nomadmesh.packs import is_pack_ref

    if is_pack_ref(path):
        _run_pack(jobs, prune, address, region, detach, seconds)
        return
    if prune:
        raise click.UsageError("--prune applies to packs only")
    failed = False
    with _client(address, region) as client:
        for job in jobs:
            with _progress(job.id) as on_event:
                try:
                    result = client.run(job, wait=not detach, timeout=seconds, on_event=on_event,
                                        check_index=check_index, promote=promote,
                                        allow_foreign=force_owner,
                                        namespace=namespace)
                except DeploymentFailed as exc:
                    failed = True
                    _print_failure(exc)
                    continue
            click.echo(_verdict(result))
    if failed:
        sys.exit(EXIT_FAILED)


def _run_pack(jobs: list[Job], prune: bool, address: str | None, region: str | None,
              detach: bool, seconds: float) -> None:
    """Run a rendered pack; dropped jobs are stopped only with --prune, else listed."""
    from nomadmesh.packs.deploy import run_pack

    with _client(address, region) as client, _progress(jobs[0].id) as on_event:
        try:
            result = run_pack(client, jobs, prune=prune, wait=not detach, timeout=seconds,
                              on_event=on_event)
        except DeploymentFailed as exc:
            _print_failure(exc)
            sys.exit(EXIT_FAILED)
    for r in result.results:
        click.echo(_verdict(r))
    for job_id in result.pruned:
        click.echo(f"==> job {job_id!r} stopped: the pack no longer produces it (--prune)")
    for job_id in result.left_running:
        click.echo(f"==> job {job_id!r} left running although the pack no longer produces it; "
                   "run again with --prune to stop it")


def _verdict(result: DeployResult) -> str:
    if result.status == "awaiting-promotion":
        return (f"==> job {result.job_id!r}: canaries healthy; promote with "
                f"`nomadmesh promote {result.job_id}`")
    return f"==> {result}"


def _print_failure(exc: DeploymentFailed) -> None:
    click.echo(f"==> job {exc.job_id!r} failed:", err=True)
    for line in exc.diagnosis or ("(no diagnosis available)",):
        click.echo(f"    * {line}", err=True)


@contextmanager
def _progress(job_id: str) -> Iterator[Callable[[DeployEvent], None]]:
    """Rich live view (per-group table and recent events) on a terminal, plain lines otherwise."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        def plain(event: DeployEvent) -> None:
            click.echo(f"    {event}")
        yield plain
        return
    from rich.console import Group as RenderGroup
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    recent: list[DeployEvent] = []
    latest: list[DeployEvent] = []

    def view() -> RenderGroup:
        table = Table(title=f"job {job_id}", expand=False)
        for column in ("group", "healthy", "placed", "desired", "unhealthy", "canaries"):
            table.add_column(column)
        for g in latest[-1].groups if latest else ():
            table.add_row(g.name, str(g.healthy), str(g.placed), str(g.desired),
                          str(g.unhealthy),
                          f"{g.placed_canaries}/{g.desired_canaries}" if g.desired_canaries
                          else "")
        lines = [Text(str(e), style="red" if e.kind in ("placement", "revert") else "")
                 for e in recent[-8:]]
        return RenderGroup(table, *lines)

    with Live(view(), console=console, refresh_per_second=8, transient=False) as live:
        def update(event: DeployEvent) -> None:
            if event.kind == "progress":
                latest.append(event)
            else:
                recent.append(event)
            live.update(view())
        yield update


@cli.command("status")
@click.argument("job_id")
@connection_options
def status_command(job_id: str, address: str | None, namespace: str | None,
                   region: str | None) -> None:
    """Show a job: status, version, owner, allocations, deployment, Consul services."""
    with _client(address, region) as client:
        click.echo(str(client.status(job_id, namespace=namespace)))


@cli.command("stop")
@click.argument("job_id", metavar="JOB|PACK")
@click.option("--purge", is_flag=True, help="Also forget the job and its history.")
@click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
              help="Stop every job of this pack deployment (JOB|PACK is then the pack).")
@connection_options
def stop_command(job_id: str, purge: bool, deployment: str | None, address: str | None,
                 namespace: str | None, region: str | None) -> None:
    """Stop a job's allocations (and with --purge, remove the job), or a pack deployment."""
    if deployment is not None:
        from nomadmesh.packs import find_pack
        from nomadmesh.packs.deploy import stop_pack

        with _client(address, region) as client:
            stopped = stop_pack(client, deployment, pack=find_pack(job_id).pack.name,
                                purge=purge, namespace=namespace)
        for stopped_id in stopped:
            click.echo(f"==> job {stopped_id!r} {'purged' if purge else 'stopped'}")
        return
    with _client(address, region) as client:
        result = client.stop(job_id, purge=purge, namespace=namespace)
    click.echo(f"==> job {job_id!r} {'purged' if purge else 'stopped'}"
               + (f" (evaluation {result.eval_id[:8]})" if result.eval_id else ""))


@cli.command("history")
@click.argument("job_id")
@connection_options
def history_command(job_id: str, address: str | None, namespace: str | None,
                    region: str | None) -> None:
    """List a job's versions, newest first, with who submitted each and what changed."""
    with _client(address, region) as client:
        for version in client.history(job_id, namespace=namespace):
            click.echo(str(version))


@cli.command("revert")
@click.argument("job_id")
@click.argument("version", type=int)
@connection_options
def revert_command(job_id: str, version: int, address: str | None, namespace: str | None,
                   region: str | None) -> None:
    """Register an earlier version of a job again."""
    with _client(address, region) as client:
        result = client.revert(job_id, version, namespace=namespace)
    click.echo(f"==> job {job_id!r} reverted to version {version}"
               + (f" (evaluation {result.eval_id[:8]})" if result.eval_id else ""))


@cli.command("dispatch")
@click.argument("job_id")
@click.option("--meta", "meta", multiple=True, metavar="K=V", help="Dispatch meta (repeatable).")
@click.option("--payload-file", type=click.File("rb"), default=None,
              help="Payload file ('-' for standard input).")
@connection_options
def dispatch_command(job_id: str, meta: tuple[str, ...], payload_file: Any,
                     address: str | None, namespace: str | None, region: str | None) -> None:
    """Start a child of a parameterized job."""
    values = parse_assignments(meta, what="--meta")
    payload = payload_file.read() if payload_file is not None else None
    with _client(address, region) as client:
        result = client.dispatch(job_id, meta=values, payload=payload, namespace=namespace)
    click.echo(f"==> dispatched {result.dispatched_job_id}"
               + (f" (evaluation {result.eval_id[:8]})" if result.eval_id else ""))


@cli.command("promote")
@click.argument("job_id")
@connection_options
def promote_command(job_id: str, address: str | None, namespace: str | None,
                    region: str | None) -> None:
    """Promote the canaries of a job's latest deployment."""
    with _client(address, region) as client:
        deployment = client.promote(job_id, namespace=namespace)
    click.echo(f"==> promoted deployment {deployment[:8]} of job {job_id!r}")

