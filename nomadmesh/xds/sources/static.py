"""A snapshot file as a source: Envoy's own JSON/YAML resources, validated, hot-reloaded on change.

The file is one mapping in the original design's shape, or a list of them (one per node cluster);
the node cluster is `node.service_name` or, as the original design wrote it, a top-level
`service_name`:

    version_info: "1"
    node: {service_name: edge-router}      # or: service_name: edge-router
    resources:
      - {"@type": type.googleapis.com/envoy.config.listener.v3.Listener, name: egress, ...}

Every sidecar of a node cluster gets the file's snapshot as given, whatever its node metadata.
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
from envoy.extensions.transport_sockets.tls.v3 import (
    secret_pb2,
    tls_pb2,  # noqa: F401 - registers the type
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 - registers
from google.protobuf import json_format

from nomadmesh._reading import brackets_deeper_than, long_integer_line, max_int_digits
from nomadmesh.contract import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
    NodeKey,
)
from nomadmesh.errors import XdsError
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.snapshot import Resource, Snapshot
from nomadmesh.xds.source import SourceHealth

log = logging.getLogger("nomadmesh.xds.static")

_MESSAGES: dict[str, Any] = {
    LISTENER_TYPE: listener_pb2.Listener,
    ROUTE_TYPE: route_pb2.RouteConfiguration,
    CLUSTER_TYPE: cluster_pb2.Cluster,
    ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
    SECRET_TYPE: secret_pb2.Secret,
}
_POLL_SECONDS = 0.2
MAX_FILE_BYTES = 64 * 1024 * 1024
# Brackets nest deeper than this in no Envoy resource (json_format stops at 100 messages); PyYAML
# needs seconds for 5,000 and ends in a RecursionError, so deeper text is refused before it.
MAX_DEPTH = 200


def load_snapshot_file(path: Path) -> dict[str, Snapshot]:
    """Parse and check a snapshot file; XdsError names the file and the offending resource."""
    try:
        if not path.is_file():
            raise XdsError(f"snapshot file {path}: not a regular file")
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise XdsError(f"snapshot file {path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise XdsError(f"snapshot file {path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XdsError(f"snapshot file {path}: not UTF-8 text (byte {exc.start})") from None
    if brackets_deeper_than(text, MAX_DEPTH, quotes="\"'"):
        raise XdsError(f"snapshot file {path}: brackets nested more than {MAX_DEPTH} levels deep")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise XdsError(f"snapshot file {path}: not YAML or JSON: {exc}") from None
    except RecursionError:
        raise XdsError(f"snapshot file {path}: nested too deeply") from None
    except ValueError:  # yaml's int() of a decimal integer longer than Python converts
        line = long_integer_line(text)
        raise XdsError(f"snapshot file {path}" + (f", line {line}" if line else "") +
                       f": an integer has more than {max_int_digits():,} digits") from None
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
    top = entry.get("service_name")
    if node_cluster is not None and top is not None and top != node_cluster:
        raise XdsError(f"{where}: service_name {top!r} and node.service_name {node_cluster!r} "
                       "differ")
    node_cluster = node_cluster if node_cluster is not None else top
    if not isinstance(node_cluster, str) or not node_cluster:
        raise XdsError(f"{where}: service_name (or node.service_name) is missing")
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
    surrogate = _unpaired_surrogate(fields)
    if surrogate is not None:
        raise XdsError(f"{where}: {surrogate} holds an unpaired UTF-16 surrogate, which is not "
                       "Unicode text (protobuf strings must be UTF-8)")
    try:
        message = json_format.ParseDict(fields, message_class())
    except RecursionError:
        raise XdsError(f"{where}: nested too deeply") from None
    except json_format.ParseError as exc:
        kind = message_class.DESCRIPTOR.name
        raise XdsError(f"{where} ({kind} {name!r}): {exc}") from None
    return Resource.of(message)


def _unpaired_surrogate(fields: dict[str, Any]) -> str | None:
    """The path of the first key or string holding a lone surrogate (a JSON or YAML "\\ud800").

    json_format cannot encode one: in a string it raises its ParseError, in a key that names no
    field upb's lookup raises SystemError, so the document is checked before it is parsed.
    """
    stack: list[tuple[str, Any]] = [("", fields)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                return f"the value of {where}"
        elif isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{_printable(key)}" if where else _printable(key)
                if isinstance(key, str) and not _is_unicode(key):
                    return f"the key {path}"
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(key: object) -> str:
    """A key as text that any terminal can print (a lone surrogate as its escape)."""
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8")


class SnapshotFileSource:
    """Serves a snapshot file as given; a broken edit is refused and the last good one kept."""

    name = "file"

    def __init__(self, path: Path, cache: SnapshotCache, metrics: XdsMetrics) -> None:
        self.path = path
        self.cache = cache
        self.metrics = metrics
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._by_cluster: dict[str, Snapshot] = {}
        self._hashes: set[str] = set()
        self._problem: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="nomadmesh-xds-snapshot-file", daemon=True
        )

    def start(self) -> None:
        """Load the file (XdsError if it is unusable) and watch it for changes."""
        self._stamp = self._current_stamp()
        self._install(load_snapshot_file(self.path))
        self.cache.on_watch(self._added, self._removed)
        for node_hash in self.cache.watched():
            self._added(node_hash)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching the file."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def problems(self) -> list[str]:
        """Why the file's current content is not served, if it is not."""
        return [self._problem] if self._problem is not None else []

    def health(self) -> SourceHealth:
        """Healthy while the file's current content is served."""
        return SourceHealth(ok=self._problem is None, problems=tuple(self.problems()))

    def healthy(self) -> bool:
        """Whether the file's current content was loaded."""
        return self._problem is None

    def _added(self, node_hash: str) -> None:
        with self._lock:
            self._hashes.add(node_hash)
            snapshot = self._by_cluster.get(NodeKey.parse(node_hash).cluster)
        if snapshot is not None:
            self.cache.set_snapshots({node_hash: snapshot})

    def _removed(self, node_hash: str) -> None:
        with self._lock:
            self._hashes.discard(node_hash)
        self.cache.set_snapshots({}, [node_hash])

    def _install(self, snapshots: dict[str, Snapshot]) -> None:
        with self._lock:
            self._by_cluster = snapshots
            hashes = set(self._hashes) | set(snapshots)
        changed = {}
        removed = []
        for node_hash in hashes:
            snapshot = snapshots.get(NodeKey.parse(node_hash).cluster)
            if snapshot is None:
                removed.append(node_hash)
            else:
                changed[node_hash] = snapshot
        self.cache.set_snapshots(changed, removed)

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
                self._install(load_snapshot_file(self.path))
            except XdsError as exc:
                self._problem = f"file {self.path}: refused, serving the last good one: {exc}"[
                    :400]
                self.metrics.snapshot_errors.inc()
                self.metrics.source_errors.labels(self.name, "reload_failed").inc()
                log.error("snapshot file refused, keeping the last good one: %s", exc)
                continue
            self._problem = None
            log.info("snapshot file reloaded path=%s", self.path)
