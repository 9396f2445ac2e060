"""A task: one process (container, binary) in a group, and the blocks it owns (api/tasks.go)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    ANY,
    BLOCK,
    BLOCKS,
    BOOL,
    DURATION,
    INT,
    MAP,
    SECOND,
    STR,
    STRS,
    duration_value,
    evolve,
    field,
    go,
    label,
    strings,
    to_duration,
    to_tuple,
)
from nomadmesh.model._copy import Memo, copier
from nomadmesh.model.identity import (
    Consul,
    Secret,
    Vault,
    WorkloadIdentity,
    identities,
    secrets,
)
from nomadmesh.model.placement import Affinity, Constraint, affinities, constraints
from nomadmesh.model.policies import RestartPolicy
from nomadmesh.model.resources import LogConfig, Resources
from nomadmesh.model.scaling import Scaling, scaling_policies
from nomadmesh.model.service import Service, services
from nomadmesh.model.volumes import VolumeMount, volume_mounts

if TYPE_CHECKING:
    from nomadmesh.model.group import Group
    from nomadmesh.model.job import Job


@_base.frozen(slots=False, repr=False)
class Lifecycle:
    """When a task runs relative to the main tasks (`lifecycle` block)."""

    _go: ClassVar[str] = "TaskLifecycle"

    hook: str | None = field("Hook")
    sidecar: bool | None = field("Sidecar", BOOL)


@_base.frozen(slots=False, repr=False)
class ChangeScript:
    """The script run when a template changes with change_mode = "script"."""

    _go: ClassVar[str] = "ChangeScript"

    command: str | None = field("Command", STR, ptr=True)
    args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                        metadata=go("Args", STRS))
    timeout: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                      metadata=go("Timeout", DURATION, ptr=True))
    fail_on_error: bool | None = field("FailOnError", BOOL, ptr=True)
    run_on_first_render: bool | None = field("RunOnFirstRender", BOOL, ptr=True)

    def canonicalize(self) -> ChangeScript:
        """api/tasks.go:927 ChangeScript.Canonicalize: 5s timeout, no failure on error."""
        return evolve(
            self,
            command="" if self.command is None else self.command,
            timeout=5 * SECOND if self.timeout is None else self.timeout,
            fail_on_error=False if self.fail_on_error is None else self.fail_on_error,
            run_on_first_render=False if self.run_on_first_render is None else self.run_on_first_render,
        )


@_base.frozen(slots=False, repr=False)
class TemplateWait:
    """Quiescence bounds for template re-rendering (`wait` block)."""

    _go: ClassVar[str] = "WaitConfig"

    min: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                  metadata=go("Min", DURATION, ptr=True))
    max: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                  metadata=go("Max", DURATION, ptr=True))


@_base.frozen(slots=False, repr=False)
class Template:
    """A consul-template rendered into the task's directory (`template` block)."""

    _go: ClassVar[str] = "Template"

    source: str | None = field("SourcePath", STR, ptr=True)
    destination: str | None = field("DestPath", STR, ptr=True)
    data: str | None = field("EmbeddedTmpl", STR, ptr=True)
    change_mode: str | None = field("ChangeMode", STR, ptr=True)
    change_script: ChangeScript | None = field("ChangeScript", BLOCK, block=ChangeScript)
    change_signal: str | None = field("ChangeSignal", STR, ptr=True)
    once: bool | None = field("Once", BOOL, ptr=True)
    splay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                    metadata=go("Splay", DURATION, ptr=True))
    perms: str | None = field("Perms", STR, ptr=True)
    uid: int | None = field("Uid", INT, ptr=True)
    gid: int | None = field("Gid", INT, ptr=True)
    left_delimiter: str | None = field("LeftDelim", STR, ptr=True)
    right_delimiter: str | None = field("RightDelim", STR, ptr=True)
    env: bool | None = field("Envvars", BOOL, ptr=True)
    vault_grace: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                          metadata=go("VaultGrace", DURATION, ptr=True))
    wait: TemplateWait | None = field("Wait", BLOCK, block=TemplateWait)
    error_on_missing_key: bool | None = field("ErrMissingKey", BOOL, ptr=True)

    def canonicalize(self) -> Template:
        """api/tasks.go:965 Template.Canonicalize: restart on change, 5s splay, 0644, {{ }}."""
        change_mode = "restart" if self.change_mode is None else self.change_mode
        if self.change_signal is None:
            change_signal = "SIGHUP" if change_mode == "signal" else ""
        else:
            change_signal = _go_upper(self.change_signal)
        return _canonical_template(
            self,
            "" if self.source is None else self.source,
            "" if self.destination is None else self.destination,
            "" if self.data is None else self.data,
            change_mode,
            change_signal,
            self.change_script.canonicalize() if self.change_script else None,
            False if self.once is None else self.once,
            5 * SECOND if self.splay is None else self.splay,
            "0644" if self.perms is None else self.perms,
            "{{" if self.left_delimiter is None else self.left_delimiter,
            "}}" if self.right_delimiter is None else self.right_delimiter,
            False if self.env is None else self.env,
            False if self.error_on_missing_key is None else self.error_on_missing_key,
            0 if self.vault_grace is None else self.vault_grace,
        )


