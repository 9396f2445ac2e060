"""Load jobs from files: HCL2 jobspecs (as Nomad reads them), Nomad API JSON, or Python modules.

Which reader, by name as Nomad's CLI decides: `.py` is Python, `.json` is Nomad API JSON (what
`nomad job run -json` takes, with or without the outer "Job" key), anything else (`.nomad.hcl`,
`.nomad`, `.hcl`, `.job`, no extension, `-` for standard input) is HCL2 read by nomadmesh.hcl,
exactly as jobspec2 reads it. Only regular files are read (a FIFO or a device is an error, never a
hang), at most MAX_FILE_BYTES; bad input of any kind ends in a nomadmesh error.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from nomadmesh.errors import InputError, LoadError, NomadmeshError, ParseError, ValidationError
from nomadmesh.model import Job

MAX_FILE_BYTES = 16 * 1024 * 1024  # HCL reads at about 2 µs a byte: 16 MiB is about half a minute
MAX_JSON_DEPTH = 500  # deeper than any job's structure; Go's own decoder stops at 10,000
VAR_ENV_PREFIX = "NOMAD_VAR_"
STDIN = "-"


def load(
    path: str | os.PathLike[str],
    *,
    variables: Mapping[str, Any] | None = None,
    var_files: Iterable[str | os.PathLike[str]] = (),
    validate: bool = True,
    format: str | None = None,
) -> Job:
    """Load the one job a file defines (HCL, JSON, or Python); see `load_all` for several."""
    jobs = load_all(path, variables=variables, var_files=var_files, validate=validate, format=format)
    if len(jobs) != 1:
        names = ", ".join(j.id for j in jobs)
        raise LoadError(f"{path}: defines {len(jobs)} jobs ({names}); use load_all()")
    return jobs[0]


def load_all(
    path: str | os.PathLike[str],
    *,
    variables: Mapping[str, Any] | None = None,
    var_files: Iterable[str | os.PathLike[str]] = (),
    validate: bool = True,
    deployment: str | None = None,
    format: str | None = None,
) -> list[Job]:
    """Load every job a file defines, or that a pack (a name, directory or git URL) renders.

    HCL input variables come, lowest precedence first, from `NOMAD_VAR_<name>` environment
    variables, `var_files` (HCL or JSON), then `variables` (strings as `-var` takes them, or
    Python values), as Nomad's CLI merges them. `deployment` names a pack instance. `format`
    "json" reads the file as Nomad API JSON whatever its name (`nomad job run -json`), "hcl2"
    as HCL; None decides by name.
    """
    from nomadmesh.packs import is_pack_ref, render_ref

    ref = os.fspath(path)
    if format not in (None, "json", "hcl2"):
        raise LoadError(f"{ref}: unknown format {format!r}; use 'json' or 'hcl2'")
    if ref != STDIN and format is None and is_pack_ref(ref):
        return render_ref(ref, variables=variables, var_files=var_files, deployment=deployment)
    if deployment is not None:
        raise LoadError(f"{ref}: a deployment name only applies to packs")
    name = Path(ref).name.lower()
    if ref != STDIN and format is None and name.endswith(".py"):
        p = _regular_file(Path(ref))
        return _load_python(p, {**load_var_files(var_files), **(variables or {})}, validate)
    text = read_text(ref)
    if format == "json" or (format is None and name.endswith(".json")):
        return [_load_json(text, ref, validate)]
    return [_load_hcl(text, ref, variables, var_files, validate)]


def read_text(ref: str) -> str:
    """A job file's text (or standard input's for "-"): a bounded read of a regular file."""
    if ref == STDIN:
        return _decode(_bounded_read(sys.stdin.buffer, "<stdin>"), "<stdin>")
    p = _regular_file(Path(ref))
    try:
        with p.open("rb") as f:
            data = _bounded_read(f, str(p))
    except OSError as exc:
        raise LoadError(f"{p}: cannot read: {exc.strerror}") from None
    return _decode(data, str(p))


def load_var_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Any]:
    """Variable values from var files (`name = value` HCL, or a JSON object), later files win."""
    from nomadmesh.hcl import parse_var_file

    values: dict[str, Any] = {}
    for path in paths:
        p = Path(path)
        text = read_text(os.fspath(p))
        if p.suffix.lower() == ".json":
            data = parse_json(text, str(p))
            if not isinstance(data, dict):
                raise ParseError("a variable file must hold a JSON object", source=str(p))
            values.update(data)
        else:
            values.update(parse_var_file(text, filename=str(p)))
    return values


def _regular_file(p: Path) -> Path:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise LoadError(f"{p}: no such file") from None
    except PermissionError:
        raise LoadError(f"{p}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{p}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LoadError(f"{p}: is a directory, not a job file")
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(f"{p}: not a regular file (a pipe, socket or device is not a job file)")
    if st.st_size > MAX_FILE_BYTES:
        raise LoadError(
            f"{p}: {st.st_size} bytes is larger than the {MAX_FILE_BYTES} bytes a job file may be"
        )
    return p


def _bounded_read(stream: IO[bytes], where: str) -> bytes:
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise LoadError(f"{where}: larger than the {MAX_FILE_BYTES} bytes a job file may be")
    return data


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{where}: not UTF-8 text (byte {exc.start})") from None


def _load_hcl(
    text: str,
    ref: str,
    variables: Mapping[str, Any] | None,
    var_files: Iterable[str | os.PathLike[str]],
    validate: bool,
) -> Job:
    from nomadmesh.hcl import parse

    filename = "<stdin>" if ref == STDIN else ref
    base_dir = os.getcwd() if ref == STDIN else (os.path.dirname(ref) or ".")
    for var_file in var_files:
        _regular_file(Path(var_file))
    parsed = parse(text, filename=filename, variables=variables, var_files=var_files, base_dir=base_dir)
    return _from_api({"Job": parsed.job, "Submission": parsed.submission}, filename, validate)


def parse_json(text: str, source: str) -> Any:
    """JSON as Go's encoding/json accepts it: no NaN/Infinity, numbers Go can hold, bounded depth."""
    try:
        data = json.loads(text, parse_constant=_go_constant, parse_int=_go_int)
    except json.JSONDecodeError as exc:
        raise ParseError(exc.msg, source=source, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", source=source) from None
    except _GoNumberError as exc:
        raise ParseError(str(exc), source=source) from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", source=source)
    return data


class _GoNumberError(ValueError):
    """A JSON number Go's decoder refuses (NaN, Infinity, too many digits)."""


def _go_constant(name: str) -> Any:
    raise _GoNumberError(f"invalid character {name[0]!r} looking for beginning of value ({name} is not JSON)")


def _go_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > 20:
        raise _GoNumberError(f"number {text[:20]}... has {len(digits)} digits; no Nomad field holds it")
    return int(text)


def _depth(data: Any) -> int:
    """Nesting depth, iteratively (the input may be hostile)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _load_json(text: str, ref: str, validate: bool) -> Job:
    source = "<stdin>" if ref == STDIN else ref
    data = parse_json(text, source)
    if not isinstance(data, dict):
        raise ParseError('a JSON job file holds an object (the job, or {"Job": ...})', source=source)
    body = data if "Job" in data else {"Job": data}
    if "Submission" not in body:
        body = {**body, "Submission": {"Source": text, "Format": "json"}}
    return _from_api(body, source, validate)


def _from_api(body: dict[str, Any], source: str, validate: bool) -> Job:
    try:
        return Job.from_api(body, validate=validate)
    except ValidationError as exc:
        exc.args = (f"{source}: {exc}",)
        raise
    except RecursionError:
        raise ParseError("the job is nested too deeply", source=source) from None
    except InputError as exc:
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
        raise ParseError(
            exc.msg or "invalid syntax", source=str(p), line=exc.lineno, column=exc.offset
        ) from None
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
        raise LoadError(
            f"{p}: unknown variable(s) {', '.join(unknown)}; the job function takes "
            + (", ".join(params) or "none")
        )
    try:
        return fn(**variables)
    except NomadmeshError:
        raise
    except Exception as exc:
        raise LoadError(f"{p}: {_user_error(exc, p)}") from None


def _user_error(exc: BaseException, p: Path) -> str:
    """The user's own exception, located at the deepest frame inside their file."""
    import traceback  # only when a Python job file raised (it imports textwrap)

    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == p.resolve():
            line = frame.lineno
    where = f"line {line}: " if line else ""
    return f"{where}{type(exc).__name__}: {exc}"
