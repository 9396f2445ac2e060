"""How Nomad restarts, reschedules, updates and migrates allocations, with its defaults."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import HOUR, MINUTE, SECOND, Kind, field, overlay


@attrs.frozen(slots=False)
class RestartPolicy:
    """Restarts of a failed task on the same node (`restart` block)."""

    attempts: int | None = field("Attempts", Kind.INT)
    interval: int | None = field("Interval", Kind.DURATION)
    delay: int | None = field("Delay", Kind.DURATION)
    mode: str | None = field("Mode", Kind.STR)
    render_templates: bool | None = field("RenderTemplates", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.mode not in (None, "", "delay", "fail"):
            yield Problem(f"{path}.mode", f"mode {self.mode!r} must be 'delay' or 'fail'")
        if isinstance(self.attempts, int) and self.attempts < 0:
            yield Problem(f"{path}.attempts", "attempts cannot be negative")
        if isinstance(self.delay, int) and self.delay < 0:
            yield Problem(f"{path}.delay", "delay cannot be negative")
        if (isinstance(self.attempts, int) and self.attempts > 0 and isinstance(self.interval, int)
                and isinstance(self.delay, int) and self.interval
                and self.attempts * self.delay > self.interval):
            yield Problem(path, "attempts x delay is longer than the interval")

    @staticmethod
    def default_for(job_type: str) -> RestartPolicy:
        """Nomad's default restart policy for a job type (api.NewDefaultRestartPolicy)."""
        if job_type in ("batch", "sysbatch"):
            return RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail",
                                 render_templates=False)
        return RestartPolicy(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail",
                             render_templates=False)

    def merged_onto(self, base: RestartPolicy) -> RestartPolicy:
        """Fields set here win; unset ones come from `base` (Nomad's Merge)."""
        return overlay(base, self)


@attrs.frozen(slots=False)
class ReschedulePolicy:
    """Moving a failed allocation to another node (`reschedule` block)."""

    attempts: int | None = field("Attempts", Kind.INT)
    interval: int | None = field("Interval", Kind.DURATION)
    delay: int | None = field("Delay", Kind.DURATION)
    delay_function: str | None = field("DelayFunction", Kind.STR)
    max_delay: int | None = field("MaxDelay", Kind.DURATION)
    unlimited: bool | None = field("Unlimited", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.delay_function not in (None, "", "constant", "exponential", "fibonacci"):
            yield Problem(f"{path}.delay_function",
                          f"{self.delay_function!r} must be constant, exponential or fibonacci")
        if isinstance(self.attempts, int) and self.attempts < 0:
            yield Problem(f"{path}.attempts", "attempts cannot be negative")
        if (self.delay_function in ("exponential", "fibonacci") and isinstance(self.delay, int)
                and isinstance(self.max_delay, int) and self.max_delay < self.delay):
            yield Problem(f"{path}.max_delay", "max_delay must be at least delay")

    @staticmethod
    def default_for(job_type: str) -> ReschedulePolicy | None:
        """Nomad's default reschedule policy (none for system jobs)."""
        if job_type == "service":
            return ReschedulePolicy(attempts=0, interval=0, delay=30 * SECOND,
                                    delay_function="exponential", max_delay=HOUR, unlimited=True)
        if job_type == "batch":
            return ReschedulePolicy(attempts=1, interval=24 * HOUR, delay=5 * SECOND,
                                    delay_function="constant", max_delay=0, unlimited=False)
        return None


@attrs.frozen(slots=False)
class UpdateStrategy:
    """Rolling updates, canaries and auto-revert (`update` block)."""

    stagger: int | None = field("Stagger", Kind.DURATION)
    max_parallel: int | None = field("MaxParallel", Kind.INT)
    health_check: str | None = field("HealthCheck", Kind.STR)
    min_healthy_time: int | None = field("MinHealthyTime", Kind.DURATION)
    healthy_deadline: int | None = field("HealthyDeadline", Kind.DURATION)
    progress_deadline: int | None = field("ProgressDeadline", Kind.DURATION)
    canary: int | None = field("Canary", Kind.INT)
    auto_revert: bool | None = field("AutoRevert", Kind.BOOL)
    auto_promote: bool | None = field("AutoPromote", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.health_check not in (None, "", "checks", "task_states", "manual"):
            yield Problem(f"{path}.health_check",
                          f"{self.health_check!r} must be checks, task_states or manual")
        for name in ("max_parallel", "canary"):
            value = getattr(self, name)
            if isinstance(value, int) and value < 0:
                yield Problem(f"{path}.{name}", f"{name} cannot be negative")
        mht, hd, pd = self.min_healthy_time, self.healthy_deadline, self.progress_deadline
        if isinstance(mht, int) and isinstance(hd, int) and hd and mht >= hd:
            yield Problem(f"{path}.min_healthy_time", "must be shorter than healthy_deadline")
        if isinstance(pd, int) and isinstance(hd, int) and pd and pd < hd:
            yield Problem(f"{path}.progress_deadline",
                          "must be 0 or at least healthy_deadline")
        if self.auto_promote and not self.canary:
            yield Problem(f"{path}.auto_promote", "auto_promote needs canary > 0")

    @staticmethod
    def default() -> UpdateStrategy:
        """api.DefaultUpdateStrategy, applied to service and system jobs."""
        return UpdateStrategy(stagger=30 * SECOND, max_parallel=1, health_check="checks",
                              min_healthy_time=10 * SECOND, healthy_deadline=5 * MINUTE,
                              progress_deadline=10 * MINUTE, canary=0, auto_revert=False,
                              auto_promote=False)

    def merged_onto(self, base: UpdateStrategy) -> UpdateStrategy:
        return overlay(base, self)


@attrs.frozen(slots=False)
class MigrateStrategy:
    """How allocations leave a draining node (`migrate` block)."""

    max_parallel: int | None = field("MaxParallel", Kind.INT)
    health_check: str | None = field("HealthCheck", Kind.STR)
    min_healthy_time: int | None = field("MinHealthyTime", Kind.DURATION)
    healthy_deadline: int | None = field("HealthyDeadline", Kind.DURATION)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.health_check not in (None, "", "checks", "task_states"):
            yield Problem(f"{path}.health_check",
                          f"{self.health_check!r} must be checks or task_states")
        if isinstance(self.max_parallel, int) and self.max_parallel < 0:
            yield Problem(f"{path}.max_parallel", "max_parallel cannot be negative")

    @staticmethod
    def default() -> MigrateStrategy:
        return MigrateStrategy(max_parallel=1, health_check="checks",
                               min_healthy_time=10 * SECOND, healthy_deadline=5 * MINUTE)

    def merged_onto(self, base: MigrateStrategy) -> MigrateStrategy:
        return overlay(base, self)

