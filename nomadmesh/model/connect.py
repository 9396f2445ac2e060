"""Consul Connect: Nomad's own service mesh blocks, typed as Nomad's api package has them
(api/consul.go). nomadmesh's own sidecars do not use them; jobs that do are kept exactly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    ANY,
    BLOCK,
    BLOCK_MAP,
    BLOCKS,
    BOOL,
    DURATION,
    EMPTY,
    INT,
    INTS,
    MAP,
    SECOND,
    STRS,
    block_map,
    evolve,
    field,
    go,
    integers,
    label,
    strings,
    to_duration,
    to_tuple,
)
from nomadmesh.model.identity import WorkloadIdentity, identities
from nomadmesh.model.resources import LogConfig, Resources
from nomadmesh.model.volumes import VolumeMount, volume_mounts


@_base.frozen(slots=False, repr=False)
class ConsulMeshGateway:
    """How an upstream reaches other datacenters or partitions (`mesh_gateway` block)."""

    _go: ClassVar[str] = "ConsulMeshGateway"

    mode: str | None = field("Mode")


@_base.frozen(slots=False, repr=False)
class ConsulUpstream:
    """A service the sidecar proxies to on a local port (`upstreams` block)."""

    _go: ClassVar[str] = "ConsulUpstream"

    destination_name: str | None = field("DestinationName")
    destination_namespace: str | None = field("DestinationNamespace")
    destination_peer: str | None = field("DestinationPeer")
    destination_partition: str | None = field("DestinationPartition")
    destination_type: str | None = field("DestinationType")
    local_bind_port: int | None = field("LocalBindPort", INT)
    datacenter: str | None = field("Datacenter")
    local_bind_address: str | None = field("LocalBindAddress")
    local_bind_socket_path: str | None = field("LocalBindSocketPath")
    local_bind_socket_mode: str | None = field("LocalBindSocketMode")
    mesh_gateway: ConsulMeshGateway | None = field("MeshGateway", BLOCK, block=ConsulMeshGateway)
    config: Mapping[str, Any] = field("Config", ANY)


def _upstreams(value: Iterable[ConsulUpstream] | None) -> tuple[ConsulUpstream, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ConsulExposePath:
    """One HTTP path exposed through the sidecar without mTLS (`path` block)."""

    _go: ClassVar[str] = "ConsulExposePath"

    path: str | None = field("Path")
    protocol: str | None = field("Protocol")
    local_path_port: int | None = field("LocalPathPort", INT)
    listener_port: str | None = field("ListenerPort")


def _expose_paths(value: Iterable[ConsulExposePath] | None) -> tuple[ConsulExposePath, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ConsulExposeConfig:
    """Paths the sidecar exposes (`expose` block); `deprecated_paths` is Nomad's old JSON key."""

    _go: ClassVar[str] = "ConsulExposeConfig"

    paths: tuple[ConsulExposePath, ...] = attrs.field(
        default=(), kw_only=True, converter=_expose_paths,
        metadata=go("Paths", BLOCKS, hcl="path", block=ConsulExposePath))
    deprecated_paths: tuple[ConsulExposePath, ...] = attrs.field(
        default=(), kw_only=True, converter=_expose_paths,
        metadata=go("Path", BLOCKS, hcl="", block=ConsulExposePath))


@_base.frozen(slots=False, repr=False)
class ConsulTransparentProxy:
    """Redirect the group's traffic through the sidecar with iptables (`transparent_proxy`)."""

    _go: ClassVar[str] = "ConsulTransparentProxy"

    uid: str | None = field("UID")
    outbound_port: int | None = field("OutboundPort", INT, go_int="uint16")
    exclude_inbound_ports: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=strings, metadata=go("ExcludeInboundPorts", STRS))
    exclude_outbound_ports: tuple[int, ...] = attrs.field(
        default=(), kw_only=True, converter=integers,
        metadata=go("ExcludeOutboundPorts", INTS, go_int="uint16"))
    exclude_outbound_cidrs: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=strings, metadata=go("ExcludeOutboundCIDRs", STRS))
    exclude_uids: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=strings, metadata=go("ExcludeUIDs", STRS))
    no_dns: bool | None = field("NoDNS", BOOL)


