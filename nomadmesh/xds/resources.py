"""Envoy v3 resources for the mesh, built from plain values: endpoints, upstreams and their policy.

Every function here returns a proto; `nomadmesh.xds.build` decides which ones a sidecar sees.
Traffic policy maps onto Envoy as follows (see docs/mesh.md for each key's meaning):

| policy part | Envoy |
|---|---|
| `timeout`, `idle_timeout` | route `timeout`, `idle_timeout` |
| `retries` | route `retry_policy` (+ `previous_hosts` predicate); its budget on the cluster |
| `connect_timeout`, `circuit_breakers`, `outlier_detection` | the cluster |
| `rate_limit` | `local_ratelimit` per route (`typed_per_filter_config`) |
| upstream `split` | `weighted_clusters` over one EDS cluster per tag subset |
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    extension_pb2,
    health_check_pb2,
)
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.config.trace.v3 import opentelemetry_pb2, zipkin_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import string_pb2
from envoy.type.v3 import percent_pb2, token_bucket_pb2
from google.protobuf import any_pb2, duration_pb2, json_format, wrappers_pb2

from nomadmesh.contract import (
    CLUSTER_TYPE,
    COMPLETE_SET_TYPES,
    DEFAULT_EGRESS_ADDRESS,
    DEFAULT_EGRESS_PORT,
    DEFAULT_POLICY,
    EGRESS_LISTENER,
    EGRESS_ROUTE,
    ENDPOINT_TYPE,
    IDEMPOTENT_METHODS,
    IDENTITY_SECRET,
    INBOUND_CLUSTER,
    INBOUND_LISTENER,
    INBOUND_ROUTE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
    SAFE_RETRY_ON,
    SECRET_TYPE,
    TRUST_SECRET,
    CircuitBreakers,
    OutlierDetection,
    Policy,
    RateLimit,
    Retries,
    Upstream,
    parse_upstreams,
    spiffe_id,
)

__all__ = [
    "CLUSTER_TYPE", "COMPLETE_SET_TYPES", "ENDPOINT_TYPE", "LISTENER_TYPE", "PUSH_ORDER",
    "ROUTE_TYPE", "SECRET_TYPE", "Endpoint", "Upstream", "parse_upstreams",
]

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
_ROUTER_FILTER = "envoy.filters.http.router"
_HCM_FILTER = "envoy.filters.network.http_connection_manager"


class Endpoint(NamedTuple):
    """One instance of a service: where it listens, its health, its weight and its tags.

    A NamedTuple, not an attrs class: a large mesh hashes and compares tens of thousands of them
    per build, and tuples do that in C.
    """

    address: str
    port: int
    health: str = PASSING
    weight: int = 1
    tags: tuple[str, ...] = ()


class ClusterPlan(NamedTuple):
    """One Envoy cluster an upstream needs: its name, the EDS service it reads and its policy."""

    name: str
    service_name: str
    policy: Policy


@functools.lru_cache(maxsize=1024)
def _duration(seconds: float) -> duration_pb2.Duration:
    # Shared: callers only ever copy it (CopyFrom) or pass it to a constructor, which copies.
    value = duration_pb2.Duration()
    value.FromTimedelta(datetime.timedelta(seconds=seconds))
    return value


def ads_source() -> config_source_pb2.ConfigSource:
    """Config from the ADS stream itself."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def pack(message: object) -> any_pb2.Any:
    """A proto as an Any."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def http_filter(name: str, config: object) -> hcm_pb2.HttpFilter:
    """One HTTP filter of a connection manager."""
    return hcm_pb2.HttpFilter(name=name, typed_config=pack(config))


def listener(name: str, address: str, port: int, manager: hcm_pb2.HttpConnectionManager,
             transport_socket: base_pb2.TransportSocket | None = None) -> listener_pb2.Listener:
    """A listener with one filter chain carrying an HTTP connection manager."""
    chain = listener_components_pb2.FilterChain(
        filters=[listener_components_pb2.Filter(name=_HCM_FILTER, typed_config=pack(manager))]
    )
    if transport_socket is not None:
        chain.transport_socket.CopyFrom(transport_socket)
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=address, port_value=port)
        ),
        filter_chains=[chain],
    )


def egress_listener(
    address: str = DEFAULT_EGRESS_ADDRESS,
    port: int = DEFAULT_EGRESS_PORT,
    *,
    access_log: Sequence[object] = (),
    tracing: hcm_pb2.HttpConnectionManager.Tracing | None = None,
) -> listener_pb2.Listener:
    """The sidecar's egress listener: HTTP, routes from RDS `egress_route` over ADS.

    The local rate limit filter is present but idle; routes with a `rate_limit` enable it.
    """
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=EGRESS_LISTENER,
        rds=hcm_pb2.Rds(config_source=ads_source(), route_config_name=EGRESS_ROUTE),
        http_filters=[
            http_filter(RATE_LIMIT_FILTER,
                        local_rate_limit_pb2.LocalRateLimit(stat_prefix="egress_rate_limit")),
            http_filter(_ROUTER_FILTER, router_pb2.Router()),
        ],
    )
    manager.access_log.extend(access_log)
    if tracing is not None:
        manager.tracing.CopyFrom(tracing)
    return listener(EGRESS_LISTENER, address, port, manager)


# --- routes --------------------------------------------------------------------------------------


def cluster_plans(upstream: Upstream, policy: Policy) -> list[tuple[ClusterPlan, int]]:
    """The clusters an upstream routes to, each with its weight (one, weight 0, without a split).

    A cluster keeps the service's name while its cluster-level policy is the default one; a
    different policy or a tag subset gets its own name, so callers that differ never share one.
    """
    suffix = _cluster_suffix(policy)
    if not upstream.split:
        return [(ClusterPlan(upstream.service + suffix, upstream.service, policy), 0)]
    tags = sorted(s.tag for s in upstream.split if s.tag is not None)
    plans = []
    for part in upstream.split:
        service_name = subset_name(upstream.service, part.tag, tags)
        plans.append((ClusterPlan(service_name + suffix, service_name, policy), part.weight))
    return plans


def subset_name(service: str, tag: str | None, tags: Sequence[str]) -> str:
    """The EDS name of a tag subset: `svc[tag=canary]`, or `svc[not=canary]` for the rest."""
    if tag is not None:
        return f"{service}[tag={tag}]"
    return f"{service}[not={','.join(tags)}]" if tags else service


def subset_filter(service_name: str) -> tuple[str, str | None, frozenset[str]]:
    """(service, tag required, tags excluded) of an EDS name made by `subset_name`."""
    match = re.fullmatch(r"(?P<service>[^\[]+)\[(?P<kind>tag|not)=(?P<tags>[^\]]*)\]",
                         service_name)
    if match is None:
        return service_name, None, frozenset()
    if match.group("kind") == "tag":
        return match.group("service"), match.group("tags"), frozenset()
    return match.group("service"), None, frozenset(match.group("tags").split(","))


def _cluster_policy(policy: Policy) -> tuple[object, ...]:
    retries = policy.retries
    budget = (retries.budget_percent, retries.budget_min_concurrency) if retries else None
    return (policy.connect_timeout, policy.circuit_breakers, policy.outlier_detection, budget)


_DEFAULT_CLUSTER_POLICY = _cluster_policy(DEFAULT_POLICY)


def _cluster_suffix(policy: Policy) -> str:
    key = _cluster_policy(policy)
    if key == _DEFAULT_CLUSTER_POLICY:
        return ""
    return "~" + hashlib.blake2b(repr(key).encode(), digest_size=4).hexdigest()


def egress_route(
    upstreams: Iterable[Upstream], default: Policy = DEFAULT_POLICY
) -> route_pb2.RouteConfiguration:
    """Routes to upstream clusters, most specific prefix first, each with its policy."""
    config = route_pb2.RouteConfiguration(name=EGRESS_ROUTE)
    host = config.virtual_hosts.add(name="egress", domains=["*"])
    # Longest prefix first, so `/hi_ab` is not swallowed by `/hi_a`; narrower matches (methods,
    # headers) before the plain route of the same prefix.
    ordered = sorted(upstreams, key=lambda u: (-len(u.prefix), not (u.methods or u.headers),
                                               u.prefix, u.service))
    for upstream in ordered:
        policy = upstream.policy.merged_onto(default) if upstream.policy else default
        retries = policy.retries
        if retries is not None and retries.idempotent_only and retries.attempts and (
                set(retries.retry_on) - set(SAFE_RETRY_ON)):
            # Unsafe conditions are retried for idempotent methods only; others get the safe ones.
            methods = [m for m in (upstream.methods or IDEMPOTENT_METHODS)
                       if m in IDEMPOTENT_METHODS]
            others = [m for m in upstream.methods if m not in IDEMPOTENT_METHODS]
            if methods:
                _add_route(host, upstream, policy, methods, retries.retry_on)
            safe = tuple(c for c in retries.retry_on if c in SAFE_RETRY_ON) or ("connect-failure",)
            if others or not upstream.methods:
                _add_route(host, upstream, policy, others, safe)
        else:
            _add_route(host, upstream, policy, list(upstream.methods),
                       retries.retry_on if retries is not None else ())
    return config


def _add_route(host: route_components_pb2.VirtualHost, upstream: Upstream, policy: Policy,
               methods: Sequence[str], retry_on: Sequence[str]) -> None:
    # Fields are set in place: nested constructors cost about three times as much.
    route = host.routes.add()
    route.name = f"{upstream.service}{upstream.prefix}"
    route.match.prefix = upstream.prefix
    if methods:
        method = route.match.headers.add(name=":method")
        method.string_match.safe_regex.regex = "^(" + "|".join(methods) + ")$"
    for header in upstream.headers:
        matcher = route.match.headers.add(name=header.name, invert_match=header.invert)
        if header.present is not None:
            matcher.present_match = header.present
        elif header.exact is not None:
            matcher.string_match.exact = header.exact
        elif header.prefix is not None:
            matcher.string_match.prefix = header.prefix
        elif header.regex is not None:
            matcher.string_match.safe_regex.regex = header.regex
    action = route.route
    plans = cluster_plans(upstream, policy)
    if len(plans) == 1 and not upstream.split:
        action.cluster = plans[0][0].name
    else:
        for plan, weight in plans:
            action.weighted_clusters.clusters.add(name=plan.name).weight.value = weight
    if upstream.rewrite is not None:
        action.prefix_rewrite = upstream.rewrite
    if policy.timeout is not None:
        action.timeout.CopyFrom(_duration(policy.timeout))
    if policy.idle_timeout is not None:
        action.idle_timeout.CopyFrom(_duration(policy.idle_timeout))
    if policy.retries is not None and policy.retries.attempts and retry_on:
        action.retry_policy.CopyFrom(_retry_policy(policy.retries, tuple(retry_on)))
    if policy.rate_limit is not None:
        route.typed_per_filter_config[RATE_LIMIT_FILTER].CopyFrom(_rate_limit(policy.rate_limit))


@functools.lru_cache(maxsize=256)
def _retry_policy(retries: Retries, retry_on: tuple[str, ...]) -> route_components_pb2.RetryPolicy:
    policy = route_components_pb2.RetryPolicy(retry_on=",".join(retry_on))
    policy.num_retries.value = retries.attempts
    if retries.per_try_timeout is not None:
        policy.per_try_timeout.CopyFrom(_duration(retries.per_try_timeout))
    policy.retry_back_off.base_interval.CopyFrom(_duration(retries.backoff_base))
    policy.retry_back_off.max_interval.CopyFrom(_duration(retries.backoff_max))
    # A retry goes to another host when there is one.
    policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts",
                                    typed_config=_PREVIOUS_HOSTS)
    policy.host_selection_retry_max_attempts = 5
    return policy


_PREVIOUS_HOSTS = pack(previous_hosts_pb2.PreviousHostsPredicate())


@functools.lru_cache(maxsize=256)
def _rate_limit(limit: RateLimit) -> any_pb2.Any:
    return pack(local_rate_limit_pb2.LocalRateLimit(
        stat_prefix="egress_rate_limit",
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=limit.requests,
            tokens_per_fill=wrappers_pb2.UInt32Value(value=limit.requests),
            fill_interval=_duration(limit.per),
        ),
        filter_enabled=_ALWAYS,
        filter_enforced=_ALWAYS,
    ))


_ALWAYS = base_pb2.RuntimeFractionalPercent(
    default_value=percent_pb2.FractionalPercent(numerator=100)
)


# --- clusters and endpoints ----------------------------------------------------------------------


def eds_cluster(
    name: str,
    service_name: str | None = None,
    policy: Policy = DEFAULT_POLICY,
    transport_socket: base_pb2.TransportSocket | None = None,
) -> cluster_pb2.Cluster:
    """A cluster whose endpoints come from EDS over ADS, with the policy's cluster-level parts."""
    cluster = cluster_pb2.Cluster()
    cluster.CopyFrom(_cluster_prototype(policy.connect_timeout, policy.circuit_breakers,
                                        policy.retries, policy.outlier_detection))
    cluster.name = name
    if service_name is not None and service_name != name:
        cluster.eds_cluster_config.service_name = service_name
    if transport_socket is not None:
        cluster.transport_socket.CopyFrom(transport_socket)
    return cluster


