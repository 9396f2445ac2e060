"""Nomad's HCL function library (jobspec2/functions.go at aa026cc): go-cty's stdlib, go-cty-funcs
(encoding, crypto, uuid, cidr, filesystem), go-cty-yaml and hcl's try/can/convert.

Each function keeps its cty parameter names and types, so argument errors read as Nomad's do.
File functions resolve paths against the job file's directory, as jobspec2 does.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import ipaddress
import json
import math
import os
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from nomadmesh.hcl._eval import Function, FunctionError, Param, arithmetic
from nomadmesh.hcl._values import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    ConversionError,
    ListVal,
    MapVal,
    Null,
    SetVal,
    Type,
    Unknown,
    convert,
    equal,
    equals,
    format_number,
    is_null,
    is_number,
    is_wholly_known,
    list_of,
    normalize,
    parse_number,
    set_of,
    sorted_items,
    type_of,
    unify,
)

MAX_FILE_BYTES = 16 * 1024 * 1024


def _f(
    params: list[Param],
    impl: Callable[..., Any],
    var_param: Param | None = None,
    returns: Type = DYNAMIC,
    wholly_known: bool = False,
) -> Function:
    """A function; `wholly_known`: its cty implementation returns an unknown when any argument
    holds one anywhere inside it."""
    if wholly_known:
        return Function(params, _when_wholly_known(impl, returns), var_param, returns)
    return Function(params, impl, var_param, returns)


def _when_wholly_known(impl: Callable[..., Any], returns: Type) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if all(is_wholly_known(a) for a in args):
            return impl(*args)
        return Unknown(returns, True)

    return call


def _p(
    name: str,
    type_: Type = DYNAMIC,
    allow_null: bool = False,
    *,
    unknown: bool = False,
    dynamic: bool = False,
) -> Param:
    """A parameter with go-cty's AllowNull, AllowUnknown and AllowDynamicType."""
    return Param(name, type_, allow_null, unknown, dynamic)


# --- numbers -----------------------------------------------------------------------------------


def _abs(n: Any) -> Any:
    return abs(n)


def _ceil(n: Any) -> Any:
    if type(n) is float:
        return n
    return math.ceil(n)


def _floor(n: Any) -> Any:
    if type(n) is float:
        return n
    return math.floor(n)


def _log(n: Any, base: Any) -> Any:
    return _float_number(math.log(float(n)) / math.log(float(base)))


def _pow(n: Any, p: Any) -> Any:
    if type(p) is int and type(n) is int and p >= 0 and p < 4096:
        return n**p
    return _float_number(float(n) ** float(p))


def _float_number(x: float) -> Any:
    if math.isinf(x) or math.isnan(x):
        return x
    return normalize(Fraction(x))


def _signum(n: Any) -> Any:
    return (n > 0) - (n < 0)


def _max(*nums: Any) -> Any:
    if not nums:
        raise FunctionError("must pass at least one number")
    return max(nums)


def _min(*nums: Any) -> Any:
    if not nums:
        raise FunctionError("must pass at least one number")
    return min(nums)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _parseint(num: Any, base: Any) -> Any:
    if type(num) is not str:
        raise FunctionError(f"first argument must be a string, not {_friendly(num)}", 0)
    if type(base) is not int or not 2 <= base <= 62:
        raise FunctionError("base must be a whole number between 2 and 62 inclusive", 1)
    text = num
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[:base]
    text_cmp = text.lower() if base <= 36 else text
    if not text_cmp or any(c not in digits for c in text_cmp):
        raise FunctionError(f"cannot parse {_go_quote(num)} as a base {base} integer", 0)
    value = 0
    for c in text_cmp:
        value = value * base + digits.index(c)
    return sign * value


def _range(*params: Any) -> Any:
    """cty RangeFunc (sequence.go): one or two arguments pick the direction themselves."""
    if len(params) == 1:
        start, end, step = 0, params[0], (-1 if params[0] < 0 else 1)
    elif len(params) == 2:
        start, end, step = params[0], params[1], (-1 if params[1] < params[0] else 1)
    elif len(params) == 3:
        start, end, step = params
    else:
        raise FunctionError("must have one, two, or three arguments")
    if step == 0:
        raise FunctionError("step must not be zero", 2)
    if step < 0 and end > start:
        raise FunctionError("end must be less than start when step is negative", 1)
    if step > 0 and end < start:
        raise FunctionError("end must be greater than start when step is positive", 1)
    out: list[Any] = []
    cur = start
    while (cur < end) if step > 0 else (cur > end):
        if len(out) >= 1024:
            raise FunctionError(
                "more than 1024 values were generated; either decrease the difference "
                "between start and end or use a smaller step"
            )
        out.append(cur)
        cur = normalize(cur + step)
    return ListVal(out, NUMBER)


# --- strings ----------------------------------------------------------------------------------


def _go_quote(text: str) -> str:
    from nomadmesh.hcl._diag import go_quote

    return go_quote(text)


def _friendly(v: Any) -> str:
    from nomadmesh.hcl._values import friendly_name

    return friendly_name(type_of(v))


def _chomp(s: str) -> str:
    return re.sub(r"(?:\r\n|\r|\n)+\Z", "", s)


def _indent(spaces: Any, s: str) -> str:
    pad = " " * int(spaces)
    return s.replace("\n", "\n" + pad)


def _join(sep: str, *lists: Any) -> str:
    if not lists:
        raise FunctionError("at least one list is required")
    items: list[str] = []
    for li, lst in enumerate(lists):
        for i, item in enumerate(lst):
            if is_null(item):
                detail = f"element {i} of list {li + 1} is null" if len(lists) > 1 else f"element {i} is null"
                raise FunctionError(f"{detail}; cannot concatenate null values", li + 1)
            items.append(item)
    return sep.join(items)


def _lower(s: str) -> str:
    return s.lower()


def _upper(s: str) -> str:
    return s.upper()


