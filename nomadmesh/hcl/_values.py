"""cty values and types (zclconf/go-cty) on native Python values.

A cty value is: `None` (the null of no type), `bool`, `str`, a number (`int`,
`fractions.Fraction` for non-integers, `float` only for infinities), a tuple (`list`), an object
(`dict`), a typed collection: `ListVal`, `SetVal` (lists carrying their element type) and `MapVal`
(a dict), a typed null (`Null`) or an unknown (`Unknown`). Conversions, unification and number
formatting follow cty's `convert` package.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Any

# --- types ---------------------------------------------------------------------------------------


class Type:
    """A cty type; compare with ==."""

    __slots__ = ("attrs", "elem", "elems", "key", "kind", "optional")

    def __init__(
        self,
        kind: str,
        elem: Type | None = None,
        elems: tuple[Type, ...] = (),
        attrs: dict[str, Type] | None = None,
        optional: frozenset[str] = frozenset(),
    ) -> None:
        self.kind = kind
        self.elem = elem
        self.elems = elems
        self.attrs = attrs or {}
        self.optional = optional
        if kind in ("list", "set", "map"):
            assert elem is not None
            self.key: Any = (kind, elem.key)
        elif kind == "tuple":
            self.key = (kind, tuple(e.key for e in elems))
        elif kind == "object":
            self.key = (kind, tuple(sorted((k, v.key) for k, v in self.attrs.items())), optional)
        else:
            self.key = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Type({type_string(self)})"

    @property
    def is_primitive(self) -> bool:
        return self.kind in ("string", "number", "bool")

    @property
    def is_collection(self) -> bool:
        return self.kind in ("list", "set", "map")

    def has_dynamic(self) -> bool:
        if self.kind == "dynamic":
            return True
        if self.elem is not None:
            return self.elem.has_dynamic()
        return any(e.has_dynamic() for e in self.elems) or any(a.has_dynamic() for a in self.attrs.values())


STRING = Type("string")
NUMBER = Type("number")
BOOL = Type("bool")
DYNAMIC = Type("dynamic")


def list_of(elem: Type) -> Type:
    return Type("list", elem)


def set_of(elem: Type) -> Type:
    return Type("set", elem)


def map_of(elem: Type) -> Type:
    return Type("map", elem)


def tuple_of(elems: list[Type] | tuple[Type, ...]) -> Type:
    return Type("tuple", elems=tuple(elems))


def object_of(attrs: dict[str, Type], optional: frozenset[str] = frozenset()) -> Type:
    return Type("object", attrs=attrs, optional=optional)


def friendly_name(t: Type, constraint: bool = False) -> str:
    """cty's FriendlyName (or FriendlyNameForConstraint)."""
    kind = t.kind
    if kind == "dynamic":
        return "any type" if constraint else "dynamic"
    if kind in ("list", "set", "map"):
        assert t.elem is not None
        inner = (
            "any single type"
            if constraint and t.elem.kind == "dynamic"
            else friendly_name(t.elem, constraint)
        )
        return f"{kind} of {inner}"
    return kind


def type_string(t: Type) -> str:
    """The type as HCL's type expression syntax writes it."""
    kind = t.kind
    if kind == "dynamic":
        return "any"
    if kind in ("list", "set", "map"):
        assert t.elem is not None
        return f"{kind}({type_string(t.elem)})"
    if kind == "tuple":
        return "tuple([" + ", ".join(type_string(e) for e in t.elems) + "])"
    if kind == "object":
        return "object({" + ", ".join(f"{k}={type_string(v)}" for k, v in sorted(t.attrs.items())) + "})"
    return kind


# --- values --------------------------------------------------------------------------------------


class ListVal(list):  # type: ignore[type-arg]
    """A cty list: elements of one type."""

    __slots__ = ("etype",)

    def __init__(self, items: Any = (), etype: Type = DYNAMIC) -> None:
        super().__init__(items)
        self.etype = etype


class SetVal(list):  # type: ignore[type-arg]
    """A cty set: distinct elements of one type, in cty's iteration order."""

    __slots__ = ("etype",)

    def __init__(self, items: Any = (), etype: Type = DYNAMIC) -> None:
        super().__init__(_set_order(items))
        self.etype = etype


