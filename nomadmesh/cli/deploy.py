"""Cluster verbs with `nomad`'s flags, output and exit codes: plan, run, status, stop, history,
revert, dispatch, promote, logs (command/job_*.go and alloc_logs.go at aa026cc)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from nomadmesh.cli import EXIT_FAILED, cli
from nomadmesh.cli._group import NomadCommand
from nomadmesh.cli._offline import load_jobs
from nomadmesh.cli._options import (
    Connection,
    connection_options,
    deployment_option,
    job_variables,
    json_input,
    mesh_options,
    parse_assignments,
    with_sidecars,
)
from nomadmesh.cli._status import SHORT_ID, show_status
from nomadmesh.errors import DeploymentFailed, NomadmeshError

if TYPE_CHECKING:
    from nomadmesh.deploy import DeployEvent, DeployResult, NomadClient
    from nomadmesh.model import Job

EXIT_PLAN_ERROR = 255  # job_plan.go:64-67


def _jobs(path: str, variables: dict[str, str], var_files: tuple[str, ...], json_in: bool,
          inject: bool, mesh_file: str | None, deployment: str | None = None) -> list[Job]:
    if mesh_file and not inject:
        raise click.UsageError("--mesh needs --inject")  # before reading anything
    return with_sidecars(load_jobs(path, variables, var_files, deployment, json_input=json_in),
                         inject, mesh_file)


def _is_pack(path: str) -> bool:
    if path == "-":
        return False
    from nomadmesh.packs import is_pack_ref

    return is_pack_ref(path)


# --- plan -----------------------------------------------------------------------------------


@cli.command("plan", cls=NomadCommand, error_exit=EXIT_PLAN_ERROR)
@click.argument("path", metavar="PATH|PACK|-")
@job_variables
@json_input
@click.option("-verbose", "--verbose", is_flag=True,
              help="Show every field of added and removed groups and tasks too.")
@click.option("-diff/-no-diff", "--diff/--no-diff", "show_diff", default=True, show_default=True,
              help="Show the diff between the job on the server and this one (-diff=false: off).")
@click.option("-json-output", "--json-output", "json_output", is_flag=True,
              help="Print Nomad's plan response as JSON instead of the plan text.")
@click.option("-preserve-counts/-no-preserve-counts", "--preserve-counts/--no-preserve-counts",
              default=True, show_default=True,
              help="Keep a group's running count when the file's count did not change since it "
                   "was scaled (-preserve-counts=false: submit the file's counts).")
@deployment_option
@click.option("--prune", is_flag=True,
              help="For packs: plan as `run --prune` would run (dropped jobs count as changes).")
@mesh_options
@connection_options
def plan_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                 json_input: bool, verbose: bool, show_diff: bool, json_output: bool,
                 preserve_counts: bool, deployment: str | None, prune: bool, inject: bool,
                 mesh_file: str | None,
                 connection: Connection) -> None:
    """Show what submitting a job file or pack would change, as `nomad job plan`.

    Exit 0 when no allocation would be created, destroyed or replaced, 1 when one would, 255 on
    any error (job_plan.go:64).
    """
    from nomadmesh.cli._plan import format_modify_index, format_plan, plan_json

    pack = _is_pack(path)
    if prune and not pack:
        raise click.UsageError("--prune applies to packs only")
    jobs = _jobs(path, variables, var_files, json_input, inject, mesh_file, deployment)
    with connection.client() as client:
        if pack:
            from nomadmesh.packs import find_pack

            sys.exit(plan_pack_command(client, jobs, find_pack(path).pack.version,
                                       verbose=verbose, show_diff=show_diff,
                                       json_output=json_output, prune=prune))
        plans = [client.plan(job, preserve_counts=preserve_counts) for job in jobs]
    if json_output:
        body = [plan_json(p) for p in plans]
        click.echo(json.dumps(body[0] if len(body) == 1 else body, indent=4))
    else:
        run_args = [*(f"-var={json.dumps(f'{k}={v}')}" for k, v in variables.items()),
                    *(f"-var-file={json.dumps(f)}" for f in var_files),
                    *([f"-namespace={json.dumps(connection.namespace)}"]
                      if connection.namespace else [])]
        for plan in plans:
            click.echo(format_plan(plan, verbose=verbose, diff=show_diff), nl=False)
            click.echo(format_modify_index(plan.job_modify_index, run_args, path))
    sys.exit(max(p.exit_code for p in plans))


def plan_pack_command(client: NomadClient, jobs: list[Job], version: str, *, verbose: bool,
                      show_diff: bool, json_output: bool, prune: bool) -> int:
    """Print a pack deployment's plan; its exit code (1 also when --prune would stop jobs)."""
    from nomadmesh.cli._plan import format_plan, plan_json
    from nomadmesh.packs.deploy import plan_pack

    pack_plan = plan_pack(client, jobs, prune=prune)
    if json_output:
        click.echo(json.dumps({"Pack": pack_plan.pack, "Version": version,
                               "Deployment": pack_plan.deployment,
                               "Plans": [plan_json(p) for p in pack_plan.plans],
                               "Dropped": list(pack_plan.dropped)}, indent=4))
    else:
        click.echo(f"Pack {pack_plan.pack} {version}, deployment "
                   f"{pack_plan.deployment!r}\n")
        for plan in pack_plan.plans:
            click.echo(format_plan(plan, verbose=verbose, diff=show_diff))
        if pack_plan.dropped:
            click.echo("Jobs this version no longer produces (stopped with --prune):"
                       if prune else
                       "Jobs this version no longer produces (stopped only with --prune):")
            for job_id in pack_plan.dropped:
                click.echo(f"  - {job_id}")
    return pack_plan.exit_code


