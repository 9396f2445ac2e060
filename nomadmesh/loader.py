"""Load jobs from files: HCL2 jobspecs, Nomad JSON, or Python modules that build them."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nomadmesh.errors import LoadError, NomadmeshError, ParseError
from nomadmesh.model import Job

HCL_SUFFIXES = (".nomad.hcl", ".nomad", ".hcl")
VAR_ENV_PREFIX = "NOMAD_VAR_"


def load(path: str | os.PathLike[str], *, variables: Mapping[str, Any] | None = None,
         var_files: Iterable[str | os.PathLike[str]] = (), validate: bool = True) -> Job:
    """Load the one job a file defines (HCL, JSON, or Python); see `load_all` for several."""
    jobs = load_all(path, variables=variables, var_files=var_files, validate=validate)
    if len(jobs) != 1:
        names = ", ".join(j.id for j in jobs)
        raise LoadError(f"{path}: defines {len(jobs)} jobs ({names}); use load_all()")
    return jobs[0]


def load_all(path: str | os.PathLike[str], *, variables: Mapping[str, Any] | None = None,
             var_files: Iterable[str | os.PathLike[str]] = (), validate: bool = True,
             deployment: str | None = None) -> list[Job]:
    """Load every job a file defines, or that a pack (a name, directory or git URL) renders.

    HCL input variables come from, lowest precedence first: `NOMAD_VAR_<name>` environment
    variables, `var_files` (HCL or JSON), then `variables`. `deployment` names a pack instance.
    """
    from nomadmesh.packs import is_pack_ref, render_ref

    ref = os.fspath(path)
    if is_pack_ref(ref):
        return render_ref(ref, variables=variables, var_files=var_files, deployment=deployment)
    if deployment is not None:
        raise LoadError(f"{ref}: a deployment name only applies to packs")
    p = Path(path)
    if not p.exists():
        raise LoadError(f"{p}: no such file")
    if p.is_dir():
        raise LoadError(f"{p}: is a directory, not a job file")
    name = p.name.lower()
    if name.endswith(".py"):
        return _load_python(p, variables or {}, validate)
    text = _read(p)
    if name.endswith(".json"):
        return [_load_json(text, str(p), validate)]
    if name.endswith(HCL_SUFFIXES):
        merged = {**_env_variables(text), **load_var_files(var_files), **(variables or {})}
        return [Job.from_hcl(text, variables=merged, source=str(p), validate=validate)]
    raise LoadError(f"{p}: unsupported file type; use .nomad.hcl, .nomad, .hcl, .json or .py")


def load_var_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Any]:
    """Variable values from var files (`name = value` HCL, or a JSON object), later files win."""
    values: dict[str, Any] = {}
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise LoadError(f"{p}: variable file not found")
        text = _read(p)
        if p.suffix.lower() == ".json":
            data = _parse_json(text, str(p))
            if not isinstance(data, dict):
                raise ParseError("a variable file must hold a JSON object", source=str(p))
            values.update(data)
        else:
            from nomadmesh.codec.hcl import decode_variables

            values.update(decode_variables(text, source=str(p)))
    return values


def _env_variables(text: str) -> dict[str, str]:
    """NOMAD_VAR_<name> values for the variables the file declares (as Nomad's CLI does)."""
    found = {k[len(VAR_ENV_PREFIX):]: v for k, v in os.environ.items()
             if k.startswith(VAR_ENV_PREFIX)}
    return {k: v for k, v in found.items()
            if re.search(rf'(?m)^\s*variable\s+"{re.escape(k)}"', text)}


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise LoadError(f"{p}: cannot read: {exc.strerror}") from None


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(exc.msg, source=source, line=exc.lineno, column=exc.colno) from None


def _load_json(text: str, source: str, validate: bool) -> Job:
    data = _parse_json(text, source)
    try:
        return Job.from_api(data, validate=validate)
    except NomadmeshError as exc:
        exc.args = (f"{source}: {exc}",)
        raise


def _load_python(p: Path, variables: Mapping[str, Any], validate: bool) -> list[Job]:
    """Import a module and collect its job: `job` (a Job or a function returning jobs), else
    every module-level Job."""
    module_name = f"_nomadmesh_jobfile_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise LoadError(f"{p}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except NomadmeshError:
        raise
    except SyntaxError as exc:
        raise ParseError(exc.msg or "invalid syntax", source=str(p), line=exc.lineno,
                         column=exc.offset) from None
    except Exception as exc:
        raise LoadError(f"{p}: {_user_error(exc, p)}") from None
    finally:
        sys.modules.pop(module_name, None)
    candidate = getattr(module, "job", None) or getattr(module, "jobs", None)
    if candidate is None:
        found = [v for v in vars(module).values() if isinstance(v, Job)]
        if not found:
            raise LoadError(f"{p}: defines no job (set `job = Job(...)` or `def job(): ...`)")
        candidate = found
    if callable(candidate) and not isinstance(candidate, Job):
        candidate = _call_job_function(candidate, variables, p)
    elif variables:
        raise LoadError(f"{p}: variables were given but the module's job is not a function")
    jobs = [candidate] if isinstance(candidate, Job) else list(candidate)
    for j in jobs:
        if not isinstance(j, Job):
            raise LoadError(f"{p}: expected Job objects, got {type(j).__name__}")
        if validate:
            j.validate()
    return jobs


def _call_job_function(fn: Any, variables: Mapping[str, Any], p: Path) -> Any:
    params = inspect.signature(fn).parameters
    unknown = sorted(set(variables) - set(params))
    if unknown and not any(x.kind is inspect.Parameter.VAR_KEYWORD for x in params.values()):
        raise LoadError(f"{p}: unknown variable(s) {', '.join(unknown)}; the job function takes "
                        + (", ".join(params) or "none"))
    try:
        return fn(**variables)
    except NomadmeshError:
        raise
    except Exception as exc:
        raise LoadError(f"{p}: {_user_error(exc, p)}") from None


def _user_error(exc: BaseException, p: Path) -> str:
    """The user's own exception, located at the deepest frame inside their file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == p.resolve():
            line = frame.lineno
    where = f"line {line}: " if line else ""
    return f"{where}{type(exc).__name__}: {exc}"
