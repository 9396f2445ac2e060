"""A Prometheus scrape configuration that finds every sidecar and the control plane in Consul.

Sidecars register a metrics service tagged with `Mesh.metrics_tags` (see `inject`); Prometheus'
`consul_sd_configs` discovers them by those tags, so new allocations are scraped without edits.
"""

from __future__ import annotations

from typing import Any

from nomadmesh.mesh.bootstrap import METRICS_PATH
from nomadmesh.mesh.settings import Mesh

DEFAULT_CONSUL = "127.0.0.1:8500"
DEFAULT_CONTROL_PLANE_METRICS_SERVICE = "nomadmesh-xds-metrics"


def prometheus_config(mesh: Mesh | None = None, *, consul: str = DEFAULT_CONSUL,
                      control_plane_service: str = DEFAULT_CONTROL_PLANE_METRICS_SERVICE,
                      control_plane_targets: tuple[str, ...] = (),
                      interval: str = "15s") -> dict[str, Any]:
    """The `scrape_configs` for the mesh: sidecars by tag, the control plane's `/metrics`.

    The control plane is found as the Consul service `control_plane_service`, or at fixed
    `control_plane_targets` (`host:port`) when given.
    """
    mesh = mesh or Mesh()
    # CONSUL_HTTP_ADDR may be a URL; Prometheus wants the host:port and the scheme apart.
    scheme, _, server = consul.rpartition("://")
    sd: dict[str, Any] = {"server": server.rstrip("/")}
    if scheme and scheme != "http":
        sd["scheme"] = scheme
    relabel = [
        {"source_labels": ["__meta_consul_service_metadata_nomadmesh_service"],
         "target_label": "service"},
        {"source_labels": ["__meta_consul_node"], "target_label": "node"},
        {"source_labels": ["__meta_consul_service_id"], "target_label": "instance"},
    ]
    sidecars = {
        "job_name": "nomadmesh-sidecars",
        "metrics_path": METRICS_PATH,
        "scrape_interval": interval,
        "consul_sd_configs": [{**sd, "tags": list(mesh.metrics_tags)}],
        "relabel_configs": relabel,
    }
    control_plane: dict[str, Any] = {
        "job_name": "nomadmesh-control-plane",
        "metrics_path": "/metrics",
        "scrape_interval": interval,
    }
    if control_plane_targets:
        control_plane["static_configs"] = [{"targets": list(control_plane_targets)}]
    else:
        control_plane["consul_sd_configs"] = [{**sd, "services": [control_plane_service]}]
    return {"scrape_configs": [sidecars, control_plane]}