@functools.lru_cache(maxsize=256)
def _cluster_prototype(connect_timeout: float | None, limits: CircuitBreakers | None,
                       retries: Retries | None,
                       detection: OutlierDetection | None) -> cluster_pb2.Cluster:
    # Every cluster of one policy is this one with its name set: copying beats building.
    cluster = cluster_pb2.Cluster()
    cluster.CopyFrom(_EDS_CLUSTER)
    if connect_timeout is not None:
        cluster.connect_timeout.CopyFrom(_duration(connect_timeout))
    _circuit_breakers(cluster, limits, retries)
    if detection is not None:
        cluster.outlier_detection.CopyFrom(_outlier_detection(detection))
    return cluster


# Every EDS cluster starts as this one; copying beats building it field by field.
_EDS_CLUSTER = cluster_pb2.Cluster(
    type=cluster_pb2.Cluster.EDS,
    eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads_source()),
    connect_timeout=_duration(1.0),
    # Panic routing would send traffic to critical instances once most are down.
    common_lb_config=cluster_pb2.Cluster.CommonLbConfig(
        healthy_panic_threshold=percent_pb2.Percent(value=0.0)
    ),
)


def _circuit_breakers(cluster: cluster_pb2.Cluster, limits: CircuitBreakers | None,
                      retries: Retries | None) -> None:
    budget = retries.budget_percent if retries is not None else None
    values = {name: getattr(limits, name) for name in (
        "max_connections", "max_pending_requests", "max_requests", "max_retries")
        if limits is not None and getattr(limits, name) is not None}
    if not values and budget is None:
        return
    thresholds = circuit_breaker_pb2.CircuitBreakers.Thresholds()
    for name, value in values.items():
        getattr(thresholds, name).value = value
    if budget is not None and retries is not None:
        thresholds.retry_budget.budget_percent.value = budget
        thresholds.retry_budget.min_retry_concurrency.value = retries.budget_min_concurrency
    cluster.circuit_breakers.thresholds.append(thresholds)