# --- run ------------------------------------------------------------------------------------


@cli.command("run", cls=NomadCommand)
@click.argument("path", metavar="PATH|PACK|-")
@job_variables
@json_input
@click.option("-check-index", "--check-index", type=click.IntRange(min=0), default=None,
              metavar="N", help="Submit only if the job's modify index is still N (0: the job "
                                "must not exist yet), e.g. the index `plan` printed.")
@click.option("-detach", "--detach", is_flag=True,
              help="Return once the job is registered, printing its evaluation ID.")
@click.option("-preserve-counts/-no-preserve-counts", "--preserve-counts/--no-preserve-counts",
              default=True, show_default=True,
              help="Keep a group's running count when the file's count did not change since it "
                   "was scaled (-preserve-counts=false: submit the file's counts).")
@click.option("-output", "--output", "print_only", is_flag=True,
              help="Print the JSON that would be submitted, without submitting.")
@deployment_option
@click.option("--prune", is_flag=True,
              help="For packs: stop the deployment's jobs this version no longer produces.")
@mesh_options
@click.option("--timeout", default="10m", show_default=True,
              help="How long to watch the rollout (Go duration).")
@click.option("--promote", is_flag=True, help="Promote canaries once they are healthy.")
@click.option("--force-owner", is_flag=True,
              help="Overwrite a job that another tool (e.g. Nomad Pack) deployed.")
@connection_options
def run_command(path: str, variables: dict[str, str], var_files: tuple[str, ...],
                json_input: bool, check_index: int | None, detach: bool, preserve_counts: bool,
                print_only: bool,
                deployment: str | None, prune: bool, inject: bool, mesh_file: str | None,
                timeout: str, promote: bool, force_owner: bool, connection: Connection) -> None:
    """Submit a job file or pack and watch it until healthy, as `nomad job run`.

    Exit 0 when healthy (or registered, with -detach), 2 when allocations could not be placed,
    1 on any other error (job_run.go:46).
    """
    seconds = _timeout(timeout)
    pack = _is_pack(path)
    if prune and not pack:
        raise click.UsageError("--prune applies to packs only")
    jobs = _jobs(path, variables, var_files, json_input, inject, mesh_file, deployment)
    if print_only:
        for job in jobs:
            click.echo(json.dumps({"Job": job.to_api()}, indent=4))
        return
    if pack:
        sys.exit(_run_pack(connection, jobs, prune, detach, seconds))
    codes = [0]
    with connection.client() as client:
        for job in jobs:
            with _progress(job.id) as on_event:
                try:
                    result = client.run(job, wait=not detach, timeout=seconds, on_event=on_event,
                                        check_index=check_index, promote=promote,
                                        allow_foreign=force_owner,
                                        preserve_counts=preserve_counts)
                except DeploymentFailed as exc:
                    codes.append(print_failure(exc))
                    continue
            _print_result(result, detach)
    sys.exit(max(codes))


