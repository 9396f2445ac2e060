"""Where allocations may and should go: constraint, affinity and spread blocks."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, field, label

# Nomad's accepted operators (structs.Constraint.Validate); "=", "==" and "is" mean equality.
CONSTRAINT_OPERATORS = frozenset({
    "=", "==", "is", "!=", "not", "<", "<=", ">", ">=",
    "distinct_hosts", "distinct_property", "regexp", "version", "semver",
    "set_contains", "set_contains_all", "set_contains_any", "is_set", "is_not_set",
})
_NO_VALUE = frozenset({"distinct_hosts", "distinct_property", "is_set", "is_not_set"})
AFFINITY_OPERATORS = CONSTRAINT_OPERATORS - {"distinct_hosts", "distinct_property"}


@attrs.frozen(slots=False)
class Constraint:
    """A hard placement rule: `attribute operator value` must hold on the node."""

    attribute: str | None = field("LTarget", Kind.STR)
    operator: str | None = field("Operand", Kind.STR)
    value: str | None = field("RTarget", Kind.STR)

    def problems(self, path: str) -> Iterator[Problem]:
        op = self.operator or "="
        if op not in CONSTRAINT_OPERATORS:
            yield Problem(f"{path}.operator", f"unknown operator {op!r}; one of "
                          + ", ".join(sorted(CONSTRAINT_OPERATORS)))
            return
        if op != "distinct_hosts" and not self.attribute:
            yield Problem(f"{path}.attribute", f"operator {op!r} needs an attribute")
        if op not in _NO_VALUE and self.value in (None, ""):
            yield Problem(f"{path}.value", f"operator {op!r} needs a value")
        if op == "distinct_hosts" and self.value not in (None, "", "true", "false"):
            yield Problem(f"{path}.value", "distinct_hosts takes no value (or 'true')")

    def canonicalize(self) -> Constraint:
        return self if self.operator else attrs.evolve(self, operator="=")


@attrs.frozen(slots=False)
class Affinity:
    """A soft placement preference, weighted from -100 (avoid) to 100 (prefer)."""

    attribute: str | None = field("LTarget", Kind.STR)
    operator: str | None = field("Operand", Kind.STR)
    value: str | None = field("RTarget", Kind.STR)
    weight: int | None = field("Weight", Kind.INT)

    def problems(self, path: str) -> Iterator[Problem]:
        op = self.operator or "="
        if op not in AFFINITY_OPERATORS:
            yield Problem(f"{path}.operator", f"operator {op!r} cannot be used in an affinity")
        if not self.attribute:
            yield Problem(f"{path}.attribute", "an affinity needs an attribute")
        if self.value in (None, "") and op not in _NO_VALUE:
            yield Problem(f"{path}.value", f"operator {op!r} needs a value")
        if self.weight is not None and (self.weight == 0 or not -100 <= self.weight <= 100):
            yield Problem(f"{path}.weight", f"weight {self.weight} must be non-zero, -100 to 100")

    def canonicalize(self) -> Affinity:
        return attrs.evolve(self, operator=self.operator or "=", weight=self.weight or 50)


@attrs.frozen(slots=False)
class SpreadTarget:
    """A share of allocations for one attribute value (`target "us-east" { percent = 50 }`)."""

    value: str = label("Value")
    percent: int | None = field("Percent", Kind.INT)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.percent is not None and not 0 <= self.percent <= 100:
            yield Problem(f"{path}.percent", f"percent {self.percent} must be 0 to 100")


@attrs.frozen(slots=False)
class Spread:
    """Spread allocations across the values of a node attribute."""

    attribute: str | None = field("Attribute", Kind.STR)
    weight: int | None = field("Weight", Kind.INT)
    targets: tuple[SpreadTarget, ...] = field("SpreadTarget", Kind.BLOCKS, hcl="target",
                                              block=SpreadTarget)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.attribute:
            yield Problem(f"{path}.attribute", "a spread needs an attribute")
        if self.weight is not None and not 0 <= self.weight <= 100:
            yield Problem(f"{path}.weight", f"weight {self.weight} must be 0 to 100")
        total = sum(t.percent or 0 for t in self.targets if isinstance(t, SpreadTarget))
        if total > 100:
            yield Problem(f"{path}.target", f"target percentages add up to {total}, over 100")
        seen: set[str] = set()
        for t in self.targets:
            if isinstance(t, SpreadTarget) and t.value in seen:
                yield Problem(f"{path}.target[{t.value}]", "target declared twice")
            elif isinstance(t, SpreadTarget):
                seen.add(t.value)

    def canonicalize(self) -> Spread:
        return self if self.weight is not None else attrs.evolve(self, weight=50)
