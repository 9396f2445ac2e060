"""The errors Nomad's agent and server answer with, and go-multierror's text format."""

from __future__ import annotations

from collections.abc import Sequence


class NomadApiError(Exception):
    """What a Nomad agent answers for a request it refuses: an HTTP status and a text/plain body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class AgentPanic(NomadApiError):
    """Nomad's code panics on this input (a real agent drops the connection; text as the oracle's)."""

    def __init__(self, text: str) -> None:
        super().__init__(500, text)


def multierror(errors: Sequence[str]) -> str:
    """go-multierror's ListFormatFunc (hashicorp/go-multierror format.go): `N errors occurred:`."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"
