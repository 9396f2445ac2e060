"""Mesh settings: where the control plane is, what sidecar to run, which ports and env names.

Defaults match Nomad's own Connect injection (CPU 250 / 128 MB, logs 2 x 2 MB, shutdown delay 5s,
`prestart` + `sidecar`) so that moving a job to nomadmesh changes nothing it did not ask for.
Overrides merge field by field onto the defaults; a partial `Sidecar` never resets the rest
(Nomad issue 11497 is the defect this avoids).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from nomadmesh._reading import brackets_deeper_than, long_integer_line, max_int_digits
from nomadmesh.contract import DEFAULT_CONTROL_PLANE, DEFAULT_POLICY, PlainReader, Policy
from nomadmesh.errors import LoadError, MeshError, ParseError, Problem
from nomadmesh.mesh.upstreams import Upstream
from nomadmesh.model import Job, LogConfig, Resources
from nomadmesh.model._base import SECOND, freeze_map, overlay, to_duration
from nomadmesh.model.validation import problems as model_problems

DRIVERS = ("docker", "exec", "raw_exec")
LOG_LEVELS = ("trace", "debug", "info", "warning", "warn", "error", "critical", "off")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_PORT_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s]+):(?P<port>\d{1,5})$")

T = TypeVar("T")


def _optional_tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class Sidecar:
    """The Envoy sidecar task's settings; every field left unset keeps the default below it."""

    name: str | None = None  # task name; "{service}" is replaced by the group's service name
    driver: str | None = None
    image: str | None = None
    envoy_version: str | None = None
    envoy_binary: str | None = None
    resources: Resources | None = None
    logs: LogConfig | None = None
    shutdown_delay: int | None = attrs.field(default=None, converter=to_duration)
    kill_timeout: int | None = attrs.field(default=None, converter=to_duration)
    log_level: str | None = None
    concurrency: int | None = None
    args: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=freeze_map)
    config: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze_map)
    meta: Mapping[str, str] = attrs.field(factory=dict, converter=freeze_map)

    def merged_onto(self, base: Sidecar) -> Sidecar:
        """This override on top of `base`: scalars replace, blocks and maps merge key by key."""
        return Sidecar(
            name=self.name if self.name is not None else base.name,
            driver=self.driver if self.driver is not None else base.driver,
            image=self.image if self.image is not None else base.image,
            envoy_version=(self.envoy_version if self.envoy_version is not None
                           else base.envoy_version),
            envoy_binary=(self.envoy_binary if self.envoy_binary is not None
                          else base.envoy_binary),
            resources=overlay(base.resources, self.resources),
            logs=overlay(base.logs, self.logs),
            shutdown_delay=(self.shutdown_delay if self.shutdown_delay is not None
                            else base.shutdown_delay),
            kill_timeout=self.kill_timeout if self.kill_timeout is not None else base.kill_timeout,
            log_level=self.log_level if self.log_level is not None else base.log_level,
            concurrency=self.concurrency if self.concurrency is not None else base.concurrency,
            args=self.args if self.args is not None else base.args,
            env={**base.env, **self.env},
            config={**base.config, **self.config},
            meta={**base.meta, **self.meta},
        )

    @property
    def image_ref(self) -> str:
        """The docker image with its tag: `docker.io/envoyproxy/envoy:v1.40.0`."""
        image = self.image or ""
        return f"{image}:{self.envoy_version}" if self.envoy_version else image

    def problems(self, path: str) -> Iterator[Problem]:
        if self.driver is not None and self.driver not in DRIVERS:
            yield Problem(f"{path}.driver", f"driver {self.driver!r} must be one of "
                          + ", ".join(DRIVERS))
        if self.log_level is not None and self.log_level not in LOG_LEVELS:
            yield Problem(f"{path}.log_level", f"log level {self.log_level!r} must be one of "
                          + ", ".join(LOG_LEVELS))
        if self.concurrency is not None and (
                not isinstance(self.concurrency, int) or self.concurrency < 0):
            yield Problem(f"{path}.concurrency", "concurrency must be 0 (one per core) or more")
        for name, value in (("shutdown_delay", self.shutdown_delay),
                            ("kill_timeout", self.kill_timeout)):
            if value is not None and (not isinstance(value, int) or value < 0):
                yield Problem(f"{path}.{name}", f"{value!r} is not a duration (e.g. '5s')")
        if self.resources is not None:
            yield from model_problems(self.resources, f"{path}.resources")
        if self.logs is not None:
            yield from model_problems(self.logs, f"{path}.logs")
        for key in self.env:
            if not _ENV_NAME.match(key):
                yield Problem(f"{path}.env.{key}", "not a valid environment variable name")


