"""Envoy v3 bootstrap for a nomadmesh sidecar: node identity, ADS to the control plane, metrics.

Every value may be an int or a string: the sidecar injector passes placeholder strings that it
later swaps for consul-template expressions, so strings are copied into the output untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs

from nomadmesh.contract import EGRESS_ADDRESS_KEY, EGRESS_PORT_KEY

XDS_CLUSTER = "xds_cluster"
ADMIN_CLUSTER = "nomadmesh_admin"
METRICS_LISTENER = "nomadmesh_metrics"
METRICS_PATH = "/stats/prometheus"


_HCM = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

Value = int | str


@attrs.frozen(kw_only=True)
class XdsTls:
    """TLS (mTLS when a client certificate is given) from the sidecar to the control plane."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None


@attrs.frozen(kw_only=True)
class BootstrapParams:
    """What one sidecar's bootstrap needs; ints or (template placeholder) strings everywhere."""

    node_id: str
    cluster: str
    xds_host: str
    xds_port: Value
    admin_address: str = "127.0.0.1"
    admin_port: Value = 19000
    metrics_address: str = "0.0.0.0"
    metrics_port: Value = 9102
    egress_address: str = "0.0.0.0"
    egress_port: Value = 3101
    node_metadata: Mapping[str, Any] = attrs.field(factory=dict)
    xds_tls: XdsTls | None = None
    connect_timeout: str = "1s"
    # With a file, the control plane's instances come from it (Envoy watches it: replicas can
    # come and go without a restart); else the one `xds_host:xds_port`.
    xds_endpoints_file: str | None = None


def render_bootstrap(params: BootstrapParams) -> dict[str, Any]:
    """Return the Envoy v3 bootstrap (a JSON-ready dict) for one sidecar."""
    metadata = dict(params.node_metadata)
    metadata[EGRESS_ADDRESS_KEY] = params.egress_address
    metadata[EGRESS_PORT_KEY] = params.egress_port
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": params.node_id, "cluster": params.cluster, "metadata": metadata},
        "admin": {"address": _socket_address(params.admin_address, params.admin_port)},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
            },
            "cds_config": ads_source,
            "lds_config": ads_source,
        },
        "static_resources": {
            "listeners": [_metrics_listener(params)],
            "clusters": [_xds_cluster(params), _admin_cluster(params)],
        },
    }


def xds_endpoints(instances: list[tuple[Value, Value]]) -> dict[str, Any]:
    """The file of control plane instances Envoy's xDS cluster reads (an EDS response)."""
    return {"resources": [{
        "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "cluster_name": XDS_CLUSTER,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket_address(str(h), p)}}
                                        for h, p in instances]}],
    }]}


def _socket_address(address: str, port: Value) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _discovery_type(host: str) -> str:
    # An IP literal needs no resolver; anything else (a name, a template placeholder) is DNS.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "STRICT_DNS"
    return "STATIC"


def _static_cluster(name: str, host: str, port: Value, timeout: str) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": _discovery_type(host),
        "connect_timeout": timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
    }
    if cluster["type"] == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def _xds_cluster(params: BootstrapParams) -> dict[str, Any]:
    if params.xds_endpoints_file is not None:
        cluster: dict[str, Any] = {
            "name": XDS_CLUSTER,
            "type": "EDS",
            "connect_timeout": params.connect_timeout,
            "eds_cluster_config": {"eds_config": {
                "path_config_source": {"path": params.xds_endpoints_file},
                "resource_api_version": "V3",
            }},
        }
    else:
        cluster = _static_cluster(XDS_CLUSTER, params.xds_host, params.xds_port,
                                  params.connect_timeout)
    cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": _HTTP_OPTIONS,
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    if params.xds_tls is not None:
        cluster["transport_socket"] = _tls_socket(params.xds_tls)
    return cluster


def _tls_socket(tls: XdsTls) -> dict[str, Any]:
    common: dict[str, Any] = {
        "validation_context": {"trusted_ca": {"filename": tls.ca_file}},
        "alpn_protocols": ["h2"],
    }
    if tls.cert_file is not None and tls.key_file is not None:
        common["tls_certificates"] = [
            {
                "certificate_chain": {"filename": tls.cert_file},
                "private_key": {"filename": tls.key_file},
            }
        ]
    context: dict[str, Any] = {"@type": _TLS, "common_tls_context": common}
    if tls.server_name is not None:
        context["sni"] = tls.server_name
        common["validation_context"]["match_typed_subject_alt_names"] = [
            {"san_type": "DNS", "matcher": {"exact": tls.server_name}}
        ]
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _admin_cluster(params: BootstrapParams) -> dict[str, Any]:
    return _static_cluster(
        ADMIN_CLUSTER, params.admin_address, params.admin_port, params.connect_timeout
    )


def _metrics_listener(params: BootstrapParams) -> dict[str, Any]:
    # Only the Prometheus page of the admin interface is exposed; the rest stays on loopback.
    route_config = {
        "name": "nomadmesh_metrics_route",
        "virtual_hosts": [
            {
                "name": "metrics",
                "domains": ["*"],
                "routes": [
                    {
                        "match": {"path": METRICS_PATH},
                        "route": {"cluster": ADMIN_CLUSTER},
                    }
                ],
            }
        ],
    }
    hcm = {
        "@type": _HCM,
        "stat_prefix": "nomadmesh_metrics",
        "route_config": route_config,
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    return {
        "name": METRICS_LISTENER,
        "address": _socket_address(params.metrics_address, params.metrics_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
