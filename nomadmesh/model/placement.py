"""Where allocations may and should go: constraint, affinity and spread blocks (api/constraint.go,
api/tasks.go)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import BLOCKS, INT, evolve, field, go, label, to_tuple


@_base.frozen(slots=False, repr=False)
class Constraint:
    """A hard placement rule: `attribute operator value` must hold on the node."""

    _go: ClassVar[str] = "Constraint"

    attribute: str | None = field("LTarget")
    value: str | None = field("RTarget")
    operator: str | None = field("Operand")


@_base.frozen(slots=False, repr=False)
class Affinity:
    """A soft placement preference, weighted from -100 (avoid) to 100 (prefer)."""

    _go: ClassVar[str] = "Affinity"

    attribute: str | None = field("LTarget")
    value: str | None = field("RTarget")
    operator: str | None = field("Operand")
    weight: int | None = field("Weight", INT, ptr=True, go_int="int8")

    def canonicalize(self) -> Affinity:
        """api/tasks.go:246 Affinity.Canonicalize: weight 50."""
        return self if self.weight is not None else evolve(self, weight=50)


@_base.frozen(slots=False, repr=False)
class SpreadTarget:
    """A share of allocations for one attribute value (`target "us-east" { percent = 50 }`)."""

    _go: ClassVar[str] = "SpreadTarget"

    value: str = label("Value")
    percent: int | None = field("Percent", INT, go_int="uint8")


def constraints(value: Iterable[Constraint] | None) -> tuple[Constraint, ...]:
    """Converter: any iterable of constraints becomes a tuple."""
    return to_tuple(value)


def affinities(value: Iterable[Affinity] | None) -> tuple[Affinity, ...]:
    """Converter: any iterable of affinities becomes a tuple."""
    return to_tuple(value)


def _targets(value: Iterable[SpreadTarget] | None) -> tuple[SpreadTarget, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class Spread:
    """Spread allocations across the values of a node attribute."""

    _go: ClassVar[str] = "Spread"

    attribute: str | None = field("Attribute")
    weight: int | None = field("Weight", INT, ptr=True, go_int="int8")
    targets: tuple[SpreadTarget, ...] = attrs.field(
        default=(), kw_only=True, converter=_targets,
        metadata=go("SpreadTarget", BLOCKS, hcl="target", block=SpreadTarget))

    def canonicalize(self) -> Spread:
        """api/tasks.go:353 Spread.Canonicalize: weight 50."""
        return self if self.weight is not None else evolve(self, weight=50)


def spreads(value: Iterable[Spread] | None) -> tuple[Spread, ...]:
    """Converter: any iterable of spreads becomes a tuple."""
    return to_tuple(value)