# What Nomad's Connect injection gives its proxy (nomad/job_endpoint_hook_connect.go), on the
# Envoy release the tests run against.
DEFAULT_SIDECAR = Sidecar(
    name="{service}-sidecar",
    driver="docker",
    image="docker.io/envoyproxy/envoy",
    envoy_version="v1.40.0",
    envoy_binary="/usr/local/bin/envoy",
    resources=Resources(cpu=250, memory=128),
    logs=LogConfig(max_files=2, max_file_size=2),
    shutdown_delay=5 * SECOND,
    log_level="info",
    concurrency=1,
    args=(),
)


def _full_sidecar(value: Sidecar | Mapping[str, Any] | None) -> Sidecar:
    if value is None:
        return DEFAULT_SIDECAR
    sidecar = value if isinstance(value, Sidecar) else Sidecar(**value)
    return sidecar.merged_onto(DEFAULT_SIDECAR)


def _full_policy(value: Policy) -> Policy:
    return value.merged_onto(DEFAULT_POLICY) if isinstance(value, Policy) else value


def _upstream_tuple(value: Any) -> tuple[Upstream, ...]:
    return tuple(value or ())


@attrs.frozen(kw_only=True)
class GroupMesh:
    """One group's mesh settings: opt in or out, its upstreams, and sidecar overrides."""

    enabled: bool | None = None  # None: meshed when the group has a service (and meta allows)
    upstreams: tuple[Upstream, ...] = attrs.field(default=(), converter=_upstream_tuple)
    sidecar: Sidecar | None = None
    # Services that may call this group's service (None: the control plane's default).
    allow: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_tuple)

    def problems(self, path: str) -> Iterator[Problem]:
        for i, u in enumerate(self.upstreams):
            yield from u.problems(f"{path}.upstreams[{i}]")
        for i, caller in enumerate(self.allow or ()):
            if not isinstance(caller, str) or not _SERVICE_NAME.match(caller):
                yield Problem(f"{path}.allow[{i}]", f"{caller!r} is not a service name")
        if self.sidecar is not None:
            yield from self.sidecar.problems(f"{path}.sidecar")


def _groups(value: Mapping[str, GroupMesh] | None) -> Mapping[str, GroupMesh]:
    return freeze_map(value)


