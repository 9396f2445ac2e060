"""The SDK is typed for its users (issue 15): code written the documented way passes `mypy --strict`
against the package: lists where tuples are stored, durations as strings, maps as dicts.

mypy checks the examples and a freshly scaffolded pack as user code, from another directory;
`--follow-imports=silent` reads nomadmesh's annotations without reporting on its own sources,
as for an installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.packs.scaffold import new_pack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# One mypy run per folder: module names repeat across folders (service_a.py twice).
GROUPS = {
    "jobs": sorted((EXAMPLES / "jobs").glob("*.py")),
    "jobs/local": sorted((EXAMPLES / "jobs" / "local").glob("*.py")),
    "mesh": sorted((EXAMPLES / "mesh").glob("*.py")),
    "deploy": sorted((EXAMPLES / "deploy").glob("*.py")),
    **{f"packs/{p.parent.name}": [p] for p in sorted((EXAMPLES / "packs").glob("*/__init__.py"))},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module: nomadmesh's own modules are analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy_strict(files: list[Path], cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(cache), *map(str, files)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        # The package as its source tree (an editable install's import hook is not followed).
        env={**os.environ, "MYPYPATH": str(ROOT)})


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_examples_pass_mypy_strict(group: str, tmp_path: Path, cache: Path) -> None:
    files = GROUPS[group]
    assert files, group
    done = mypy_strict(files, tmp_path, cache)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_scaffolded_pack_passes_mypy_strict(tmp_path: Path, cache: Path) -> None:
    pack = new_pack("my_service", tmp_path)
    files = sorted(pack.rglob("*.py")) if pack.is_dir() else [pack]
    done = mypy_strict(files, tmp_path, cache)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_checker_does_refuse_a_wrongly_typed_job(tmp_path: Path, cache: Path) -> None:
    """The examples pass because they are right, not because nothing is checked."""
    bad = tmp_path / "bad_job.py"
    bad.write_text('from nomadmesh import Group, Job, Task\n\n'
                   'job = Job("web", groups=[Group("api", count="two", tasks=[Task(1)])])\n')
    done = mypy_strict([bad], tmp_path, cache)
    assert done.returncode == 1
    assert 'Argument "count" to "Group" has incompatible type "str"' in done.stdout
    assert 'Argument 1 to "Task" has incompatible type "int"' in done.stdout
