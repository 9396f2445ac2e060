"""Golden register answers: what Nomad's agent makes of every example job and model fixture.

`python -m tests.golden_register regenerate` (see scripts/regen-register-golden) asks
`nomad-api-oracle register` and writes one file per job under tests/golden/register/; the normal
test run compares the model with those files, so it checks Nomad's behaviour without the oracle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nomadmesh.loader import load_all
from nomadmesh.model.job import SERVER_FIELDS
from tests.example_files import JOBS, job_files
from tests.go_form import job_form
from tests.model_fixtures import random_job
from tests.nomad_oracle import oracle_path, parse, register

GOLDEN = Path(__file__).parent / "golden" / "register"
FIXTURE_SEEDS = range(40)


def example_bodies(binary: Path) -> dict[str, dict[str, Any]]:
    """Every example job's register body: Nomad's own parse of HCL files, nomadmesh's load of the
    Python and JSON ones (each of which may define several jobs)."""
    out: dict[str, dict[str, Any]] = {}
    for path in job_files():
        name = "example-" + str(path.relative_to(JOBS)).replace("/", "__")
        if path.suffix in (".hcl", ".nomad"):
            out[name] = {"Job": parse(path, binary)["Job"]}
        else:
            for job in load_all(path):
                out[f"{name}--{job.id}"] = {"Job": job.to_api()}
    return out


def fixture_bodies() -> dict[str, dict[str, Any]]:
    """The seeded fixtures of tests/model_fixtures.py as register bodies."""
    return {f"fixture-{seed:03d}": {"Job": random_job(seed).to_api()} for seed in FIXTURE_SEEDS}


def regenerate() -> None:
    binary = oracle_path()
    bodies = {**example_bodies(binary), **fixture_bodies()}
    answers = register(list(bodies.values()), binary)
    for old in GOLDEN.glob("*.json"):
        old.unlink()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for (name, body), answer in zip(bodies.items(), answers, strict=True):
        record = {
            "body": body,
            "ok": answer.get("ok", False),
            "status": answer.get("status"),
            "error": answer.get("error", ""),
            "unknown": answer.get("unknown", ""),
            # Go's normal form of the canonical job, without the fields only the server sets.
            "canonical": job_form({k: v for k, v in (answer.get("job") or {}).items()
                                   if k not in SERVER_FIELDS}),
        }
        (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True,
                                                        ensure_ascii=False) + "\n")
    print(f"wrote {len(bodies)} files to {GOLDEN}")


def golden() -> dict[str, dict[str, Any]]:
    """Every committed golden record by name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))}


if __name__ == "__main__":
    if sys.argv[1:] != ["regenerate"]:
        sys.exit("usage: python -m tests.golden_register regenerate")
    regenerate()