def _timeout(text: str) -> float:
    from nomadmesh.model import parse_duration

    try:
        seconds = parse_duration(text) / 1e9
    except (ValueError, NomadmeshError) as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    if seconds <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    return seconds


def _run_pack(connection: Connection, jobs: list[Job], prune: bool, detach: bool,
              seconds: float) -> int:
    """Run a rendered pack; dropped jobs are stopped only with --prune, else listed."""
    from nomadmesh.packs.deploy import run_pack

    with connection.client() as client, _progress(jobs[0].id) as on_event:
        try:
            result = run_pack(client, jobs, prune=prune, wait=not detach, timeout=seconds,
                              on_event=on_event)
        except DeploymentFailed as exc:
            return print_failure(exc)
    for r in result.results:
        _print_result(r, detach)
    for job_id in result.pruned:
        click.echo(f"==> job {job_id!r} stopped: the pack no longer produces it (--prune)")
    for job_id in result.left_running:
        click.echo(f"==> job {job_id!r} left running although the pack no longer produces it; "
                   "run again with --prune to stop it")
    return 0


def _print_result(result: DeployResult, detach: bool) -> None:
    if detach:
        # As `nomad job run -detach` (job_run.go:318-337).
        click.echo("Job registration successful")
        if result.eval_id:
            click.echo(f"Evaluation ID: {result.eval_id}")
        return
    if result.status == "awaiting-promotion":
        click.echo(f"==> job {result.job_id!r}: canaries healthy; promote with "
                   f"`nomadmesh promote {result.job_id}`")
        return
    click.echo(f"==> {result}")


def print_failure(exc: DeploymentFailed) -> int:
    """The diagnosis on standard error; the exit code (2 for placement failures, else 1)."""
    from nomadmesh.cli._terminal import RED, paint

    click.echo(paint(f"==> job {exc.job_id!r} failed:", RED, stream=sys.stderr), err=True)
    for line in exc.diagnosis or ("(no diagnosis available)",):
        click.echo(f"    * {line}", err=True)
    from nomadmesh.deploy import DeployResult

    result = exc.result
    return result.exit_code if isinstance(result, DeployResult) else EXIT_FAILED


@contextmanager
def _progress(job_id: str) -> Iterator[Callable[[DeployEvent], None]]:
    """Rich live view (per-group table and recent events) on a terminal, plain lines otherwise."""
    from rich.console import Console

    from nomadmesh.cli._terminal import rich_options

    console = Console(**rich_options())  # type: ignore[arg-type]
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


# --- status, history ------------------------------------------------------------------------


@cli.command("status", cls=NomadCommand)
@click.argument("job_id", metavar="[JOB]", required=False)
@click.option("-json", "--json", "as_json", is_flag=True,
              help="Print Nomad's JSON: the job list, or the job's summary, allocations, latest "
                   "deployment and evaluations.")
@click.option("-short", "--short", is_flag=True, help="Only the job's basic information.")
@click.option("-verbose", "--verbose", is_flag=True, help="Full allocation and deployment IDs.")
@connection_options
def status_command(job_id: str | None, as_json: bool, short: bool, verbose: bool,
                   connection: Connection) -> None:
    """List jobs, or show one: status, versions, allocations, deployment, services.

    Without JOB, every job of the namespace (-namespace '*' for all), as `nomad job status`.
    """
    with connection.client() as client:
        show_status(client, job_id, as_json=as_json, short=short, verbose=verbose,
                    all_namespaces=connection.namespace == "*", echo=click.echo)


@cli.command("history", cls=NomadCommand)
@click.argument("job_id", metavar="JOB")
@click.option("-json", "--json", "as_json", is_flag=True,
              help="Print the job's versions as Nomad's API returns them.")