class MapVal(dict):  # type: ignore[type-arg]
    """A cty map: string keys, elements of one type."""

    __slots__ = ("etype",)

    def __init__(self, items: Any = (), etype: Type = DYNAMIC) -> None:
        super().__init__(items)
        self.etype = etype


class Unknown:
    """cty.UnknownVal(type): a value not known when the job is parsed. cty returns one for a call
    whose dynamically typed parameter gets the untyped null (`contains(l, null)`), and
    everything computed from it is unknown too; Nomad refuses a job value that holds one.
    Of cty's refinements, two are modelled: not null (operators, templates, stdlib results) and
    a string's known prefix (a template's text before the unknown part)."""

    __slots__ = ("not_null", "prefix", "type")

    def __init__(self, type_: Type = DYNAMIC, not_null: bool = False, prefix: str = "") -> None:
        self.type = type_
        self.not_null = not_null
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Unknown({type_string(self.type)})"


class Null:
    """cty.NullVal(type) of a known type, as a conditional or convert() makes of `null`; the
    untyped null (cty.NullVal(cty.DynamicPseudoType)) is None."""

    __slots__ = ("type",)

    def __init__(self, type_: Type) -> None:
        self.type = type_

    def __repr__(self) -> str:
        return f"Null({type_string(self.type)})"


def null_of(t: Type) -> Any:
    """cty.NullVal(t): None for the dynamic type."""
    return None if t.kind == "dynamic" else Null(t)


def safe_known_prefix(text: str) -> str:
    """ctystrings.SafeKnownPrefix on hcl's first 128 bytes: NFC, without a last character that a
    following one could still combine with (cty keeps it only for common punctuation)."""
    text = unicodedata.normalize("NFC", text.encode()[:128].decode(errors="ignore"))
    while text and unicodedata.combining(text[-1]):
        text = text[:-1]
    if text and text[-1] not in "-_:;/\\,.(){}[]|?!~ \t@#$%^&*+\"'":
        text = text[:-1]
    return text


def is_null(v: Any) -> bool:
    """cty IsNull: the untyped null or a typed one."""
    return v is None or type(v) is Null


def is_wholly_known(v: Any) -> bool:
    """cty IsWhollyKnown: no unknown in the value or anywhere inside it."""
    t = type(v)
    if t is Unknown:
        return False
    if t is list or t is ListVal or t is SetVal:
        return all(is_wholly_known(x) for x in v)
    if t is dict or t is MapVal:
        return all(is_wholly_known(x) for x in v.values())
    return True


NUMBER_TYPES = (int, Fraction, float)


def is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is Fraction or t is float


def type_of(v: Any) -> Type:
    """The cty type of a value (null is of dynamic type)."""
    t = type(v)
    if t is str:
        return STRING
    if t is bool:
        return BOOL
    if t is int or t is Fraction or t is float:
        return NUMBER
    if v is None:
        return DYNAMIC
    if t is list:
        return tuple_of([type_of(x) for x in v])
    if t is dict:
        return object_of({k: type_of(x) for k, x in v.items()})
    if t is ListVal:
        return list_of(v.etype)
    if t is SetVal:
        return set_of(v.etype)
    if t is MapVal:
        return map_of(v.etype)
    if t is Unknown or t is Null:
        return v.type  # type: ignore[no-any-return]
    raise TypeError(f"not a cty value: {t.__name__}")


def _set_order(items: Any) -> list[Any]:
    """Distinct elements in cty's set order (strings and numbers sorted, others by first seen)."""
    out: list[Any] = []
    for item in items:
        if not any(equal(item, x) for x in out):
            out.append(item)
    if (
        (out and all(type(x) is str for x in out))
        or (out and all(is_number(x) for x in out))
        or (out and all(type(x) is bool for x in out))
    ):
        out.sort()
    return out


