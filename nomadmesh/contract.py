"""The contract between the mesh (injection) and the control plane: one neutral module both import.

What a sidecar's job carries (meta keys), what its bootstrap tells the control plane (node
metadata), how the control plane keys its snapshots (`NodeKey`), the upstreams with their traffic
policy and their wire form (`service=/prefix` short form, JSON for the config transport), and the
default ports. It imports neither `nomadmesh.mesh` nor `nomadmesh.xds`, and no gRPC or protobuf.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs

from nomadmesh.errors import Problem, XdsError

# --- xDS type URLs -------------------------------------------------------------------------------

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
# The order in which a change is pushed: clusters (and what they warm with) before listeners and
# the routes that use them.
PUSH_ORDER = (CLUSTER_TYPE, ENDPOINT_TYPE, SECRET_TYPE, LISTENER_TYPE, ROUTE_TYPE)
# Types whose responses carry the complete set; the others are sent by name.
COMPLETE_SET_TYPES = frozenset({LISTENER_TYPE, CLUSTER_TYPE})

# --- job meta ------------------------------------------------------------------------------------

# Group meta (HCL) and Consul/Nomad service meta carrying a group's routes in the short form.
GROUP_META_KEY = "nomadmesh.upstreams"
SERVICE_META_KEY = "nomadmesh-upstreams"
# Nomad's own service registrations carry tags but no meta: there the routes are one tag.
ROUTES_TAG_PREFIX = SERVICE_META_KEY + "="
# Group meta opting a group in or out of the mesh.
MESH_META_KEY = "nomadmesh.mesh"
# Task meta marking an injected sidecar (its value is the service it serves).
SIDECAR_META_KEY = "nomadmesh.sidecar"

# --- the config transport ------------------------------------------------------------------------

# Consul KV key (and Nomad Variable path) holding one service's mesh config as JSON: its
# upstreams with their policy. Read by the control plane, written by `nomadmesh mesh apply`;
# changing it restarts nothing (unlike job meta).
CONFIG_PREFIX = "nomadmesh/mesh/"
# In a Nomad Variable at CONFIG_PREFIX + service, the item holding that document.
CONFIG_ITEM = "config"

# --- node metadata (bootstrap → control plane) ----------------------------------------------------

EGRESS_ADDRESS_KEY = "egress_address"
EGRESS_PORT_KEY = "egress_port"
INBOUND_ADDRESS_KEY = "inbound_address"
INBOUND_PORT_KEY = "inbound_port"
APP_ADDRESS_KEY = "app_address"
APP_PORT_KEY = "app_port"
NOMAD_JOB_KEY = "nomad_job"
NOMAD_GROUP_KEY = "nomad_group"
# The keys that decide where a sidecar's listeners bind: part of its `NodeKey`.
BINDING_KEYS = (
    EGRESS_ADDRESS_KEY, EGRESS_PORT_KEY, INBOUND_ADDRESS_KEY, INBOUND_PORT_KEY,
    APP_ADDRESS_KEY, APP_PORT_KEY,
)
_PORT_KEYS = frozenset({EGRESS_PORT_KEY, INBOUND_PORT_KEY, APP_PORT_KEY})

# --- default ports and names ---------------------------------------------------------------------

DEFAULT_CONTROL_PLANE = "nomadmesh-xds"
DEFAULT_EGRESS_ADDRESS = "0.0.0.0"
DEFAULT_EGRESS_PORT = 3101
DEFAULT_INBOUND_PORT = 3102
DEFAULT_ADMIN_PORT = 19000
DEFAULT_METRICS_PORT = 9102
DEFAULT_XDS_PORT = 18000
EGRESS_LISTENER = "egress"
EGRESS_ROUTE = "egress_route"
INBOUND_LISTENER = "inbound"
INBOUND_ROUTE = "inbound_route"
INBOUND_CLUSTER = "local_app"
# SDS secret names: the sidecar's own certificate and the mesh's trust bundle.
IDENTITY_SECRET = "nomadmesh_identity"
TRUST_SECRET = "nomadmesh_trust"
DEFAULT_TRUST_DOMAIN = "nomadmesh.local"


def spiffe_id(service: str, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> str:
    """The SPIFFE ID a service's sidecars present: `spiffe://<trust domain>/svc/<service>`."""
    return f"spiffe://{trust_domain}/svc/{service}"


