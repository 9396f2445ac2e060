"""Envoy v3 resources for the mesh, built from a plain description of services and their routes."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, json_format

from nomadmesh.errors import XdsError

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

# The order in which a change is pushed: clusters before the routes that use them.
PUSH_ORDER = (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)
# Types whose responses carry the complete set; the others are sent by name.
COMPLETE_SET_TYPES = frozenset({LISTENER_TYPE, CLUSTER_TYPE})

EGRESS_LISTENER = "egress"
EGRESS_ROUTE = "egress_route"
DEFAULT_EGRESS_ADDRESS = "0.0.0.0"
DEFAULT_EGRESS_PORT = 3101

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"


class Endpoint(NamedTuple):
    """One instance of a service: where it listens, its Consul health and its weight there.

    Endpoint and Upstream are NamedTuples, not attrs classes: a large mesh hashes and compares
    tens of thousands of them per build, and tuples do that in C.
    """

    address: str
    port: int
    health: str = PASSING
    weight: int = 1


class Upstream(NamedTuple):
    """A route on a sidecar's egress listener: requests under `prefix` go to `service`."""

    service: str
    prefix: str


def parse_upstreams(text: str) -> tuple[Upstream, ...]:
    """Parse the `nomadmesh-upstreams` meta value: `service-a=/hi_a,service-b=/hi_b`."""
    upstreams = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        service, sep, prefix = item.partition("=")
        if not sep or not service.strip() or not prefix.strip().startswith("/"):
            raise XdsError(f"upstream {item!r} is not of the form service=/prefix")
        upstreams.append(Upstream(service.strip(), prefix.strip()))
    return tuple(upstreams)


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromTimedelta(datetime.timedelta(seconds=seconds))
    return value


def _ads_source() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def egress_listener(
    address: str = DEFAULT_EGRESS_ADDRESS, port: int = DEFAULT_EGRESS_PORT
) -> listener_pb2.Listener:
    """The sidecar's egress listener: HTTP, routes from RDS `egress_route` over ADS."""
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=EGRESS_LISTENER,
        rds=hcm_pb2.Rds(config_source=_ads_source(), route_config_name=EGRESS_ROUTE),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router())
            )
        ],
    )
    return listener_pb2.Listener(
        name=EGRESS_LISTENER,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=address, port_value=port)
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_pack(manager),
                    )
                ]
            )
        ],
    )


def egress_route(upstreams: Iterable[Upstream]) -> route_pb2.RouteConfiguration:
    """Prefix routes to upstream clusters; paths are forwarded unchanged (no prefix rewrite)."""
    config = route_pb2.RouteConfiguration(name=EGRESS_ROUTE)
    host = config.virtual_hosts.add(name="egress", domains=["*"])
    # Longest prefix first, so `/hi_ab` is not swallowed by `/hi_a`.
    for upstream in sorted(upstreams, key=lambda u: (-len(u.prefix), u.prefix)):
        # Fields are set in place: nested constructors cost about three times as much.
        route = host.routes.add()
        route.match.prefix = upstream.prefix
        route.route.cluster = upstream.service
    return config


def eds_cluster(service: str) -> cluster_pb2.Cluster:
    """A cluster whose endpoints come from EDS over ADS; unhealthy hosts never take traffic."""
    cluster = cluster_pb2.Cluster()
    cluster.CopyFrom(_EDS_CLUSTER)
    cluster.name = service
    return cluster


# Every EDS cluster is this one with its name set; copying beats building it field by field.
_EDS_CLUSTER = cluster_pb2.Cluster(
    type=cluster_pb2.Cluster.EDS,
    eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads_source()),
    connect_timeout=_duration(1.0),
    # Panic routing would send traffic to critical instances once most are down.
    common_lb_config=cluster_pb2.Cluster.CommonLbConfig(
        healthy_panic_threshold=percent_pb2.Percent(value=0.0)
    ),
)


def load_assignment(
    service: str, endpoints: Iterable[Endpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    """Endpoints of a service: passing healthy, warning healthy at its weight, critical not."""
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=service)
    group = assignment.endpoints.add()
    for endpoint in sorted(endpoints, key=lambda e: (e.address, e.port)):
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


def egress_binding(metadata: Mapping[str, object]) -> tuple[str, int] | None:
    """The egress address/port a sidecar asked for in its node metadata, if it did."""
    address = metadata.get("egress_address")
    port = metadata.get("egress_port")
    if address is None and port is None:
        return None
    # Struct numbers arrive as floats; rendered templates arrive as strings.
    if port is None:
        number = DEFAULT_EGRESS_PORT
    elif (isinstance(port, float) and port.is_integer()) or (
        isinstance(port, (int, str)) and str(port).isdigit()
    ):
        number = int(port)
    else:
        raise XdsError(f"node metadata egress_port {port!r} is not a port number")
    return str(address or DEFAULT_EGRESS_ADDRESS), number


def bind_listener(
    listener: listener_pb2.Listener, address: str, port: int
) -> listener_pb2.Listener:
    """A copy of `listener` bound to `address:port`."""
    bound = listener_pb2.Listener()
    bound.CopyFrom(listener)
    bound.address.socket_address.address = address
    bound.address.socket_address.port_value = port
    return bound


def node_metadata(node: base_pb2.Node) -> dict[str, object]:
    """A node's metadata Struct as a plain dict."""
    result: dict[str, object] = json_format.MessageToDict(node.metadata)
    return result