def equal(a: Any, b: Any) -> bool:
    """cty Equals of known values: same type and same value (numbers by value)."""
    ta, tb = type(a), type(b)
    if a is None or b is None or ta is Null or tb is Null:
        return (a is None or ta is Null) and (b is None or tb is Null)
    if ta is Unknown or tb is Unknown:
        return False
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if is_number(a):
        return is_number(b) and a == b
    if ta is str:
        return tb is str and a == b
    if type_of(a) != type_of(b):
        return False
    if isinstance(a, dict):
        return all(equal(a[k], b[k]) for k in a)
    return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))


def equals(a: Any, b: Any) -> Any:
    """cty Value.Equals: True, False, or an unknown bool when an unknown decides it."""
    ta, tb = type(a), type(b)
    if ta is Unknown or tb is Unknown:
        if is_null(a) or is_null(b):  # null against a value refined as not null
            other = b if is_null(a) else a
            return False if type(other) is not Unknown or other.not_null else Unknown(BOOL, True)
        if ta is Unknown and tb is Unknown:
            return Unknown(BOOL, True)
        known, unknown = (b, a) if ta is Unknown else (a, b)
        if not unknown.type.has_dynamic() and type_of(known) != unknown.type:
            return False
        if type(known) is str and not known.startswith(unknown.prefix):
            return False
        return Unknown(BOOL, True)
    if is_wholly_known(a) and is_wholly_known(b):
        return equal(a, b)
    if type_of(a) != type_of(b):
        return False
    if ta is dict or ta is MapVal:
        if a.keys() != b.keys():
            return False
        pairs = [(a[k], b[k]) for k in sorted(a)]
    else:
        if len(a) != len(b):
            return False
        pairs = list(zip(a, b, strict=True))
    for x, y in pairs:  # the first element that is not equal decides, an unknown one too
        same = equals(x, y)
        if same is not True:
            return same
    return True


def sorted_items(v: dict[str, Any]) -> list[tuple[str, Any]]:
    """A map or object's elements in cty's order (by key)."""
    return sorted(v.items())


# --- numbers ------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_MAX_DIGITS = 4000


def parse_number(text: str) -> Any:
    """A number from its decimal text as cty.ParseNumberVal reads it, or None."""
    if text.isdigit() and len(text) < 19:
        return int(text)
    if not _NUMBER_RE.match(text):
        low = text.lower().lstrip("+")
        if low in ("inf", "infinity"):
            return float("inf")
        if low in ("-inf", "-infinity"):
            return float("-inf")
        return None
    mantissa, _, exp = text.lower().partition("e")
    if len(mantissa) > _MAX_DIGITS or (exp and abs(int(exp)) > _MAX_DIGITS):
        # Beyond what a jobspec can use; keep it bounded (Go rounds these to 512 bits).
        try:
            return float(text)
        except OverflowError:
            return float("inf") if not text.startswith("-") else float("-inf")
    return normalize(Fraction(text))


def normalize(v: Any) -> Any:
    """Whole Fractions become ints."""
    if type(v) is Fraction and v.denominator == 1:
        return int(v.numerator)
    return v


def format_number(v: Any) -> str:
    """cty's number to string: big.Float.Text('f', -1) at 512 bits."""
    t = type(v)
    if t is int:
        return str(v)
    if t is float:
        if v != v:
            return "NaN"
        return "+Inf" if v > 0 else "-Inf"
    frac = Fraction(v)
    if frac.denominator == 1:
        return str(frac.numerator)
    den = frac.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1:  # an exact decimal
        digits = max(twos, fives)
        scaled = abs(frac.numerator) * (10**digits) // frac.denominator
        sign = "-" if frac < 0 else ""
        whole, part = divmod(scaled, 10**digits)
        return f"{sign}{whole}.{str(part).rjust(digits, '0').rstrip('0')}"
    return _shortest_512(frac)


def _shortest_512(frac: Fraction) -> str:
    """The shortest decimal that rounds to the same 512-bit binary float (as Go prints it)."""
    sign = "-" if frac < 0 else ""
    x = abs(frac)
    exp = x.numerator.bit_length() - x.denominator.bit_length()
    shift = 512 - exp
    mant = round(x * (Fraction(2) ** shift))
    if mant.bit_length() > 512:
        shift -= 1
        mant = round(x * (Fraction(2) ** shift))
    target = Fraction(mant) / (Fraction(2) ** shift)
    for digits in range(1, 160):
        dec = _round_sig(target, digits)
        if round(dec * (Fraction(2) ** shift)) == mant:
            return sign + _decimal_text(dec)
    return sign + _decimal_text(_round_sig(target, 160))


