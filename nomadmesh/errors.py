"""Everything that can go wrong in nomadmesh, in one place.

Every failure a user can see is one of these classes. Dependencies' exceptions (python-nomad,
requests, grpc, PyYAML) are translated at the boundary where they are raised and never reach the
caller. No exception text ever contains a token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs


class NomadmeshError(Exception):
    """Base class of every error nomadmesh raises on purpose."""


@attrs.frozen
class Problem:
    """One thing wrong with an input: where it is (a field path or file position) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(NomadmeshError):
    """The user's input (a file, a job, an argument) cannot be used as given."""


class LoadError(InputError):
    """A job file cannot be read: missing, unreadable, or of an unsupported kind."""


class ParseError(InputError):
    """A file is not valid HCL or JSON; carries the file, line and column when known."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        where = source or "<input>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class HclError(ParseError):
    """An HCL file Nomad's jobspec2 parser rejects; `nomad_text` is Nomad's own diagnostic line."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 column: int | None = None, nomad_text: str = "") -> None:
        super().__init__(message, source=source, line=line, column=column)
        self.nomad_text = nomad_text


class UnsupportedExpression(ParseError):
    """An HCL expression nomadmesh cannot evaluate locally (functions, dynamic blocks, ...)."""


class ValidationError(InputError):
    """A job (or settings object) breaks one or more rules; every problem is listed with its path."""

    def __init__(self, problems: Iterable[Problem], *, subject: str = "job") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.subject = subject
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {subject}"
        super().__init__(head + "".join(f"\n  * {p}" for p in self.problems))

    @classmethod
    def single(cls, path: str, message: str, *, subject: str = "job") -> ValidationError:
        """Build an error carrying one problem."""
        return cls([Problem(path, message)], subject=subject)


class MeshError(ValidationError):
    """Sidecar injection cannot proceed: a conflict or a missing piece in the job, with its path."""


class ApiError(NomadmeshError):
    """A Nomad or Consul API answered with an error status; carries the status and body text."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "",
                 method: str = "", url: str = "") -> None:
        self.status = status
        self.body = body
        self.method = method
        self.url = url
        detail = f" ({method} {url} -> {status})" if method else (f" (HTTP {status})" if status else "")
        text = body.strip()
        super().__init__(f"{message}{detail}" + (f": {text}" if text else ""))


class NotFound(ApiError):
    """The job, allocation, deployment or key does not exist."""


class PermissionDenied(ApiError):
    """The token (never shown) is missing or lacks the rights for this request."""


class ConflictError(ApiError):
    """Someone else changed the job since it was read; nothing was overwritten."""


class RedirectError(ApiError):
    """A server answered with a redirect; it is never followed, and the error says where it points."""


class OwnershipError(NomadmeshError):
    """The job on the server was deployed by another tool; refused unless explicitly allowed."""


class Unavailable(NomadmeshError):
    """A server could not be reached or kept failing after the retries that are safe."""

    def __init__(self, message: str, *, address: str = "", cause: str = "") -> None:
        self.address = address
        self.cause = cause
        text = message
        if address:
            text += f" at {address}"
        if cause:
            text += f": {cause}"
        super().__init__(text)


class NomadUnavailable(Unavailable):
    """The Nomad API could not be reached (connection errors, timeouts, 5xx, no leader)."""


class ConsulUnavailable(Unavailable):
    """The Consul API could not be reached."""


class DeploymentFailed(NomadmeshError):
    """A job did not become healthy; `diagnosis` says what failed, where and why, in words."""

    def __init__(self, job_id: str, diagnosis: Sequence[str], *, result: object = None) -> None:
        self.job_id = job_id
        self.diagnosis: tuple[str, ...] = tuple(diagnosis)
        self.result = result
        lines = "".join(f"\n  * {d}" for d in self.diagnosis) or "\n  * (no diagnosis available)"
        super().__init__(f"deployment of job {job_id!r} failed:{lines}")


class DeployTimeout(DeploymentFailed):
    """A watched deployment did not finish within the allowed time."""


class DemoFailed(NomadmeshError):
    """`nomadmesh demo`'s check did not pass; the message says which step and why."""


class XdsError(NomadmeshError):
    """The xDS control plane cannot build or serve a configuration (bad snapshot, bad settings)."""


class OutputError(InputError):
    """An output file cannot be written: its directory is missing or closed, or it is not writable."""
