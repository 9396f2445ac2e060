"""nomadmesh.hcl against Nomad's own parser: the fixture set's golden answers, and the oracle live.

Golden files come from `nomad-api-oracle parse` (scripts/regen-hcl-golden); jobs are compared in
Go's normal form, errors by their first diagnostic, which Nomad prints first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import nomadmesh
from nomadmesh.errors import HclError
from nomadmesh.hcl import parse
from tests.go_form import job_form
from tests.golden_hcl import Fixture, first_diagnostic, fixtures, oracle_parse
from tests.nomad_oracle import oracle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILES = sorted(p for p in (ROOT / "examples").rglob("*.nomad.hcl") if "packs" not in p.parts)


def ours(fixture: Fixture) -> dict[str, Any]:
    """What nomadmesh.hcl answers, in the golden files' form (run from the file's folder, as the
    oracle is, so that var file names read the same)."""
    cwd = os.getcwd()
    os.chdir(fixture.path.parent)
    try:
        parsed = parse(
            fixture.path.read_text(),
            filename=fixture.path.name,
            variables=fixture.vars,
            var_files=fixture.var_files,
            environ=fixture.env,
            base_dir=".",
        )
    except HclError as exc:
        return {"error": exc.nomad_text}
    finally:
        os.chdir(cwd)
    return {"job": parsed.job}


@pytest.mark.parametrize("fixture", fixtures(), ids=lambda f: f.name)
def test_fixture_parses_as_nomad_does(fixture: Fixture) -> None:
    golden = json.loads(fixture.golden.read_text())
    answer = ours(fixture)
    if "error" in golden:
        assert "error" in answer, f"Nomad refuses {fixture.name}: {golden['error']}"
        assert first_diagnostic(answer["error"]) == first_diagnostic(golden["error"])
    else:
        assert "job" in answer, answer.get("error")
        assert job_form(answer["job"]) == job_form(golden["job"])


def test_fixture_set_covers_valid_and_invalid_files() -> None:
    answers = [json.loads(f.golden.read_text()) for f in fixtures()]
    assert sum("job" in a for a in answers) >= 10
    assert sum("error" in a for a in answers) >= 30


def test_golden_files_are_what_nomad_prints_today() -> None:
    binary = oracle()
    stale = [f.name for f in fixtures() if oracle_parse(f, binary) != json.loads(f.golden.read_text())]
    assert not stale, f"regenerate with scripts/regen-hcl-golden: {stale}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_example_parses_as_nomad_does(path: Path) -> None:
    answer = oracle_parse(Fixture(path), oracle())
    mine = ours(Fixture(path))
    assert job_form(mine["job"]) == job_form(answer["job"])


def test_parse_records_the_submission() -> None:
    fixture = next(f for f in fixtures() if f.name == "variables-given.nomad.hcl")
    var_files = [str(fixture.path.parent / f) for f in fixture.var_files]
    sub = parse(
        fixture.path.read_text(),
        filename=fixture.path.name,
        variables=fixture.vars,
        var_files=var_files,
        environ=fixture.env,
        base_dir=fixture.path.parent,
    ).submission
    assert sub["Format"] == "hcl2"
    assert sub["Source"] == fixture.path.read_text()
    # Simple types stay flags; the list-typed one moves into Variables as HCL (parse.go:330).
    assert sub["VariableFlags"] == {
        "image": "redis:7",
        "count": "3",
        "enabled": "true",
        "from_env": "from the environment",
        "undeclared": "ignored",
    }
    assert sub["Variables"].endswith('\n\nzones = ["dc1", "dc2"]')
    assert "from_file = {" in sub["Variables"]


HCL_EXAMPLE = ROOT / "examples" / "hcl" / "fleet.nomad.hcl"


def test_the_hcl_example_loads_with_its_var_file() -> None:
    job = nomadmesh.load(HCL_EXAMPLE, var_files=[HCL_EXAMPLE.with_name("prod.vars.hcl")])
    assert [(g.name, g.count) for g in job.groups] == [("worker-emails", 3), ("worker-thumbnails", 2)]
    assert job.meta == {"team.name": "platform", "queues": "emails,thumbnails"}
    args = job.groups[1].tasks[0].config["args"]
    assert list(args) == ["--queue", "thumbnails", "--data", "${NOMAD_ALLOC_DIR}/data"]


def test_the_hcl_example_is_what_nomad_makes_of_it() -> None:
    example = Fixture(HCL_EXAMPLE, var_files=["prod.vars.hcl"])
    assert job_form(ours(example)["job"]) == job_form(oracle_parse(example, oracle())["job"])
