"""`python -m build` makes a wheel and an sdist that install in a fresh venv and run the CLI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import nomadmesh

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A wheel and an sdist of this checkout, built as a release would be (isolated build)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    yield out


def fresh_venv(where: Path, artifact: Path) -> Path:
    """A new virtual environment with `artifact` and its dependencies installed; its bin dir."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    pip = where / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", str(artifact)], check=True,
                   capture_output=True, timeout=900)
    return where / "bin"


def runs_the_cli(bin_dir: Path, workdir: Path) -> None:
    """The installed CLI works from a directory that is not the checkout."""
    job = workdir / "web.nomad.hcl"
    job.write_text((ROOT / "examples" / "jobs" / "web-canary.nomad.hcl").read_text())
    version = subprocess.run([str(bin_dir / "nomadmesh"), "--version"], cwd=workdir,
                             capture_output=True, text=True, check=True)
    assert version.stdout == f"nomadmesh, version {nomadmesh.__version__}\n"
    valid = subprocess.run([str(bin_dir / "nomadmesh"), "validate", str(job)], cwd=workdir,
                           capture_output=True, text=True, check=False)
    assert valid.returncode == 0, valid.stderr
    packs = subprocess.run([str(bin_dir / "nomadmesh"), "pack", "render", "mesh-control-plane"],
                           cwd=workdir, capture_output=True, text=True, check=False)
    assert packs.returncode == 0, packs.stderr
    assert '"ID": "mesh-control-plane"' in packs.stdout


@pytest.mark.timeout(1800)
def test_the_wheel_installs_in_a_fresh_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob("*.whl")
    runs_the_cli(fresh_venv(tmp_path / "venv", wheel), tmp_path)


@pytest.mark.timeout(1800)
def test_the_sdist_installs_in_a_fresh_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    runs_the_cli(fresh_venv(tmp_path / "venv", sdist), tmp_path)


def test_the_wheel_carries_the_data_the_package_reads(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"nomadmesh/py.typed", "nomadmesh/data/nomad_api_schema.json",
            "nomadmesh/packs/shipped/mesh_control_plane.py"} <= names
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(info).decode()
    assert "License-Expression: MPL-2.0" in metadata
    assert f"Version: {nomadmesh.__version__}" in metadata


def test_the_version_is_written_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert isinstance(project["license"], str)  # an SPDX expression, not the table form