@click.option("-version", "--version", "only_version", type=click.IntRange(min=0), default=None,
              metavar="N", help="Only version N.")
@click.option("-p", "show_diff", is_flag=True,
              help="Show each version's diff against the one before it.")
@click.option("-full", "--full", is_flag=True, help="Show each version's whole job as JSON.")
@connection_options
def history_command(job_id: str, as_json: bool, only_version: int | None, show_diff: bool,
                    full: bool, connection: Connection) -> None:
    """List a job's versions, newest first, with who submitted each and what changed."""
    with connection.client() as client:
        body = client.api.versions(job_id, client.api.http.params(extra={"diffs": "true"}))
        versions = client.history(job_id)
    raw = list(body.get("Versions") or [])
    diffs = list(body.get("Diffs") or [])
    picked = [i for i, v in enumerate(versions) if only_version in (None, v.version)]
    if only_version is not None and not picked:
        raise NomadmeshError(f"job {job_id!r} has no version {only_version}")
    if as_json:
        click.echo(json.dumps([raw[i] for i in picked if i < len(raw)], indent=4))
        return
    from nomadmesh.cli._plan import format_job_diff

    blocks = []
    for i in picked:
        text = str(versions[i])
        if show_diff and i < len(diffs) and diffs[i]:
            text += "\n  Diff:\n" + _indent(format_job_diff(diffs[i], False).rstrip(), 4)
        if full and i < len(raw):
            text += "\n  Job:\n" + _indent(json.dumps(raw[i], indent=4), 4)
        blocks.append(text)
    click.echo("\n".join(blocks))


def _indent(text: str, width: int) -> str:
    return "\n".join(" " * width + line if line else line for line in text.splitlines())


# --- stop, revert, dispatch, promote --------------------------------------------------------


@cli.command("stop", cls=NomadCommand)
@click.argument("job_id", metavar="JOB|PACK")
@click.option("-purge", "--purge", is_flag=True, help="Also forget the job and its history.")
@click.option("-detach", "--detach", is_flag=True,
              help="Return at once; nomadmesh's stop always does (accepted as in `nomad`).")
@click.option("-yes", "--yes", is_flag=True,
              help="Answer yes; nomadmesh's stop never asks (accepted as in `nomad`).")
@click.option("--name", "deployment", default=None, metavar="DEPLOYMENT",
              help="Stop every job of this pack deployment (JOB|PACK is then the pack).")
@connection_options
def stop_command(job_id: str, purge: bool, detach: bool, yes: bool, deployment: str | None,
                 connection: Connection) -> None:
    """Stop a job's allocations (and with -purge, remove the job), or a pack deployment."""
    if deployment is not None:
        from nomadmesh.packs import find_pack
        from nomadmesh.packs.deploy import stop_pack

        with connection.client() as client:
            stopped = stop_pack(client, deployment, pack=find_pack(job_id).pack.name,
                                purge=purge)
        for stopped_id in stopped:
            click.echo(f"==> job {stopped_id!r} {'purged' if purge else 'stopped'}")
        return
    with connection.client() as client:
        result = client.stop(job_id, purge=purge)
    click.echo(f"==> job {job_id!r} {'purged' if purge else 'stopped'}"
               + (f" (evaluation {result.eval_id[:SHORT_ID]})" if result.eval_id else ""))


@cli.command("revert", cls=NomadCommand)
@click.argument("job_id", metavar="JOB")
@click.argument("version", type=click.IntRange(min=0))
@connection_options
def revert_command(job_id: str, version: int, connection: Connection) -> None:
    """Register an earlier version of a job again."""
    with connection.client() as client:
        result = client.revert(job_id, version)
    click.echo(f"==> job {job_id!r} reverted to version {version}"
               + (f" (evaluation {result.eval_id[:SHORT_ID]})" if result.eval_id else ""))


@cli.command("dispatch", cls=NomadCommand)
@click.argument("job_id", metavar="JOB")
@click.argument("payload_file", metavar="[INPUT]", required=False, type=click.File("rb"))
@click.option("-meta", "--meta", "meta", multiple=True, metavar="K=V",
              help="Dispatch meta (repeatable).")
