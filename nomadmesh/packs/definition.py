"""A pack: metadata, a typed variables class and a function from those variables to jobs."""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from nomadmesh.errors import InputError, NomadmeshError, Problem, ValidationError
from nomadmesh.model import Job
from nomadmesh.packs import variables as _variables
from nomadmesh.packs.variables import DEPENDENCY, DESCRIPTION, VariableInfo

V = TypeVar("V")

# Job meta that ties every rendered job to its pack instance (read back by plan/run/stop/status).
# Only names that stay the same from one render to the next: any Meta change makes the scheduler
# replace every allocation (scheduler/util.go tasksUpdated compares the combined task meta).
META_PACK = "nomadmesh.pack"
META_DEPLOYMENT = "nomadmesh.deployment"
# Keys of earlier versions, which changed with the pack version and the variables; no longer
# written, still read from jobs deployed with them.
META_PACK_VERSION = "nomadmesh.pack_version"
META_VARIABLES_DIGEST = "nomadmesh.variables_digest"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

@attrs.frozen
class Pack(Generic[V]):
    """A reusable, parameterized set of jobs: `pack.render(Variables(...), deployment="shop")`."""

    name: str
    version: str
    variables: type[V]
    function: Callable[[V, str], Job | Iterable[Job]] = attrs.field(repr=False)
    description: str = ""
    url: str = ""

    def __attrs_post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append(Problem("name", f"pack name {self.name!r} must be lowercase letters, "
                                    "digits, '-' or '_'"))
        if not self.version:
            problems.append(Problem("version", "a pack needs a version"))
        if not attrs.has(self.variables):
            problems.append(Problem("variables", f"{self.variables!r} is not an attrs class"))
        if problems:
            raise ValidationError(problems, subject=f"pack {self.name!r}")

    def dependencies(self) -> dict[str, Pack[Any]]:
        """The packs this one depends on, by the variables field that nests their variables."""
        return {a.name: a.metadata[DEPENDENCY] for a in attrs.fields(self.variables)  # type: ignore[arg-type]
                if DEPENDENCY in a.metadata}

    def describe(self) -> list[VariableInfo]:
        """Every variable (dependencies' nested under their field) with type, default and docs."""
        return _variables.describe(self.variables)

    def resolve(self, *, values: Mapping[str, Any] | None = None,
                var_files: Iterable[str | os.PathLike[str]] = (),
                env: Mapping[str, str] | None = None) -> V:
        """Variables from defaults < `NOMADMESH_VAR_*` env (default: os.environ) < var files <
        `values`; raises ValidationError with each variable's path."""
        return _variables.resolve(self.variables, values=values, var_files=var_files, env=env,
                                  subject=f"variables of pack {self.name!r}")

    def render(self, variables: V | None = None, *, deployment: str | None = None) -> list[Job]:
        """The validated jobs of one deployment (default name: the pack's), stamped with meta;
        without `variables`, the defaults (a required variable is a ValidationError)."""
        chosen = variables if variables is not None else _variables.resolve(
            self.variables, env={}, subject=f"variables of pack {self.name!r}")
        if not isinstance(chosen, self.variables):
            raise InputError(f"pack {self.name!r} takes {self.variables.__name__}, "
                             f"not {type(chosen).__name__}")
        name = deployment or self.name
        if not _DEPLOYMENT.match(name):
            raise InputError(f"deployment name {name!r} must be letters, digits, '-', '_' or '.'")
        meta = {META_PACK: self.name, META_DEPLOYMENT: name}
        jobs = [attrs.evolve(j, meta={**j.meta, **meta}) for j in self._jobs(chosen, name)]
        problems: list[Problem] = []
        seen: set[str] = set()
        for job in jobs:
            if job.id in seen:
                problems.append(Problem(job.path, f"job ID {job.id!r} is produced twice; "
                                        "derive job IDs from the deployment name"))
            seen.add(job.id)
            problems.extend(job.problems_list())
        if problems:
            raise ValidationError(problems, subject=f"pack {self.name!r} (deployment {name!r})")
        return jobs

    def _jobs(self, variables: V, name: str) -> list[Job]:
        try:
            produced = self.function(variables, name)
        except NomadmeshError:
            raise
        except Exception as exc:
            raise InputError(f"pack {self.name!r} {self.version} failed to render"
                             f"{_where(exc)}: {type(exc).__name__}: {exc}") from exc
        jobs = [produced] if isinstance(produced, Job) else list(produced)
        for job in jobs:
            if not isinstance(job, Job):
                raise InputError(f"pack {self.name!r} returned {type(job).__name__}, not a Job")
        for field_name, dep in self.dependencies().items():
            jobs.extend(dep._jobs(getattr(variables, field_name), dependency_deployment(name,
                                                                                      field_name)))
        return jobs


def _where(exc: BaseException) -> str:
    """` at file:line` of the deepest frame outside nomadmesh itself (the pack's own code)."""
    ours = Path(__file__).resolve().parent.parent
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if ours not in Path(f.filename).resolve().parents]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def pack(*, name: str, version: str, variables: type[V], description: str = "",
         url: str = "") -> Callable[[Callable[[V, str], Job | Iterable[Job]]], Pack[V]]:
    """Declare a pack: `@pack(name=..., version=..., variables=Vars) def jobs(v, deployment)`."""

    def declare(function: Callable[[V, str], Job | Iterable[Job]]) -> Pack[V]:
        doc = (function.__doc__ or "").strip().splitlines()
        return Pack(name, version, variables, function, description or (doc[0] if doc else ""),
                    url)

    return declare


def dependency(of: Pack[Any], *, description: str = "") -> Any:
    """A variables field nesting another pack's variables (`redis.port`); its jobs render too."""
    return attrs.field(factory=of.variables,
                       metadata={DESCRIPTION: description or of.description, DEPENDENCY: of})


def dependency_deployment(deployment: str, field_name: str) -> str:
    """The deployment name a dependency renders under: `shop` + field `redis` → `shop-redis`."""
    return f"{deployment}-{field_name.replace('_', '-')}"
