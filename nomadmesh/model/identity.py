"""Workload identities and what they unlock: Vault, Consul and secrets (api/tasks.go,
api/consul.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    ANY,
    BOOL,
    DURATION,
    MAP,
    STR,
    STRS,
    duration_value,
    evolve,
    field,
    go,
    label,
    strings,
    to_tuple,
)


@_base.frozen(slots=False, repr=False)
class WorkloadIdentity:
    """A signed identity token for the task or service (`identity` block)."""

    _go: ClassVar[str] = "WorkloadIdentity"

    name: str | None = field("Name")
    aud: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                       metadata=go("Audience", STRS))
    change_mode: str | None = field("ChangeMode")
    change_signal: str | None = field("ChangeSignal")
    env: bool | None = field("Env", BOOL)
    file: bool | None = field("File", BOOL)
    filepath: str | None = field("Filepath")
    service_name: str | None = field("ServiceName")
    ttl: int | None = attrs.field(default=None, kw_only=True, converter=duration_value,
                                  metadata=go("TTL", DURATION))
    extra_claims: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                                metadata=go("ExtraClaims", STRS))


def identities(value: Iterable[WorkloadIdentity] | None) -> tuple[WorkloadIdentity, ...]:
    """Converter: any iterable of workload identities becomes a tuple."""
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class Vault:
    """Vault token and policies for the task (`vault` block)."""

    _go: ClassVar[str] = "Vault"

    policies: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                            metadata=go("Policies", STRS))
    role: str | None = field("Role")
    namespace: str | None = field("Namespace", STR, ptr=True)
    cluster: str | None = field("Cluster")
    env: bool | None = field("Env", BOOL, ptr=True)
    disable_file: bool | None = field("DisableFile", BOOL, ptr=True)
    change_mode: str | None = field("ChangeMode", STR, ptr=True)
    change_signal: str | None = field("ChangeSignal", STR, ptr=True)
    allow_token_expiration: bool | None = field("AllowTokenExpiration", BOOL, ptr=True)

    def canonicalize(self) -> Vault:
        """api/tasks.go:1030 Vault.Canonicalize: env, cluster "default", restart on change."""
        return evolve(
            self,
            env=True if self.env is None else self.env,
            disable_file=False if self.disable_file is None else self.disable_file,
            namespace="" if self.namespace is None else self.namespace,
            cluster=self.cluster or "default",
            change_mode="restart" if self.change_mode is None else self.change_mode,
            change_signal="SIGHUP" if self.change_signal is None else self.change_signal,
            allow_token_expiration=(False if self.allow_token_expiration is None
                                    else self.allow_token_expiration),
        )


@_base.frozen(slots=False, repr=False)
class Consul:
    """Which Consul cluster, namespace and partition the group or task uses (`consul` block)."""

    _go: ClassVar[str] = "Consul"

    namespace: str | None = field("Namespace")
    cluster: str | None = field("Cluster")
    partition: str | None = field("Partition")

    def canonicalize(self, job_namespace: str | None = None) -> Consul:
        """api/consul.go:27 Consul.Canonicalize (cluster "default"), after the group's
        MergeNamespace (api/consul.go:53) with the job's deprecated consul_namespace."""
        return evolve(self, namespace=self.namespace or job_namespace,
                      cluster=self.cluster or "default")


@_base.frozen(slots=False, repr=False)
class Secret:
    """A secret fetched for the task from a provider (`secret "name"` block)."""

    _go: ClassVar[str] = "Secret"

    name: str = label("Name")
    provider: str | None = field("Provider")
    path: str | None = field("Path")
    config: Mapping[str, Any] = field("Config", ANY)
    env: Mapping[str, str] = field("Env", MAP)


def secrets(value: Iterable[Secret] | None) -> tuple[Secret, ...]:
    """Converter: any iterable of secrets becomes a tuple."""
    return to_tuple(value)

