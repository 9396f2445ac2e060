"""The job: what a user submits to Nomad, holding groups and job-wide policies (api/jobs.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs

from nomadmesh.errors import Problem, ValidationError
from nomadmesh.model import _base, _json, validation
from nomadmesh.model._base import (
    BLOCK,
    BLOCKS,
    BOOL,
    INT,
    MAP,
    STR,
    STRS,
    evolve,
    field,
    go,
    label,
    side,
    strings,
    to_tuple,
)
from nomadmesh.model._copy import Memo
from nomadmesh.model.group import Group, groups
from nomadmesh.model.placement import Affinity, Constraint, Spread, affinities, constraints, spreads
from nomadmesh.model.policies import MigrateStrategy, ReschedulePolicy, UpdateStrategy
from nomadmesh.model.server import DEFAULT_SERVER, ServerConfig, stored


@_base.frozen(slots=False, repr=False)
class Periodic:
    """Run a batch job on a cron schedule (`periodic` block)."""

    _go: ClassVar[str] = "PeriodicConfig"

    enabled: bool | None = field("Enabled", BOOL, ptr=True)
    cron: str | None = field("Spec", STR, hcl="cron", ptr=True)
    crons: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                         metadata=go("Specs", STRS, hcl="crons"))
    # Not an HCL attribute: Nomad's HCL parser sets it to "cron" (jobspec2/parse_job.go).
    spec_type: str | None = field("SpecType", STR, hcl="", ptr=True)
    prohibit_overlap: bool | None = field("ProhibitOverlap", BOOL, ptr=True)
    time_zone: str | None = field("TimeZone", STR, ptr=True)

    def canonicalize(self) -> Periodic:
        """api/jobs.go:905 PeriodicConfig.Canonicalize: enabled, cron spec type, UTC."""
        return evolve(
            self,
            enabled=True if self.enabled is None else self.enabled,
            cron="" if self.cron is None else self.cron,
            spec_type="cron" if self.spec_type is None else self.spec_type,
            prohibit_overlap=False if self.prohibit_overlap is None else self.prohibit_overlap,
            time_zone=self.time_zone or "UTC",
        )


@_base.frozen(slots=False, repr=False)
class Parameterized:
    """Make a batch job a template dispatched with a payload and meta (`parameterized`)."""

    _go: ClassVar[str] = "ParameterizedJobConfig"

    payload: str | None = field("Payload")
    meta_required: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                                 metadata=go("MetaRequired", STRS))
    meta_optional: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                                 metadata=go("MetaOptional", STRS))


@_base.frozen(slots=False, repr=False)
class MultiregionStrategy:
    """How a multiregion deployment rolls across regions (`strategy` block)."""

    _go: ClassVar[str] = "MultiregionStrategy"

    max_parallel: int | None = field("MaxParallel", INT, ptr=True)
    on_failure: str | None = field("OnFailure", STR, ptr=True)


@_base.frozen(slots=False, repr=False)
class MultiregionRegion:
    """One region of a multiregion job (`region "name"` block)."""

    _go: ClassVar[str] = "MultiregionRegion"

    name: str = label("Name")
    count: int | None = field("Count", INT, ptr=True)
    datacenters: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                               metadata=go("Datacenters", STRS))
    node_pool: str | None = field("NodePool")
    meta: Mapping[str, str] = field("Meta", MAP)


def _regions(value: Iterable[MultiregionRegion] | None) -> tuple[MultiregionRegion, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class Multiregion:
    """Deploy the job to several regions (`multiregion` block, Nomad Enterprise)."""

    _go: ClassVar[str] = "Multiregion"

    strategy: MultiregionStrategy | None = field("Strategy", BLOCK, block=MultiregionStrategy)
    regions: tuple[MultiregionRegion, ...] = attrs.field(
        default=(), kw_only=True, converter=_regions,
        metadata=go("Regions", BLOCKS, hcl="region", block=MultiregionRegion))

    def canonicalize(self) -> Multiregion:
        """api/jobs.go:829 Multiregion.Canonicalize: strategy zeros, region count 1."""
        strategy = self.strategy or MultiregionStrategy()
        strategy = evolve(strategy,
                          max_parallel=0 if strategy.max_parallel is None else strategy.max_parallel,
                          on_failure="" if strategy.on_failure is None else strategy.on_failure)
        regions = tuple(r if r.count is not None else evolve(r, count=1) for r in self.regions)
        return evolve(self, strategy=strategy, regions=regions)


@_base.frozen(slots=False, repr=False)
class JobUILink:
    """A link shown on the job's page in Nomad's web UI (`link` block)."""

    _go: ClassVar[str] = "JobUILink"

    label: str | None = field("Label")
    url: str | None = field("URL")


def _links(value: Iterable[JobUILink] | None) -> tuple[JobUILink, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class JobUI:
    """The job's description and links in Nomad's web UI (`ui` block)."""

    _go: ClassVar[str] = "JobUIConfig"

    description: str | None = field("Description")
    links: tuple[JobUILink, ...] = attrs.field(
        default=(), kw_only=True, converter=_links,
        metadata=go("Links", BLOCKS, hcl="link", block=JobUILink))


@_base.frozen(slots=False, repr=False)
class Submission:
    """Where a job came from: the register body's `Submission`, shown in Nomad's UI.

    Loaders set it on `Job.submission`; it is not part of the job (equality and hashing ignore
    it), so bookkeeping never goes in job meta, where a change would restart every allocation.
    """

    _go: ClassVar[str] = "JobSubmission"

    source: str | None = field("Source", hcl="")
    format: str | None = field("Format", hcl="")
    variable_flags: Mapping[str, str] = field("VariableFlags", MAP, hcl="")
    variables: str | None = field("Variables", hcl="")


# Fields Nomad sets itself (api/jobs.go "Fields set by server"): `Job.server`, ignored by equality.
SERVER_FIELDS = frozenset({
    "ParentID", "Dispatched", "DispatchIdempotencyToken", "Payload", "NomadTokenID", "Status",
    "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex", "ModifyIndex",
    "JobModifyIndex", "VersionTag",
})


@_base.frozen(slots=False, repr=False)
class Job:
    """A Nomad job: `Job("web", groups=[Group("api", tasks=[Task("app", driver="docker")])])`."""

    _go: ClassVar[str] = "Job"
    _server: ClassVar[frozenset[str]] = SERVER_FIELDS

    id: str = label("ID", ptr=True)
    region: str | None = field("Region", STR, ptr=True)
    namespace: str | None = field("Namespace", STR, ptr=True)
    name: str | None = field("Name", STR, ptr=True)
    type: str | None = field("Type", STR, ptr=True)
    priority: int | None = field("Priority", INT, ptr=True)
    all_at_once: bool | None = field("AllAtOnce", BOOL, ptr=True)
    datacenters: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                               metadata=go("Datacenters", STRS))
    node_pool: str | None = field("NodePool", STR, ptr=True)
    constraints: tuple[Constraint, ...] = attrs.field(
        default=(), kw_only=True, converter=constraints,
        metadata=go("Constraints", BLOCKS, hcl="constraint", block=Constraint))
    affinities: tuple[Affinity, ...] = attrs.field(
        default=(), kw_only=True, converter=affinities,
        metadata=go("Affinities", BLOCKS, hcl="affinity", block=Affinity))
    groups: tuple[Group, ...] = attrs.field(
        default=(), kw_only=True, converter=groups,
        metadata=go("TaskGroups", BLOCKS, hcl="group", block=Group))
    update: UpdateStrategy | None = field("Update", BLOCK, block=UpdateStrategy)
    multiregion: Multiregion | None = field("Multiregion", BLOCK, block=Multiregion)
    spreads: tuple[Spread, ...] = attrs.field(
        default=(), kw_only=True, converter=spreads,
        metadata=go("Spreads", BLOCKS, hcl="spread", block=Spread))
    periodic: Periodic | None = field("Periodic", BLOCK, block=Periodic)
    parameterized: Parameterized | None = field("ParameterizedJob", BLOCK, hcl="parameterized",
                                                block=Parameterized)
    reschedule: ReschedulePolicy | None = field("Reschedule", BLOCK, block=ReschedulePolicy)
    migrate: MigrateStrategy | None = field("Migrate", BLOCK, block=MigrateStrategy)
    meta: Mapping[str, str] = field("Meta", MAP)
    ui: JobUI | None = field("UI", BLOCK, block=JobUI)
    # JSON only: Nomad's HCL does not accept these (api/jobs.go lists them as set by the server,
    # but a register body may carry them).
    stop: bool | None = field("Stop", BOOL, hcl="", ptr=True)
    consul_namespace: str | None = field("ConsulNamespace", STR, hcl="", ptr=True)
    vault_namespace: str | None = field("VaultNamespace", STR, hcl="", ptr=True)
    server: Mapping[str, Any] = side()
    submission: Submission | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

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

    # --- defaults ------------------------------------------------------------------------------

    def canonicalize(self, *, server: bool = True, config: ServerConfig = DEFAULT_SERVER) -> Job:
        """Nomad's defaults: the job as `GET /v1/job/<id>` returns it from a server configured as
        `config` (see nomadmesh.model.server), or with `server=False` exactly what the agent's
        api.Job.Canonicalize makes of it."""
        job = self._api_canonical()
        return stored(job, config=config) if server else job

    def _api_canonical(self) -> Job:
        """api/jobs.go:1164 Job.Canonicalize."""
        job_type = "service" if self.type is None else self.type
        update = self.update
        if update is not None:
            update = update.canonicalize()
        elif job_type in ("service", "system"):
            update = UpdateStrategy.default()
        job = evolve(
            self,
            name=self.id if self.name is None else self.name,
            namespace="default" if self.namespace is None else self.namespace,
            priority=50 if self.priority is None else self.priority,
            stop=False if self.stop is None else self.stop,
            region="global" if self.region is None else self.region,
            node_pool="" if self.node_pool is None else self.node_pool,
            type=job_type,
            all_at_once=False if self.all_at_once is None else self.all_at_once,
            consul_namespace="" if self.consul_namespace is None else self.consul_namespace,
            vault_namespace="" if self.vault_namespace is None else self.vault_namespace,
            periodic=self.periodic.canonicalize() if self.periodic is not None else None,
            update=update,
            multiregion=self.multiregion.canonicalize() if self.multiregion is not None else None,
        )
        memo = Memo()
        return evolve(
            job,
            groups=tuple(g.canonicalize(job, memo=memo) for g in self.groups),
            spreads=tuple(s.canonicalize() for s in self.spreads),
            affinities=tuple(a.canonicalize() for a in self.affinities),
        )

    # --- validation ----------------------------------------------------------------------------

    def problems_list(self) -> list[Problem]:
        """Every problem Nomad would refuse this job for, with paths (empty when valid)."""
        return list(validation.problems(self, self.path))

    def warnings(self) -> list[Problem]:
        """What Nomad warns about, and nomadmesh's own checks ("nomadmesh: ..."); never refusals."""
        if validation.types(self, self.path):
            return []
        return validation.job_warnings(self, self.path)

    def validate(self) -> Job:
        """Raise ValidationError listing every problem with its path; return self when valid."""
        found = self.problems_list()
        if found:
            raise ValidationError(found, subject=f"job {self.id!r}")
        return self

    # --- Nomad's JSON --------------------------------------------------------------------------

    def to_api(self) -> dict[str, Any]:
        """The job in Nomad's HTTP API JSON form (the value of the register body's "Job")."""
        return _json.encode(self)

    def to_register_body(self, **options: Any) -> dict[str, Any]:
        """The register payload: `{"Job": ..., "Submission": ..., **options}`."""
        body: dict[str, Any] = {"Job": self.to_api()}
        if self.submission is not None:
            # Sent as given: the agent escapes the variable flags itself
            # (command/agent/job_endpoint.go:1014 apiJobSubmissionToStructs).
            body["Submission"] = _json.encode(self.submission)
        body.update(options)
        return body

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, validate: bool = True, strict: bool = True) -> Job:
        """A job from Nomad JSON: bare, a register body, or what `GET /v1/job/<id>` returns.

        Raises ValidationError listing every problem: wrong JSON shapes and types (what Nomad
        answers 400 for), unknown keys (Nomad drops them silently; `strict=False` drops them
        too) and, with `validate`, what Nomad's validation refuses.
        """
        submission = None
        if isinstance(data, Mapping) and "Job" in data:
            body = data
            data = body["Job"]
            problems: list[Problem] = [Problem(f"body.{k}", f"nomadmesh: unknown register field {k!r}")
                                       for k in body if k not in _json.REGISTER_KEYS]
            if problems and strict:
                raise ValidationError(problems, subject="register body")
            if body.get("Submission") is not None:
                submission = _json.decode(Submission, body["Submission"], "Submission", strict=strict)
        job_id = data.get("ID") if isinstance(data, Mapping) else None
        root = f"job[{job_id}]" if isinstance(job_id, str) and job_id else "job"
        job = _json.decode(cls, data, root, strict=strict)
        if submission is not None:
            job = evolve(job, submission=submission)
        if validate:
            # Decoding checked every type already; only Nomad's rules remain.
            found = validation.refusals(job, job.path)
            if found:
                raise ValidationError(found, subject=f"job {job.id!r}")
        return job

    # --- HCL -----------------------------------------------------------------------------------

    @classmethod
    def from_hcl(cls, text: str, *, variables: Mapping[str, Any] | None = None,
                 source: str | None = None, validate: bool = True,
                 environ: Mapping[str, str] | None = None) -> Job:
        """Parse an HCL2 jobspec as Nomad's CLI does (jobspec2, see nomadmesh.hcl), with its
        `Submission` (the source text, format and variables) on `job.submission`.

        `variables` are `-var` values; NOMAD_VAR_* come from `environ` (default: the process's).
        """
        # Imported here, not at the top: the HCL parser is only paid for by those who parse HCL.
        from nomadmesh.hcl import parse

        parsed = parse(text, filename=source or "job.nomad.hcl", variables=variables,
                       environ=environ)
        return cls.from_api({"Job": parsed.job, "Submission": parsed.submission}, validate=validate)

    def to_hcl(self) -> str:
        """The job as an HCL2 jobspec that Nomad's parser reads back to the same job."""
        from nomadmesh.hcl import write_job

        return write_job(self.to_api())

    def _repr_html_(self) -> str:
        """A table of groups, tasks and ports for Jupyter."""
        from nomadmesh.model._html import job_html

        return job_html(self)
