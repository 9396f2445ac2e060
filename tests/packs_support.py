"""Helpers for pack tests: write a pack directory, make a git repository holding one."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

PACK_SOURCE = '''"""{name}: a test pack."""

import attrs

from nomadmesh import Group, Job, Task
from nomadmesh.packs import pack, variable


@attrs.frozen(kw_only=True)
class Variables:
    image: str = variable("{image}", description="container image")
    count: int = variable(1, description="instances")


@pack(name="{name}", version="{version}", variables=Variables)
def jobs(v: Variables, deployment: str) -> list[Job]:
    """{name} test pack."""
    return [Job(f"{{deployment}}-{{suffix}}", groups=[Group("main", count=v.count, tasks=[
        Task("main", driver="docker", config={{"image": v.image}})])]) for suffix in {suffixes!r}]
'''


def unique_module() -> str:
    """A module name no other test uses (imported packs stay in sys.modules)."""
    return f"pk_{uuid.uuid4().hex[:10]}"


def write_pack(root: Path, *, name: str = "demo", version: str = "1.0.0", image: str = "app:1",
               suffixes: tuple[str, ...] = ("web",), module: str | None = None) -> Path:
    """A pack directory under `root` whose jobs are `<deployment>-<suffix>`."""
    directory = root / (module or unique_module())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text(PACK_SOURCE.format(
        name=name, version=version, image=image, suffixes=list(suffixes)))
    return directory


def git(*args: str, cwd: Path) -> str:
    """Run git quietly with a fixed identity; its output."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout


def bare_repo_with_tags(tmp: Path, module: str, versions: dict[str, str]) -> Path:
    """A bare repository whose tag T holds the pack `packs/<module>` at version versions[T]."""
    work = tmp / "work"
    work.mkdir()
    git("init", "-q", cwd=work)
    for tag, version in versions.items():
        write_pack(work / "packs", name="remote", version=version, module=module)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", version, cwd=work)
        git("tag", tag, cwd=work)
    bare = tmp / "remote.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp)
    return bare
