"""The example job files every codec and mesh test runs over (shared, so none is forgotten)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent
JOBS = ROOT / "examples" / "jobs"
JOB_SUFFIXES = (".hcl", ".nomad", ".json", ".py")


def job_files() -> list[Path]:
    """Every job file under examples/jobs, including the local-execution variants."""
    return sorted(p for p in JOBS.rglob("*")
                  if p.is_file() and p.suffix in JOB_SUFFIXES and not p.name.startswith("_"))