@_base.frozen(slots=False, repr=False)
class ConsulProxy:
    """The Connect sidecar proxy's settings (`proxy` block)."""

    _go: ClassVar[str] = "ConsulProxy"

    local_service_address: str | None = field("LocalServiceAddress")
    local_service_port: int | None = field("LocalServicePort", INT)
    expose: ConsulExposeConfig | None = field("Expose", BLOCK, block=ConsulExposeConfig)
    expose_config: ConsulExposeConfig | None = field("ExposeConfig", BLOCK, hcl="",
                                                     block=ConsulExposeConfig)
    upstreams: tuple[ConsulUpstream, ...] = attrs.field(
        default=(), kw_only=True, converter=_upstreams,
        metadata=go("Upstreams", BLOCKS, block=ConsulUpstream))
    transparent_proxy: ConsulTransparentProxy | None = field("TransparentProxy", BLOCK,
                                                             block=ConsulTransparentProxy)
    config: Mapping[str, Any] = field("Config", ANY)


@_base.frozen(slots=False, repr=False)
class ConsulSidecarService:
    """The sidecar's own service registration (`sidecar_service` block)."""

    _go: ClassVar[str] = "ConsulSidecarService"

    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                        metadata=go("Tags", STRS))
    port: str | None = field("Port")
    proxy: ConsulProxy | None = field("Proxy", BLOCK, block=ConsulProxy)
    disable_default_tcp_check: bool | None = field("DisableDefaultTCPCheck", BOOL)
    meta: Mapping[str, str] = field("Meta", MAP)


@_base.frozen(slots=False, repr=False)
class SidecarTask:
    """Overrides for the Connect sidecar task Nomad injects (`sidecar_task` block)."""

    _go: ClassVar[str] = "SidecarTask"

    name: str | None = field("Name")
    driver: str | None = field("Driver")
    user: str | None = field("User")
    config: Mapping[str, Any] = field("Config", ANY)
    env: Mapping[str, str] = field("Env", MAP)
    resources: Resources | None = field("Resources", BLOCK, block=Resources)
    meta: Mapping[str, str] = field("Meta", MAP)
    kill_timeout: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                           metadata=go("KillTimeout", DURATION, ptr=True))
    logs: LogConfig | None = field("LogConfig", BLOCK, block=LogConfig)
    shutdown_delay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                             metadata=go("ShutdownDelay", DURATION, ptr=True))
    kill_signal: str | None = field("KillSignal")
    volume_mounts: tuple[VolumeMount, ...] = attrs.field(
        default=(), kw_only=True, converter=volume_mounts,
        metadata=go("VolumeMounts", BLOCKS, hcl="volume_mount", block=VolumeMount))
    identities: tuple[WorkloadIdentity, ...] = attrs.field(
        default=(), kw_only=True, converter=identities,
        metadata=go("Identities", BLOCKS, hcl="identity", block=WorkloadIdentity))

    def canonicalize(self) -> SidecarTask:
        """api/consul.go:122 SidecarTask.Canonicalize: resources, logs, 5s kill timeout."""
        return evolve(
            self,
            resources=(self.resources or Resources()).canonicalize(),
            logs=(self.logs or LogConfig()).canonicalize(),
            kill_timeout=5 * SECOND if self.kill_timeout is None else self.kill_timeout,
            shutdown_delay=0 if self.shutdown_delay is None else self.shutdown_delay,
            volume_mounts=tuple(v.canonicalize() for v in self.volume_mounts),
        )


@_base.frozen(slots=False, repr=False)
class ConsulGatewayBindAddress:
    """An address the gateway's Envoy listens on (`envoy_gateway_bind_addresses "name"`)."""

    _go: ClassVar[str] = "ConsulGatewayBindAddress"

    name: str = label("Name")
    address: str | None = field("Address")
    port: int | None = field("Port", INT)


def _bind_addresses(value: Mapping[str, ConsulGatewayBindAddress] | Iterable[ConsulGatewayBindAddress]
                    | None) -> Mapping[str, ConsulGatewayBindAddress]:
    return block_map(value)