@attrs.frozen(kw_only=True)
class Mesh:
    """Mesh-wide settings; `mesh.inject(job)` adds a sidecar to every meshed group of `job`.

    `control_plane` is a fixed `host:port`, or the name of a Consul service that the sidecar's
    bootstrap template resolves on the node (every instance becomes an endpoint).
    """

    control_plane: str = DEFAULT_CONTROL_PLANE
    sidecar: Sidecar = attrs.field(default=DEFAULT_SIDECAR, converter=_full_sidecar)
    egress_port: int = 3101
    admin_port: int = 19000
    metrics_port: int = 9102
    inbound_port: int = 3102
    egress_port_label: str = "egress"
    admin_port_label: str = "envoy_admin"
    metrics_port_label: str = "envoy_metrics"
    inbound_port_label: str = "inbound"
    # An inbound listener in front of every app: the service is registered at its port.
    inbound: bool = True
    metrics_service: str = "{service}-sidecar-metrics"
    metrics_tags: tuple[str, ...] = attrs.field(default=("prometheus", "nomadmesh-sidecar"),
                                                converter=tuple)
    xds_host_env: str = "XDS_HOST"
    xds_port_env: str = "XDS_PORT"
    egress_host_env: str = "EGRESS_HOST"
    egress_port_env: str = "EGRESS_PORT"
    upstream_url_env: str = "{SERVICE}_URL"
    bootstrap_path: str = "secrets/envoy_bootstrap.json"
    # The mesh-wide default traffic policy, part by part over nomadmesh's own defaults.
    policy: Policy = attrs.field(default=DEFAULT_POLICY, converter=_full_policy)
    groups: Mapping[str, GroupMesh] = attrs.field(factory=dict, converter=_groups)

    def inject(self, job: Job) -> Job:
        """The job with a sidecar in every meshed group (see `nomadmesh.mesh.inject`)."""
        from nomadmesh.mesh.inject import inject

        return inject(job, self)

    @property
    def control_plane_address(self) -> tuple[str, int] | None:
        """(host, port) when the control plane is a fixed address; None for a Consul service."""
        match = _HOST_PORT.match(self.control_plane)
        if match is None:
            return None
        return match.group("host").strip("[]"), int(match.group("port"))

    def group_settings(self, group: str) -> GroupMesh:
        """The settings of one group (empty when the mesh says nothing about it)."""
        return self.groups.get(group) or _NO_GROUP_SETTINGS

    def sidecar_for(self, group: str) -> Sidecar:
        """The sidecar a group gets: the group's overrides merged onto the mesh's sidecar."""
        override = self.group_settings(group).sidecar
        return self.sidecar if override is None else override.merged_onto(self.sidecar)

    def problems(self, path: str = "mesh") -> Iterator[Problem]:
        """Every problem in these settings, with paths like `mesh.sidecar.driver`."""
        if not self.control_plane or any(c.isspace() for c in self.control_plane):
            yield Problem(f"{path}.control_plane", "control_plane must be host:port or a Consul "
                          "service name")
        elif self.control_plane_address is not None:
            port = self.control_plane_address[1]
            if not 0 < port <= 65535:
                yield Problem(f"{path}.control_plane", f"port {port} is outside 1-65535")
        for name in ("egress_port", "admin_port", "metrics_port", "inbound_port"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 65535:
                yield Problem(f"{path}.{name}", f"{value!r} is not a port number (1-65535)")
        for name in ("egress_port_label", "admin_port_label", "metrics_port_label",
                     "inbound_port_label"):
            if not _PORT_LABEL.match(getattr(self, name)):
                yield Problem(f"{path}.{name}", "a port label may only hold letters, digits and _")
        labels = [self.egress_port_label, self.admin_port_label, self.metrics_port_label,
                  self.inbound_port_label]
        if len(set(labels)) != len(labels):
            yield Problem(f"{path}.metrics_port_label", "the sidecar's port labels must differ")
        ports = [self.egress_port, self.admin_port, self.metrics_port, self.inbound_port]
        if len(set(ports)) != len(ports):
            yield Problem(f"{path}.inbound_port", "the sidecar's ports must differ")
        for name in ("xds_host_env", "xds_port_env", "egress_host_env", "egress_port_env"):
            if not _ENV_NAME.match(getattr(self, name)):
                yield Problem(f"{path}.{name}", "not a valid environment variable name")
        if "{SERVICE}" not in self.upstream_url_env or not _ENV_NAME.match(
                self.upstream_url_env.replace("{SERVICE}", "X")):
            yield Problem(f"{path}.upstream_url_env",
                          "must be an env var name containing {SERVICE}, e.g. '{SERVICE}_URL'")
        yield from _bootstrap_path_problems(f"{path}.bootstrap_path", self.bootstrap_path)
        yield from self.policy.problems(f"{path}.policy")
        yield from self.sidecar.problems(f"{path}.sidecar")
        for name, settings in self.groups.items():
            yield from settings.problems(f"{path}.groups.{name}")

    def validate(self) -> Mesh:
        """Raise MeshError listing every problem; return self when the settings are usable."""
        found = list(self.problems())
        if found:
            raise MeshError(found, subject="mesh settings")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> Mesh:
        """Load settings from a TOML (`.toml`) or YAML (`.yaml`, `.yml`) file."""
        return load_mesh(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "mesh") -> Mesh:
        """Build settings from plain data (a parsed settings file); unknown keys are errors."""
        return _SettingsReader(source).mesh(data)


_NO_GROUP_SETTINGS = GroupMesh()


def _bootstrap_path_problems(path: str, value: str) -> Iterator[Problem]:
    """The bootstrap must stay inside the task's `secrets/` or `local/` directory."""
    parts = value.split("/")
    if (len(parts) < 2 or parts[0] not in ("secrets", "local") or value.startswith("/")
            or any(p in ("", ".", "..") for p in parts[1:]) or "\\" in value
            or any(ord(c) < 32 for c in value)):
        yield Problem(path, f"{value!r}: the bootstrap must be a file under secrets/ or local/ "
                      "(no '..', '.', empty or absolute parts)")


# --- settings files ------------------------------------------------------------------------------


MAX_SETTINGS_BYTES = 4 * 1024 * 1024
MAX_SETTINGS_DEPTH = 32
_INT64 = 2**63


def load_mesh(path: str | Path) -> Mesh:
    """Read a TOML, YAML or JSON settings file; problems name the file and the key."""
    p = Path(path)
    try:
        if not p.is_file():
            raise LoadError(f"cannot read mesh settings {p}: not a regular file")
        with p.open("rb") as stream:
            raw = stream.read(MAX_SETTINGS_BYTES + 1)
    except OSError as exc:
        raise LoadError(f"cannot read mesh settings {p}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SETTINGS_BYTES:
        raise LoadError(f"mesh settings {p}: larger than {MAX_SETTINGS_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})", source=str(p)) from None
    try:
        data = _parse(text, p)
    except RecursionError:
        raise ParseError("nested too deeply", source=str(p)) from None
    if not isinstance(data, Mapping):
        raise MeshError([Problem(str(p), "mesh settings must be a table/mapping of keys")],
                        subject=f"mesh settings {p}")
    found = list(_plain_problems(data))
    if found:
        raise MeshError(found, subject=f"mesh settings {p}")
    return Mesh.from_dict(data, source=str(p))


def _plain_problems(data: Any) -> Iterator[Problem]:
    """Values no setting can hold: NaN and infinities, integers beyond 64 bits, deep nesting."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        where, value, depth = stack.pop()
        if depth > MAX_SETTINGS_DEPTH:
            yield Problem(where or "(top)", f"nested more than {MAX_SETTINGS_DEPTH} levels deep")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            yield Problem(where, f"{value!r} is not a usable number")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT64:
            yield Problem(where, "integer too large")
        elif isinstance(value, Mapping):
            stack.extend((f"{where}.{k}" if where else str(k), v, depth + 1)
                         for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(value))


def _parse(text: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParseError(str(exc), source=str(path)) from None
        except ValueError:  # an integer longer than int() converts
            raise _integer_too_long(text, path) from None
    if suffix in (".yaml", ".yml", ".json") and brackets_deeper_than(
            text, MAX_SETTINGS_DEPTH, quotes="\"'" if suffix != ".json" else '"'):
        # Before the parser: PyYAML's scanner is quadratic in flow depth (5,000 took seconds).
        raise ParseError(f"brackets nested more than {MAX_SETTINGS_DEPTH} levels deep",
                         source=str(path))
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ParseError(str(getattr(exc, "problem", None) or exc), source=str(path),
                             line=mark.line + 1 if mark else None,
                             column=mark.column + 1 if mark else None) from None
        except ValueError:  # an integer longer than int() converts
            raise _integer_too_long(text, path) from None
    if suffix == ".json":
        try:
            return json.loads(text, parse_constant=_not_json)
        except json.JSONDecodeError as exc:
            raise ParseError(exc.msg, source=str(path), line=exc.lineno,
                             column=exc.colno) from None
        except _NotJson as exc:
            raise ParseError(f"{exc} is not JSON", source=str(path)) from None
        except ValueError:  # an integer longer than int() converts
            raise _integer_too_long(text, path) from None
    raise LoadError(f"{path}: mesh settings must be .toml, .yaml, .yml or .json")


class _NotJson(Exception):
    """NaN, Infinity or -Infinity, which Python's json reads and JSON does not have."""


def _not_json(name: str) -> Any:
    raise _NotJson(name)


def _integer_too_long(text: str, path: Path) -> ParseError:
    return ParseError(f"an integer has more than {max_int_digits():,} digits (no setting holds "
                      "one beyond 64 bits)", source=str(path), line=long_integer_line(text))


_MESH_SCALARS: dict[str, type | tuple[type, ...]] = {
    "control_plane": str, "egress_port": int, "admin_port": int, "metrics_port": int,
    "inbound_port": int, "egress_port_label": str, "admin_port_label": str,
    "metrics_port_label": str, "inbound_port_label": str, "inbound": bool,
    "metrics_service": str, "xds_host_env": str, "xds_port_env": str, "egress_host_env": str,
    "egress_port_env": str, "upstream_url_env": str, "bootstrap_path": str,
}
_SIDECAR_SCALARS: dict[str, type | tuple[type, ...]] = {
    "name": str, "driver": str, "image": str, "envoy_version": str, "envoy_binary": str,
    "shutdown_delay": (str, int), "kill_timeout": (str, int), "log_level": str, "concurrency": int,
}


class _SettingsReader:
    """Turns parsed settings data into a Mesh, collecting every problem with its key path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._plain = PlainReader()
        # One list of problems, shared with the reader of upstreams and policies.
        self.problems: list[Problem] = self._plain.problems

    def mesh(self, data: Mapping[str, Any]) -> Mesh:
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            where = str(key)
            if key in _MESH_SCALARS:
                if self._typed(where, value, _MESH_SCALARS[key]):
                    kwargs[key] = value
            elif key == "metrics_tags":
                if self._strings(where, value):
                    kwargs[key] = tuple(value)
            elif key == "sidecar":
                kwargs[key] = self.sidecar(where, value)
            elif key == "policy":
                policy = self._plain.policy(where, value)
                if policy is not None:
                    kwargs[key] = policy
            elif key == "groups":
                if self._table(where, value):
                    kwargs[key] = {str(name): self.group(f"groups.{name}", settings)
                                   for name, settings in value.items()}
            else:
                self._unknown(where, key, [*_MESH_SCALARS, "metrics_tags", "sidecar", "policy",
                                           "groups"])
        mesh = None if self.problems else Mesh(**kwargs)
        if mesh is not None:
            self.problems.extend(
                attrs.evolve(p, path=p.path.removeprefix("mesh.")) for p in mesh.problems())
        if self.problems or mesh is None:
            raise MeshError(self.problems, subject=f"mesh settings {self.source}")
        return mesh

    def sidecar(self, where: str, data: Any) -> Sidecar | None:
        if not self._table(where, data):
            return None
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            at = f"{where}.{key}"
            if key in _SIDECAR_SCALARS:
                if self._typed(at, value, _SIDECAR_SCALARS[key]):
                    kwargs[key] = value
            elif key == "args":
                if self._strings(at, value):
                    kwargs[key] = tuple(value)
            elif key in ("env", "meta"):
                if self._table(at, value) and all(
                        self._typed(f"{at}.{k}", v, str) for k, v in value.items()):
                    kwargs[key] = value
            elif key == "config":
                if self._table(at, value):
                    kwargs[key] = value
            elif key == "resources":
                kwargs[key] = self._block(at, value, Resources)
            elif key == "logs":
                kwargs[key] = self._block(at, value, LogConfig)
            else:
                self._unknown(at, key, [*_SIDECAR_SCALARS, "args", "env", "meta", "config",
                                        "resources", "logs"])
        return Sidecar(**kwargs)

    def group(self, where: str, data: Any) -> GroupMesh:
        if not self._table(where, data):
            return GroupMesh()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            at = f"{where}.{key}"
            if key == "enabled":
                if self._typed(at, value, bool):
                    kwargs[key] = value
            elif key == "upstreams":
                kwargs[key] = self.upstreams(at, value)
            elif key == "sidecar":
                kwargs[key] = self.sidecar(at, value)
            elif key == "allow":
                if self._strings(at, value):
                    kwargs[key] = tuple(value)
            else:
                self._unknown(at, key, ["enabled", "upstreams", "sidecar", "allow"])
        return GroupMesh(**kwargs)

    def upstreams(self, where: str, value: Any) -> tuple[Upstream, ...]:
        """`"a=/x,b=/y"`, `["a=/x", {service = "a", prefix = "/x", timeout = "2s"}]`, `{a = "/x"}`."""
        return self._plain.upstreams(where, value)

    def _block(self, where: str, value: Any, cls: type[T]) -> T | None:
        if not self._table(where, value):
            return None
        names = [a.name for a in attrs.fields(cls) if a.name != "extra"]  # type: ignore[arg-type]
        unknown = [k for k in value if k not in names]
        for key in unknown:
            self._unknown(f"{where}.{key}", key, names)
        if unknown:
            return None
        block = cls(**value)
        self.problems.extend(model_problems(block, where))
        return block

    def _typed(self, where: str, value: Any, kind: type | tuple[type, ...]) -> bool:
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is int)
        if not ok:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            self.problems.append(Problem(where, f"expected {names}, got {type(value).__name__} "
                                         f"{value!r}"))
        return ok

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

    def _unknown(self, where: str, key: object, known: list[str]) -> None:
        self._plain.unknown(where, key, known)