def _round_sig(x: Fraction, digits: int) -> Fraction:
    if x == 0:
        return x
    e = len(str(int(x))) if x >= 1 else -len(str(int(1 / x))) + 1
    scale = Fraction(10) ** (digits - e)
    return Fraction(round(x * scale)) / scale


def _decimal_text(x: Fraction) -> str:
    den = x.denominator
    digits = 0
    while den != 1:
        den_new = den // 2 if den % 2 == 0 else den // 5
        den = den_new
        digits += 1
    scaled = x.numerator * (10**digits) // x.denominator
    whole, part = divmod(scaled, 10**digits)
    if digits == 0:
        return str(whole)
    frac_text = str(part).rjust(digits, "0").rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def to_json_number(v: Any) -> Any:
    """The Go value jobspec2's smallestNumber makes of a cty number (int64 or float64)."""
    if type(v) is int:
        if -(1 << 63) <= v < (1 << 63):
            return v
        return float(v) if v.bit_length() < 1024 else (float("inf") if v > 0 else float("-inf"))
    if type(v) is Fraction:
        try:
            return float(v)
        except OverflowError:
            return float("inf") if v > 0 else float("-inf")
    return v


# --- conversion ---------------------------------------------------------------------------------


class ConversionError(Exception):
    """A value that does not convert to the wanted type; the message is cty's."""


class _Mismatch(Exception):
    """A type-level mismatch found while converting; reported with cty's MismatchMessage."""


def convert(v: Any, want: Type) -> Any:
    """cty convert.Convert (unsafe conversions allowed); raises ConversionError."""
    try:
        return _convert(v, want)
    except _Mismatch:
        raise ConversionError(mismatch_message(type_of(v), want)) from None


def _convert(v: Any, want: Type) -> Any:
    kind = want.kind
    if kind == "dynamic" or v is None:
        return v
    t = type(v)
    if t is Unknown or t is Null:
        if v.type == want:
            return v
        if not conversion_exists(v.type, want):
            raise _Mismatch
        wanted = want if v.type.kind == "dynamic" or not want.has_dynamic() else v.type
        if t is Null:
            return null_of(wanted)
        return Unknown(wanted, v.not_null)  # a conversion keeps no prefix
    if kind == "string":
        if t is str:
            return v
        if t is bool:
            return "true" if v else "false"
        if t is int or t is Fraction or t is float:
            return format_number(v)
        raise _Mismatch
    if kind == "number":
        if t is int or t is Fraction or t is float:
            return v
        if t is str:
            n = parse_number(v)
            if n is None:
                raise ConversionError("a number is required")
            return n
        raise _Mismatch
    if kind == "bool":
        if t is bool:
            return v
        if t is str:
            if v in ("true", "1"):
                return True
            if v in ("false", "0"):
                return False
            low = v.lower()
            if low in ("true", "false"):
                raise ConversionError(f'a bool is required; to convert from string, use lowercase "{low}"')
            raise ConversionError("a bool is required")
        raise _Mismatch
    elem = want.elem
    if kind == "list" or kind == "set":
        assert elem is not None
        if t is list or t is ListVal or t is SetVal:
            if t is list and elem.kind == "dynamic":
                elem = unify([type_of(x) for x in v]) if v else DYNAMIC
                if elem is None:
                    raise _Mismatch
            elif t is not list and v.etype.kind != "dynamic" and elem.kind == "dynamic":
                elem = v.etype
            items = [_convert_elem(x, elem) for x in v]
            if elem.kind == "dynamic" and items:
                elem = unify([type_of(x) for x in items]) or DYNAMIC
            return ListVal(items, elem) if kind == "list" else SetVal(items, elem)
        raise _Mismatch
    if kind == "map":
        assert elem is not None
        if t is dict or t is MapVal:
            if t is dict and elem.kind == "dynamic":
                elem = unify([type_of(x) for x in v.values()]) if v else DYNAMIC
                if elem is None:
                    raise _Mismatch
            elif t is MapVal and elem.kind == "dynamic":
                elem = v.etype
            return MapVal({k: _convert_elem(x, elem) for k, x in v.items()}, elem)
        raise _Mismatch
    if kind == "tuple":
        if t in (list, ListVal, SetVal) and len(v) == len(want.elems):
            return [_convert_elem(x, e) for x, e in zip(v, want.elems, strict=True)]
        raise _Mismatch
    if kind == "object":
        if t is dict or t is MapVal:
            out_obj: dict[str, Any] = {}
            for name, aty in want.attrs.items():
                if name in v:
                    out_obj[name] = _convert_elem(v[name], aty)
                elif name in want.optional:
                    out_obj[name] = null_of(aty)
                else:
                    raise _Mismatch
            return out_obj
        raise _Mismatch
    raise _Mismatch