class NodeKey(NamedTuple):
    """What decides a sidecar's snapshot: its service and where its listeners bind."""

    cluster: str
    binding: tuple[tuple[str, str], ...] = ()

    @property
    def hash(self) -> str:
        """The cache key (go-control-plane's node hash): `cluster|key=value|...`."""
        return "|".join([self.cluster, *(f"{k}={v}" for k, v in self.binding)])

    @classmethod
    def parse(cls, text: str) -> NodeKey:
        """The key a `node_hash` string stands for."""
        cluster, *items = text.split("|")
        return cls(cluster, tuple(tuple(item.split("=", 1)) for item in items))  # type: ignore[misc]

    def get(self, key: str, default: str | None = None) -> str | None:
        """One binding value (node metadata listed in `BINDING_KEYS`), as text."""
        for name, value in self.binding:
            if name == key:
                return value
        return default

    def port(self, key: str, default: int) -> int:
        """A binding port (checked when the key was made)."""
        value = self.get(key)
        return default if value is None else int(value)


def node_key(cluster: str, metadata: Mapping[str, object]) -> NodeKey:
    """The snapshot key of a sidecar from its node cluster and metadata; XdsError on a bad value."""
    binding = []
    for key in BINDING_KEYS:
        value = metadata.get(key)
        if value is None:
            continue
        text = _port_text(key, value) if key in _PORT_KEYS else str(value)
        if "|" in text or "=" in text:
            raise XdsError(f"node metadata {key} {value!r} is not an address")
        binding.append((key, text))
    if "|" in cluster:
        raise XdsError(f"node cluster {cluster!r} may not contain '|'")
    return NodeKey(cluster, tuple(binding))


def node_hash(cluster: str, metadata: Mapping[str, object]) -> str:
    """The cache key of a sidecar's snapshot (see `NodeKey.hash`); XdsError on bad metadata."""
    return node_key(cluster, metadata).hash


def _port_text(key: str, value: object) -> str:
    # Struct numbers arrive as floats; rendered templates arrive as strings.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= 65535:
        raise XdsError(f"node metadata {key} {value!r} is not a port number (1-65535)")
    return str(int(text))


# --- traffic policy ------------------------------------------------------------------------------

