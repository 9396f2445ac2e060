"""Scaling policies: a group's count bounds and autoscaler policy, a task's vertical scaling
(api/scaling.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from nomadmesh.model import _base
from nomadmesh.model._base import ANY, BOOL, INT, evolve, field, side, to_tuple


@_base.frozen(slots=False, repr=False)
class Scaling:
    """Scaling bounds and the autoscaler's policy (`scaling` block of a group or task)."""

    _go: ClassVar[str] = "ScalingPolicy"
    # Set by the server when it registers the policy (api/scaling.go "fields set by server").
    _server: ClassVar[frozenset[str]] = frozenset({"ID", "Namespace", "Target", "CreateIndex",
                                                   "ModifyIndex"})

    min: int | None = field("Min", INT, ptr=True, go_int="int64")
    max: int | None = field("Max", INT, ptr=True, go_int="int64")
    policy: Mapping[str, Any] = field("Policy", ANY)
    enabled: bool | None = field("Enabled", BOOL, ptr=True)
    type: str | None = field("Type")
    server: Mapping[str, Any] = side()

    def canonicalize(self, count: int) -> Scaling:
        """api/scaling.go:39 ScalingPolicy.Canonicalize(count): enabled, min = count, horizontal."""
        return evolve(self, enabled=True if self.enabled is None else self.enabled,
                      min=count if self.min is None else self.min,
                      type=self.type or "horizontal")


def scaling_policies(value: Iterable[Scaling] | None) -> tuple[Scaling, ...]:
    """Converter: any iterable of scaling policies becomes a tuple."""
    return to_tuple(value)
