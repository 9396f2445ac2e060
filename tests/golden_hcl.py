"""Golden answers of Nomad's HCL parser (`nomad-api-oracle parse`) for tests/fixtures/jobspecs/.

Each fixture `NAME.nomad.hcl` may have `NAME.args.json` with `vars` (-var), `var_files` and `env`
(NOMAD_VAR_*). `tests/golden/hcl/NAME.json` holds what the oracle printed: {"job": ...} or, for
the fixtures under invalid/, {"error": "..."} (its stderr). Regenerate with scripts/regen-hcl-golden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "jobspecs"
GOLDEN = ROOT / "tests" / "golden" / "hcl"


@dataclass(frozen=True)
class Fixture:
    """One job file of the fixture set and how to parse it."""

    path: Path
    vars: dict[str, str] = field(default_factory=dict)
    var_files: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        rel = self.path.relative_to(FIXTURES).as_posix()
        return rel.replace("/", "__")

    @property
    def golden(self) -> Path:
        return GOLDEN / f"{self.name}.json"

    def environ(self) -> dict[str, str]:
        """The process environment without NOMAD_VAR_*, plus the fixture's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_VAR_")}
        env.update(self.env)
        return env


def fixtures() -> list[Fixture]:
    """Every fixture job file (valid ones first, then invalid/), with its arguments."""
    out = []
    for path in sorted(FIXTURES.glob("*.nomad.hcl")) + sorted((FIXTURES / "invalid").glob("*.nomad.hcl")):
        args_file = path.with_name(path.name.split(".")[0] + ".args.json")
        args = json.loads(args_file.read_text()) if args_file.exists() else {}
        out.append(Fixture(path, args.get("vars", {}), args.get("var_files", []), args.get("env", {})))
    return out


def oracle_parse(fixture: Fixture, binary: Path) -> dict[str, Any]:
    """What the oracle answers for a fixture: {"job": ...} or {"error": stderr}."""
    cmd = [str(binary), "parse"]
    for key, value in fixture.vars.items():
        cmd += ["--var", f"{key}={value}"]
    for var_file in fixture.var_files:
        cmd += ["--var-file", var_file]
    done = subprocess.run(
        [*cmd, fixture.path.name],
        cwd=fixture.path.parent,
        capture_output=True,
        text=True,
        env=fixture.environ(),
        timeout=120,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()}
    return {"job": json.loads(done.stdout)["Job"]}


def first_diagnostic(text: str) -> str:
    """The first diagnostic of an HCL error text (what a test can compare deterministically)."""
    return text.split("\n")[0].split(", and ")[0]


def regenerate(binary: Path) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN.glob("*.json"):
        old.unlink()
    for fixture in fixtures():
        answer = oracle_parse(fixture, binary)
        fixture.golden.write_text(json.dumps(answer, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(fixtures())} golden files to {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["regenerate"]:
        sys.exit("usage: python -m tests.golden_hcl regenerate")
    from tests.nomad_oracle import oracle_path

    regenerate(oracle_path())
