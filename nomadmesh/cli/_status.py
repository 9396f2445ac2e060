"""`nomadmesh status`'s output, without click: the click command and the click-free path both
print through this module (cli/_fast.py runs `status [JOB]` without importing click)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.cli._table import columns, key_values

if TYPE_CHECKING:
    from nomadmesh.cli._offline import Echo
    from nomadmesh.deploy import JobStatus, NomadClient

SHORT_ID = 8  # meta.go: shortId


def show_status(client: NomadClient, job_id: str | None, *, as_json: bool, short: bool,
                verbose: bool, all_namespaces: bool, echo: Echo) -> None:
    """Print the job list (no JOB) or one job's status, as `nomad job status` does."""
    if job_id is None:
        _list_jobs(client, as_json, all_namespaces, echo)
        return
    if as_json:
        echo(json.dumps([_job_json(client, job_id)], indent=4))
        return
    echo(format_status(client.status(job_id), client.job(job_id), short=short,
                       id_length=None if verbose else SHORT_ID))


def _list_jobs(client: NomadClient, as_json: bool, all_namespaces: bool, echo: Echo) -> None:
    stubs = client.jobs()
    if not stubs:
        echo("No running jobs")  # job_status.go:160
        return
    if as_json:
        echo(json.dumps([_job_json(client, str(s.get("ID")), str(s.get("Namespace") or ""))
                               for s in stubs], indent=4))
        return
    header = ["ID", *(["Namespace"] if all_namespaces else []), "Type", "Priority", "Status",
              "Submit Date"]
    rows = [[str(s.get("ID", "")), *([str(s.get("Namespace", ""))] if all_namespaces else []),
             _type(s), str(s.get("Priority", "")),
             str(s.get("Status", "")) + (" (stopped)" if s.get("Stop") else ""),
             _time(s.get("SubmitTime"))] for s in stubs]
    echo(columns(header, rows))


def _type(stub: dict[str, Any]) -> str:
    """getTypeString (job_status.go:942)."""
    text = str(stub.get("Type", ""))
    if stub.get("Periodic"):
        text += "/periodic"
    if stub.get("ParameterizedJob"):
        text += "/parameterized"
    return text


def _time(nanos: object) -> str:
    """formatTime (helpers.go:102): RFC 3339 in local time, empty for the zero time."""
    import datetime

    if not isinstance(nanos, int) or nanos < 1_000_000_000:
        return ""
    moment = datetime.datetime.fromtimestamp(nanos / 1e9).astimezone()
    return moment.replace(microsecond=0).isoformat()


def _job_json(client: NomadClient, job_id: str, namespace: str = "") -> dict[str, Any]:
    """createJsonJobsOutput (job_status.go:877): the job's summary, allocations, latest
    deployment and evaluations as Nomad's API returns them."""
    api = client.api
    params = api.http.params(namespace or None)
    return {"Summary": api.summary(job_id, params),
            "Allocations": api.allocations(job_id, params),
            "LatestDeployment": api.latest_deployment(job_id, params),
            "Evaluations": api.evaluations(job_id, params)}


def format_status(status: JobStatus, job: Mapping[str, Any], *, short: bool = False,
                  id_length: int | None = SHORT_ID) -> str:
    """A job's status in the layout of `nomad job status JOB` (job_status.go:222-248), with its
    version and owner, and its services' instances when Consul is known."""

    def cut(text: str) -> str:
        return text[:id_length] if id_length else text

    basic = [("ID", status.job_id), ("Name", str(job.get("Name") or status.job_id)),
             ("Submit Date", _time(job.get("SubmitTime"))), ("Type", status.type),
             ("Priority", str(job.get("Priority", ""))),
             ("Datacenters", ",".join(job.get("Datacenters") or ())),
             ("Namespace", str(job.get("Namespace") or "")),
             ("Node Pool", str(job.get("NodePool") or "")),
             ("Status", status.status + (" (stopped)" if status.stopped else "")),
             ("Periodic", "true" if job.get("Periodic") else "false"),
             ("Parameterized", "true" if job.get("ParameterizedJob") else "false"),
             ("Version", f"{status.version}" + (" (stable)" if status.stable else "")),
             ("Owner", str(status.owner))]
    out = [key_values(basic)]
    if short:
        return out[0]
    if status.summary:
        states = ("Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown")
        out += ["", "Summary", columns(["Task Group", *states], [
            [group, *(str(counts.get(s, 0)) for s in states)]
            for group, counts in sorted(status.summary.items())])]
    if status.deployment_id:
        out += ["", "Latest Deployment", key_values([
            ("ID", cut(status.deployment_id)), ("Status", status.deployment_status or ""),
            ("Description", status.deployment_description)])]
        if status.groups:
            canaries = any(g.desired_canaries for g in status.groups)
            head = ["Task Group", "Desired", "Placed", "Healthy", "Unhealthy"]
            out += ["", "Deployed", columns(
                head + (["Canaries"] if canaries else []),
                [[g.name, str(g.desired), str(g.placed), str(g.healthy), str(g.unhealthy),
                  *([f"{g.placed_canaries}/{g.desired_canaries}"] if canaries else [])]
                 for g in status.groups])]
    if status.allocations:
        out += ["", "Allocations", columns(
            ["ID", "Node", "Task Group", "Version", "Desired", "Status", "Health"],
            [[cut(a.id), a.node, a.group, str(a.job_version), a.desired_status, a.client_status,
              "" if a.healthy is None else ("healthy" if a.healthy else "unhealthy")]
             for a in status.allocations])]
    if status.services:
        out += ["", "Services (Consul)", columns(
            ["Service", "Address", "Checks"],
            [[s.service, f"{s.address}:{s.port}",
              ", ".join(f"{name}={state}" for name, state in s.checks.items())]
             for s in status.services])]
    return "\n".join(out)
