"""Pack variables: typed attrs classes, filled from defaults, env, var files and `--var`.

Precedence, lowest first: the class's defaults, `NOMADMESH_VAR_*` environment variables, var
files in the order given, then `--var` values (the same order as Nomad's CLI, Terraform and
nomadmesh's own HCL loader: ambient settings never override a file or value named explicitly).
Every value is converted to its field's type and checked by its validators before any job is
rendered; problems carry the variable's dotted path (`redis.port`) and where the value came from.
"""

from __future__ import annotations

import difflib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import attrs

from nomadmesh.errors import LoadError, ParseError, Problem, ValidationError
from nomadmesh.packs import documents

V = TypeVar("V")

ENV_PREFIX = "NOMADMESH_VAR_"
ENV_NESTING = "__"
DESCRIPTION = "nomadmesh.description"
DEPENDENCY = "nomadmesh.dependency"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")

VarPath = tuple[str, ...]  # ("redis", "port") for `redis.port`
MAX_VAR_FILE = 4 * 1024**2


def variable(default: Any = attrs.NOTHING, *, description: str = "", validator: Any = None,
             factory: Any = None) -> Any:
    """An attrs field for a pack variable: its default (none = required), validator and docs."""
    if factory is not None:
        return attrs.field(factory=factory, validator=validator, metadata={DESCRIPTION: description})
    return attrs.field(default=default, validator=validator, metadata={DESCRIPTION: description})


@attrs.frozen
class VariableInfo:
    """One leaf variable as `pack info` shows it: dotted path, type, default and description."""

    path: str
    type: str
    required: bool
    default: Any
    description: str


@attrs.frozen
class _Value:
    """A raw value and where it came from (`--var`, a file name, an environment variable)."""

    value: Any
    origin: str


def describe(cls: type) -> list[VariableInfo]:
    """Every leaf variable of a variables class, nested ones with dotted paths, in field order."""
    out = []
    for path, a in _leaves(cls).items():
        default: Any = a.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        required = default is attrs.NOTHING
        out.append(VariableInfo(".".join(path), _type_name(a.type), required,
                                None if required else default, a.metadata.get(DESCRIPTION, "")))
    return out


def resolve(cls: type[V], *, values: Mapping[str, Any] | None = None,
            var_files: Iterable[str | os.PathLike[str]] = (),
            env: Mapping[str, str] | None = None, subject: str = "variables") -> V:
    """Build the variables from every source by precedence; ValidationError lists every problem."""
    leaves = _leaves(cls)
    problems: list[Problem] = []
    merged: dict[VarPath, _Value] = {}
    merged.update(_from_env(leaves, os.environ if env is None else env))
    for path in var_files:
        merged.update(_flatten(cls, read_var_file(path), str(path), problems))
    merged.update(_flatten(cls, values or {}, "--var", problems))
    instance = _build(cls, (), merged, problems)
    if problems or instance is None:
        raise ValidationError(problems, subject=subject)
    return instance