def _convert_elem(v: Any, want: Type) -> Any:
    """An element of a converted collection or structure: a null takes the element's type."""
    return null_of(want) if v is None else _convert(v, want)


def conversion_exists(got: Type, want: Type) -> bool:
    """Whether cty has an (unsafe) conversion between the two types."""
    if want.kind == "dynamic" or got.kind == "dynamic" or got == want:
        return True
    if got.is_primitive and want.is_primitive:
        return {got.kind, want.kind} != {"number", "bool"}
    wk = want.kind
    gk = got.kind
    if wk in ("list", "set"):
        assert want.elem is not None
        if gk in ("list", "set"):
            assert got.elem is not None
            return conversion_exists(got.elem, want.elem)
        if gk == "tuple":
            if want.elem.kind == "dynamic":
                return unify(list(got.elems)) is not None
            return all(conversion_exists(e, want.elem) for e in got.elems)
        return False
    if wk == "map":
        assert want.elem is not None
        if gk == "map":
            assert got.elem is not None
            return conversion_exists(got.elem, want.elem)
        if gk == "object":
            if want.elem.kind == "dynamic":
                return unify(list(got.attrs.values())) is not None
            return all(conversion_exists(e, want.elem) for e in got.attrs.values())
        return False
    if wk == "tuple":
        return (
            gk == "tuple"
            and len(got.elems) == len(want.elems)
            and all(conversion_exists(a, b) for a, b in zip(got.elems, want.elems, strict=True))
        )
    if wk == "object":
        if gk == "object":
            for name, aty in want.attrs.items():
                if name not in got.attrs:
                    if name not in want.optional:
                        return False
                elif not conversion_exists(got.attrs[name], aty):
                    return False
            return True
        if gk == "map":
            assert got.elem is not None
            return all(conversion_exists(got.elem, a) for a in want.attrs.values())
        return False
    return False


def mismatch_message(got: Type, want: Type) -> str:
    """cty convert.MismatchMessage."""
    gk, wk = got.kind, want.kind
    if gk == "object" and wk == "object":
        missing = sorted(n for n in want.attrs if n not in got.attrs and n not in want.optional)
        if len(missing) == 1:
            return f'attribute "{missing[0]}" is required'
        if len(missing) == 2:
            return f'attributes "{missing[0]}" and "{missing[1]}" are required'
        if missing:
            return (
                "attributes "
                + ", ".join(f'"{m}"' for m in missing[:-1])
                + f', and "{missing[-1]}" are required'
            )
        for name, aty in want.attrs.items():
            if name in got.attrs and got.attrs[name] != aty and not conversion_exists(got.attrs[name], aty):
                return f'attribute "{name}": {mismatch_message(got.attrs[name], aty)}'
        return "incorrect object attributes"
    if gk == "tuple" and wk == "list" and want.elem == DYNAMIC:
        return "all list elements must have the same type"
    if gk == "tuple" and wk == "set" and want.elem == DYNAMIC:
        return "all set elements must have the same type"
    if gk == "object" and wk == "map" and want.elem == DYNAMIC:
        return "all map elements must have the same type"
    if gk in ("tuple", "object") and want.is_collection:
        if (wk in ("list", "set") and gk != "tuple") or (wk == "map" and gk != "object"):
            return friendly_name(want, True) + " required"
        assert want.elem is not None
        if gk == "tuple":
            for i, e in enumerate(got.elems):
                if e != want.elem and not conversion_exists(e, want.elem):
                    return f"element {i}: {mismatch_message(e, want.elem)}"
        else:
            for name, e in got.attrs.items():
                if e != want.elem and not conversion_exists(e, want.elem):
                    return f'element "{name}": {mismatch_message(e, want.elem)}'
        return f"all elements must be {friendly_name(want.elem, True)}"
    if got.is_collection and want.is_collection:
        assert got.elem is not None and want.elem is not None
        if (wk in ("list", "set") and gk not in ("list", "set")) or (wk == "map" and gk != "map"):
            return friendly_name(want, True) + " required"
        noun = {"list": "list element type", "set": "set element type", "map": "map element type"}[wk]
        return f"incorrect {noun}: {mismatch_message(got.elem, want.elem)}"
    if not _likely_confusing(got, want):
        return f"{friendly_name(want)} required, but have {friendly_name(got)}"
    return friendly_name(want, True) + " required"