# Every retry condition Envoy's router understands (x-envoy-retry-on and x-envoy-retry-grpc-on).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
# Methods whose requests may be repeated without changing the result (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")
# Conditions under which the request never reached the application: safe for any method.
SAFE_RETRY_ON = ("connect-failure", "refused-stream", "reset-before-request")
_MAX_DURATION = 315_576_000_000.0  # google.protobuf.Duration's range, in seconds
_UINT32 = 2**32 - 1
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_METHOD = re.compile(r"^[A-Z]+$")
_HEADER = re.compile(r"^:?[a-z0-9!#$%&'*+\-.^_`|~]+$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_PREFIX = re.compile(r"^/[A-Za-z0-9_\-./~%]*$")
# Constructs Python's `re` accepts and RE2 (Envoy's regex engine) refuses.
_NOT_RE2 = re.compile(r"\(\?[=!<]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?>|[*+?}]\+")


def parse_duration(value: object) -> float | None:
    """Seconds from `"250ms"`, `"2s"`, `"1m"` or a number of seconds; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def format_duration(seconds: float) -> str:
    """`0.25` → `"250ms"`, `2.0` → `"2s"`: the Go duration form settings files use."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    milliseconds = seconds * 1000
    if float(milliseconds).is_integer():
        return f"{int(milliseconds)}ms"
    return f"{seconds}s"


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    parsed = parse_duration(value)
    # An unparseable value is kept as NaN so that `problems()` reports it with its path.
    return math.nan if parsed is None else parsed


@attrs.frozen(kw_only=True)
class Retries:
    """Envoy's route `retry_policy`, plus the cluster's retry budget (`circuit_breakers`)."""

    retry_on: tuple[str, ...] = attrs.field(
        default=("connect-failure", "refused-stream", "reset", "gateway-error"), converter=tuple)
    attempts: int = 2  # num_retries: retries after the first try
    per_try_timeout: float | None = attrs.field(default=None, converter=_seconds)
    backoff_base: float = attrs.field(default=0.025, converter=_seconds)
    backoff_max: float = attrs.field(default=0.25, converter=_seconds)
    # Retry what `retry_on` lists only for idempotent methods; others get `SAFE_RETRY_ON` only.
    idempotent_only: bool = True
    budget_percent: float | None = 20.0  # retry_budget.budget_percent; None: max_retries applies
    budget_min_concurrency: int = 10  # retry_budget.min_retry_concurrency

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse."""
        for condition in self.retry_on:
            if condition not in RETRY_ON:
                yield Problem(f"{path}.retry_on", f"{condition!r} is not an Envoy retry "
                              "condition (" + ", ".join(sorted(RETRY_ON)) + ")")
        yield from _count(f"{path}.attempts", self.attempts, low=0)
        yield from _duration_problems(f"{path}.per_try_timeout", self.per_try_timeout)
        yield from _duration_problems(f"{path}.backoff_base", self.backoff_base)
        yield from _duration_problems(f"{path}.backoff_max", self.backoff_max)
        if (math.isfinite(self.backoff_base) and math.isfinite(self.backoff_max)
                and self.backoff_max < self.backoff_base):
            yield Problem(f"{path}.backoff_max", "must be at least backoff_base")
        if not _is_bool(self.idempotent_only):
            yield Problem(f"{path}.idempotent_only", "expected true or false")
        if self.budget_percent is not None:
            yield from _percent(f"{path}.budget_percent", self.budget_percent)
        yield from _count(f"{path}.budget_min_concurrency", self.budget_min_concurrency, low=0)


@attrs.frozen(kw_only=True)
class CircuitBreakers:
    """Envoy's cluster `circuit_breakers` (default priority); unset keeps Envoy's default (1024)."""

    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None  # used only when the retry budget is off

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse."""
        for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
            value = getattr(self, name)
            if value is not None:
                yield from _count(f"{path}.{name}", value, low=0)


@attrs.frozen(kw_only=True)
class OutlierDetection:
    """Envoy's cluster `outlier_detection`: hosts that keep failing are ejected for a while.

    Connection failures and timeouts count as gateway errors (local-origin errors are not split).
    """

    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval: float = attrs.field(default=5.0, converter=_seconds)
    base_ejection_time: float = attrs.field(default=15.0, converter=_seconds)
    max_ejection_percent: int = 50

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse."""
        yield from _count(f"{path}.consecutive_5xx", self.consecutive_5xx, low=1)
        yield from _count(f"{path}.consecutive_gateway_failure", self.consecutive_gateway_failure,
                          low=1)
        yield from _duration_problems(f"{path}.interval", self.interval)
        yield from _duration_problems(f"{path}.base_ejection_time", self.base_ejection_time)
        yield from _percent(f"{path}.max_ejection_percent", self.max_ejection_percent)


@attrs.frozen(kw_only=True)
class RateLimit:
    """Envoy's `local_ratelimit` on this route: `requests` per `per`, a 429 past that."""

    requests: int
    per: float = attrs.field(default=1.0, converter=_seconds)

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse (its token bucket refills at most every 50 ms)."""
        yield from _count(f"{path}.requests", self.requests, low=1)
        yield from _duration_problems(f"{path}.per", self.per)
        if math.isfinite(self.per) and 0 < self.per < 0.05:
            yield Problem(f"{path}.per", "Envoy refills its token bucket at most every 50ms")


@attrs.frozen(kw_only=True)
class Split:
    """A share of an upstream's traffic for the instances carrying `tag` (or all when None)."""

    weight: int
    tag: str | None = None

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse."""
        yield from _count(f"{path}.weight", self.weight, low=0)
        if self.tag is not None and (not isinstance(self.tag, str) or not self.tag
                                     or any(c in self.tag for c in ",=[]")):
            yield Problem(f"{path}.tag", f"{self.tag!r} is not a service tag")


@attrs.frozen(kw_only=True)
class HeaderMatch:
    """Envoy's route `headers` match: exactly one of `exact`, `prefix`, `regex` (RE2), `present`."""

    name: str
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None
    present: bool | None = None
    invert: bool = False

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse."""
        if not isinstance(self.name, str) or not _HEADER.match(self.name):
            yield Problem(f"{path}.name", f"{self.name!r} is not a lower-case header name")
        given = [k for k in ("exact", "prefix", "regex", "present") if getattr(self, k) is not None]
        if len(given) != 1:
            yield Problem(path, "give exactly one of exact, prefix, regex, present")
        for key in ("exact", "prefix", "regex"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                yield Problem(f"{path}.{key}", "expected a string")
        if isinstance(self.regex, str):
            yield from regex_problems(f"{path}.regex", self.regex)
        if self.present is not None and not _is_bool(self.present):
            yield Problem(f"{path}.present", "expected true or false")
        if not _is_bool(self.invert):
            yield Problem(f"{path}.invert", "expected true or false")


def regex_problems(path: str, pattern: str) -> Iterator[Problem]:
    """A regex Envoy's RE2 engine would refuse (invalid, or look-around and back-references)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        yield Problem(path, f"not a regular expression: {exc}")
        return
    if _NOT_RE2.search(pattern):
        yield Problem(path, "look-around, back-references and possessive quantifiers are not "
                      "RE2 syntax, which Envoy uses")


@attrs.frozen(kw_only=True)
class Policy:
    """Traffic policy of one upstream route; every unset part keeps the mesh's default."""

    timeout: float | None = attrs.field(default=None, converter=_seconds)  # route timeout
    idle_timeout: float | None = attrs.field(default=None, converter=_seconds)  # route idle
    connect_timeout: float | None = attrs.field(default=None, converter=_seconds)  # cluster
    retries: Retries | None = None
    circuit_breakers: CircuitBreakers | None = None
    outlier_detection: OutlierDetection | None = None
    rate_limit: RateLimit | None = None

    def merged_onto(self, base: Policy) -> Policy:
        """This policy's parts that are set, over `base` (each part replaces as a whole)."""
        return Policy(**{
            a.name: getattr(self, a.name) if getattr(self, a.name) is not None
            else getattr(base, a.name)
            for a in attrs.fields(Policy)
        })

    def problems(self, path: str) -> Iterator[Problem]:
        """Values Envoy would refuse, with paths."""
        for name in ("timeout", "idle_timeout", "connect_timeout"):
            yield from _duration_problems(f"{path}.{name}", getattr(self, name),
                                          zero_ok=name != "connect_timeout")
        for name in ("retries", "circuit_breakers", "outlier_detection", "rate_limit"):
            part = getattr(self, name)
            if part is not None:
                yield from part.problems(f"{path}.{name}")


# The defaults every upstream gets, chosen so that the death of one instance costs no request:
# retries move a failed connection or reset to another host (`previous_hosts`), outlier detection
# ejects the dead host at its third failure, and the retry budget keeps retries from piling up.
DEFAULT_POLICY = Policy(
    timeout=15.0,
    idle_timeout=300.0,
    connect_timeout=1.0,
    retries=Retries(),
    circuit_breakers=CircuitBreakers(),
    outlier_detection=OutlierDetection(),
)


@attrs.frozen(kw_only=True, init=False)
class Upstream:
    """A route on a sidecar's egress listener: requests under `prefix` go to `service`.

    `methods` and `headers` narrow the match; `rewrite` replaces the prefix before forwarding;
    `split` shares the traffic between tagged instances; `policy` overrides the mesh default.
    """

    service: str
    prefix: str
    methods: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    headers: tuple[HeaderMatch, ...] = attrs.field(default=(), converter=tuple)
    rewrite: str | None = None
    split: tuple[Split, ...] = attrs.field(default=(), converter=tuple)
    policy: Policy | None = None

    def __init__(self, service: str, prefix: str = "", **fields: Any) -> None:
        """`Upstream("service-a", "/hi_a")`, `Upstream("service-a", prefix="/hi_a", ...)`."""
        self.__attrs_init__(service=service, prefix=prefix, **fields)

    def with_policy(self, policy: Policy | None) -> Upstream:
        """The same route with another policy."""
        fields = {a.name: getattr(self, a.name) for a in attrs.fields(Upstream)}
        fields["policy"] = policy
        return Upstream(**fields)

    @property
    def is_plain(self) -> bool:
        """Only a service and a prefix: the short form says all of it."""
        return not (self.methods or self.headers or self.rewrite is not None or self.split
                    or self.policy is not None)

    def problems(self, path: str) -> Iterator[Problem]:
        """What is wrong with this upstream (and what Envoy would refuse), at `path`."""
        if not isinstance(self.service, str) or not _SERVICE.match(self.service):
            yield Problem(path, f"upstream service {self.service!r} must be a service name "
                          "(letters, digits and dashes)")
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            yield Problem(path, f"upstream prefix {self.prefix!r} must be a path starting with '/' "
                          "(no spaces, commas or '=')")
        for i, method in enumerate(self.methods):
            if not isinstance(method, str) or not _METHOD.match(method):
                yield Problem(f"{path}.methods[{i}]", f"{method!r} is not an HTTP method "
                              "(upper case, e.g. GET)")
        for i, header in enumerate(self.headers):
            yield from header.problems(f"{path}.headers[{i}]")
        if self.rewrite is not None and (not isinstance(self.rewrite, str)
                                         or not self.rewrite.startswith("/")):
            yield Problem(f"{path}.rewrite", "a prefix rewrite must start with '/'")
        for i, part in enumerate(self.split):
            yield from part.problems(f"{path}.split[{i}]")
        if self.split:
            total = sum(s.weight for s in self.split if isinstance(s.weight, int))
            if total <= 0 or total > _UINT32:
                yield Problem(f"{path}.split", f"the weights add up to {total}; Envoy needs a "
                              "total between 1 and 4294967295")
            tags = [s.tag for s in self.split]
            if len(set(tags)) != len(tags):
                yield Problem(f"{path}.split", "each split needs its own tag")
        if self.policy is not None:
            yield from self.policy.problems(f"{path}.policy")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the config transport, `nomadmesh sidecar` output); unset keys left out."""
        plain: dict[str, Any] = _plain(self)
        return plain

    def __str__(self) -> str:
        return f"{self.service}={self.prefix}"


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        out = {}
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            # Unset and default values are left out: reading the result back gives them again.
            if item is None or item == () or (field.default is not attrs.NOTHING
                                              and item == field.default):
                continue
            out[field.name] = _plain(item)
        return out
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_upstreams(text: str, path: str) -> tuple[tuple[Upstream, ...], list[Problem]]:
    """Parse the short form `service-a=/hi_a,service-b=/hi_b`; each bad item is a problem."""
    found: list[Upstream] = []
    problems: list[Problem] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        service, sep, prefix = item.partition("=")
        if not sep:
            problems.append(Problem(path, f"upstream {item!r} is not of the form service=/prefix "
                                    "(e.g. 'service-a=/hi_a,service-b=/hi_b')"))
            continue
        upstream = Upstream(service.strip(), prefix.strip())
        errors = list(upstream.problems(path))
        problems.extend(errors)
        if not errors:
            found.append(upstream)
    return tuple(found), problems


def format_upstreams(upstreams: Iterable[Upstream]) -> str:
    """The short form of plain upstreams: `service-a=/hi_a,service-b=/hi_b`."""
    return ",".join(str(u) for u in upstreams)


# --- reading upstreams and policies from plain data (settings files, the config transport) -------


class PlainReader:
    """Turns parsed data (TOML/YAML/JSON) into contract values, collecting problems with paths."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def upstreams(self, where: str, value: Any) -> tuple[Upstream, ...]:
        """`"a=/x,b=/y"`, `["a=/x", {service=..., prefix=..., ...}]` or `{a = "/x"}`."""
        if isinstance(value, str):
            found, problems = parse_upstreams(value, where)
            self.problems.extend(problems)
            return found
        if isinstance(value, Mapping):
            items: list[Any] = [{"service": k, "prefix": v} for k, v in value.items()]
        elif isinstance(value, list):
            items = value
        else:
            self.problems.append(Problem(where, "upstreams must be 'service=/prefix,...', a list, "
                                         "or a table of service = prefix"))
            return ()
        out: list[Upstream] = []
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            if isinstance(item, str):
                found, problems = parse_upstreams(item, at)
                self.problems.extend(problems)
                out.extend(found)
            elif isinstance(item, Mapping):
                upstream = self.upstream(at, item)
                if upstream is not None:
                    out.append(upstream)
            else:
                self.problems.append(Problem(at, "an upstream is 'service=/prefix' or a table "
                                             "with service, prefix and policy keys"))
        return tuple(out)

    def upstream(self, where: str, data: Mapping[str, Any]) -> Upstream | None:
        """One upstream table: service, prefix, methods, headers, rewrite, split, policy keys."""
        before = len(self.problems)
        fields: dict[str, Any] = {}
        policy: dict[str, Any] = {}
        for key, value in data.items():
            at = f"{where}.{key}"
            if key in ("service", "prefix", "rewrite"):
                if self._typed(at, value, str):
                    fields[key] = value
            elif key == "methods":
                if self._strings(at, value):
                    fields[key] = tuple(value)
            elif key == "headers":
                fields[key] = self._list(at, value, HeaderMatch)
            elif key == "split":
                fields[key] = self._list(at, value, Split)
            elif key == "policy":
                if self._table(at, value):
                    policy.update({k: (f"{at}.{k}", v) for k, v in value.items()})
            elif key in _POLICY_KEYS:
                policy[key] = (at, value)
            else:
                self.unknown(at, key, [*_UPSTREAM_KEYS, "policy", *_POLICY_KEYS])
        for key in ("service", "prefix"):
            if key not in data:
                self.problems.append(Problem(where, f"an upstream needs {key!r}"))
        if policy:
            fields["policy"] = self._policy(policy)
        if len(self.problems) > before:
            return None
        upstream = Upstream(**fields)
        self.problems.extend(upstream.problems(where))
        return upstream if len(self.problems) == before else None

    def policy(self, where: str, data: Any) -> Policy | None:
        """A policy table (the mesh-wide default)."""
        if not self._table(where, data):
            return None
        before = len(self.problems)
        policy = self._policy({k: (f"{where}.{k}", v) for k, v in data.items()})
        if len(self.problems) > before:
            return None
        self.problems.extend(policy.problems(where))
        return policy

    def _policy(self, items: Mapping[str, tuple[str, Any]]) -> Policy:
        fields: dict[str, Any] = {}
        for key, (at, value) in items.items():
            if key in ("timeout", "idle_timeout", "connect_timeout"):
                if self._duration(at, value):
                    fields[key] = value
            elif key in _POLICY_PARTS:
                fields[key] = self._block(at, value, _POLICY_PARTS[key])
            else:
                self.unknown(at, key, list(_POLICY_KEYS))
        return Policy(**fields)

    def _list(self, where: str, value: Any, cls: type[Any]) -> tuple[Any, ...]:
        if not isinstance(value, list):
            self.problems.append(Problem(where, f"expected a list of tables, got "
                                         f"{type(value).__name__}"))
            return ()
        found = (self._block(f"{where}[{i}]", item, cls) for i, item in enumerate(value))
        return tuple(item for item in found if item is not None)

    def _block(self, where: str, value: Any, cls: type[Any]) -> Any:
        if not self._table(where, value):
            return None
        known = {a.name: a for a in attrs.fields(cls)}
        fields: dict[str, Any] = {}
        for key, item in value.items():
            at = f"{where}.{key}"
            attribute = known.get(key)
            if attribute is None:
                self.unknown(at, key, list(known))
            elif attribute.converter is _seconds:
                if self._duration(at, item):
                    fields[key] = item
            elif self._scalar(at, item, _kinds(attribute.type)):
                fields[key] = tuple(item) if isinstance(item, list) else item
        try:
            return cls(**fields)
        except TypeError as exc:  # a required key is missing
            self.problems.append(Problem(where, str(exc).split(".__init__() ")[-1]))
            return None

    def _scalar(self, where: str, value: Any, kinds: tuple[type, ...]) -> bool:
        if tuple in kinds:
            return self._strings(where, value)
        if isinstance(value, float) and int in kinds and float not in kinds:
            self.problems.append(Problem(where, f"expected an integer, got {value!r}"))
            return False
        if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
            return True
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.problems.append(Problem(where, f"expected {names}, got {type(value).__name__} "
                                         f"{value!r}"))
        return ok

    def _duration(self, where: str, value: Any) -> bool:
        if parse_duration(value) is None:
            self.problems.append(Problem(where, f"{value!r} is not a duration (e.g. '250ms', "
                                         "'2s')"))
            return False
        return True

    def _typed(self, where: str, value: Any, kind: type) -> bool:
        return self._scalar(where, value, (kind,))

    def _table(self, where: str, value: Any) -> bool:
        if not isinstance(value, Mapping):
            self.problems.append(Problem(where, f"expected a table, got {type(value).__name__}"))
            return False
        return True

    def _strings(self, where: str, value: Any) -> bool:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(Problem(where, "expected a list of strings"))
            return False
        return True

    def unknown(self, where: str, key: object, known: list[str]) -> None:
        """Report an unknown key, suggesting the closest known one."""
        import difflib

        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.problems.append(Problem(where, f"unknown setting {key!r}{hint}"))