# Template.canonicalize's copy (see nomadmesh.model._copy), in the order of its arguments.
_canonical_template = copier(Template, (
    "source", "destination", "data", "change_mode", "change_signal", "change_script", "once",
    "splay", "perms", "left_delimiter", "right_delimiter", "env", "error_on_missing_key",
    "vault_grace"), globals(), "_canonical_template")


def _go_upper(text: str) -> str:
    """Go's strings.ToUpper, which maps only what Unicode's simple case mapping maps ("ß" stays)."""
    return "".join(c if len(u := c.upper()) != 1 else u for c in text)


def _templates(value: Iterable[Template] | None) -> tuple[Template, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class Artifact:
    """A file fetched with go-getter before the task starts (`artifact` block)."""

    _go: ClassVar[str] = "TaskArtifact"

    source: str | None = field("GetterSource", STR, ptr=True)
    options: Mapping[str, str] = field("GetterOptions", MAP)
    headers: Mapping[str, str] = field("GetterHeaders", MAP)
    mode: str | None = field("GetterMode", STR, ptr=True)
    insecure: bool | None = field("GetterInsecure", BOOL, ptr=True)
    destination: str | None = field("RelativeDest", STR, ptr=True)
    chown: bool | None = field("Chown", BOOL)

    def canonicalize(self) -> Artifact:
        """api/tasks.go:869 TaskArtifact.Canonicalize: mode "any", destination under local/."""
        mode = "any" if self.mode is None else self.mode
        source = "" if self.source is None else self.source
        destination = self.destination
        if destination is None:
            destination = _go_join("local", _go_base(source)) if mode == "file" else "local/"
        return evolve(self, mode=mode, insecure=False if self.insecure is None else self.insecure,
                      source=source, destination=destination)


def _go_base(path: str) -> str:
    """Go's path.Base: the last element, trailing slashes dropped; "." for "" and "/" for "/"."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _go_join(*parts: str) -> str:
    """Go's filepath.Join on Linux: joined with "/" and cleaned."""
    joined = "/".join(p for p in parts if p)
    return posixpath.normpath(joined) if joined else ""


def _artifacts(value: Iterable[Artifact] | None) -> tuple[Artifact, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class DispatchPayload:
    """Where a dispatched job's payload is written in the task (`dispatch_payload` block)."""

    _go: ClassVar[str] = "DispatchPayloadConfig"

    file: str | None = field("File")


@_base.frozen(slots=False, repr=False)
class CSIPlugin:
    """The task is a CSI plugin (`csi_plugin` block)."""

    _go: ClassVar[str] = "TaskCSIPluginConfig"

    id: str | None = field("ID")
    type: str | None = field("Type")
    mount_dir: str | None = field("MountDir")
    stage_publish_base_dir: str | None = field("StagePublishBaseDir")
    health_timeout: int | None = attrs.field(default=None, kw_only=True, converter=duration_value,
                                             metadata=go("HealthTimeout", DURATION))

    def canonicalize(self) -> CSIPlugin:
        """api/tasks.go:1241 TaskCSIPluginConfig.Canonicalize: /csi, /local/csi, 30s."""
        return evolve(self, mount_dir=self.mount_dir or "/csi",
                      stage_publish_base_dir=self.stage_publish_base_dir or "/local/csi",
                      health_timeout=self.health_timeout or 30 * SECOND)


@_base.frozen(slots=False, repr=False)
class Action:
    """A command operators can run in the task on demand (`action "name"` block)."""

    _go: ClassVar[str] = "Action"

    name: str = label("Name")
    command: str | None = field("Command")
    args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                        metadata=go("Args", STRS))


def _actions(value: Iterable[Action] | None) -> tuple[Action, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ScheduleCron:
    """The time window in which a scheduled task runs (`cron` block, Nomad Enterprise)."""

    _go: ClassVar[str] = "TaskScheduleCron"

    start: str | None = field("Start")
    end: str | None = field("End")
    timezone: str | None = field("Timezone")


@_base.frozen(slots=False, repr=False)
class Schedule:
    """Run the task only inside a time window (`schedule` block, Nomad Enterprise)."""

    _go: ClassVar[str] = "TaskSchedule"

    cron: ScheduleCron | None = field("Cron", BLOCK, block=ScheduleCron)


@_base.frozen(slots=False, repr=False)
class Task:
    """One task of a group: `Task("app", driver="docker", config={"image": "nginx"})`."""

    _go: ClassVar[str] = "Task"

    name: str = label("Name")
    driver: str | None = field("Driver")
    user: str | None = field("User")
    lifecycle: Lifecycle | None = field("Lifecycle", BLOCK, block=Lifecycle)
    config: Mapping[str, Any] = field("Config", ANY)
    constraints: tuple[Constraint, ...] = attrs.field(
        default=(), kw_only=True, converter=constraints,
        metadata=go("Constraints", BLOCKS, hcl="constraint", block=Constraint))
    affinities: tuple[Affinity, ...] = attrs.field(
        default=(), kw_only=True, converter=affinities,
        metadata=go("Affinities", BLOCKS, hcl="affinity", block=Affinity))
    env: Mapping[str, str] = field("Env", MAP)
    services: tuple[Service, ...] = attrs.field(
        default=(), kw_only=True, converter=services,
        metadata=go("Services", BLOCKS, hcl="service", block=Service))
    resources: Resources | None = field("Resources", BLOCK, block=Resources)
    restart: RestartPolicy | None = field("RestartPolicy", BLOCK, block=RestartPolicy)
    meta: Mapping[str, str] = field("Meta", MAP)
    kill_timeout: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                           metadata=go("KillTimeout", DURATION, ptr=True))
    logs: LogConfig | None = field("LogConfig", BLOCK, block=LogConfig)
    artifacts: tuple[Artifact, ...] = attrs.field(
        default=(), kw_only=True, converter=_artifacts,
        metadata=go("Artifacts", BLOCKS, hcl="artifact", block=Artifact))
    vault: Vault | None = field("Vault", BLOCK, block=Vault)
    consul: Consul | None = field("Consul", BLOCK, block=Consul)
    templates: tuple[Template, ...] = attrs.field(
        default=(), kw_only=True, converter=_templates,
        metadata=go("Templates", BLOCKS, hcl="template", block=Template))
    dispatch_payload: DispatchPayload | None = field("DispatchPayload", BLOCK, block=DispatchPayload)
    volume_mounts: tuple[VolumeMount, ...] = attrs.field(
        default=(), kw_only=True, converter=volume_mounts,
        metadata=go("VolumeMounts", BLOCKS, hcl="volume_mount", block=VolumeMount))
    csi_plugin: CSIPlugin | None = field("CSIPluginConfig", BLOCK, block=CSIPlugin)
    leader: bool | None = field("Leader", BOOL)
    shutdown_delay: int | None = attrs.field(default=None, kw_only=True, converter=duration_value,
                                             metadata=go("ShutdownDelay", DURATION))
    kill_signal: str | None = field("KillSignal")
    kind: str | None = field("Kind")
    scaling_policies: tuple[Scaling, ...] = attrs.field(
        default=(), kw_only=True, converter=scaling_policies,
        metadata=go("ScalingPolicies", BLOCKS, hcl="scaling", block=Scaling))
    secrets: tuple[Secret, ...] = attrs.field(
        default=(), kw_only=True, converter=secrets,
        metadata=go("Secrets", BLOCKS, hcl="secret", block=Secret))
    # Nomad's HCL parser puts an unnamed `identity` block here and named ones in `identities`.
    identity: WorkloadIdentity | None = field("Identity", BLOCK, hcl="", block=WorkloadIdentity)
    identities: tuple[WorkloadIdentity, ...] = attrs.field(
        default=(), kw_only=True, converter=identities,
        metadata=go("Identities", BLOCKS, hcl="identity", block=WorkloadIdentity))
    actions: tuple[Action, ...] = attrs.field(
        default=(), kw_only=True, converter=_actions,
        metadata=go("Actions", BLOCKS, hcl="action", block=Action))
    schedule: Schedule | None = field("Schedule", BLOCK, block=Schedule)

    @property
    def is_main(self) -> bool:
        """A main task has no lifecycle hook (or an explicit empty one)."""
        return self.lifecycle is None or not self.lifecycle.hook

    def canonicalize(self, group: Group, job: Job) -> Task:
        """api/tasks.go:804 Task.Canonicalize(tg, job), with `group` already canonical."""
        return canonical_task(self, group.name, group.restart, job.name or "")


def canonical_task(task: Task, group_name: str, group_restart: RestartPolicy | None,
                   job_name: str, memo: Memo | None = None) -> Task:
    """`task.canonicalize(group, job)` from what it reads of them: the group's name and canonical
    restart policy, the job's name. `memo`: the pass's (a block shared by tasks is made canonical
    once: resources, logs, templates and the restart policy read no parent)."""
    if memo is None:
        memo = Memo()
    # A list of blocks is canonicalized only when it has some (no generator for an empty one).
    artifacts, templates, services = task.artifacts, task.templates, task.services
    affinities, mounts = task.affinities, task.volume_mounts
    canonical = memo.canonical
    return _canonical_task(
        task,
        canonical(task.resources) if task.resources is not None else _default_resources(),
        5 * SECOND if task.kill_timeout is None else task.kill_timeout,
        canonical(task.logs) if task.logs is not None else _default_logs(),
        tuple(a.canonicalize() for a in artifacts) if artifacts else (),
        task.vault.canonicalize() if task.vault is not None else None,
        task.consul.canonicalize() if task.consul is not None else None,
        tuple(canonical(t) for t in templates) if templates else (),
        tuple(s.canonicalize(job_name, group_name, task.name) for s in services) if services else (),
        tuple(a.canonicalize() for a in affinities) if affinities else (),
        tuple(v.canonicalize() for v in mounts) if mounts else (),
        task.csi_plugin.canonicalize() if task.csi_plugin is not None else None,
        memo.overlay(group_restart, task.restart),
    )



@cache
def _default_resources() -> Resources:
    """`Resources().canonicalize()`, made once (a frozen value, shared)."""
    return Resources().canonicalize()


@cache
def _default_logs() -> LogConfig:
    """`LogConfig().canonicalize()`, made once (a frozen value, shared)."""
    return LogConfig().canonicalize()


# Task.canonicalize's copy (see nomadmesh.model._copy), in the order of its arguments.
_canonical_task = copier(Task, (
    "resources", "kill_timeout", "logs", "artifacts", "vault", "consul", "templates", "services",
    "affinities", "volume_mounts", "csi_plugin", "restart"), globals(), "_canonical_task")


def tasks(value: Iterable[Task] | None) -> tuple[Task, ...]:
    """Converter: any iterable of tasks becomes a tuple."""
    return to_tuple(value)

