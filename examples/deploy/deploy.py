"""Deploy a job file and explain the outcome, the way a CI step would.

    NOMAD_ADDR=http://127.0.0.1:4646 python examples/deploy/deploy.py examples/jobs/echo-api.json

Prints the plan, submits under the plan's index (a concurrent change fails instead of being
overwritten), follows the rollout and prints either the healthy result or the diagnosis.
Exit status as `nomad job run`: 0 healthy, 2 placement failures, 1 any other failure (a conflict:
someone changed the job meanwhile, and nothing was overwritten).
"""

from __future__ import annotations

import sys

import nomadmesh
from nomadmesh.deploy import DeployEvent, DeployResult, NomadClient
from nomadmesh.errors import ConflictError, DeploymentFailed


def show(event: DeployEvent) -> None:
    print(f"  {event}")


def deploy(path: str) -> int:
    job = nomadmesh.load(path)
    with NomadClient.from_env() as client:
        plan = client.plan(job)
        print(plan.render())
        if not plan.changes:
            print(f"job {job.id!r} is up to date")
            return 0
        try:
            result = client.run(job, timeout=300, on_event=show)
        except ConflictError as exc:
            print(f"conflict: {exc}", file=sys.stderr)
            return 1
        except DeploymentFailed as exc:
            print(f"job {exc.job_id!r} failed:", file=sys.stderr)
            for line in exc.diagnosis:
                print(f"  * {line}", file=sys.stderr)
            return exc.result.exit_code if isinstance(exc.result, DeployResult) else 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(deploy(sys.argv[1] if len(sys.argv) > 1 else "examples/jobs/echo-api.json"))
