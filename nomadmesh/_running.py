"""Things that start and stop (servers, processes, clusters), usable as context managers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, TypeVar

_R = TypeVar("_R", bound="Running")


class Running(ABC):
    """`with thing:` starts it and stops it afterwards, whatever happened inside."""

    @abstractmethod
    def start(self) -> Any:
        """Start serving or running; may return the object itself."""

    @abstractmethod
    def stop(self) -> None:
        """Stop and release everything `start` took."""

    def __enter__(self: _R) -> _R:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