def _title(s: str) -> str:
    out = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _strrev(s: str) -> str:
    import unicodedata

    clusters: list[str] = []
    for ch in s:
        if clusters and unicodedata.combining(ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return "".join(reversed(clusters))


def _strlen(s: str) -> int:
    import unicodedata

    return sum(1 for ch in s if not unicodedata.combining(ch))


def _substr(s: str, offset: Any, length: Any) -> str:
    offset, length = int(offset), int(length)
    n = len(s)
    if offset < 0:
        offset = n + offset
        if offset < 0:
            raise FunctionError("offset out of bounds")
    if offset > n:
        return ""
    if length < 0:
        return s[offset:]
    return s[offset : offset + length]


def _split(sep: str, s: str) -> Any:
    parts = s.split(sep) if sep else list(s)
    return ListVal(parts, STRING)


def _replace(s: str, substr: str, repl: str) -> str:
    return s.replace(substr, repl)


def _go_regex(pattern: str) -> re.Pattern[str]:
    converted = re.sub(r"\(\?P<", "(?P<", pattern)
    try:
        return re.compile(converted)
    except re.error as exc:
        raise FunctionError(f"invalid regexp pattern: {exc}", 1) from None


def _regex_replace(s: str, pattern: str, repl: str) -> str:
    rx = _go_regex(pattern)
    # Go's $1 / ${name} expansion into Python's \g<...>
    py_repl = re.sub(
        r"\$\{(\w+)\}|\$(\w+)|\\",
        lambda m: "\\\\" if m.group() == "\\" else f"\\g<{m.group(1) or m.group(2)}>",
        repl,
    )
    return rx.sub(py_repl, s)


def _trim(s: str, cutset: str) -> str:
    return s.strip(cutset)


def _trimprefix(s: str, prefix: str) -> str:
    return s[len(prefix) :] if prefix and s.startswith(prefix) else s


def _trimsuffix(s: str, suffix: str) -> str:
    return s[: -len(suffix)] if suffix and s.endswith(suffix) else s


def _trimspace(s: str) -> str:
    return s.strip(
        " \t\n\r\v\f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
        "\u200a\u2028\u2029\u202f\u205f\u3000"
    )


def _format(fmt: str, *args: Any) -> str:
    from nomadmesh.hcl._format_verbs import FormatError, format_values

    try:
        return format_values(fmt, list(args))
    except FormatError as exc:
        raise FunctionError(str(exc), None if exc.arg is None else exc.arg + 1) from None


def _formatlist(fmt: str, *args: Any) -> Any:
    if any(type(a) is Unknown for a in args):  # cty: a list of unknown length
        return Unknown(list_of(STRING), True)
    n = None
    for a in args:
        if type(a) in (list, ListVal, SetVal):
            if n is not None and len(a) != n:
                raise FunctionError("all lists must have the same number of elements")
            n = len(a)
    if n is None:
        n = 1
    out = []
    for i in range(n):
        row = [a[i] if type(a) in (list, ListVal, SetVal) else a for a in args]
        out.append(_format(fmt, *row) if all(is_wholly_known(x) for x in row) else Unknown(STRING, True))
    return ListVal(out, STRING)


# --- collections -------------------------------------------------------------------------------


def _seq(v: Any) -> bool:
    return type(v) in (list, ListVal, SetVal)


def _chunklist(lst: Any, size: Any) -> Any:
    size = int(size)
    if size < 0:
        raise FunctionError("the size argument must be positive", 1)
    items = list(lst)
    chunks = [items] if size == 0 else [items[i : i + size] for i in range(0, len(items), size)]
    return ListVal([ListVal(c, lst.etype) for c in chunks], list_of(lst.etype))


def _coalesce(*vals: Any) -> Any:
    target = (
        unify([type_of(v) for v in vals if v is not None]) if any(v is not None for v in vals) else DYNAMIC
    )
    if target is None:
        raise FunctionError("all arguments must have the same type")
    for v in vals:
        if v is not None:
            return convert(v, target)
    raise FunctionError("no non-null arguments")


def _coalescelist(*vals: Any) -> Any:
    for v in vals:
        if type(v) is Unknown:
            return Unknown(v.type)
        if v is None:
            continue
        if not _seq(v):
            raise FunctionError("coalescelist arguments must be lists or tuples")
        if len(v) > 0:
            return v
    raise FunctionError("no non-null arguments")


def _compact(lst: Any) -> Any:
    return ListVal([x for x in lst if not is_null(x) and x != ""], STRING)


def _concat(*seqs: Any) -> Any:
    out: list[Any] = []
    all_lists = True
    for i, s in enumerate(seqs):
        if s is None or not _seq(s):
            raise FunctionError("all arguments must be lists or tuples; got " + _friendly(s), i)
        if type(s) is list:
            all_lists = False
        out.extend(s)
    if all_lists and seqs:
        etype = unify([s.etype for s in seqs]) or DYNAMIC
        return ListVal([convert(x, etype) for x in out], etype)
    return out


def _contains(lst: Any, value: Any) -> Any:
    # go-cty stdlib/collection.go ContainsFunc: lists, tuples and sets only (maps and objects
    # are refused, as Nomad's parser answers).
    if not _seq(lst):
        raise FunctionError("argument must be list, tuple, or set")
    unknown = False
    for x in lst:
        same = equals(value, x)
        if same is True:
            return True
        unknown = unknown or same is not False
    return Unknown(BOOL, True) if unknown else False


def _distinct(lst: Any) -> Any:
    out: list[Any] = []
    for x in lst:
        if not any(equal(x, y) for y in out):
            out.append(x)
    return ListVal(out, lst.etype)


def _element(lst: Any, index: Any) -> Any:
    if not _seq(lst):
        raise FunctionError("cannot read elements from " + _friendly(lst))
    if type(index) is not int or not -(1 << 63) <= index < (1 << 63):
        raise FunctionError(
            "invalid index: value must be a whole number, between -9223372036854775808 and "
            "9223372036854775807"
        )
    if not lst:
        raise FunctionError("cannot use element function with an empty list")
    return lst[index % len(lst)]


def _flatten(lst: Any) -> Any:
    if not _seq(lst):
        raise FunctionError("can only flatten lists, sets and tuples")
    out: list[Any] = []

    def walk(v: Any) -> None:
        for x in v:
            if _seq(x):
                walk(x)
            else:
                out.append(x)

    walk(lst)
    return out


def _index(coll: Any, key: Any) -> Any:
    """cty stdlib IndexFunc: coll[key] with static type checks."""
    t = type(coll)
    if t is list or t is ListVal:
        if not is_number(key):
            raise FunctionError(
                "key for tuple must be number" if t is list else "key for list must be number"
            )
        if type(key) is not int or not 0 <= key < len(coll):
            if t is list:
                raise FunctionError(f"key must be between 0 and {len(coll) - 1} inclusive")
            raise FunctionError("invalid index")
        return coll[key]
    if t is MapVal:
        if type(key) is not str:
            raise FunctionError("key for map must be string")
        if key not in coll:
            raise FunctionError("invalid index")
        return coll[key]
    raise FunctionError("collection must be a list, a map or a tuple")


def _keys(m: Any) -> Any:
    if type(m) is Unknown and m.type.kind in ("map", "object"):
        return Unknown(list_of(STRING) if m.type.kind == "map" else DYNAMIC)
    if not isinstance(m, dict):
        raise FunctionError("must have map or object type", 0)
    names = sorted(m)
    if type(m) is MapVal:
        return ListVal(names, STRING)
    return names


def _values(m: Any) -> Any:
    if not isinstance(m, dict):
        raise FunctionError("values() requires a map as the first argument")
    vals = [v for _, v in sorted_items(m)]
    if type(m) is MapVal:
        return ListVal(vals, m.etype)
    return vals


def _length(coll: Any) -> Any:
    t = type(coll)
    if t in (list, ListVal, SetVal, MapVal):
        return len(coll)
    if t is Unknown:
        kind = coll.type.kind
        if kind == "tuple":  # a tuple's length is in its type
            return len(coll.type.elems)
        if kind in ("dynamic", "list", "set", "map"):
            return Unknown(NUMBER, True)
    raise FunctionError("collection must be a list, a map or a tuple")


def _lookup(m: Any, key: str, default: Any) -> Any:
    """cty LookupFunc (collection.go:650): all three arguments are required."""
    if type(m) is dict:
        if key in m:
            return m[key]
        return default
    if type(m) is MapVal:
        try:
            fallback = convert(default, m.etype)
        except ConversionError:
            raise FunctionError("the default value must have the same type as the map elements", 2) from None
        return m.get(key, fallback)
    raise FunctionError("lookup() requires a map as the first argument", 0)


def _merge(*maps: Any) -> Any:
    out: dict[str, Any] = {}
    all_maps = True
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise FunctionError(f"arguments must be maps or objects, got {_go_quote(_friendly(m))}")
        if type(m) is not MapVal:
            all_maps = False
        out.update(m)
    if all_maps and maps and any(m is not None for m in maps):
        etype = unify([m.etype for m in maps if m is not None]) or DYNAMIC
        return MapVal({k: convert(v, etype) for k, v in out.items()}, etype)
    return out


def _setintersection(first: Any, *others: Any) -> Any:
    items = [x for x in first if all(any(equal(x, y) for y in o) for o in others)]
    return SetVal(items, first.etype)


def _setunion(first: Any, *others: Any) -> Any:
    items = list(first)
    etype = first.etype
    for o in others:
        items.extend(o)
        etype = unify([etype, o.etype]) or DYNAMIC
    return SetVal([convert(x, etype) for x in items], etype)


def _setproduct(*sets: Any) -> Any:
    if len(sets) < 2:
        raise FunctionError("at least two arguments are required")
    if any(type(s) is Unknown for s in sets):
        return Unknown()
    combos: list[list[Any]] = [[]]
    for s in sets:
        combos = [[*c, x] for c in combos for x in s]
    return ListVal(combos, DYNAMIC)


def _slice(lst: Any, start: Any, end: Any) -> Any:
    if type(lst) is SetVal:
        raise FunctionError(
            "cannot slice a set, because its elements do not have indices; explicitly convert to "
            "a list if the ordering of the result is not important",
            0,
        )
    if not _seq(lst):
        raise FunctionError("must be a list or tuple value", 0)
    for i, v in ((1, start), (2, end)):
        if type(v) is not int:
            which = "start" if i == 1 else "end"
            raise FunctionError(
                f"invalid {which} index: value must be a whole number, between "
                "-9223372036854775808 and 9223372036854775807",
                i,
            )
    if start < 0:
        raise FunctionError("start index must not be less than zero", 1)
    if start > len(lst):
        raise FunctionError("start index must not be greater than the length of the list", 1)
    if end < 0:
        raise FunctionError("end index must not be less than zero", 2)
    if end > len(lst):
        raise FunctionError("end index must not be greater than the length of the list", 2)
    if start > end:
        raise FunctionError("start index must not be greater than end index", 1)
    part = lst[start:end]
    return list(part) if type(lst) is list else ListVal(part, lst.etype)


def _sort(lst: Any) -> Any:
    for i, x in enumerate(lst):
        if is_null(x):
            raise FunctionError(f"given list element {i} is null; a null string cannot be sorted")
    return ListVal(sorted(lst), STRING)


def _zipmap(keys: Any, vals: Any) -> Any:
    if not _seq(vals):
        raise FunctionError("values argument must be a list or tuple value")
    if len(keys) != len(vals):
        raise FunctionError(f"number of keys ({len(keys)}) does not match number of values ({len(vals)})")
    if not is_wholly_known(keys):  # cty ZipmapFunc: unknown keys, unknown map; unknown values stay
        return Unknown()
    if type(vals) is list:
        return dict(zip(keys, vals, strict=True))
    return MapVal(dict(zip(keys, vals, strict=True)), vals.etype)


# --- encoding ------------------------------------------------------------------------------------


def json_encode(v: Any) -> str:
    """cty's JSON: sorted object keys, Go's HTML-safe string escaping, exact numbers."""
    out: list[str] = []

    def enc(x: Any) -> None:
        t = type(x)
        if x is None or t is Null:
            out.append("null")
        elif t is bool:
            out.append("true" if x else "false")
        elif t is str:
            out.append(go_json_string(x))
        elif is_number(x):
            if t is float:
                raise FunctionError("value must be known and finite")
            out.append(format_number(x))
        elif t in (list, ListVal, SetVal):
            out.append("[")
            for i, item in enumerate(x):
                if i:
                    out.append(",")
                enc(item)
            out.append("]")
        else:
            out.append("{")
            for i, (k, item) in enumerate(sorted_items(x)):
                if i:
                    out.append(",")
                out.append(go_json_string(k))
                out.append(":")
                enc(item)
            out.append("}")

    enc(v)
    return "".join(out)


def go_json_string(s: str) -> str:
    text = json.dumps(s, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
        .replace("\\u007f", "\x7f")
    )


def _jsonencode(v: Any) -> str:
    return json_encode(v)


def from_json_value(v: Any) -> Any:
    """A json.loads value as cty's JSON decoder types it (arrays tuples, objects objects)."""
    t = type(v)
    if t is float or t is int:
        return v
    if t is list:
        return [from_json_value(x) for x in v]
    if t is dict:
        return {k: from_json_value(x) for k, x in v.items()}
    return v


def _jsondecode(s: str) -> Any:
    try:
        data = json.loads(
            s,
            parse_float=lambda text: parse_number(text),
            parse_int=lambda text: parse_number(text),
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise FunctionError(f"{exc.msg} at line {exc.lineno} column {exc.colno}", 0) from None
    except RecursionError:
        raise FunctionError("JSON is nested too deeply", 0) from None
    return data


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"invalid character {name[0]!r} looking for beginning of value", name, 0)


def _csvdecode(s: str) -> Any:
    rows = list(csv.reader(io.StringIO(s), strict=True))
    if not rows:
        raise FunctionError("missing header line")
    header = rows[0]
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise FunctionError(f"record on line {i}: wrong number of fields")
        out.append(dict(zip(header, row, strict=True)))
    return ListVal(out, DYNAMIC) if out else ListVal([], DYNAMIC)


def _base64encode(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _base64decode(s: str) -> str:
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError:
        raise FunctionError(f"failed to decode base64 data {_go_quote(s)}", 0) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FunctionError("the result of decoding the provided string is not valid UTF-8", 0) from None


def _urlencode(s: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(s, safe="")


def _yamlencode(v: Any) -> str:
    from yaml import events

    evs: list[Any] = [events.StreamStartEvent(), events.DocumentStartEvent(explicit=False)]

    def emit(x: Any) -> None:
        t = type(x)
        if x is None or type(x) is Null:
            evs.append(events.ScalarEvent(None, None, (True, True), "null", style=None))
        elif t is bool:
            evs.append(events.ScalarEvent(None, None, (True, True), "true" if x else "false", style=None))
        elif t is str:
            evs.append(events.ScalarEvent(None, None, (True, True), x, style="|" if "\n" in x else '"'))
        elif is_number(x):
            evs.append(events.ScalarEvent(None, None, (True, True), format_number(x), style=None))
        elif t in (list, ListVal, SetVal):
            evs.append(events.SequenceStartEvent(None, None, True, flow_style=False))
            for item in x:
                emit(item)
            evs.append(events.SequenceEndEvent())
        else:
            evs.append(events.MappingStartEvent(None, None, True, flow_style=False))
            for k, item in sorted_items(x):
                emit(k)
                emit(item)
            evs.append(events.MappingEndEvent())

    emit(v)
    evs += [events.DocumentEndEvent(explicit=False), events.StreamEndEvent()]
    stream = io.StringIO()
    emitter = _cty_yaml_emitter()(stream, allow_unicode=True)
    for ev in evs:
        emitter.emit(ev)
    return stream.getvalue()


_YAML_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


@cache
def _cty_yaml_emitter() -> Any:
    """PyYAML's emitter with libyaml's double-quoted scalar folding (go-yaml, which go-cty-yaml uses)."""
    import yaml

    class Emitter(yaml.emitter.Emitter):
        def write_double_quoted(self, text: str, split: bool = True) -> None:
            self.write_indicator('"', True)
            spaces = False
            i = 0
            n = len(text)
            while i < n:
                ch = text[i]
                printable = (
                    ch == "\n"
                    or (" " <= ch <= "~")
                    or (
                        ch == "\x85"
                        or ("\xa0" <= ch <= "\ud7ff")
                        or ("\ue000" <= ch <= "\ufffd" and ch != "\ufeff")
                        or ch > "\uffff"
                    )
                )
                if not printable or ch in '"\\' or ch in "\n\r\x85\u2028\u2029" or ch == "\ufeff":
                    code = _YAML_ESCAPES.get(ch)
                    if code is None:
                        o = ord(ch)
                        code = f"x{o:02X}" if o <= 0xFF else (f"u{o:04X}" if o <= 0xFFFF else f"U{o:08X}")
                    data = "\\" + code
                    self.column += len(data)
                    self.stream.write(data)
                    spaces = False
                    i += 1
                elif ch == " ":
                    if split and not spaces and self.column > self.best_width and 0 < i < n - 1:
                        self.write_indent()
                        if text[i + 1] == " ":
                            self.column += 1
                            self.stream.write("\\")
                    else:
                        self.column += 1
                        self.stream.write(ch)
                    spaces = True
                    i += 1
                else:
                    self.column += 1
                    self.stream.write(ch)
                    spaces = False
                    i += 1
            self.write_indicator('"', False)

    return Emitter


def _yamldecode(s: str) -> Any:
    import yaml

    try:
        nodes = list(yaml.compose_all(s, Loader=yaml.BaseLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"on line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise FunctionError(f"{where}{getattr(exc, 'problem', None) or exc}", 0) from None
    except RecursionError:
        raise FunctionError("YAML is nested too deeply", 0) from None
    if not nodes:
        return None
    if len(nodes) > 1:
        raise FunctionError("on line 1, column 1: unexpected extra content after value", 0)
    return _yaml_node(nodes[0], 0)


_YAML_MAP: dict[str, Any] = {}
for _words, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    (("", "~", "null", "Null", "NULL"), None),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    (("-.inf", "-.Inf", "-.INF"), float("-inf")),
):
    for _w in _words:
        _YAML_MAP[_w] = _value
_YAML_INT = re.compile(r"\A(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_YAML_FLOAT = re.compile(r"\A[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_YAML_STAMP = re.compile(
    r"\A(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]| )(\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?"
    r"(Z|[+-]\d{2}:\d{2})?)?\Z"
)


def _yaml_node(node: Any, depth: int) -> Any:
    """go-cty-yaml's conversion of a YAML node (resolve.go resolveScalar rules)."""
    import yaml

    if depth > 200:
        raise FunctionError("YAML is nested too deeply", 0)
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_node(x, depth + 1) for x in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = _yaml_node(k, depth + 1)
            if not isinstance(key, str):
                key = convert(key, STRING) if key is not None else "null"
            out[key] = _yaml_node(v, depth + 1)
        return out
    src = node.value
    tag = node.tag
    if node.style in ("'", '"') or tag not in ("tag:yaml.org,2002:str", "!"):
        if tag == "tag:yaml.org,2002:int" or tag == "tag:yaml.org,2002:float":
            n = parse_number(src.replace("_", ""))
            if n is None:
                raise FunctionError(
                    f"cannot parse {_go_quote(src)} as {tag.replace('tag:yaml.org,2002:', '!!')}", 0
                )
            return n
        if tag == "tag:yaml.org,2002:bool":
            if type(_YAML_MAP.get(src)) is not bool:
                raise FunctionError(f"cannot parse {_go_quote(src)} as !!bool", 0)
            return _YAML_MAP[src]
        if tag == "tag:yaml.org,2002:null":
            return None
        return src
    if node.style in ("|", ">"):
        return src
    if src in _YAML_MAP:
        value = _YAML_MAP[src]
        if type(value) is float:
            raise FunctionError("infinite numbers are not supported", 0)
        return value
    if src in (".nan", ".NaN", ".NAN"):
        raise FunctionError("floating point NaN is not supported", 0)
    first = src[:1]
    if first == ".":
        n = parse_number(src)
        return n if n is not None else src
    if first.isdigit() or first in "+-":
        m = _YAML_STAMP.match(src)
        if m and len(src.split("-")[0]) == 4:
            return _yaml_timestamp(m)
        if _YAML_INT.match(src) or _YAML_FLOAT.match(src):
            plain = src.replace("_", "")
            n = parse_number(plain)
            if n is None:
                try:
                    n = int(plain, 0)
                except ValueError:
                    raise FunctionError(f"cannot parse {_go_quote(src)} as !!int", 0) from None
            return n
    return src


def _yaml_timestamp(m: re.Match[str]) -> str:
    y, mo, d, h, mi, sec, _frac, zone = m.groups()
    if h is None:
        return f"{int(y):04d}-{int(mo):02d}-{int(d):02d}T00:00:00Z"
    base = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}T{int(h):02d}:{int(mi):02d}:{int(sec):02d}"
    if zone is None or zone == "Z":
        return base + "Z"
    return base + zone


# --- crypto, uuid --------------------------------------------------------------------------------


def _hash(name: str) -> Callable[[str], str]:
    def impl(s: str) -> str:
        return hashlib.new(name, s.encode()).hexdigest()

    return impl


def _bcrypt(s: str, *cost: Any) -> str:
    import importlib

    try:
        bcrypt = importlib.import_module("bcrypt")  # optional: only this function needs it
    except ImportError:
        raise FunctionError("bcrypt needs the Python package 'bcrypt' (pip install bcrypt)") from None
    if len(cost) > 1:
        raise FunctionError("bcrypt() takes no more than two arguments")
    rounds = int(cost[0]) if cost else 10
    if not 4 <= rounds <= 31:
        raise FunctionError(f"crypto/bcrypt: cost {rounds} is outside allowed range (4,31)")
    hashed: bytes = bcrypt.hashpw(s.encode(), bcrypt.gensalt(rounds, prefix=b"2a"))
    return hashed.decode()


def _rsadecrypt(ciphertext: str, private_key: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except ValueError:
        raise FunctionError(
            'failed to decode input "ciphertext": cipher text must be base64-encoded', 0
        ) from None
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise FunctionError(f"invalid private key: {exc}", 1) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FunctionError("invalid private key: not an RSA key", 1)
    try:
        return key.decrypt(raw, padding.PKCS1v15()).decode()
    except ValueError:
        raise FunctionError("failed to decrypt: crypto/rsa: decryption error") from None


def _uuidv4() -> str:
    return str(uuid.uuid4())


def _uuidv5(namespace: str, name: str) -> str:
    spaces = {
        "dns": uuid.NAMESPACE_DNS,
        "url": uuid.NAMESPACE_URL,
        "oid": uuid.NAMESPACE_OID,
        "x500": uuid.NAMESPACE_X500,
    }
    if namespace in spaces:
        ns = spaces[namespace]
    else:
        try:
            ns = uuid.UUID(namespace)
        except ValueError:
            raise FunctionError(
                f"uuidv5() doesn't support namespace {namespace} (invalid UUID length: {len(namespace)})"
            ) from None
    return str(uuid.uuid5(ns, name))


# --- cidr ------------------------------------------------------------------------------------------


def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError as exc:
        raise FunctionError(f"invalid CIDR expression: {exc}", 0) from None


def _cidrhost(prefix: str, hostnum: Any) -> str:
    net = _network(prefix)
    n = int(hostnum)
    size = net.num_addresses
    if n < 0:
        n += size
    if not 0 <= n < size:
        raise FunctionError(f"prefix of {net.prefixlen} does not accommodate a host numbered {int(hostnum)}")
    return str(net.network_address + n)


def _cidrnetmask(prefix: str) -> str:
    net = _network(prefix)
    if net.version != 4:
        raise FunctionError("only IPv4 networks are supported")
    return str(net.netmask)


def _cidrsubnet(prefix: str, newbits: Any, netnum: Any) -> str:
    net = _network(prefix)
    new_prefix = net.prefixlen + int(newbits)
    if new_prefix > net.max_prefixlen:
        raise FunctionError(
            f"insufficient address space to extend prefix of {net.prefixlen} by {int(newbits)}"
        )
    num = int(netnum)
    if not 0 <= num < (1 << int(newbits)):
        raise FunctionError(
            f"prefix extension of {int(newbits)} does not accommodate a subnet numbered {num}"
        )
    base = int(net.network_address) + (num << (net.max_prefixlen - new_prefix))
    return f"{ipaddress.ip_address(base)}/{new_prefix}"


def _cidrsubnets(prefix: str, *newbits: Any) -> Any:
    net = _network(prefix)
    out = []
    current = int(net.network_address)
    for i, nb in enumerate(newbits):
        length = net.prefixlen + int(nb)
        if length > net.max_prefixlen:
            raise FunctionError(
                f"would extend prefix to {length} bits, which is too long for an IPv{net.version} address",
                i + 1,
            )
        block = 1 << (net.max_prefixlen - length)
        current = (current + block - 1) // block * block
        if current + block > int(net.network_address) + net.num_addresses:
            raise FunctionError(
                f"not enough remaining address space for a subnet with a prefix of {length} bits "
                f"after {ipaddress.ip_address(current - 1)}",
                i + 1,
            )
        out.append(f"{ipaddress.ip_address(current)}/{length}")
        current += block
    return ListVal(out, STRING)


# --- date and time -------------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")


def _parse_timestamp(ts: str, arg: int) -> tuple[datetime, str, str]:
    m = _RFC3339.match(ts)
    if not m:
        raise FunctionError(f"not a valid RFC3339 timestamp: cannot use {_go_quote(ts)} as year", arg)
    y, mo, d, h, mi, s, frac, zone = m.groups()
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    micro = int((frac or ".0")[1:7].ljust(6, "0"))
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tz), frac or "", zone


def _timeadd(ts: str, duration: str) -> str:
    from nomadmesh.hcl._jobspec import parse_go_duration

    t, frac, zone = _parse_timestamp(ts, 0)
    try:
        ns = parse_go_duration(duration)
    except ValueError as exc:
        raise FunctionError(str(exc), 1) from None
    total_ns = int((frac or ".0")[1:].ljust(9, "0")[:9])
    base = t.replace(microsecond=0)
    total_ns += ns
    secs, rem = divmod(total_ns, 1_000_000_000)
    out = base + timedelta(seconds=secs)
    text = out.strftime("%Y-%m-%dT%H:%M:%S")
    if rem:
        text += "." + str(rem).rjust(9, "0").rstrip("0")
    if zone in ("Z", "z"):
        return text + "Z"
    return text + zone


_DATE_TOKEN = re.compile(
    r"'(?:[^']|'')*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|mm|m|ss|s|ZZZZZ|ZZZZ|ZZZ|Z|AA|aa|[A-Za-z]|.",
    re.DOTALL,
)


def _formatdate(fmt: str, ts: str) -> str:
    t, _, zone = _parse_timestamp(ts, 1)
    out: list[str] = []
    for m in _DATE_TOKEN.finditer(fmt):
        tok = m.group()
        if tok.startswith("'"):
            out.append(tok[1:-1].replace("''", "'") if len(tok) > 1 else "'")
            continue
        offset = t.utcoffset() or timedelta()
        mins = int(offset.total_seconds() // 60)
        sign = "-" if mins < 0 else "+"
        amins = abs(mins)
        table = {
            "YYYY": f"{t.year:04d}",
            "YY": f"{t.year % 100:02d}",
            "MMMM": t.strftime("%B"),
            "MMM": t.strftime("%b"),
            "MM": f"{t.month:02d}",
            "M": str(t.month),
            "DD": f"{t.day:02d}",
            "D": str(t.day),
            "EEEE": t.strftime("%A"),
            "EEE": t.strftime("%a"),
            "hh": f"{t.hour:02d}",
            "h": str(t.hour),
            "HH": f"{(t.hour % 12) or 12:02d}",
            "H": str((t.hour % 12) or 12),
            "mm": f"{t.minute:02d}",
            "m": str(t.minute),
            "ss": f"{t.second:02d}",
            "s": str(t.second),
            "AA": "PM" if t.hour >= 12 else "AM",
            "aa": "pm" if t.hour >= 12 else "am",
            "ZZZZZ": "Z" if zone in ("Z", "z") else f"{sign}{amins // 60:02d}:{amins % 60:02d}",
            "ZZZZ": f"{sign}{amins // 60:02d}{amins % 60:02d}",
            "ZZZ": "UTC" if zone in ("Z", "z") else f"{sign}{amins // 60:02d}{amins % 60:02d}",
            "Z": "Z" if zone in ("Z", "z") else f"{sign}{amins // 60:02d}:{amins % 60:02d}",
        }
        if tok in table:
            out.append(table[tok])
        elif tok.isalpha():
            raise FunctionError(f"invalid date format verb {_go_quote(tok)}: unrecognized", 0)
        else:
            out.append(tok)
    return "".join(out)


# --- filesystem ---------------------------------------------------------------------------------


def _file_functions(base_dir: str) -> dict[str, Function]:
    def resolve(path: str) -> Path:
        p = Path(os.path.expanduser(path))
        if not p.is_absolute():
            p = Path(base_dir) / p
        return p

    def read(path: str) -> bytes:
        """go-cty-funcs readFileBytes: its errors name the cleaned path and no argument."""
        p = resolve(path)
        shown = os.path.normpath(p)
        try:
            if not p.is_file():
                if p.exists():
                    raise FunctionError(f"failed to read {shown}")
                raise FunctionError(f"no file exists at {shown}")
            if p.stat().st_size > MAX_FILE_BYTES:
                raise FunctionError(f"{path} is larger than {MAX_FILE_BYTES} bytes", 0)
            return p.read_bytes()
        except OSError:
            raise FunctionError(f"failed to read {shown}") from None

    def file_(path: str) -> str:
        data = read(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise FunctionError(
                f"contents of {path} are not valid UTF-8; use the filebase64 function to "
                "obtain the Base64 encoded contents or the other file functions (e.g. "
                "filemd5, filesha256) to obtain file hashing results instead"
            ) from None

    def filebase64(path: str) -> str:
        return base64.b64encode(read(path)).decode()

    def fileexists(path: str) -> bool:
        p = resolve(path)
        if p.exists() and not p.is_file():
            raise FunctionError(f'{path} is not a regular file, but "{_mode(p)}"', 0)
        return p.is_file()

    def fileset(path: str, pattern: str) -> Any:
        base = resolve(path)
        matches: list[str] = []
        rx = _glob_regex(pattern)
        if base.is_dir():
            for root, _dirs, files in os.walk(base):
                for name in files:
                    rel = os.path.relpath(os.path.join(root, name), base).replace(os.sep, "/")
                    if rx.fullmatch(rel):
                        matches.append(rel)
        return SetVal(sorted(matches), STRING)

    return {
        "file": _f([_p("path", STRING)], file_),
        "filebase64": _f([_p("path", STRING)], filebase64),
        "fileexists": _f([_p("path", STRING)], fileexists),
        "fileset": _f([_p("path", STRING), _p("pattern", STRING)], fileset),
        "abspath": _f([_p("path", STRING)], lambda p: str(Path(p).absolute()).replace(os.sep, "/")),
        "basename": _f([_p("path", STRING)], _basename),
        "dirname": _f([_p("path", STRING)], _dirname),
        "pathexpand": _f([_p("path", STRING)], lambda p: os.path.expanduser(p)),
    }


def _mode(p: Path) -> str:
    import stat

    return stat.filemode(p.stat().st_mode)


def _basename(path: str) -> str:
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _dirname(path: str) -> str:
    return os.path.dirname(path.rstrip("/")) or ("/" if path.startswith("/") else ".")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = pattern.find("]", i)
            if j < 0:
                raise FunctionError("failed to glob pattern: syntax error in pattern", 1)
            out.append(pattern[i : j + 1].replace("[!", "[^"))
            i = j + 1
            continue
        elif ch == "{":
            j = pattern.find("}", i)
            if j < 0:
                raise FunctionError("failed to glob pattern: syntax error in pattern", 1)
            out.append("(?:" + "|".join(re.escape(x) for x in pattern[i + 1 : j].split(",")) + ")")
            i = j + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def _disabled(name: str, fn: Function) -> Function:
    def impl(*_args: Any) -> Any:
        raise FunctionError("filesystem function disabled")

    return Function(fn.params, impl, fn.var_param)


# --- the table ---------------------------------------------------------------------------------

S, N, D = STRING, NUMBER, DYNAMIC
_STATIC: dict[str, Function] = {
    "abs": _f([_p("num", N)], _abs, returns=N),
    "base64decode": _f([_p("str", S)], _base64decode, returns=S),
    "base64encode": _f([_p("str", S)], _base64encode, returns=S),
    "bcrypt": _f([_p("str", S)], _bcrypt, _p("cost", N), returns=S),
    "ceil": _f([_p("num", N)], _ceil, returns=N),
    "chomp": _f([_p("str", S)], _chomp, returns=S),
    "chunklist": _f([_p("list", list_of(D)), _p("size", N)], _chunklist),
    "cidrhost": _f([_p("prefix", S), _p("hostnum", N)], _cidrhost, returns=S),
    "cidrnetmask": _f([_p("prefix", S)], _cidrnetmask, returns=S),
    "cidrsubnet": _f([_p("prefix", S), _p("newbits", N), _p("netnum", N)], _cidrsubnet, returns=S),
    "cidrsubnets": _f([_p("prefix", S)], _cidrsubnets, _p("newbits", N), returns=list_of(S)),
    "coalesce": _f([], _coalesce, _p("vals", D, True, unknown=True, dynamic=True)),
    "coalescelist": _f([], _coalescelist, _p("vals", D, True, unknown=True, dynamic=True)),
    "compact": _f([_p("list", list_of(S))], _compact, returns=list_of(S), wholly_known=True),
    "concat": _f([], _concat, _p("seqs", D)),
    "contains": _f([_p("list", D), _p("value", D, True)], _contains, returns=BOOL),
    "csvdecode": _f([_p("str", S)], _csvdecode),
    "distinct": _f([_p("list", list_of(D))], _distinct, wholly_known=True),
    "element": _f([_p("list", D), _p("index", N)], _element),
    "flatten": _f([_p("list", D)], _flatten, wholly_known=True),
    "floor": _f([_p("num", N)], _floor, returns=N),
    "format": _f(
        [_p("format", S)],
        _format,
        _p("args", D, True, unknown=True, dynamic=True),
        returns=S,
        wholly_known=True,
    ),
    "formatdate": _f([_p("format", S), _p("time", S)], _formatdate, returns=S),
    "formatlist": _f(
        [_p("format", S)],
        _formatlist,
        _p("args", D, True, unknown=True, dynamic=True),
        returns=list_of(S),
    ),
    "indent": _f([_p("spaces", N), _p("str", S)], _indent, returns=S),
    "index": _f([_p("collection", D), _p("key", D)], _index),
    "join": _f([_p("separator", S)], _join, _p("lists", list_of(S)), returns=S, wholly_known=True),
    "jsondecode": _f([_p("str", S)], _jsondecode),
    "jsonencode": _f(
        [_p("val", D, True, unknown=True, dynamic=True)],
        _jsonencode,
        returns=S,
        wholly_known=True,
    ),
    "keys": _f([_p("inputMap", D, unknown=True)], _keys),
    "length": _f([_p("collection", D, unknown=True, dynamic=True)], _length, returns=N),
    "log": _f([_p("num", N), _p("base", N)], _log, returns=N),
    "lookup": _f([_p("inputMap", D), _p("key", S), _p("default", D)], _lookup, wholly_known=True),
    "lower": _f([_p("str", S)], _lower, returns=S),
    "max": _f([], _max, _p("numbers", N), returns=N),
    "merge": _f([], _merge, _p("maps", D, True, dynamic=True)),
    "min": _f([], _min, _p("numbers", N), returns=N),
    "parseint": _f([_p("number", D), _p("base", N)], _parseint, returns=N),
    "pow": _f([_p("num", N), _p("power", N)], _pow, returns=N),
    "range": _f([], _range, _p("params", N), returns=list_of(N)),
    "reverse": _f([_p("str", S)], _strrev, returns=S),
    "replace": _f([_p("str", S), _p("substr", S), _p("replace", S)], _replace, returns=S),
    "regex_replace": _f([_p("str", S), _p("pattern", S), _p("replace", S)], _regex_replace, returns=S),
    "rsadecrypt": _f([_p("ciphertext", S), _p("privatekey", S)], _rsadecrypt, returns=S),
    "setintersection": _f(
        [_p("first_set", set_of(D), dynamic=True)],
        _setintersection,
        _p("other_sets", set_of(D), dynamic=True),
        wholly_known=True,
    ),
    "setproduct": _f([], _setproduct, _p("sets", D, unknown=True)),
    "setunion": _f(
        [_p("first_set", set_of(D), dynamic=True)],
        _setunion,
        _p("other_sets", set_of(D), dynamic=True),
        wholly_known=True,
    ),
    "sha256": _f([_p("str", S)], _hash("sha256"), returns=S),
    "sha512": _f([_p("str", S)], _hash("sha512"), returns=S),
    "signum": _f([_p("num", N)], _signum, returns=N),
    "slice": _f([_p("list", D), _p("start_index", N), _p("end_index", N)], _slice),
    "sort": _f([_p("list", list_of(S))], _sort, returns=list_of(S), wholly_known=True),
    "split": _f([_p("separator", S), _p("str", S)], _split, returns=list_of(S)),
    "strlen": _f([_p("str", S)], _strlen, returns=N),
    "strrev": _f([_p("str", S)], _strrev, returns=S),
    "substr": _f([_p("str", S), _p("offset", N), _p("length", N)], _substr, returns=S),
    "timeadd": _f([_p("timestamp", S), _p("duration", S)], _timeadd, returns=S),
    "title": _f([_p("str", S)], _title, returns=S),
    "trim": _f([_p("str", S), _p("cutset", S)], _trim, returns=S),
    "trimprefix": _f([_p("str", S), _p("prefix", S)], _trimprefix, returns=S),
    "trimspace": _f([_p("str", S)], _trimspace, returns=S),
    "trimsuffix": _f([_p("str", S), _p("suffix", S)], _trimsuffix, returns=S),
    "upper": _f([_p("str", S)], _upper, returns=S),
    "urlencode": _f([_p("str", S)], _urlencode, returns=S),
    "uuidv4": _f([], _uuidv4),
    "uuidv5": _f([_p("namespace", S), _p("name", S)], _uuidv5, returns=S),
    "values": _f([_p("mapping", D)], _values),
    "yamldecode": _f([_p("src", S)], _yamldecode),
    "yamlencode": _f(
        [_p("value", D, True, unknown=True, dynamic=True)],
        _yamlencode,
        returns=S,
        wholly_known=True,
    ),
    "zipmap": _f([_p("keys", list_of(S)), _p("values", D)], _zipmap),
    "md5": _f([_p("str", S)], _hash("md5"), returns=S),
    "sha1": _f([_p("str", S)], _hash("sha1"), returns=S),
    # try, can and convert take unevaluated expressions; _eval calls them specially.
    "try": _f([], lambda *a: None, _p("expressions", D, True)),
    "can": _f([_p("expression", D, True)], lambda *a: None),
    "convert": _f([_p("value", D, True), _p("type", D)], lambda *a: None),
}


def functions(base_dir: str, allow_fs: bool) -> dict[str, Function]:
    """The function table jobspec2's EvalContext gets (functions.go:30 Functions)."""
    table = dict(_STATIC)
    fs = _file_functions(base_dir or ".")
    if not allow_fs:
        fs = {name: _disabled(name, fn) for name, fn in fs.items()}
    table.update(fs)
    return table


def from_python(value: Any, where: str) -> Any:
    """A Python value (from an SDK caller's `variables=`) as a cty value."""
    t = type(value)
    if value is None or t is str or t is bool or t is int:
        return value
    if t is float:
        if not math.isfinite(value):
            raise FunctionError(f"{where}: {value} is not a number HCL can hold")
        return normalize(Fraction(value))
    if isinstance(value, (list, tuple)):
        return [from_python(x, where) for x in value]
    if isinstance(value, (set, frozenset)):
        return [from_python(x, where) for x in sorted(value, key=repr)]
    if isinstance(value, dict):
        return {str(k): from_python(x, where) for k, x in value.items()}
    raise FunctionError(f"{where}: a {t.__name__} cannot be an HCL value")


__all__ = ["arithmetic", "functions"]
