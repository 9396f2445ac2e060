"""The job: what a user submits to Nomad, holding groups and job-wide policies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from nomadmesh.errors import Problem, ValidationError
from nomadmesh.model._base import Kind, extra_fields, field, label, server_fields
from nomadmesh.model.group import Group
from nomadmesh.model.placement import Affinity, Constraint, Spread
from nomadmesh.model.policies import MigrateStrategy, ReschedulePolicy, UpdateStrategy

JOB_TYPES = ("service", "batch", "system", "sysbatch")
MIN_PRIORITY, MAX_PRIORITY = 1, 100


@attrs.frozen(slots=False)
class Periodic:
    """Run a batch job on a cron schedule (`periodic` block)."""

    crons: tuple[str, ...] = field("Specs", Kind.STRS)
    cron: str | None = field("Spec", Kind.STR)
    spec_type: str | None = field("SpecType", Kind.STR)
    prohibit_overlap: bool | None = field("ProhibitOverlap", Kind.BOOL)
    time_zone: str | None = field("TimeZone", Kind.STR)
    enabled: bool | None = field("Enabled", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.enabled is not False and not self.cron and not self.crons:
            yield Problem(f"{path}.crons", "a periodic block needs crons (or cron)")
        if self.cron and self.crons:
            yield Problem(f"{path}.cron", "use crons or cron, not both")
        if self.spec_type not in (None, "", "cron"):
            yield Problem(f"{path}.spec_type", f"spec_type {self.spec_type!r} must be 'cron'")

    def canonicalize(self) -> Periodic:
        return attrs.evolve(self, enabled=True if self.enabled is None else self.enabled,
                            spec_type=self.spec_type or "cron",
                            prohibit_overlap=bool(self.prohibit_overlap),
                            time_zone=self.time_zone or "UTC")


@attrs.frozen(slots=False)
class Parameterized:
    """Make a batch job a template dispatched with a payload and meta (`parameterized`)."""

    payload: str | None = field("Payload", Kind.STR)
    meta_required: tuple[str, ...] = field("MetaRequired", Kind.STRS)
    meta_optional: tuple[str, ...] = field("MetaOptional", Kind.STRS)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.payload not in (None, "", "optional", "required", "forbidden"):
            yield Problem(f"{path}.payload",
                          f"payload {self.payload!r} must be optional, required or forbidden")
        both = set(self.meta_required) & set(self.meta_optional)
        if both:
            yield Problem(f"{path}.meta_optional",
                          f"{', '.join(sorted(both))} cannot be both required and optional")

    def canonicalize(self) -> Parameterized:
        return attrs.evolve(self, payload=self.payload or "optional")


@attrs.frozen(slots=False)
class Job:
    """A Nomad job: `Job("web", groups=[Group("api", tasks=[Task("app", driver="docker")])])`."""

    id: str = label("ID")
    name: str | None = field("Name", Kind.STR)
    type: str | None = field("Type", Kind.STR)
    region: str | None = field("Region", Kind.STR)
    namespace: str | None = field("Namespace", Kind.STR)
    datacenters: tuple[str, ...] = field("Datacenters", Kind.STRS)
    node_pool: str | None = field("NodePool", Kind.STR)
    priority: int | None = field("Priority", Kind.INT)
    all_at_once: bool | None = field("AllAtOnce", Kind.BOOL)
    meta: dict[str, str] = field("Meta", Kind.MAP, hcl_block=True)
    constraints: tuple[Constraint, ...] = field("Constraints", Kind.BLOCKS, hcl="constraint",
                                                block=Constraint)
    affinities: tuple[Affinity, ...] = field("Affinities", Kind.BLOCKS, hcl="affinity",
                                             block=Affinity)
    spreads: tuple[Spread, ...] = field("Spreads", Kind.BLOCKS, hcl="spread", block=Spread)
    update: UpdateStrategy | None = field("Update", Kind.BLOCK, block=UpdateStrategy)
    migrate: MigrateStrategy | None = field("Migrate", Kind.BLOCK, block=MigrateStrategy)
    reschedule: ReschedulePolicy | None = field("Reschedule", Kind.BLOCK, block=ReschedulePolicy)
    periodic: Periodic | None = field("Periodic", Kind.BLOCK, block=Periodic)
    parameterized: Parameterized | None = field("ParameterizedJob", Kind.BLOCK,
                                                block=Parameterized)
    groups: tuple[Group, ...] = field("TaskGroups", Kind.BLOCKS, hcl="group", block=Group)
    extra: dict[str, object] = extra_fields()
    server: dict[str, object] = server_fields()

    # --- convenience ---------------------------------------------------------------------------

    def group(self, name: str) -> Group | None:
        """The group with this name, if the job has it."""
        for g in self.groups:
            if g.name == name:
                return g
        return None

    @property
    def path(self) -> str:
        """This job's root in error paths: `job[<id>]`."""
        return f"job[{self.id}]"

    def problems(self, path: str) -> Iterator[Problem]:
        if not isinstance(self.id, str) or not self.id:
            yield Problem(path, "a job needs an ID")
        elif any(c.isspace() for c in self.id) or "\x00" in self.id:
            yield Problem(path, f"job ID {self.id!r} cannot contain spaces or NUL")
        if self.type not in (None, "", *JOB_TYPES):
            yield Problem(f"{path}.type", f"type {self.type!r} must be one of " + ", ".join(JOB_TYPES))
        if isinstance(self.priority, int) and not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
            yield Problem(f"{path}.priority",
                          f"priority {self.priority} must be {MIN_PRIORITY} to {MAX_PRIORITY}")
        for i, dc in enumerate(self.datacenters):
            if dc == "":
                yield Problem(f"{path}.datacenters[{i}]", "datacenter names cannot be empty")
        if not self.groups:
            yield Problem(path, "a job needs at least one group")
        seen: set[str] = set()
        for g in self.groups:
            if isinstance(g, Group):
                if g.name in seen:
                    yield Problem(f"{path}.group[{g.name}]", f"group {g.name!r} is declared twice")
                seen.add(g.name)
        job_type = self.type or "service"
        if self.periodic is not None and job_type not in ("batch", "sysbatch"):
            yield Problem(f"{path}.periodic", f"periodic jobs must be batch, not {job_type}")
        if self.parameterized is not None and job_type not in ("batch", "sysbatch"):
            yield Problem(f"{path}.parameterized", f"parameterized jobs must be batch, not {job_type}")
        if job_type in ("system", "sysbatch"):
            if self.reschedule is not None:
                yield Problem(f"{path}.reschedule", f"{job_type} jobs cannot be rescheduled")
            for g in self.groups:
                if isinstance(g, Group) and isinstance(g.count, int) and g.count > 1:
                    yield Problem(f"{path}.group[{g.name}].count",
                                  f"{job_type} jobs run one allocation per node; count must be 0 or 1")
        if job_type in ("batch", "sysbatch"):
            for g in self.groups:
                if isinstance(g, Group) and g.update is not None:
                    yield Problem(f"{path}.group[{g.name}].update",
                                  f"{job_type} jobs do not support update strategies")

    # --- validation and codecs -----------------------------------------------------------------

    def validate(self) -> Job:
        """Raise ValidationError listing every problem with its path; return self when valid."""
        from nomadmesh.model.validation import problems

        found = list(problems(self))
        if found:
            raise ValidationError(found, subject=f"job {self.id!r}")
        return self

    def problems_list(self) -> list[Problem]:
        """Every problem in this job, with paths (empty when valid)."""
        from nomadmesh.model.validation import problems

        return list(problems(self))

    def to_api(self) -> dict[str, Any]:
        """The job in Nomad's HTTP API JSON form (the value of the register body's "Job")."""
        from nomadmesh.codec.api_json import encode_job

        return encode_job(self)

    def to_register_body(self, **options: Any) -> dict[str, Any]:
        """The full register payload: `{"Job": ..., **options}`."""
        return {"Job": self.to_api(), **options}

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, validate: bool = True) -> Job:
        """Build a job from Nomad JSON (bare or `{"Job": ...}`); unknown keys are errors."""
        from nomadmesh.codec.api_json import decode_job

        return decode_job(data, validate=validate)

    @classmethod
    def from_hcl(cls, text: str, *, variables: Mapping[str, Any] | None = None,
                 source: str | None = None, validate: bool = True) -> Job:
        """Parse an HCL2 jobspec; input variables and locals are evaluated."""
        from nomadmesh.codec.hcl import decode_job

        return decode_job(text, variables=variables, source=source, validate=validate)

    def to_hcl(self) -> str:
        """The job as an HCL2 jobspec."""
        from nomadmesh.codec.hcl import encode_job

        return encode_job(self)

    def _repr_html_(self) -> str:
        """A table of groups, tasks and ports for Jupyter."""
        from nomadmesh.model._html import job_html

        return job_html(self)

    def canonicalize(self) -> Job:
        """This job with Nomad's server defaults applied (what `GET /v1/job/<id>` returns)."""
        from nomadmesh.codec.canonical import canonicalize

        return canonicalize(self)
