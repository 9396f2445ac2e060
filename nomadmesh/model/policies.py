"""How Nomad restarts, reschedules, updates, migrates and disconnects allocations, with the defaults
of each (api/tasks.go, api/jobs.go)."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    BOOL,
    DURATION,
    HOUR,
    INT,
    MINUTE,
    SECOND,
    STR,
    evolve,
    field,
    go,
    to_duration,
)
from nomadmesh.model._copy import overlay


def _pointer_duration(api: str) -> dict[str, object]:
    return go(api, DURATION, ptr=True)


@_base.frozen(slots=False, repr=False)
class RestartPolicy:
    """Restarts of a failed task on the same node (`restart` block)."""

    _go: ClassVar[str] = "RestartPolicy"

    interval: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                       metadata=_pointer_duration("Interval"))
    attempts: int | None = field("Attempts", INT, ptr=True)
    delay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                    metadata=_pointer_duration("Delay"))
    mode: str | None = field("Mode", STR, ptr=True)
    render_templates: bool | None = field("RenderTemplates", BOOL, ptr=True)

    @staticmethod
    @lru_cache(maxsize=8)
    def default_for(job_type: str) -> RestartPolicy:
        """api/tasks.go:642 defaultServiceJobRestartPolicy / defaultBatchJobRestartPolicy (made
        once per job type: a frozen value, shared)."""
        if job_type in ("service", "system"):
            return RestartPolicy(delay=15 * SECOND, attempts=2, interval=30 * MINUTE, mode="fail",
                                 render_templates=False)
        return RestartPolicy(delay=15 * SECOND, attempts=3, interval=24 * HOUR, mode="fail",
                             render_templates=False)


@_base.frozen(slots=False, repr=False)
class ReschedulePolicy:
    """Moving a failed allocation to another node (`reschedule` block)."""

    _go: ClassVar[str] = "ReschedulePolicy"

    attempts: int | None = field("Attempts", INT, ptr=True)
    interval: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                       metadata=_pointer_duration("Interval"))
    delay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                    metadata=_pointer_duration("Delay"))
    delay_function: str | None = field("DelayFunction", STR, ptr=True)
    max_delay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                        metadata=_pointer_duration("MaxDelay"))
    unlimited: bool | None = field("Unlimited", BOOL, ptr=True)

    @staticmethod
    @lru_cache(maxsize=8)
    def default_for(job_type: str) -> ReschedulePolicy:
        """api/tasks.go:260 NewDefaultReschedulePolicy (made once per job type, shared)."""
        if job_type == "service":
            return ReschedulePolicy(delay=30 * SECOND, delay_function="exponential", max_delay=HOUR,
                                    unlimited=True, attempts=0, interval=0)
        if job_type == "batch":
            return ReschedulePolicy(attempts=1, interval=24 * HOUR, delay=5 * SECOND,
                                    delay_function="constant", max_delay=0, unlimited=False)
        return ReschedulePolicy(attempts=0, interval=0, delay=0, delay_function="", max_delay=0,
                                unlimited=False)

    def canonicalize(self, job_type: str) -> ReschedulePolicy:
        """api/tasks.go:204 ReschedulePolicy.Canonicalize: unset fields from the job type's."""
        return overlay(ReschedulePolicy.default_for(job_type), self)


@_base.frozen(slots=False, repr=False)
class UpdateStrategy:
    """Rolling updates, canaries and auto-revert (`update` block)."""

    _go: ClassVar[str] = "UpdateStrategy"

    stagger: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                      metadata=_pointer_duration("Stagger"))
    max_parallel: int | None = field("MaxParallel", INT, ptr=True)
    health_check: str | None = field("HealthCheck", STR, ptr=True)
    min_healthy_time: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                               metadata=_pointer_duration("MinHealthyTime"))
    healthy_deadline: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                               metadata=_pointer_duration("HealthyDeadline"))
    progress_deadline: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                                metadata=_pointer_duration("ProgressDeadline"))
    canary: int | None = field("Canary", INT, ptr=True)
    auto_revert: bool | None = field("AutoRevert", BOOL, ptr=True)
    auto_promote: bool | None = field("AutoPromote", BOOL, ptr=True)

    @staticmethod
    @cache
    def default() -> UpdateStrategy:
        """api/jobs.go:637 DefaultUpdateStrategy (made once, shared)."""
        return UpdateStrategy(stagger=30 * SECOND, max_parallel=1, health_check="checks",
                              min_healthy_time=10 * SECOND, healthy_deadline=5 * MINUTE,
                              progress_deadline=10 * MINUTE, canary=0, auto_revert=False,
                              auto_promote=False)

    def canonicalize(self) -> UpdateStrategy:
        """api/jobs.go:739 UpdateStrategy.Canonicalize: unset fields from the default."""
        return overlay(UpdateStrategy.default(), self)

    def is_empty(self) -> bool:
        """api/jobs.go:780 UpdateStrategy.Empty: nothing set to a non-zero value."""
        return not any((self.stagger, self.max_parallel, self.health_check, self.min_healthy_time,
                        self.healthy_deadline, self.progress_deadline, self.auto_revert,
                        self.auto_promote, self.canary))


@_base.frozen(slots=False, repr=False)
class MigrateStrategy:
    """How allocations leave a draining node (`migrate` block)."""

    _go: ClassVar[str] = "MigrateStrategy"

    max_parallel: int | None = field("MaxParallel", INT, ptr=True)
    health_check: str | None = field("HealthCheck", STR, ptr=True)
    min_healthy_time: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                               metadata=_pointer_duration("MinHealthyTime"))
    healthy_deadline: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                               metadata=_pointer_duration("HealthyDeadline"))

    @staticmethod
    @cache
    def default() -> MigrateStrategy:
        """api/tasks.go:395 DefaultMigrateStrategy (made once, shared)."""
        return MigrateStrategy(max_parallel=1, health_check="checks", min_healthy_time=10 * SECOND,
                               healthy_deadline=5 * MINUTE)

    def canonicalize(self) -> MigrateStrategy:
        """api/tasks.go:404 MigrateStrategy.Canonicalize: unset fields from the default."""
        return overlay(MigrateStrategy.default(), self)


@_base.frozen(slots=False, repr=False)
class Disconnect:
    """What happens to allocations on a client that stops heartbeating (`disconnect` block)."""

    _go: ClassVar[str] = "DisconnectStrategy"

    lost_after: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                         metadata=_pointer_duration("LostAfter"))
    stop_on_client_after: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                                   metadata=_pointer_duration("StopOnClientAfter"))
    replace: bool | None = field("Replace", BOOL, ptr=True)
    reconcile: str | None = field("Reconcile", STR, ptr=True)

    def canonicalize(self) -> Disconnect:
        """api/tasks.go:147 DisconnectStrategy.Canonicalize: replace, reconcile best_score."""
        return evolve(self, replace=True if self.replace is None else self.replace,
                      reconcile="best_score" if self.reconcile is None else self.reconcile)


@cache
def empty_migrate() -> MigrateStrategy:
    """`MigrateStrategy()`, made once (a frozen value, shared)."""
    return MigrateStrategy()
