"""A task: one process (container, binary) in a group, and the blocks it owns."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import SECOND, Kind, extra_fields, field, label
from nomadmesh.model.placement import Affinity, Constraint
from nomadmesh.model.policies import RestartPolicy
from nomadmesh.model.resources import LogConfig, Resources
from nomadmesh.model.service import Service

LIFECYCLE_HOOKS = ("prestart", "poststart", "poststop")
CHANGE_MODES = ("noop", "restart", "signal", "script")


@attrs.frozen(slots=False)
class Lifecycle:
    """When a task runs relative to the main tasks (`lifecycle` block)."""

    hook: str | None = field("Hook", Kind.STR)
    sidecar: bool | None = field("Sidecar", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.hook not in LIFECYCLE_HOOKS:
            yield Problem(f"{path}.hook", f"hook {self.hook!r} must be one of "
                          + ", ".join(LIFECYCLE_HOOKS))
        elif self.sidecar and self.hook == "poststop":
            yield Problem(f"{path}.sidecar", "a poststop task cannot be a sidecar")


@attrs.frozen(slots=False)
class ChangeScript:
    """The script run when a template changes with change_mode = "script"."""

    command: str | None = field("Command", Kind.STR)
    args: tuple[str, ...] = field("Args", Kind.STRS)
    timeout: int | None = field("Timeout", Kind.DURATION)
    fail_on_error: bool | None = field("FailOnError", Kind.BOOL)


@attrs.frozen(slots=False)
class TemplateWait:
    """Quiescence bounds for template re-rendering (`wait` block)."""

    min: int | None = field("Min", Kind.DURATION)
    max: int | None = field("Max", Kind.DURATION)


@attrs.frozen(slots=False)
class Template:
    """A consul-template rendered into the task's directory (`template` block)."""

    data: str | None = field("EmbeddedTmpl", Kind.STR)
    source: str | None = field("SourcePath", Kind.STR)
    destination: str | None = field("DestPath", Kind.STR)
    change_mode: str | None = field("ChangeMode", Kind.STR)
    change_signal: str | None = field("ChangeSignal", Kind.STR)
    change_script: ChangeScript | None = field("ChangeScript", Kind.BLOCK, block=ChangeScript)
    splay: int | None = field("Splay", Kind.DURATION)
    perms: str | None = field("Perms", Kind.STR)
    uid: int | None = field("Uid", Kind.INT)
    gid: int | None = field("Gid", Kind.INT)
    left_delimiter: str | None = field("LeftDelim", Kind.STR)
    right_delimiter: str | None = field("RightDelim", Kind.STR)
    env: bool | None = field("Envvars", Kind.BOOL)
    vault_grace: int | None = field("VaultGrace", Kind.DURATION)
    wait: TemplateWait | None = field("Wait", Kind.BLOCK, block=TemplateWait)
    error_on_missing_key: bool | None = field("ErrMissingKey", Kind.BOOL)
    once: bool | None = field("Once", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.data and not self.source:
            yield Problem(path, "a template needs data or source")
        if self.data and self.source:
            yield Problem(path, "a template takes data or source, not both")
        if not self.destination:
            yield Problem(f"{path}.destination", "a template needs a destination")
        if self.change_mode not in (None, "", *CHANGE_MODES):
            yield Problem(f"{path}.change_mode", f"{self.change_mode!r} must be one of "
                          + ", ".join(CHANGE_MODES))
        if self.change_mode == "signal" and not self.change_signal:
            yield Problem(f"{path}.change_signal", "change_mode 'signal' needs change_signal")
        if self.change_mode == "script" and (self.change_script is None
                                             or not self.change_script.command):
            yield Problem(f"{path}.change_script", "change_mode 'script' needs a change_script")
        if self.perms is not None and (not self.perms.isdigit() or set(self.perms) - set("01234567")):
            yield Problem(f"{path}.perms", f"perms {self.perms!r} must be an octal mode like '0644'")
        if isinstance(self.splay, int) and self.splay < 0:
            yield Problem(f"{path}.splay", "splay cannot be negative")

    def canonicalize(self) -> Template:
        """api.Template.Canonicalize: restart on change, 5s splay, 0644, {{ }} delimiters."""
        return attrs.evolve(
            self,
            change_mode=self.change_mode or "restart",
            splay=5 * SECOND if self.splay is None else self.splay,
            perms=self.perms or "0644",
            left_delimiter=self.left_delimiter or "{{",
            right_delimiter=self.right_delimiter or "}}",
            env=bool(self.env),
            vault_grace=self.vault_grace or 0,
            error_on_missing_key=bool(self.error_on_missing_key),
        )


@attrs.frozen(slots=False)
class Artifact:
    """A file fetched with go-getter before the task starts (`artifact` block)."""

    source: str | None = field("GetterSource", Kind.STR)
    destination: str | None = field("RelativeDest", Kind.STR)
    mode: str | None = field("GetterMode", Kind.STR)
    options: dict[str, str] = field("GetterOptions", Kind.MAP, hcl_block=True)
    headers: dict[str, str] = field("GetterHeaders", Kind.MAP, hcl_block=True)
    chown: bool | None = field("Chown", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.source:
            yield Problem(f"{path}.source", "an artifact needs a source")
        if self.mode not in (None, "", "any", "file", "dir"):
            yield Problem(f"{path}.mode", f"mode {self.mode!r} must be any, file or dir")
        if isinstance(self.destination, str) and ".." in self.destination.split("/"):
            yield Problem(f"{path}.destination", "destination must stay inside the task directory")

    def canonicalize(self) -> Artifact:
        return attrs.evolve(self, mode=self.mode or "any", destination=self.destination or "local/")


@attrs.frozen(slots=False)
class VolumeMount:
    """Where a group volume appears inside the task (`volume_mount` block)."""

    volume: str | None = field("Volume", Kind.STR)
    destination: str | None = field("Destination", Kind.STR)
    read_only: bool | None = field("ReadOnly", Kind.BOOL)
    propagation_mode: str | None = field("PropagationMode", Kind.STR)
    selinux_label: str | None = field("SELinuxLabel", Kind.STR)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.volume:
            yield Problem(f"{path}.volume", "a volume_mount needs a volume")
        if not self.destination:
            yield Problem(f"{path}.destination", "a volume_mount needs a destination")
        if self.propagation_mode not in (None, "", "private", "host-to-task", "bidirectional"):
            yield Problem(f"{path}.propagation_mode",
                          f"{self.propagation_mode!r} is not a propagation mode")


@attrs.frozen(slots=False)
class Vault:
    """Vault token and policies for the task (`vault` block)."""

    policies: tuple[str, ...] = field("Policies", Kind.STRS)
    role: str | None = field("Role", Kind.STR)
    namespace: str | None = field("Namespace", Kind.STR)
    cluster: str | None = field("Cluster", Kind.STR)
    env: bool | None = field("Env", Kind.BOOL)
    disable_file: bool | None = field("DisableFile", Kind.BOOL)
    change_mode: str | None = field("ChangeMode", Kind.STR)
    change_signal: str | None = field("ChangeSignal", Kind.STR)
    allow_token_expiration: bool | None = field("AllowTokenExpiration", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.change_mode not in (None, "", "noop", "restart", "signal"):
            yield Problem(f"{path}.change_mode", f"{self.change_mode!r} is not a change mode")
        if self.change_mode == "signal" and not self.change_signal:
            yield Problem(f"{path}.change_signal", "change_mode 'signal' needs change_signal")


@attrs.frozen(slots=False)
class Task:
    """One task of a group: `Task("app", driver="docker", config={"image": "nginx"})`."""

    name: str = label("Name")
    driver: str | None = field("Driver", Kind.STR)
    config: dict[str, object] = field("Config", Kind.MAP, hcl_block=True)
    env: dict[str, str] = field("Env", Kind.MAP, hcl_block=True)
    user: str | None = field("User", Kind.STR)
    kind: str | None = field("Kind", Kind.STR)
    leader: bool | None = field("Leader", Kind.BOOL)
    lifecycle: Lifecycle | None = field("Lifecycle", Kind.BLOCK, block=Lifecycle)
    resources: Resources | None = field("Resources", Kind.BLOCK, block=Resources)
    services: tuple[Service, ...] = field("Services", Kind.BLOCKS, hcl="service", block=Service)
    templates: tuple[Template, ...] = field("Templates", Kind.BLOCKS, hcl="template",
                                            block=Template)
    artifacts: tuple[Artifact, ...] = field("Artifacts", Kind.BLOCKS, hcl="artifact",
                                            block=Artifact)
    volume_mounts: tuple[VolumeMount, ...] = field("VolumeMounts", Kind.BLOCKS,
                                                   hcl="volume_mount", block=VolumeMount)
    vault: Vault | None = field("Vault", Kind.BLOCK, block=Vault)
    restart: RestartPolicy | None = field("RestartPolicy", Kind.BLOCK, block=RestartPolicy)
    logs: LogConfig | None = field("LogConfig", Kind.BLOCK, block=LogConfig)
    kill_timeout: int | None = field("KillTimeout", Kind.DURATION)
    kill_signal: str | None = field("KillSignal", Kind.STR)
    shutdown_delay: int | None = field("ShutdownDelay", Kind.DURATION)
    meta: dict[str, str] = field("Meta", Kind.MAP, hcl_block=True)
    constraints: tuple[Constraint, ...] = field("Constraints", Kind.BLOCKS, hcl="constraint",
                                                block=Constraint)
    affinities: tuple[Affinity, ...] = field("Affinities", Kind.BLOCKS, hcl="affinity",
                                             block=Affinity)
    extra: dict[str, object] = extra_fields()

    @property
    def is_main(self) -> bool:
        """A main task has no lifecycle hook (or an explicit empty one)."""
        return self.lifecycle is None or not self.lifecycle.hook

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.name:
            yield Problem(path, "a task needs a name")
        elif "/" in self.name or "\x00" in self.name:
            yield Problem(path, f"task name {self.name!r} cannot contain '/' or NUL")
        if not self.driver:
            yield Problem(f"{path}.driver", "a task needs a driver")
        if isinstance(self.kill_timeout, int) and self.kill_timeout < 0:
            yield Problem(f"{path}.kill_timeout", "kill_timeout cannot be negative")
        if isinstance(self.shutdown_delay, int) and self.shutdown_delay < 0:
            yield Problem(f"{path}.shutdown_delay", "shutdown_delay cannot be negative")
        dests: dict[str, int] = {}
        for i, t in enumerate(self.templates):
            if isinstance(t, Template) and t.destination:
                if t.destination in dests:
                    yield Problem(f"{path}.template[{i}].destination",
                                  f"{t.destination!r} is also written by template[{dests[t.destination]}]")
                dests[t.destination] = i