_POLICY_PARTS: dict[str, type[Any]] = {
    "retries": Retries, "circuit_breakers": CircuitBreakers,
    "outlier_detection": OutlierDetection, "rate_limit": RateLimit,
}
_POLICY_KEYS = ("timeout", "idle_timeout", "connect_timeout", *_POLICY_PARTS)
_UPSTREAM_KEYS = ("service", "prefix", "methods", "headers", "rewrite", "split")
_TYPE_NAMES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float,), "bool": (bool,), "str": (str,),
}


def _kinds(annotation: Any) -> tuple[type, ...]:
    # Annotations are strings here (postponed evaluation): "int | None", "tuple[str, ...]".
    text = str(annotation)
    if text.startswith("tuple"):
        return (tuple,)
    kinds: list[type] = []
    for part in text.split("|"):
        kinds.extend(_TYPE_NAMES.get(part.strip(), ()))
    return tuple(kinds) or (object,)


# --- the config transport's document -------------------------------------------------------------


class ServiceConfig(NamedTuple):
    """One service's mesh config: the routes its sidecars get, and who may call it."""

    upstreams: tuple[Upstream, ...] = ()
    allow: tuple[str, ...] | None = None  # None: the control plane's default allow or deny


def config_document(upstreams: Iterable[Upstream], allow: Iterable[str] | None = None) -> str:
    """One service's mesh config as the JSON stored at `CONFIG_PREFIX + service`."""
    data: dict[str, Any] = {"upstreams": [u.to_dict() for u in upstreams]}
    if allow is not None:
        data["allow"] = sorted(set(allow))
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def read_config_document(text: str | bytes, where: str) -> ServiceConfig:
    """Parse a stored config document; XdsError naming `where` when it is unusable."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise XdsError(f"{where}: not a JSON document: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or set(data) - {"upstreams", "allow"}:
        raise XdsError(f"{where}: expected an object with the keys 'upstreams' and 'allow'")
    reader = PlainReader()
    found = reader.upstreams(f"{where}.upstreams", data.get("upstreams", []))
    allow = data.get("allow")
    if allow is not None and not (isinstance(allow, list) and all(
            isinstance(a, str) and _SERVICE.match(a) for a in allow)):
        raise XdsError(f"{where}.allow: expected a list of service names")
    if reader.problems:
        raise XdsError("; ".join(str(p) for p in reader.problems[:5]))
    return ServiceConfig(found, tuple(allow) if allow is not None else None)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- small checks --------------------------------------------------------------------------------


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _count(path: str, value: Any, *, low: int) -> Iterator[Problem]:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= _UINT32:
        yield Problem(path, f"{value!r} must be an integer from {low} to {_UINT32}")


def _percent(path: str, value: Any) -> Iterator[Problem]:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or not 0 <= value <= 100):
        yield Problem(path, f"{value!r} must be a percentage from 0 to 100")


def _duration_problems(path: str, value: float | None, *, zero_ok: bool = False) -> Iterator[
        Problem]:
    if value is None:
        return
    if math.isnan(value):
        yield Problem(path, "not a duration (e.g. '250ms', '2s')")
    elif value < 0 or (value == 0 and not zero_ok):
        yield Problem(path, "must be more than 0" if not zero_ok else "must not be negative")
    elif value > _MAX_DURATION:
        yield Problem(path, "is longer than Envoy's largest duration (about 10,000 years)")
    elif 0 < value < 1e-9:
        yield Problem(path, "is shorter than a nanosecond")