@_base.frozen(slots=False, repr=False)
class ConsulGatewayProxy:
    """The Envoy settings of a Connect gateway (`proxy` block)."""

    _go: ClassVar[str] = "ConsulGatewayProxy"

    connect_timeout: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                              metadata=go("ConnectTimeout", DURATION, ptr=True))
    envoy_gateway_bind_tagged_addresses: bool | None = field("EnvoyGatewayBindTaggedAddresses", BOOL)
    envoy_gateway_bind_addresses: Mapping[str, ConsulGatewayBindAddress] = attrs.field(
        default=EMPTY, kw_only=True, converter=_bind_addresses,
        metadata=go("EnvoyGatewayBindAddresses", BLOCK_MAP, block=ConsulGatewayBindAddress))
    envoy_gateway_no_default_bind: bool | None = field("EnvoyGatewayNoDefaultBind", BOOL)
    envoy_dns_discovery_type: str | None = field("EnvoyDNSDiscoveryType")
    config: Mapping[str, Any] = field("Config", ANY)

    def canonicalize(self) -> ConsulGatewayProxy:
        """api/consul.go:414 ConsulGatewayProxy.Canonicalize: 5s connect timeout."""
        if self.connect_timeout is not None:
            return self
        return evolve(self, connect_timeout=5 * SECOND)


@_base.frozen(slots=False, repr=False)
class ConsulGatewayTLSSDSConfig:
    """Certificates for a gateway listener from an SDS cluster (`sds` block)."""

    _go: ClassVar[str] = "ConsulGatewayTLSSDSConfig"

    cluster_name: str | None = field("ClusterName")
    cert_resource: str | None = field("CertResource")


@_base.frozen(slots=False, repr=False)
class ConsulGatewayTLSConfig:
    """TLS of an ingress gateway or one of its services (`tls` block)."""

    _go: ClassVar[str] = "ConsulGatewayTLSConfig"

    enabled: bool | None = field("Enabled", BOOL)
    tls_min_version: str | None = field("TLSMinVersion")
    tls_max_version: str | None = field("TLSMaxVersion")
    cipher_suites: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                                 metadata=go("CipherSuites", STRS))
    sds: ConsulGatewayTLSSDSConfig | None = field("SDS", BLOCK, block=ConsulGatewayTLSSDSConfig)


@_base.frozen(slots=False, repr=False)
class ConsulHTTPHeaderModifiers:
    """Headers an ingress gateway adds, sets or removes (`request_headers` / `response_headers`)."""

    _go: ClassVar[str] = "ConsulHTTPHeaderModifiers"

    add: Mapping[str, str] = field("Add", MAP)
    set: Mapping[str, str] = field("Set", MAP)
    remove: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                          metadata=go("Remove", STRS))


@_base.frozen(slots=False, repr=False)
class ConsulIngressService:
    """A service an ingress gateway listener routes to (`service` block)."""

    _go: ClassVar[str] = "ConsulIngressService"

    name: str | None = field("Name")
    hosts: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                         metadata=go("Hosts", STRS))
    tls: ConsulGatewayTLSConfig | None = field("TLS", BLOCK, block=ConsulGatewayTLSConfig)
    request_headers: ConsulHTTPHeaderModifiers | None = field(
        "RequestHeaders", BLOCK, block=ConsulHTTPHeaderModifiers)
    response_headers: ConsulHTTPHeaderModifiers | None = field(
        "ResponseHeaders", BLOCK, block=ConsulHTTPHeaderModifiers)
    max_connections: int | None = field("MaxConnections", INT, ptr=True, go_int="uint32")
    max_pending_requests: int | None = field("MaxPendingRequests", INT, ptr=True, go_int="uint32")
    max_concurrent_requests: int | None = field("MaxConcurrentRequests", INT, ptr=True,
                                                go_int="uint32")