def _likely_confusing(got: Type, want: Type) -> bool:
    if got.is_primitive != want.is_primitive:
        return False
    if want == STRING:
        return False
    if {got.kind, want.kind} == {"bool", "number"}:
        return False
    if got.is_collection and want.is_collection:
        assert got.elem is not None and want.elem is not None
        if not got.elem.has_dynamic() and want.elem.has_dynamic():
            return False
    return not (got.kind == "tuple" and want.kind == "object")


def unify(types: list[Type]) -> Type | None:
    """cty convert.UnifyUnsafe: one type every given type converts to, or None."""
    if not types:
        return None
    first = types[0]
    if all(t == first for t in types[1:]):
        return first
    kinds = [t.kind for t in types]
    if "dynamic" in kinds:
        return DYNAMIC
    kindset = set(kinds)
    if kindset <= {"map", "object"} or kindset <= {"list", "tuple"} or kindset == {"set"}:
        elems: list[Type] = []
        for t in types:
            if t.kind in ("map", "list", "set"):
                assert t.elem is not None
                elems.append(t.elem)
            elif t.kind == "tuple":
                elems.extend(t.elems)
            else:
                elems.extend(t.attrs.values())
        if kindset == {"object"}:
            names = [set(t.attrs) for t in types]
            if all(n == names[0] for n in names):
                attrs: dict[str, Type] = {}
                for name in types[0].attrs:
                    u = unify([t.attrs[name] for t in types])
                    if u is None:
                        return None
                    attrs[name] = u
                return object_of(attrs)
        if kindset == {"tuple"}:
            lengths = {len(t.elems) for t in types}
            if len(lengths) == 1:
                parts: list[Type] = []
                for i in range(lengths.pop()):
                    u = unify([t.elems[i] for t in types])
                    if u is None:
                        return None
                    parts.append(u)
                return tuple_of(parts)
        if not elems:
            elem: Type | None = DYNAMIC
        else:
            elem = unify(elems)
        if elem is None:
            return None
        if "map" in kindset or "object" in kindset:
            return map_of(elem)
        if "set" in kindset:
            return set_of(elem)
        return list_of(elem)
    if all(t.is_primitive for t in types):
        if kindset == {"number", "bool"}:
            return None
        return STRING
    for want in types:
        if all(conversion_exists(t, want) for t in types):
            return want
    return None


def to_string(v: Any) -> str:
    """A value in a template: strings as they are, numbers and bools converted."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    return convert(v, STRING)  # type: ignore[no-any-return]


def is_known_collection(v: Any) -> bool:
    t = type(v)
    return t is list or t is dict or t is ListVal or t is SetVal or t is MapVal


def to_python(v: Any) -> Any:
    """A cty value as plain JSON-like Python (numbers as Go's int64/float64 would be)."""
    t = type(v)
    if v is None or t is str or t is bool:
        return v
    if t is Null:
        return None
    if t is int or t is Fraction or t is float:
        return to_json_number(v)
    if t is list or t is ListVal or t is SetVal:
        return [to_python(x) for x in v]
    return {k: to_python(x) for k, x in v.items()}