def _outlier_detection(settings: OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    detection = outlier_detection_pb2.OutlierDetection(
        interval=_duration(settings.interval),
        base_ejection_time=_duration(settings.base_ejection_time),
    )
    # Envoy would otherwise keep a small cluster whole (10% of 2 hosts rounds down to 0).
    detection.always_eject_one_host.value = True
    detection.consecutive_5xx.value = settings.consecutive_5xx
    detection.consecutive_gateway_failure.value = settings.consecutive_gateway_failure
    # Envoy detects gateway failures without acting on them unless told to (default 0%).
    detection.enforcing_consecutive_gateway_failure.value = 100
    detection.max_ejection_percent.value = settings.max_ejection_percent
    return detection


def load_assignment(
    service_name: str, endpoints: Iterable[Endpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    """Endpoints of a service (or of a tag subset of it, by `subset_name`).

    Passing is healthy, warning healthy at its weight, critical (and weight 0) kept but unhealthy.
    """
    _, tag, excluded = subset_filter(service_name)
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=service_name)
    group = assignment.endpoints.add()
    for endpoint in sorted(endpoints, key=lambda e: (e.address, e.port)):
        if (tag is not None and tag not in endpoint.tags) or excluded.intersection(endpoint.tags):
            continue
        # Fields are set in place: nested constructors cost about three times as much.
        healthy = endpoint.health != CRITICAL and endpoint.weight > 0
        entry = group.lb_endpoints.add()
        socket_address = entry.endpoint.address.socket_address
        socket_address.address = endpoint.address
        socket_address.port_value = endpoint.port
        entry.health_status = _HEALTHY if healthy else _UNHEALTHY
        entry.load_balancing_weight.value = max(endpoint.weight, 1)
    return assignment


_HEALTHY, _UNHEALTHY = health_check_pb2.HEALTHY, health_check_pb2.UNHEALTHY


def typed_extension(name: str, config: object) -> extension_pb2.TypedExtensionConfig:
    """A named, typed extension (access loggers, tracers)."""
    return extension_pb2.TypedExtensionConfig(name=name, typed_config=pack(config))


def node_metadata(node: base_pb2.Node) -> dict[str, object]:
    """A node's metadata Struct as a plain dict."""
    result: dict[str, object] = json_format.MessageToDict(node.metadata)
    return result


# --- zero trust: the inbound listener, mTLS over SDS, RBAC ----------------------------------------


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_source())


def _socket(context: object) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=pack(context))