def _ingress_services(value: Iterable[ConsulIngressService] | None
                      ) -> tuple[ConsulIngressService, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ConsulIngressListener:
    """A port an ingress gateway listens on (`listener` block)."""

    _go: ClassVar[str] = "ConsulIngressListener"

    port: int | None = field("Port", INT)
    protocol: str | None = field("Protocol")
    services: tuple[ConsulIngressService, ...] = attrs.field(
        default=(), kw_only=True, converter=_ingress_services,
        metadata=go("Services", BLOCKS, hcl="service", block=ConsulIngressService))

    def canonicalize(self) -> ConsulIngressListener:
        """api/consul.go:662 ConsulIngressListener.Canonicalize: protocol "tcp"."""
        return self if self.protocol else evolve(self, protocol="tcp")


def _listeners(value: Iterable[ConsulIngressListener] | None) -> tuple[ConsulIngressListener, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ConsulIngressConfigEntry:
    """An ingress gateway's configuration (`ingress` block)."""

    _go: ClassVar[str] = "ConsulIngressConfigEntry"

    tls: ConsulGatewayTLSConfig | None = field("TLS", BLOCK, block=ConsulGatewayTLSConfig)
    listeners: tuple[ConsulIngressListener, ...] = attrs.field(
        default=(), kw_only=True, converter=_listeners,
        metadata=go("Listeners", BLOCKS, hcl="listener", block=ConsulIngressListener))

    def canonicalize(self) -> ConsulIngressConfigEntry:
        """api/consul.go:713 ConsulIngressConfigEntry.Canonicalize: each listener's."""
        return evolve(self, listeners=tuple(x.canonicalize() for x in self.listeners))


@_base.frozen(slots=False, repr=False)
class ConsulLinkedService:
    """An external service a terminating gateway fronts (`service` block)."""

    _go: ClassVar[str] = "ConsulLinkedService"

    name: str | None = field("Name")
    ca_file: str | None = field("CAFile")
    cert_file: str | None = field("CertFile")
    key_file: str | None = field("KeyFile")
    sni: str | None = field("SNI")


def _linked_services(value: Iterable[ConsulLinkedService] | None) -> tuple[ConsulLinkedService, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class ConsulTerminatingConfigEntry:
    """A terminating gateway's configuration (`terminating` block)."""

    _go: ClassVar[str] = "ConsulTerminatingConfigEntry"

    services: tuple[ConsulLinkedService, ...] = attrs.field(
        default=(), kw_only=True, converter=_linked_services,
        metadata=go("Services", BLOCKS, hcl="service", block=ConsulLinkedService))


@_base.frozen(slots=False, repr=False)
class ConsulMeshConfigEntry:
    """A mesh gateway (`mesh {}`): Nomad's api has no settings for it."""

    _go: ClassVar[str] = "ConsulMeshConfigEntry"


@_base.frozen(slots=False, repr=False)
class ConsulGateway:
    """A Connect ingress, terminating or mesh gateway (`gateway` block)."""

    _go: ClassVar[str] = "ConsulGateway"

    proxy: ConsulGatewayProxy | None = field("Proxy", BLOCK, block=ConsulGatewayProxy)
    ingress: ConsulIngressConfigEntry | None = field("Ingress", BLOCK, block=ConsulIngressConfigEntry)
    terminating: ConsulTerminatingConfigEntry | None = field("Terminating", BLOCK,
                                                             block=ConsulTerminatingConfigEntry)
    mesh: ConsulMeshConfigEntry | None = field("Mesh", BLOCK, block=ConsulMeshConfigEntry)

    def canonicalize(self) -> ConsulGateway:
        """api/consul.go:368 ConsulGateway.Canonicalize: its proxy and ingress."""
        return evolve(self, proxy=self.proxy.canonicalize() if self.proxy is not None else None,
                      ingress=self.ingress.canonicalize() if self.ingress is not None else None)


@_base.frozen(slots=False, repr=False)
class ConsulConnect:
    """Consul Connect for a service: a sidecar, a native integration or a gateway (`connect`)."""

    _go: ClassVar[str] = "ConsulConnect"

    native: bool | None = field("Native", BOOL)
    gateway: ConsulGateway | None = field("Gateway", BLOCK, block=ConsulGateway)
    sidecar_service: ConsulSidecarService | None = field("SidecarService", BLOCK,
                                                         block=ConsulSidecarService)
    sidecar_task: SidecarTask | None = field("SidecarTask", BLOCK, block=SidecarTask)

    def canonicalize(self) -> ConsulConnect:
        """api/consul.go:68 ConsulConnect.Canonicalize: its sidecar task and gateway."""
        return evolve(
            self,
            sidecar_task=self.sidecar_task.canonicalize() if self.sidecar_task is not None else None,
            gateway=self.gateway.canonicalize() if self.gateway is not None else None,
        )

