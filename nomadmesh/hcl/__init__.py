"""HCL2 exactly as Nomad's jobspec2 reads it: text -> Nomad API JSON (`{"Job": ...}`'s job).

`parse()` is what `nomad job run -output FILE` does (jobspec2.ParseWithConfig with Strict and
AllowFS, NOMAD_VAR_* from the environment), with the register body's `Submission` facts beside
the job. This package imports nothing of `nomadmesh.model`: it speaks Nomad's JSON only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nomadmesh.errors import HclError
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics

__all__ = ["ParsedJob", "format_source", "parse", "parse_job", "parse_var_file", "write_job"]


@dataclass(frozen=True)
class ParsedJob:
    """A parsed job file: the API JSON job and its `api.JobSubmission` facts."""

    job: dict[str, Any]
    submission: dict[str, Any] = field(default_factory=dict)
    variables: tuple[str, ...] = ()  # the variables the file declares


def parse(
    text: str,
    *,
    filename: str = "job.nomad.hcl",
    variables: Mapping[str, Any] | None = None,
    var_files: Iterable[str | os.PathLike[str]] = (),
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    allow_fs: bool = True,
) -> ParsedJob:
    """Parse a job file as Nomad's CLI does; raise HclError with Nomad's diagnostic on failure.

    `variables` are `-var` values: strings as on the command line (HCL syntax for complex
    types), or Python values. `environ` supplies NOMAD_VAR_* (default: the process
    environment). `file()` and friends resolve against `base_dir` (default: the file's folder).
    """
    from nomadmesh.hcl._jobfile import ParseConfig, decode_file

    env = dict(os.environ if environ is None else environ)
    files = [(os.fspath(p), _read_var_file(p)) for p in var_files]
    base = os.fspath(base_dir) if base_dir is not None else os.path.dirname(filename) or "."
    config = ParseConfig(
        text,
        filename,
        base_dir=base,
        allow_fs=allow_fs,
        arg_vars=dict(variables or {}),
        var_files=files,
        environ=env,
    )
    try:
        job, declared = _guarded(lambda: decode_file(config))
    except HclDiagnostics as exc:
        raise _error(exc.diags, filename) from None
    submission = _submission(text, files, config.arg_vars, env, declared)
    return ParsedJob(job=job, submission=submission, variables=tuple(sorted(declared)))


def parse_job(text: str, **kwargs: Any) -> dict[str, Any]:
    """The API JSON job of `parse(text, ...)`."""
    return parse(text, **kwargs).job


def parse_var_file(text: str, *, filename: str = "vars.hcl") -> dict[str, Any]:
    """`name = value` assignments of a var file as Python values (JSON-like)."""
    from nomadmesh.hcl._body import View
    from nomadmesh.hcl._diag import Source
    from nomadmesh.hcl._eval import Ctx, evaluate
    from nomadmesh.hcl._jobfile import parse_var_file as parse_body
    from nomadmesh.hcl._values import to_python

    def run() -> dict[str, Any]:
        src = Source(text, filename)
        body = parse_body(text, filename)
        view = View(body, Ctx(src, {}, None), expand=False, as_attrs=False)
        return {
            name: to_python(evaluate(attr.expr, attr.ctx)) for name, attr in view.just_attributes().items()
        }

    try:
        values: dict[str, Any] = _guarded(run)
        return values
    except HclDiagnostics as exc:
        raise _error(exc.diags, filename) from None


def format_source(text: str, *, filename: str = "job.nomad.hcl") -> str:
    """The file as `nomad fmt` writes it (hclwrite.Format): layout only, content untouched."""
    from nomadmesh.hcl._format import format_text

    try:
        formatted: str = _guarded(lambda: format_text(text, filename))
        return formatted
    except HclDiagnostics as exc:
        raise _error(exc.diags, filename) from None


def write_job(job: Mapping[str, Any]) -> str:
    """HCL2 text that Nomad's parser reads back to this API JSON job, in `nomad fmt` style."""
    from nomadmesh.hcl._writer import write_job as write

    return write(job)


def _guarded(fn: Any) -> Any:
    """Run a parse step with the cyclic collector paused (a parse makes many objects and no
    cycles); hostile depth ends as a diagnostic, never a RecursionError."""
    import sys

    from nomadmesh._gc import collector_paused

    limit = sys.getrecursionlimit()
    if limit < 10_000:
        sys.setrecursionlimit(10_000)
    try:
        with collector_paused():
            return fn()
    except RecursionError:
        raise HclDiagnostics(
            [Diagnostic("Nesting too deep", "The input is nested too deeply to read.", None)]
        ) from None
    finally:
        if limit < 10_000:
            sys.setrecursionlimit(limit)


def _error(diags: list[Diagnostic], filename: str) -> HclError:
    from nomadmesh.hcl._jobspec import diagnostics_error

    first = diags[0]
    subject = first.subject
    line = column = None
    source = filename
    if subject is not None and subject.source.filename:
        line, column = subject.source.position(subject.start)
        source = subject.source.filename
    return HclError(
        f"{first.summary}; {first.detail}",
        source=source,
        line=line,
        column=column,
        nomad_text=diagnostics_error(diags),
    )


def _read_var_file(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HclError(f"unable to parse var file: {exc}", source=str(p)) from None


def _submission(
    text: str,
    files: list[tuple[str, str]],
    arg_vars: Mapping[str, Any],
    env: Mapping[str, str],
    declared: Mapping[str, Any],
) -> dict[str, Any]:
    """parse.go:209 submissionFromJob: the job source, its format and the variables given."""
    from nomadmesh.hcl._jobfile import VAR_ENV_PREFIX
    from nomadmesh.hcl._writer import hcl_value

    fmt = "json" if text.lstrip(" ").startswith("{") else "hcl2"
    var_file_text = "".join(t + "\n" for _, t in files)
    flags: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith(VAR_ENV_PREFIX) and key[len(VAR_ENV_PREFIX) :]:
            flags[key[len(VAR_ENV_PREFIX) :]] = value
    for key, value in arg_vars.items():
        flags[key] = value if isinstance(value, str) else hcl_value(value)
    simple: dict[str, str] = {}
    complex_lines: list[str] = []
    for name, value in flags.items():
        variable = declared.get(name)
        vtype = getattr(variable, "type", None)
        if variable is None or vtype is None or vtype.kind in ("string", "number", "bool"):
            simple[name] = value
        else:
            complex_lines.append(f"{name} = {value}")
    complex_text = "\n".join(complex_lines)
    if var_file_text and complex_text:
        var_file_text = var_file_text.rstrip("\n") + "\n\n" + complex_text
    elif not var_file_text:
        var_file_text = complex_text
    return {"Source": text, "Format": fmt, "VariableFlags": simple, "Variables": var_file_text}