def upstream_tls(service: str, trust_domain: str) -> base_pb2.TransportSocket:
    """mTLS to an upstream: present our identity, accept only the upstream's SPIFFE ID."""
    common = tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(IDENTITY_SECRET)])
    combined = common.combined_validation_context
    combined.validation_context_sds_secret_config.CopyFrom(_sds(TRUST_SECRET))
    combined.default_validation_context.match_typed_subject_alt_names.add(
        san_type=common_pb2.SubjectAltNameMatcher.URI,
        matcher=string_pb2.StringMatcher(exact=spiffe_id(service, trust_domain)))
    return _socket(tls_pb2.UpstreamTlsContext(common_tls_context=common, sni=service))


def inbound_tls() -> base_pb2.TransportSocket:
    """mTLS on the inbound listener: a client certificate from the mesh's CA is required."""
    common = tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(IDENTITY_SECRET)],
        validation_context_sds_secret_config=_sds(TRUST_SECRET))
    context = tls_pb2.DownstreamTlsContext(common_tls_context=common)
    context.require_client_certificate.value = True
    return _socket(context)


def rbac_filter(callers: Sequence[str] | None, trust_domain: str,
                default_allow: bool) -> hcm_pb2.HttpFilter:
    """Envoy RBAC: only `callers` (by SPIFFE ID) may call; None means the mesh default."""
    rules = rbac_config_pb2.RBAC(action=rbac_config_pb2.RBAC.ALLOW)
    if callers is None and default_allow:
        policy = rules.policies["any-caller"]
        policy.permissions.add(any=True)
        policy.principals.add(any=True)
    elif callers:
        policy = rules.policies["allowed-callers"]
        policy.permissions.add(any=True)
        for caller in sorted(callers):
            principal = policy.principals.add()
            principal.authenticated.principal_name.exact = spiffe_id(caller, trust_domain)
    # No policy at all: every request is denied (403, counted in http.inbound.rbac.denied).
    return http_filter("envoy.filters.http.rbac", rbac_pb2.RBAC(rules=rules))