def read_var_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A var file as a mapping: `.json`, `.yaml`/`.yml`, `.toml`, anything else as HCL."""
    p = Path(path)
    if not p.is_file():
        raise LoadError(f"{p}: variable file not found (or not a regular file)")
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_VAR_FILE + 1)
    except OSError as exc:
        raise LoadError(f"{p}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_VAR_FILE:
        raise LoadError(f"{p}: larger than {MAX_VAR_FILE // 1024**2} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    suffix = p.suffix.lower()
    data: Any
    if suffix == ".json":
        data = documents.parse_json(text, str(p))
    elif suffix in (".yaml", ".yml"):
        data = documents.parse_yaml(text, str(p)) or {}
    elif suffix == ".toml":
        data = documents.parse_toml(text, str(p))
    else:
        from nomadmesh.hcl import parse_var_file

        data = documents.checked(parse_var_file(text, filename=str(p)), str(p))
    if not isinstance(data, dict):
        raise ParseError("a variable file must hold a mapping of names to values", source=str(p))
    return data


# --- the schema: leaves (typed values) and namespaces (nested variables classes) ---------------


def _leaves(cls: type, prefix: VarPath = ()) -> dict[VarPath, attrs.Attribute[Any]]:
    out: dict[VarPath, attrs.Attribute[Any]] = {}
    for a in _fields(cls):
        if _is_namespace(a):
            out.update(_leaves(a.type, (*prefix, a.name)))  # type: ignore[arg-type]
        else:
            out[(*prefix, a.name)] = a
    return out


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    attrs.resolve_types(cls)
    return tuple(a for a in attrs.fields(cls) if a.init)


def _is_namespace(a: attrs.Attribute[Any]) -> bool:
    return isinstance(a.type, type) and attrs.has(a.type)


def _namespaces(cls: type, prefix: VarPath = ()) -> set[VarPath]:
    out: set[VarPath] = set()
    for a in _fields(cls):
        if _is_namespace(a):
            out.add((*prefix, a.name))
            out |= _namespaces(a.type, (*prefix, a.name))  # type: ignore[arg-type]
    return out


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


# --- sources --------------------------------------------------------------------------------


def _from_env(leaves: Mapping[VarPath, Any], env: Mapping[str, str]) -> dict[VarPath, _Value]:
    """`NOMADMESH_VAR_redis__port=6380` sets `redis.port`; names that match no variable are
    ignored, as the environment is shared by every pack (and Nomad's CLI does the same)."""
    out = {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            path = tuple(key[len(ENV_PREFIX):].split(ENV_NESTING))
            if path in leaves:
                out[path] = _Value(value, key)
    return out


def _flatten(cls: type, data: Mapping[Any, Any], origin: str,
             problems: list[Problem]) -> dict[VarPath, _Value]:
    """Nested mappings and dotted keys to leaf paths; unknown names become problems."""
    leaves = _leaves(cls)
    namespaces = _namespaces(cls)
    out: dict[VarPath, _Value] = {}

    def walk(mapping: Mapping[Any, Any], prefix: VarPath) -> None:
        for key, value in mapping.items():
            path = (*prefix, *str(key).split("."))
            dotted = ".".join(path)
            if path in leaves:
                out[path] = _Value(value, origin)
            elif path in namespaces and isinstance(value, Mapping):
                walk(value, path)
            elif path in namespaces:
                inner = ", ".join(".".join(p) for p in leaves if p[:len(path)] == path)
                problems.append(Problem(dotted, f"is a group of variables ({inner}); give a "
                                        f"mapping or set them one by one (from {origin})"))
            else:
                problems.append(Problem(dotted, _unknown(dotted, leaves, origin)))

    walk(data, ())
    return out


def _unknown(dotted: str, leaves: Iterable[VarPath], origin: str) -> str:
    names = [".".join(p) for p in leaves]
    close = difflib.get_close_matches(dotted, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else (
        f"; the variables are {', '.join(names)}" if names else "; this pack takes no variables")
    return f"unknown variable (from {origin}){hint}"


# --- building the instance --------------------------------------------------------------------


def _build(cls: type[V], prefix: VarPath, values: Mapping[VarPath, _Value],
           problems: list[Problem]) -> V | None:
    kwargs: dict[str, Any] = {}
    unset: set[str] = set()
    before = len(problems)
    for a in _fields(cls):
        path = (*prefix, a.name)
        dotted = ".".join(path)
        key = a.alias or a.name
        if _is_namespace(a):
            nested = _build(a.type, path, values, problems)  # type: ignore[arg-type]
            if nested is None:
                unset.add(key)
            else:
                kwargs[key] = nested
        elif path in values:
            raw = values[path]
            try:
                kwargs[key] = _convert(raw.value, a.type, dotted)
            except _Bad as exc:
                problems.append(Problem(exc.path, f"{exc.message} (from {raw.origin})"))
                unset.add(key)
        elif a.default is attrs.NOTHING:
            problems.append(Problem(dotted, f"required variable is not set (--var {dotted}=...)"))
            unset.add(key)
    # Built without validators (placeholders for what is unset), then each validator runs on its
    # own, so that every failing field is reported rather than only the first.
    with attrs.validators.disabled():
        try:
            instance = cls(**kwargs, **dict.fromkeys(unset))
        except (ValueError, TypeError) as exc:
            if len(problems) == before:
                problems.append(Problem(".".join(prefix), str(exc)))
            return None
    for a in _fields(cls):
        if a.validator is not None and (a.alias or a.name) not in unset and not _is_namespace(a):
            try:
                a.validator(instance, a, getattr(instance, a.name))
            except (ValueError, TypeError) as exc:
                problems.append(Problem(".".join((*prefix, a.name)), _validator_message(exc)))
    return instance if len(problems) == before else None


def _validator_message(exc: Exception) -> str:
    # attrs' own validators raise TypeError(message, attribute, ...): keep just the message.
    return str(exc.args[0]) if exc.args else type(exc).__name__


class _Bad(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _convert(value: Any, tp: Any, path: str) -> Any:
    """`value` as type `tp`; strings (from `--var` or the environment) are parsed."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [t for t in args if t is not type(None)]
        failures = []
        for option in options:
            try:
                return _convert(value, option, path)
            except _Bad as exc:
                failures.append(exc)
        raise _Bad(path, f"expected {_type_name(tp)}, got {_short(value)}") if len(failures) > 1 \
            else failures[0]
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise _Bad(path, f"must be one of {', '.join(repr(c) for c in args)}, got {_short(value)}")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        return _sequence(value, tp, origin or tp, args, path)
    if origin in (dict, Mapping) or tp is dict:
        return _mapping(value, args, path)
    if tp is bool:
        return _bool(value, path)
    if tp is int:
        return _number(value, int, "an integer", path)
    if tp is float:
        return _number(value, float, "a number", path)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Bad(path, f"expected a string, got {_short(value)} ({type(value).__name__})")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Bad(path, f"expected {tp.__name__}, got {_short(value)}")
    raise _Bad(path, f"unsupported variable type {_type_name(tp)}")


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(path, f"expected true or false, got {_short(value)}")


def _number(value: Any, kind: type, what: str, path: str) -> Any:
    if isinstance(value, bool):
        raise _Bad(path, f"expected {what}, got {_short(value)}")
    number: Any = None
    if isinstance(value, int) or (kind is float and isinstance(value, float)):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 400:
            raise _Bad(path, f"expected {what}, got a {len(text)}-character string")
        try:
            number = kind(text)
        except ValueError:
            number = None
    if number is None:
        raise _Bad(path, f"expected {what}, got {_short(value)}")
    if kind is float:
        try:
            number = float(number)
        except OverflowError:
            raise _Bad(path, f"{_short(value)} is too large for a number") from None
        if not math.isfinite(number):
            raise _Bad(path, f"expected a finite number, got {_short(value)}")
    return number


def _short(value: Any) -> str:
    """A value as problems quote it: its repr, cut short (inputs can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sequence(value: Any, tp: Any, container: Any, args: tuple[Any, ...], path: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        value = _json(text, list, path) if text.startswith("[") else (
            [part.strip() for part in text.split(",")] if text else [])
    if not isinstance(value, (list, tuple)):
        raise _Bad(path, f"expected a list, got {_short(value)}")
    item = args[0] if args else Any
    items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if container is tuple else items


def _mapping(value: Any, args: tuple[Any, ...], path: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = _json(value.strip(), dict, path)
    if not isinstance(value, Mapping):
        raise _Bad(path, f"expected a mapping, got {_short(value)}")
    item = args[1] if len(args) == 2 else Any
    return {str(k): _convert(v, item, f"{path}.{k}") for k, v in value.items()}


def _json(text: str, kind: type, path: str) -> Any:
    try:
        data = documents.parse_json(text, path)
    except ParseError as exc:
        raise _Bad(path, f"not valid JSON: {exc.message}") from None
    if not isinstance(data, kind):
        raise _Bad(path, f"expected a JSON {'list' if kind is list else 'object'}, got "
                         f"{_short(text)}")
    return data