@click.option("-idempotency-token", "--idempotency-token", default=None, metavar="TOKEN",
              help="Dispatch at most once per token.")
@click.option("--payload-file", "payload_option", type=click.File("rb"), default=None,
              help="Payload file ('-' for standard input); the same as INPUT.")
@connection_options
def dispatch_command(job_id: str, payload_file: Any, meta: tuple[str, ...],
                     idempotency_token: str | None, payload_option: Any,
                     connection: Connection) -> None:
    """Start a child of a parameterized job."""
    values = parse_assignments(meta, what="-meta")
    if payload_file is not None and payload_option is not None:
        raise click.UsageError("give the payload once: INPUT or --payload-file")
    source = payload_file or payload_option
    payload = source.read() if source is not None else None
    with connection.client() as client:
        result = client.dispatch(job_id, meta=values, payload=payload,
                                 idempotency_token=idempotency_token)
    click.echo(f"==> dispatched {result.dispatched_job_id}"
               + (f" (evaluation {result.eval_id[:SHORT_ID]})" if result.eval_id else ""))


@cli.command("promote", cls=NomadCommand)
@click.argument("job_id", metavar="JOB")
@click.option("-group", "--group", "groups", multiple=True, metavar="GROUP",
              help="Promote only this group's canaries (repeatable; default: all).")
@connection_options
def promote_command(job_id: str, groups: tuple[str, ...], connection: Connection) -> None:
    """Promote the canaries of a job's latest deployment."""
    with connection.client() as client:
        deployment = client.promote(job_id, groups=list(groups) or None)
    click.echo(f"==> promoted deployment {deployment[:SHORT_ID]} of job {job_id!r}")


# --- logs -----------------------------------------------------------------------------------


@cli.command("logs", cls=NomadCommand)
@click.argument("job_id", metavar="JOB")
@click.argument("task", metavar="[TASK]", required=False)
@click.option("-job", "--job", "by_job", is_flag=True,
              help="JOB names a job, as `nomad alloc logs -job` (always so in nomadmesh).")
@click.option("-task", "--task", "task_option", default=None, metavar="TASK",
              help="The task (wins over the TASK argument).")
@click.option("-group", "--group", default=None, metavar="GROUP",
              help="Only allocations of this task group.")
@click.option("--alloc", "alloc_prefix", default="", metavar="ID",
              help="Only the allocation whose ID starts with this.")
@click.option("-stderr", "--stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("-stdout", "--stdout", is_flag=True, help="Show stdout (the default).")
@click.option("-f", "--follow", "follow", is_flag=True,
              help="Keep printing what the task writes until it stops (or Ctrl+C).")
@click.option("-tail", "--tail", is_flag=True,
              help="Only the end of the log: the last 10 lines unless -n or -c says otherwise.")
@click.option("-n", "--lines", "lines", type=click.IntRange(min=0), default=None, metavar="LINES",
              help="The last LINES lines (implies -tail).")
@click.option("-c", "--bytes", "count_bytes", type=click.IntRange(min=0), default=None,
              metavar="BYTES", help="The last BYTES bytes (implies -tail).")
@connection_options
def logs_command(job_id: str, task: str | None, by_job: bool, task_option: str | None,
                 group: str | None, alloc_prefix: str, stderr: bool, stdout: bool, follow: bool,
                 tail: bool, lines: int | None, count_bytes: int | None,
                 connection: Connection) -> None:
    """Print (or follow) what a task of a job wrote."""
    from nomadmesh.cli._logs import LogRequest, show_logs

    if stderr and stdout:
        raise click.UsageError("-stderr and -stdout cannot be used together")
    if lines is not None and count_bytes is not None:
        raise click.UsageError("-n and -c cannot be used together")
    chosen_task = task_option or task
    if not chosen_task:
        raise click.UsageError("which task? give TASK or -task")
    request = LogRequest(job_id=job_id, task=chosen_task, group=group, alloc_prefix=alloc_prefix,
                         stderr=stderr, follow=follow,
                         tail=tail or lines is not None or count_bytes is not None,
                         lines=lines, count_bytes=count_bytes)
    with connection.client() as client:
        show_logs(client, request)