def inbound_listener(address: str, port: int, *, rbac: hcm_pb2.HttpFilter | None,
                     tls: bool, access_log: Sequence[object] = ()) -> listener_pb2.Listener:
    """The listener in front of the app: mTLS (when the mesh has a CA), RBAC, then the app."""
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=INBOUND_LISTENER)
    host = manager.route_config.virtual_hosts.add(name="inbound", domains=["*"])
    route = host.routes.add()
    route.match.prefix = "/"
    route.route.cluster = INBOUND_CLUSTER
    manager.route_config.name = INBOUND_ROUTE
    if rbac is not None:
        manager.http_filters.append(rbac)
    manager.http_filters.append(http_filter(_ROUTER_FILTER, router_pb2.Router()))
    if tls:
        # The app learns who called: the caller's SPIFFE ID in x-forwarded-client-cert.
        manager.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
        manager.set_current_client_cert_details.uri = True
    manager.access_log.extend(access_log)
    return listener(INBOUND_LISTENER, address, port, manager,
                    transport_socket=inbound_tls() if tls else None)


def local_app_cluster(address: str, port: int) -> cluster_pb2.Cluster:
    """The app behind the inbound listener, on the group's loopback."""
    cluster = cluster_pb2.Cluster(name=INBOUND_CLUSTER, type=cluster_pb2.Cluster.STATIC,
                                  connect_timeout=_duration(1.0))
    cluster.load_assignment.cluster_name = INBOUND_CLUSTER
    socket_address = cluster.load_assignment.endpoints.add().lb_endpoints.add(
    ).endpoint.address.socket_address
    socket_address.address = address
    socket_address.port_value = port
    return cluster


