"""Nomad's own code as a test oracle: `../shared/tools/nomad-api-oracle` beside the checkout.

Tests that ask it call `oracle()`: where the binary is missing they are skipped, except in CI
(`CI=true`), where the oracle is required and its absence fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def oracle_path() -> Path:
    """Where the oracle is: $NOMAD_API_ORACLE, else ../shared/tools/nomad-api-oracle (CI clones
    beside shared/; a git worktree sits one level deeper)."""
    env = os.environ.get("NOMAD_API_ORACLE")
    if env:
        return Path(env).resolve()
    candidates = [base / "shared" / "tools" / "nomad-api-oracle" for base in ROOT.parents[:2]]
    return next((path for path in candidates if path.is_file()), candidates[0])


def oracle() -> Path:
    """The oracle binary; skips the calling test where it is absent (fails in CI)."""
    path = oracle_path()
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"nomad-api-oracle is required in CI and missing at {path}")
        pytest.skip(f"nomad-api-oracle not found at {path}")
    return path


def register(bodies: list[dict[str, Any]], binary: Path | None = None) -> list[dict[str, Any]]:
    """What a Nomad agent makes of each register body (`register --batch`: one process)."""
    done = subprocess.run([str(binary or oracle()), "register", "--batch"],
                          input=json.dumps(bodies), capture_output=True, text=True, check=True,
                          timeout=600)
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def parse(path: Path, binary: Path | None = None) -> dict[str, Any]:
    """What `nomad job run -output` prints for a job file (run from the file's directory)."""
    done = subprocess.run([str(binary or oracle()), "parse", path.name], cwd=path.parent,
                          capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, Any] = json.loads(done.stdout)
    return result
