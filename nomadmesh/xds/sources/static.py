"""A snapshot file as a source: Envoy's own JSON/YAML resources, validated, hot-reloaded on change.

The file is one mapping in the original design's shape, or a list of them (one per node cluster):

    version_info: "1"
    node: {service_name: edge-router}
    resources:
      - {"@type": type.googleapis.com/envoy.config.listener.v3.Listener, name: egress, ...}
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401 - registers the type
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 - registers
from google.protobuf import json_format

from nomadmesh.errors import XdsError
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from nomadmesh.xds.snapshot import Resource, Snapshot

log = logging.getLogger("nomadmesh.xds.static")

_MESSAGES: dict[str, Any] = {
    LISTENER_TYPE: listener_pb2.Listener,
    ROUTE_TYPE: route_pb2.RouteConfiguration,
    CLUSTER_TYPE: cluster_pb2.Cluster,
    ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
}
_POLL_SECONDS = 0.2


def load_snapshot_file(path: Path) -> dict[str, Snapshot]:
    """Parse and check a snapshot file; XdsError names the file and the offending resource."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise XdsError(f"snapshot file {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise XdsError(f"snapshot file {path}: not YAML or JSON: {exc}") from None
    entries = document if isinstance(document, list) else [document]
    snapshots: dict[str, Snapshot] = {}
    for number, entry in enumerate(entries):
        where = f"snapshot file {path}" + (f", entry {number}" if len(entries) > 1 else "")
        node_cluster, snapshot = _snapshot(entry, where)
        if node_cluster in snapshots:
            raise XdsError(f"{where}: node service_name {node_cluster!r} appears twice")
        snapshots[node_cluster] = snapshot
    return snapshots


def _snapshot(entry: Any, where: str) -> tuple[str, Snapshot]:
    if not isinstance(entry, dict):
        raise XdsError(f"{where}: expected a mapping with version_info, node and resources")
    node = entry.get("node")
    node_cluster = node.get("service_name") if isinstance(node, dict) else None
    if not isinstance(node_cluster, str) or not node_cluster:
        raise XdsError(f"{where}: node.service_name is missing")
    version = str(entry.get("version_info") or "")
    if not version:
        raise XdsError(f"{where}: version_info is missing")
    raw_resources = entry.get("resources")
    if not isinstance(raw_resources, list):
        raise XdsError(f"{where}: resources must be a list")
    items = [_resource(raw, f"{where}, resource {i}") for i, raw in enumerate(raw_resources)]
    try:
        snapshot = Snapshot.of(items, version=version)
        snapshot.check()
    except XdsError as exc:
        raise XdsError(f"{where}: {exc}") from None
    return node_cluster, snapshot


def _resource(raw: Any, where: str) -> Resource:
    if not isinstance(raw, dict):
        raise XdsError(f"{where}: expected a mapping")
    fields = dict(raw)
    type_url = fields.pop("@type", None)
    message_class = _MESSAGES.get(str(type_url))
    if message_class is None:
        raise XdsError(f"{where}: @type {type_url!r} is not one of {', '.join(_MESSAGES)}")
    name = fields.get("name") or fields.get("cluster_name") or "?"
    try:
        message = json_format.ParseDict(fields, message_class())
    except json_format.ParseError as exc:
        kind = message_class.DESCRIPTOR.name
        raise XdsError(f"{where} ({kind} {name!r}): {exc}") from None
    return Resource.of(message)


class SnapshotFileSource:
    """Serves a snapshot file as given; a broken edit is refused and the last good one kept."""

    def __init__(self, path: Path, cache: SnapshotCache, metrics: XdsMetrics) -> None:
        self.path = path
        self.cache = cache
        self.metrics = metrics
        self._stamp: tuple[int, int] | None = None
        self._ok = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="nomadmesh-xds-snapshot-file", daemon=True
        )

    def start(self) -> None:
        """Load the file (XdsError if it is unusable) and watch it for changes."""
        self._stamp = self._current_stamp()
        self.cache.replace_all(load_snapshot_file(self.path))
        self._ok = True
        self._thread.start()

    def stop(self) -> None:
        """Stop watching the file."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def healthy(self) -> bool:
        """Whether the file's current content was loaded."""
        return self._ok

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _watch(self) -> None:
        while not self._stopped.wait(_POLL_SECONDS):
            stamp = self._current_stamp()
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                self.cache.replace_all(load_snapshot_file(self.path))
            except XdsError as exc:
                self._ok = False
                self.metrics.snapshot_errors.inc()
                log.error("snapshot file refused, keeping the last good one: %s", exc)
                continue
            self._ok = True
            log.info("snapshot file reloaded path=%s", self.path)