def identity_secret(certificate: bytes, private_key: bytes) -> secret_pb2.Secret:
    """The sidecar's own certificate and key, sent over SDS."""
    secret = secret_pb2.Secret(name=IDENTITY_SECRET)
    secret.tls_certificate.certificate_chain.inline_bytes = certificate
    secret.tls_certificate.private_key.inline_bytes = private_key
    return secret


def trust_secret(bundle: bytes) -> secret_pb2.Secret:
    """The mesh's CA certificates: what a peer's certificate must chain to."""
    secret = secret_pb2.Secret(name=TRUST_SECRET)
    secret.validation_context.trusted_ca.inline_bytes = bundle
    return secret


# --- observability: access logs and tracing -------------------------------------------------------

TRACING_CLUSTER = "nomadmesh_tracing"
# One JSON object per request on Envoy's stdout (Nomad keeps it with the sidecar's logs).
ACCESS_LOG_FIELDS = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_sent": "%BYTES_SENT%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "retries": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "caller": "%DOWNSTREAM_PEER_URI_SAN%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
}


def json_access_log() -> accesslog_pb2.AccessLog:
    """Envoy's stdout access logger writing one JSON object per request."""
    log = stream_pb2.StdoutAccessLog()
    log.log_format.json_format.update(ACCESS_LOG_FIELDS)
    return accesslog_pb2.AccessLog(name="envoy.access_loggers.stdout", typed_config=pack(log))


def tracing(provider: str, service: str, sampling: float) -> hcm_pb2.HttpConnectionManager.Tracing:
    """Tracing of a connection manager: Zipkin (HTTP JSON v2) or OpenTelemetry (OTLP gRPC),
    spans sent to the `nomadmesh_tracing` cluster, `sampling` percent of requests."""
    config = hcm_pb2.HttpConnectionManager.Tracing()
    config.random_sampling.value = sampling
    if provider == "zipkin":
        zipkin = zipkin_pb2.ZipkinConfig(
            collector_cluster=TRACING_CLUSTER, collector_endpoint="/api/v2/spans",
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON)
        config.provider.name = "envoy.tracers.zipkin"
        config.provider.typed_config.Pack(zipkin)
    else:
        otel = opentelemetry_pb2.OpenTelemetryConfig(service_name=service)
        otel.grpc_service.envoy_grpc.cluster_name = TRACING_CLUSTER
        config.provider.name = "envoy.tracers.opentelemetry"
        config.provider.typed_config.Pack(otel)
    return config


def tracing_cluster(provider: str, host: str, port: int) -> cluster_pb2.Cluster:
    """The collector: by address (STATIC) or name (STRICT_DNS); HTTP/2 for OpenTelemetry."""
    cluster = local_app_cluster(host, port)
    cluster.name = cluster.load_assignment.cluster_name = TRACING_CLUSTER
    try:
        ipaddress.ip_address(host)
    except ValueError:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
    if provider == "opentelemetry":
        options = http_protocol_options_pb2.HttpProtocolOptions()
        options.explicit_http_config.http2_protocol_options.SetInParent()
        cluster.typed_extension_protocol_options[
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Pack(options)
    return cluster
