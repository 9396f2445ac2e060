"""Things that start and stop (servers, processes, clusters), usable as context managers."""

from __future__ import annotations

from typing import Any, TypeVar

_R = TypeVar("_R", bound="Running")


class Running:
    """`with thing:` starts it and stops it afterwards, whatever happened inside."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _R) -> _R:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
