"""Expression evaluation with hclsyntax's semantics on cty values (see `_values`).

Errors raise HclDiagnostics with hcl's summary and detail. Both branches of a conditional are
evaluated, as hcl does, but only the chosen branch's errors count. An `Unknown` operand makes
each operation's result unknown, as in cty; the checks for it sit beside the checks for null,
off the path a known value takes.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, Source, go_quote, name_suggestion
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
    equals,
    friendly_name,
    is_null,
    is_number,
    is_wholly_known,
    normalize,
    null_of,
    safe_known_prefix,
    type_of,
    unify,
)

MAX_EVAL_DEPTH = 400


class Function:
    """An HCL function: typed parameters, an optional variadic one, an implementation, and the
    type of its result when an unknown argument stands in for a call (cty's Type, when static)."""

    __slots__ = ("impl", "params", "returns", "var_param")

    def __init__(
        self,
        params: list[Param],
        impl: Callable[..., Any],
        var_param: Param | None = None,
        returns: Type = DYNAMIC,
    ) -> None:
        self.params = params
        self.var_param = var_param
        self.impl = impl
        self.returns = returns


class Param:
    """A cty function.Parameter: name, type, and which of null, unknown and untyped values
    (AllowNull, AllowUnknown, AllowDynamicType) the implementation is given."""

    __slots__ = ("allow_dynamic", "allow_null", "allow_unknown", "name", "type")

    def __init__(
        self,
        name: str,
        type_: Type = DYNAMIC,
        allow_null: bool = False,
        allow_unknown: bool = False,
        allow_dynamic: bool = False,
    ) -> None:
        self.name = name
        self.type = type_
        self.allow_null = allow_null
        self.allow_unknown = allow_unknown
        self.allow_dynamic = allow_dynamic


class FunctionError(Exception):
    """A function implementation's failure; `arg` names the argument at fault, if any."""

    def __init__(self, message: str, arg: int | None = None) -> None:
        super().__init__(message)
        self.arg = arg


class Ctx:
    """An evaluation context: variables, functions, a parent, and the source being evaluated."""

    __slots__ = ("depth", "functions", "parent", "src", "undefined", "vars")

    def __init__(
        self,
        src: Source,
        variables: dict[str, Any],
        functions: dict[str, Function] | None,
        undefined: Callable[[syn.ScopeTraversal], Any] | None = None,
        parent: Ctx | None = None,
    ) -> None:
        self.src = src
        self.vars = variables
        self.functions = functions
        self.undefined = undefined
        self.parent = parent
        self.depth: int = parent.depth if parent is not None else 0

    def child(self, variables: dict[str, Any]) -> Ctx:
        return Ctx(self.src, variables, self.functions, self.undefined, self)

    def with_source(self, src: Source) -> Ctx:
        return Ctx(src, self.vars, self.functions, self.undefined, self.parent)

    def fail(self, summary: str, detail: str, s: int, e: int, unknown: Type | None = None) -> HclDiagnostics:
        return HclDiagnostics([Diagnostic(summary, detail, self.src.range(s, e))], unknown)


def start_range(expr: syn.Expr) -> tuple[int, int]:
    """hcl's Expression.StartRange(), which diagnostics about a whole value point at."""
    t = type(expr)
    if t is syn.TemplateExpr:
        return start_range(expr.parts[0])  # type: ignore[attr-defined]
    if t is syn.FunctionCall:
        return expr.s, expr.open_e  # type: ignore[attr-defined]
    if t is syn.Conditional:
        return start_range(expr.cond)  # type: ignore[attr-defined]
    if t is syn.IndexExpr:
        return expr.bracket_s, expr.bracket_s + 1  # type: ignore[attr-defined]
    if t is syn.TupleCons or t is syn.ObjectCons or t is syn.ForExpr:
        return expr.s, expr.open_e  # type: ignore[attr-defined]
    if t is syn.Splat:
        return expr.item.s, expr.item.e  # type: ignore[attr-defined]
    if t is syn.BinaryOp:
        return start_range(expr.lhs)  # type: ignore[attr-defined]
    if t is syn.UnaryOp:
        return expr.s, expr.sym_e  # type: ignore[attr-defined]
    if t is syn.TemplateJoin:
        return start_range(expr.tuple)  # type: ignore[attr-defined]
    if t is syn.ObjectKey:
        return start_range(expr.wrapped)  # type: ignore[attr-defined]
    if t is syn.Parens:  # as Nomad's parser answers: the inner expression's start
        return start_range(expr.expr)  # type: ignore[attr-defined]
    return expr.s, expr.e


def evaluate(expr: syn.Expr, ctx: Ctx) -> Any:
    """The expression's cty value."""
    return _DISPATCH[expr.__class__](expr, ctx)


def _literal(expr: syn.Literal, ctx: Ctx) -> Any:
    return expr.value


def _template(expr: syn.TemplateExpr, ctx: Ctx) -> Any:
    parts = expr.parts
    if len(parts) == 1 and type(parts[0]) is syn.Literal and type(parts[0].value) is str:
        return parts[0].value
    out: list[str] = []
    known = True
    cut = 0
    for part in parts:
        value = part.value if type(part) is syn.Literal else evaluate(part, ctx)
        t = type(value)
        if t is str:
            out.append(value)
        elif value is None or t is Null:
            raise ctx.fail(
                "Invalid template interpolation value",
                "The expression result is null. Cannot include a null value in a string template.",
                part.s,
                part.e,
            )
        elif t is Unknown:
            if known:  # the later parts' errors still count; the text before is a known prefix
                known, cut = False, len(out)
        else:
            try:
                out.append(convert(value, STRING))
            except ConversionError as exc:
                raise ctx.fail(
                    "Invalid template interpolation value",
                    f"Cannot include the given value in a string template: {exc}.",
                    part.s,
                    part.e,
                ) from None
    if known:
        return "".join(out)
    return Unknown(STRING, True, safe_known_prefix("".join(out[:cut])))


def _template_wrap(expr: syn.TemplateWrap, ctx: Ctx) -> Any:
    return evaluate(expr.wrapped, ctx)


def _template_join(expr: syn.TemplateJoin, ctx: Ctx) -> Any:
    items = evaluate(expr.tuple, ctx)
    if type(items) is Unknown:
        return Unknown(STRING)
    out: list[str] = []
    for item in items:
        if type(item) is Unknown:
            return Unknown(STRING)
        if is_null(item):
            raise ctx.fail(
                "Invalid template interpolation value",
                "An iteration result is null. Cannot include a null value in a string template.",
                expr.s,
                expr.e,
            )
        try:
            out.append(convert(item, STRING))
        except ConversionError as exc:
            raise ctx.fail(
                "Invalid template interpolation value",
                f"Cannot include one of the interpolation results into the string template: {exc}.",
                expr.s,
                expr.e,
            ) from None
    return "".join(out)


def _scope_traversal(expr: syn.ScopeTraversal, ctx: Ctx) -> Any:
    name = expr.root
    c: Ctx | None = ctx
    while c is not None:
        variables = c.vars
        if name in variables:
            value = variables[name]
            break
        c = c.parent
    else:
        if ctx.undefined is not None:
            return ctx.undefined(expr)
        if ctx.functions is None:
            raise ctx.fail("Variables not allowed", "Variables may not be used here.", expr.s, expr.e)
        raise ctx.fail(
            "Unknown variable", f"There is no variable named {go_quote(name)}.", expr.s, expr.root_e
        )
    for step in expr.steps:
        value = _step(value, step, ctx)
    return value


def _relative_traversal(expr: syn.RelativeTraversal, ctx: Ctx) -> Any:
    value = evaluate(expr.source, ctx)
    for step in expr.steps:
        value = _step(value, step, ctx)
    return value


def _step(value: Any, step: syn.Step, ctx: Ctx) -> Any:
    kind, key, s, e = step
    if kind == "attr":
        return get_attr(value, key, ctx, s, e)
    return index(value, key, ctx, s, e)


def get_attr(value: Any, name: str, ctx: Ctx, s: int, e: int) -> Any:
    """hcl.GetAttr."""
    t = type(value)
    if t is dict:
        if name in value:
            return value[name]
        raise ctx.fail(
            "Unsupported attribute", f"This object does not have an attribute named {go_quote(name)}.", s, e
        )
    if t is MapVal:
        if name in value:
            return value[name]
        raise ctx.fail(
            "Missing map element", f"This map does not have an element with the key {go_quote(name)}.", s, e
        )
    if t is Unknown:
        return _unknown_attr(value, name, ctx, s, e)
    if value is None or t is Null:
        raise ctx.fail(
            "Attempt to get attribute from null value",
            "This value is null, so it does not have any attributes.",
            s,
            e,
        )
    if t is ListVal and value.etype.kind == "object":
        if name in value.etype.attrs:
            detail = (
                f"Can't access attributes on a list of objects. Did you mean to access attribute "
                f"{go_quote(name)} for a specific element of the list, or across all elements of "
                "the list?"
            )
        else:
            detail = (
                "Can't access attributes on a list of objects. Did you mean to access an attribute for "
                "a specific element of the list, or across all elements of the list?"
            )
        raise ctx.fail("Unsupported attribute", detail, s, e)
    if t is SetVal and value.etype.kind == "object":
        raise ctx.fail(
            "Unsupported attribute",
            "Can't access attributes on a set of objects. Did you mean to "
            "access an attribute across all elements of the set?",
            s,
            e,
        )
    if t is str or t is bool or is_number(value):
        raise ctx.fail(
            "Unsupported attribute",
            f"Can't access attributes on a primitive-typed value ({friendly_name(type_of(value))}).",
            s,
            e,
        )
    raise ctx.fail("Unsupported attribute", "This value does not have any attributes.", s, e)


def _unknown_attr(value: Unknown, name: str, ctx: Ctx, s: int, e: int) -> Any:
    """hcl.GetAttr of an unknown: an unknown of the attribute's type, or its type's error."""
    t = value.type
    if t.kind == "dynamic":
        return Unknown()
    if t.kind == "object" and name in t.attrs:
        return Unknown(t.attrs[name])
    if t.kind == "map":
        assert t.elem is not None
        return Unknown(t.elem)
    if t.is_primitive:
        raise ctx.fail(
            "Unsupported attribute",
            f"Can't access attributes on a primitive-typed value ({friendly_name(t)}).",
            s,
            e,
        )
    if t.kind == "object":
        raise ctx.fail(
            "Unsupported attribute", f"This object does not have an attribute named {go_quote(name)}.", s, e
        )
    raise ctx.fail("Unsupported attribute", "This value does not have any attributes.", s, e)


_INVALID_INDEX = "Invalid index"
_NO_ELEMENT = "The given key does not identify an element in this collection value"


def index(value: Any, key: Any, ctx: Ctx, s: int, e: int) -> Any:
    """hcl.Index."""
    t = type(value)
    if value is None or t is Null:
        raise ctx.fail(
            "Attempt to index null value", "This value is null, so it does not have any indices.", s, e
        )
    if key is None or type(key) is Null:
        raise ctx.fail(_INVALID_INDEX, "Can't use a null value as an indexing key.", s, e)
    if t is Unknown or type(key) is Unknown:
        coll = type_of(value)
        if coll.kind in ("list", "map") and type_of(key).kind != "dynamic":
            assert coll.elem is not None
            return Unknown(coll.elem)
        return Unknown()
    if t is list or t is ListVal:
        try:
            k = convert(key, NUMBER)
        except ConversionError as exc:
            raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}: {exc}.", s, e) from None
        if type(k) is not int:
            if type(k) is Fraction:
                raise ctx.fail(
                    _INVALID_INDEX,
                    f"{_NO_ELEMENT}: indexing a sequence requires a whole number, "
                    "but the given index has a fractional part.",
                    s,
                    e,
                )
            raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}.", s, e)
        if k < 0:
            raise ctx.fail(
                _INVALID_INDEX, f"{_NO_ELEMENT}: a negative number is not a valid index for a sequence.", s, e
            )
        if k >= len(value):
            if not value:
                raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}: the collection has no elements.", s, e)
            raise ctx.fail(
                _INVALID_INDEX,
                f"{_NO_ELEMENT}: the given index is greater than or equal to the length of the collection.",
                s,
                e,
            )
        return value[k]
    if t is MapVal or t is dict:
        was_number = is_number(key)
        try:
            k = convert(key, STRING)
        except ConversionError as exc:
            raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}: {exc}.", s, e) from None
        if k in value:
            return value[k]
        if t is dict:
            hint = (
                " An object only supports looking up attributes by name, not by numeric index."
                if was_number
                else ""
            )
            raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}.{hint}", s, e)
        raise ctx.fail(_INVALID_INDEX, f"{_NO_ELEMENT}.", s, e)
    if t is SetVal:
        raise ctx.fail(
            _INVALID_INDEX,
            "Elements of a set are identified only by their value and don't have "
            "any separate index or key to select with, so it's only possible to perform "
            "operations across all elements of the set.",
            s,
            e,
        )
    raise ctx.fail(_INVALID_INDEX, "This value does not have any indices.", s, e)


def _index_expr(expr: syn.IndexExpr, ctx: Ctx) -> Any:
    coll = evaluate(expr.coll, ctx)
    key = evaluate(expr.key, ctx)
    return index(coll, key, ctx, expr.bracket_s, expr.e)


def _splat(expr: syn.Splat, ctx: Ctx) -> Any:
    """hclsyntax SplatExpr.Value. An item whose `each` fails leaves an unknown in the result,
    which keeps its type (a tuple for a tuple or a single value, a list for a list or set), so
    a conditional around it reports a type mismatch first; the first error is raised."""
    try:
        source = evaluate(expr.source, ctx)
    except HclDiagnostics as exc:
        exc.unknown_type = None
        raise
    t = type(source)
    is_seq = t is list or t is ListVal or t is SetVal
    if source is None:
        return []
    if t is Null:
        if source.type.kind in ("tuple", "list", "set"):
            raise ctx.fail(
                "Splat of null value",
                "Splat expressions (with the * symbol) cannot be applied to null sequences.",
                expr.source.s,
                expr.source.e,
            )
        return []
    if t is Unknown and source.type.kind in ("dynamic", "tuple", "list", "set"):
        return Unknown()  # an unknown of another type is a one-item tuple, as for a known value
    items = source if is_seq else [source]
    child = ctx.child({})
    out = []
    anon = expr.item
    if not items and (t is ListVal or t is SetVal) and source.etype in _STAND_INS:
        # hclsyntax/expression.go SplatExpr.Value (resultTy): an empty list or set still types
        # its result by evaluating `each` on an unknown of the element type, so a traversal a
        # primitive cannot take fails even with no elements. Any value of a primitive type
        # fails the same traversals in the same way.
        child.vars = {_ANON: (anon, _STAND_INS[source.etype])}
        try:
            evaluate(expr.each, child)
        except HclDiagnostics as exc:
            exc.unknown_type = Type("list", elem=DYNAMIC)
            raise
    first: HclDiagnostics | None = None
    types: list[Type] = []
    for item in items:
        child.vars = {_ANON: (anon, item)}
        try:
            value = evaluate(expr.each, child)
        except HclDiagnostics as exc:
            first = first or exc
            types.append(_unknown_type(exc))
            continue
        out.append(value)
        types.append(type_of(value))
    if first is not None:
        first.unknown_type = (Type("list", elem=DYNAMIC) if t is ListVal or t is SetVal
                              else Type("tuple", elems=tuple(types)))
        raise first
    if t is ListVal or t is SetVal:
        etype = unify([type_of(x) for x in out]) if out else DYNAMIC
        return ListVal(out, etype or DYNAMIC)
    return out


_ANON = "\x00anon"
_STAND_INS: dict[Type, Any] = {STRING: "", NUMBER: 0, BOOL: False}


def _anon(expr: syn.AnonSymbol, ctx: Ctx) -> Any:
    c: Ctx | None = ctx
    while c is not None:
        slot = c.vars.get(_ANON)
        if slot is not None and slot[0] is expr:
            return slot[1]
        c = c.parent
    raise ctx.fail("Invalid expression", "A splat item is used outside its splat expression.", expr.s, expr.e)


def _parens(expr: syn.Parens, ctx: Ctx) -> Any:
    return evaluate(expr.expr, ctx)


def _tuple(expr: syn.TupleCons, ctx: Ctx) -> Any:
    """hclsyntax TupleConsExpr.Value: an element's error leaves its unknown in the tuple, so the
    tuple keeps its type (a conditional around it reports a type mismatch first)."""
    out = []
    first: HclDiagnostics | None = None
    for x in expr.exprs:
        try:
            out.append(evaluate(x, ctx))
        except HclDiagnostics as exc:
            first = first or exc
            out.append(Unknown(_unknown_type(exc)))
    if first is not None:
        first.unknown_type = Type("tuple", elems=tuple(type_of(v) for v in out))
        raise first
    return out


def object_key(key: syn.ObjectKey, ctx: Ctx) -> Any:
    """An object constructor key: a bare name as written, else the expression's string value
    (an unknown string for an unknown key)."""
    name = key.literal_name()
    if name is not None:
        return name
    value = evaluate(key.wrapped, ctx)
    if is_null(value):
        raise ctx.fail("Null value as key", "Can't use a null value as a key.", key.s, key.e)
    try:
        return convert(value, STRING)
    except ConversionError as exc:
        raise ctx.fail("Incorrect key type", f"Can't use this value as a key: {exc}.", key.s, key.e) from None


def _object(expr: syn.ObjectCons, ctx: Ctx) -> Any:
    """hclsyntax ObjectConsExpr.Value: each key, then its value; a value's error leaves its
    unknown in the object (which keeps its type), a key's error or an unknown key leaves
    cty.DynamicVal. The first error is raised."""
    out: dict[str, Any] = {}
    known = True
    first: HclDiagnostics | None = None
    for key, value in expr.items:
        name: Any = key.literal_name()
        key_failed = False
        if name is None:
            try:
                name = evaluate(key.wrapped, ctx)
            except HclDiagnostics as exc:
                first, key_failed = first or exc, True
        try:
            item = evaluate(value, ctx)
        except HclDiagnostics as exc:
            first = first or exc
            item = Unknown(_unknown_type(exc))
        if key_failed:
            known = False
            continue
        if name is None or type(name) is Null:
            null_key = ctx.fail("Null value as key", "Can't use a null value as a key.", value.s, value.e)
            first, known = first or null_key, False
            continue
        if type(name) is not str:
            try:
                name = convert(name, STRING)
            except ConversionError as exc:
                first = first or ctx.fail(
                    "Incorrect key type", f"Can't use this value as a key: {exc}.", key.s, key.e
                )
                known = False
                continue
            if type(name) is Unknown:  # an object with an unknown key is unknown
                known = False
                continue
        out[name] = item
    if first is not None:
        first.unknown_type = Type("object", attrs={k: type_of(v) for k, v in out.items()}) if known else None
        raise first
    return out if known else Unknown()


def iterate(coll: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of a collection in cty's element order."""
    t = type(coll)
    if t is dict or t is MapVal:
        return sorted(coll.items())
    return list(enumerate(coll))


def _for(expr: syn.ForExpr, ctx: Ctx) -> Any:
    """hclsyntax ForExpr.Value: a value expression's error leaves its (unknown) value in the
    tuple or object, so the result keeps its structural type (a conditional around it reports
    a type mismatch first); any other error leaves cty.DynamicVal. The first error is raised."""
    failed: list[HclDiagnostics] = []
    try:
        out = _for_values(expr, ctx, failed)
    except HclDiagnostics as exc:
        error = failed[0] if failed else exc
        error.unknown_type = None
        raise error from None
    if not failed:
        return out
    error = failed[0]
    if type(out) is dict and not expr.group:
        error.unknown_type = Type("object", attrs={k: _element_type(v) for k, v in out.items()})
    elif type(out) is list:
        error.unknown_type = Type("tuple", elems=tuple(_element_type(v) for v in out))
    else:
        error.unknown_type = None
    raise error


def _for_values(expr: syn.ForExpr, ctx: Ctx, failed: list[HclDiagnostics]) -> Any:
    coll = evaluate(expr.coll, ctx)
    if is_null(coll):
        raise ctx.fail(
            "Iteration over null value",
            "A null value cannot be used as the collection in a 'for' expression.",
            expr.coll.s,
            expr.coll.e,
        )
    t = type(coll)
    if t is Unknown and coll.type.kind in ("dynamic", "list", "set", "map", "tuple", "object"):
        return Unknown()
    if not (t is list or t is dict or t is ListVal or t is SetVal or t is MapVal):
        raise ctx.fail(
            "Iteration over non-iterable value",
            f"A value of type {friendly_name(type_of(coll))} cannot be used as the collection in "
            "a 'for' expression.",
            expr.coll.s,
            expr.coll.e,
        )
    key_var, val_var = expr.key_var, expr.val_var
    if expr.cond is not None:
        # hcl checks the condition once on unknown key and value first, so it is checked even
        # for an empty collection
        _for_condition(expr, ctx.child({val_var: Unknown(), key_var or _ANON: Unknown()}))
    make_obj = expr.key_expr is not None
    results: list[Any] = []
    obj: dict[str, Any] = {}
    groups: dict[str, list[Any]] = {}
    known = True
    for k, v in iterate(coll):
        scope = {val_var: v}
        if key_var is not None:
            scope[key_var] = k
        child = ctx.child(scope)
        if expr.cond is not None:
            cond = _for_condition(expr, child)
            if type(cond) is Unknown:  # the result is unknown; the other elements still count
                known = False
                continue
            if not cond:
                continue
        if make_obj:
            assert expr.key_expr is not None
            key = evaluate(expr.key_expr, child)
            if is_null(key):
                raise ctx.fail(
                    "Invalid object key",
                    "Key expression in 'for' expression must not produce a null value.",
                    expr.key_expr.s,
                    expr.key_expr.e,
                )
            try:
                key = convert(key, STRING)
            except ConversionError as exc:
                raise ctx.fail(
                    "Invalid object key",
                    f"The key expression produced an invalid result: {exc}.",
                    expr.key_expr.s,
                    expr.key_expr.e,
                ) from None
            value = _element(expr.val_expr, child, failed)
            if type(key) is Unknown:
                known = False
                continue
            if expr.group:
                groups.setdefault(key, []).append(value)
            else:
                if key in obj:
                    raise ctx.fail(
                        "Duplicate object key",
                        f"Two different items produced the key {go_quote(key)} in this 'for' "
                        "expression. If duplicates are expected, use the ellipsis (...) after "
                        "the value expression to enable grouping by key.",
                        expr.key_expr.s,
                        expr.key_expr.e,
                    )
                obj[key] = value
        else:
            results.append(_element(expr.val_expr, child, failed))
    if not known:
        return Unknown()
    if make_obj:
        return dict(groups) if expr.group else obj
    return results


def _for_condition(expr: syn.ForExpr, ctx: Ctx) -> Any:
    """A 'for' expression's `if` value, as a bool (or an unknown one)."""
    assert expr.cond is not None
    cond = evaluate(expr.cond, ctx)
    if is_null(cond):
        raise ctx.fail(
            "Condition is null", "The value of the 'if' clause must not be null.", expr.cond.s, expr.cond.e
        )
    try:
        return convert(cond, BOOL)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid 'for' condition",
            f"The 'if' clause value is invalid: {exc}.",
            expr.cond.s,
            expr.cond.e,
        ) from None


class _Failed:
    """Stands for a 'for' element whose value expression failed: its unknown's type."""

    __slots__ = ("type",)

    def __init__(self, type_: Type) -> None:
        self.type = type_


def _element(expr: Any, ctx: Ctx, failed: list[HclDiagnostics]) -> Any:
    """A 'for' element's value; a failure is recorded in `failed` and stood in for."""
    try:
        return evaluate(expr, ctx)
    except HclDiagnostics as exc:
        failed.append(exc)
        return _Failed(_unknown_type(exc))


def _element_type(value: Any) -> Type:
    return value.type if type(value) is _Failed else type_of(value)


def _unknown_type(exc: HclDiagnostics) -> Type:
    """The type of the unknown a failed expression leaves (cty.DynamicVal when not known)."""
    return exc.unknown_type if isinstance(exc.unknown_type, Type) else DYNAMIC


def _branch_type(value: Any, err: HclDiagnostics | None) -> tuple[Type, bool]:
    """A branch's type for unification, and whether it is the untyped null."""
    if err is not None:
        return _unknown_type(err), False
    if value is None:
        return DYNAMIC, True
    return type_of(value), False


def _conditional(expr: syn.Conditional, ctx: Ctx) -> Any:
    true_err = false_err = None
    true_val = false_val = None
    try:
        true_val = evaluate(expr.true, ctx)
    except HclDiagnostics as exc:
        true_err = exc
    try:
        false_val = evaluate(expr.false, ctx)
    except HclDiagnostics as exc:
        false_err = exc
    tt, true_null = _branch_type(true_val, true_err)
    ft, false_null = _branch_type(false_val, false_err)
    result_type: Type | None
    if true_null:
        result_type = ft
    elif false_null:
        result_type = tt
    elif tt.kind == "dynamic" or ft.kind == "dynamic":
        result_type = DYNAMIC
    else:
        result_type = tt if tt == ft else unify([tt, ft])
        if result_type is None:
            raise ctx.fail(
                "Inconsistent conditional result types",
                "The true and false result expressions must have consistent types. "
                f"{_describe_mismatch(tt, ft)}.",
                expr.true.s,
                expr.false.e,
            )
    try:
        cond = evaluate(expr.cond, ctx)
    except HclDiagnostics as exc:
        exc.unknown_type = result_type
        raise
    if cond is None or type(cond) is Null:
        raise ctx.fail(
            "Null condition",
            "The condition value is null. Conditions must either be true or false.",
            expr.cond.s,
            expr.cond.e,
            result_type,
        )
    if type(cond) is Unknown:  # hcl drops both branches' errors here
        return Unknown(result_type or DYNAMIC, _not_null(true_val) and _not_null(false_val))
    try:
        cond = convert(cond, BOOL)
    except ConversionError:
        raise ctx.fail(
            "Incorrect condition type",
            "The condition expression must be of type bool.",
            expr.cond.s,
            expr.cond.e,
            result_type,
        ) from None
    if cond:
        if true_err is not None:
            raise true_err
        chosen, where = true_val, expr.true
        which = "true"
    else:
        if false_err is not None:
            raise false_err
        chosen, where = false_val, expr.false
        which = "false"
    if result_type is None or result_type.kind == "dynamic":
        return chosen
    if chosen is None:  # the null literal takes the other branch's type
        return null_of(result_type)
    try:
        return convert(chosen, result_type)
    except ConversionError as exc:
        raise ctx.fail(
            "Inconsistent conditional result types",
            f"The {which} result value has the wrong type: {exc}.",
            where.s,
            where.e,
        ) from None


def _not_null(value: Any) -> bool:
    """cty's DefinitelyNotNull: a known non-null value, or an unknown refined as not null."""
    t = type(value)
    if t is Unknown:
        return value.not_null  # type: ignore[no-any-return]
    return value is not None and t is not Null


def _describe_mismatch(tt: Type, ft: Type) -> str:
    """hclsyntax/expression.go describeConditionalTypeMismatch, for two types that do not unify."""
    if tt.kind == "object" and ft.kind == "object":
        for name in sorted(tt.attrs):
            if name not in ft.attrs:
                return (f"The 'true' value includes object attribute {go_quote(name)}, which is "
                        "absent in the 'false' value")
            if tt.attrs[name] != ft.attrs[name]:
                return (f"Type mismatch for object attribute {go_quote(name)}: "
                        f"{_describe_mismatch(tt.attrs[name], ft.attrs[name])}")
        for name in sorted(ft.attrs):
            if name not in tt.attrs:
                return (f"The 'false' value includes object attribute {go_quote(name)}, which is "
                        "absent in the 'true' value")
    elif tt.kind == "tuple" and ft.kind == "tuple":
        if len(tt.elems) != len(ft.elems):
            return (f"The 'true' tuple has length {len(tt.elems)}, but the 'false' tuple has "
                    f"length {len(ft.elems)}")
        for i, (te, fe) in enumerate(zip(tt.elems, ft.elems, strict=True)):
            if te != fe:
                return f"Type mismatch for tuple element {i}: {_describe_mismatch(te, fe)}"
    elif tt.kind == ft.kind and tt.kind in ("list", "set", "map"):
        assert tt.elem is not None and ft.elem is not None
        te, fe = tt.elem, ft.elem
        if te.kind == fe.kind and te.kind in ("object", "tuple"):
            return f"Mismatched {tt.kind} element types: {_describe_mismatch(te, fe)}"
    true_name, false_name = friendly_name(tt), friendly_name(ft)
    if true_name == false_name:
        return ("At least one deeply-nested attribute or element is not compatible across both "
                "the 'true' and the 'false' value")
    return f"The 'true' value is {true_name}, but the 'false' value is {false_name}"


_ARITH = {"+", "-", "*", "/", "%"}
_COMPARE = {"<", "<=", ">", ">="}


def _binary(expr: syn.BinaryOp, ctx: Ctx) -> Any:
    op = expr.op
    lhs = evaluate(expr.lhs, ctx)
    rhs = evaluate(expr.rhs, ctx)
    if op == "==" or op == "!=":
        same = equals(lhs, rhs)
        if type(same) is Unknown:
            return same
        return same if op == "==" else not same
    want = BOOL if op == "&&" or op == "||" else NUMBER
    try:
        lv = convert(lhs, want)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid operand", f"Unsuitable value for left operand: {exc}.", expr.lhs.s, expr.lhs.e
        ) from None
    try:
        rv = convert(rhs, want)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid operand", f"Unsuitable value for right operand: {exc}.", expr.rhs.s, expr.rhs.e
        ) from None
    if lv is None or rv is None or type(lv) is Null or type(rv) is Null:
        raise ctx.fail(
            "Operation failed", "Error during operation: argument must not be null.", expr.s, expr.e
        )
    if type(lv) is Unknown or type(rv) is Unknown:  # no short cut for && and || in Nomad's hcl
        return Unknown(BOOL if op not in _ARITH else NUMBER, True)
    if op == "&&":
        return lv and rv
    if op == "||":
        return lv or rv
    if op in _COMPARE:
        if op == "<":
            return lv < rv
        if op == "<=":
            return lv <= rv
        if op == ">":
            return lv > rv
        return lv >= rv
    try:
        return arithmetic(op, lv, rv)
    except FunctionError as exc:
        raise ctx.fail("Operation failed", f"Error during operation: {exc}.", expr.s, expr.e) from None


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """cty's Add/Subtract/Multiply/Divide/Modulo on numbers."""
    if op == "+":
        return normalize(a + b)
    if op == "-":
        return normalize(a - b)
    if op == "*":
        return normalize(a * b)
    if op == "/":
        if b == 0:
            if a == 0:
                raise FunctionError("can't divide zero by zero or infinity by infinity")
            return float("inf") if a > 0 else float("-inf")
        if type(a) is float or type(b) is float:
            return a / b
        return normalize(Fraction(a) / Fraction(b))
    if b == 0:
        return a  # cty's Modulo: x % 0 is x
    # cty's Modulo truncates toward zero, as Go's math.Mod does.
    if type(a) is float or type(b) is float:
        return float("nan")
    q = Fraction(a) / Fraction(b)
    trunc = int(q)
    return normalize(Fraction(a) - Fraction(b) * trunc)


def _unary(expr: syn.UnaryOp, ctx: Ctx) -> Any:
    value = evaluate(expr.operand, ctx)
    want = NUMBER if expr.op == "-" else BOOL
    try:
        v = convert(value, want)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid operand", f"Unsuitable value for unary operand: {exc}.", expr.operand.s, expr.operand.e
        ) from None
    if v is None or type(v) is Null:
        raise ctx.fail(
            "Operation failed", "Error during operation: argument must not be null.", expr.s, expr.e
        )
    if type(v) is Unknown:
        return Unknown(want, True)
    return normalize(-v) if expr.op == "-" else not v


def _call(expr: syn.FunctionCall, ctx: Ctx) -> Any:
    name = expr.name
    if ctx.functions is None:
        raise ctx.fail("Function calls not allowed", "Functions may not be called here.", expr.s, expr.e)
    if name in ("try", "can"):
        return _try_can(expr, ctx)
    fn = ctx.functions.get(name)
    if fn is None:
        if "::" in name:
            raise ctx.fail(
                "Call to unknown function",
                f"There are no functions in namespace {go_quote(name.rsplit('::', 1)[0] + '::')}.",
                expr.s,
                expr.name_e,
            )
        suggestion = name_suggestion(name, sorted(ctx.functions))  # Go: map order
        hint = f" Did you mean {go_quote(suggestion)}?" if suggestion else ""
        raise ctx.fail(
            "Call to unknown function",
            f"There is no function named {go_quote(name)}.{hint}",
            expr.s,
            expr.name_e,
        )
    ctx.depth += 1
    if ctx.depth > MAX_EVAL_DEPTH:
        raise ctx.fail("Nesting too deep", "Function calls are nested too deeply.", expr.s, expr.e)
    try:
        if name == "convert":
            return _convert_call(expr, ctx)
        arg_exprs = list(expr.args)
        expanded: list[Any] = []
        if expr.expand_final:  # hcl evaluates the expanding argument first
            last_expr = arg_exprs.pop()
            last = evaluate(last_expr, ctx)
            kind = type_of(last).kind
            if is_null(last) and kind in ("dynamic", "tuple", "list", "set"):
                raise ctx.fail(
                    "Invalid expanding argument value",
                    "The expanding argument (indicated by ...) must not be null.",
                    last_expr.s,
                    last_expr.e,
                )
            if kind not in ("dynamic", "tuple", "list", "set"):
                raise ctx.fail(
                    "Invalid expanding argument value",
                    "The expanding argument (indicated by ...) must be of a tuple, list, or set type.",
                    last_expr.s,
                    last_expr.e,
                )
            if type(last) is Unknown:
                return Unknown()
            expanded = list(last)
        check_arity(fn, name, len(arg_exprs) + len(expanded), expr, ctx)
        return call_function(fn, name, arg_exprs, expanded, expr, ctx)
    finally:
        ctx.depth -= 1


def _convert_arg(fn: Function, i: int, value: Any, arg: syn.Expr, ctx: Ctx) -> Any:
    param = fn.params[i] if i < len(fn.params) else fn.var_param
    assert param is not None
    try:
        return convert(value, param.type)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid function argument",
            f"Invalid value for {go_quote(param.name)} parameter: {exc}.",
            *start_range(arg),
        ) from None


def check_arity(fn: Function, name: str, count: int, expr: syn.FunctionCall, ctx: Ctx) -> None:
    """hcl's argument count checks, made before any argument is evaluated."""
    params = fn.params
    if count < len(params):
        missing = params[count]
        qual = " at least" if fn.var_param is not None else ""
        raise ctx.fail(
            "Not enough function arguments",
            f"Function {go_quote(name)} expects{qual} {len(params)} argument(s). Missing value "
            f"for {go_quote(missing.name)}.",
            expr.e - 1,
            expr.e,
        )
    if fn.var_param is None and count > len(params):
        raise ctx.fail(
            "Too many function arguments",
            f"Function {go_quote(name)} expects only {len(params)} argument(s).",
            *start_range(expr.args[min(len(params), len(expr.args) - 1)]),
        )


def call_function(
    fn: Function, name: str, arg_exprs: list[syn.Expr], expanded: list[Any], expr: syn.FunctionCall, ctx: Ctx
) -> Any:
    """Evaluate and convert each argument in turn (as hcl does), check nulls, run the function."""
    params = fn.params
    converted: list[Any] = []
    for i, arg in enumerate(arg_exprs):
        converted.append(_convert_arg(fn, i, evaluate(arg, ctx), arg, ctx))
    for value in expanded:
        converted.append(_convert_arg(fn, len(converted), value, expr.args[-1], ctx))
    unknown = False
    for i, value in enumerate(converted):
        t = type(value)
        if value is None or t is Null or t is Unknown:
            param = params[i] if i < len(params) else fn.var_param
            assert param is not None
            if t is not Unknown and not param.allow_null:
                raise ctx.fail(
                    "Invalid function argument",
                    f"Invalid value for {go_quote(param.name)} parameter: argument must not be null.",
                    *start_range(expr.args[min(i, len(expr.args) - 1)]),
                )
            if param.type.kind == "dynamic" and type_of(value).kind == "dynamic" and not param.allow_dynamic:
                # cty function.Call: a value of no type (the null literal, or an unknown of no
                # type) for a parameter that does not take one makes the result unknown, uncalled
                return Unknown()
            if t is Unknown:
                unknown = unknown or not param.allow_unknown
            elif t is Null:
                converted[i] = None
    if unknown:
        return Unknown(fn.returns, True)
    try:
        return fn.impl(*converted)
    except FunctionError as exc:
        if exc.arg is not None and exc.arg < len(expr.args):
            param = params[exc.arg] if exc.arg < len(params) else fn.var_param
            assert param is not None
            raise ctx.fail(
                "Invalid function argument",
                f"Invalid value for {go_quote(param.name)} parameter: {exc}.",
                *start_range(expr.args[exc.arg]),
            ) from None
        raise ctx.fail(
            "Error in function call", f"Call to function {go_quote(name)} failed: {exc}.", *start_range(expr)
        ) from None
    except HclDiagnostics:
        raise
    except (ValueError, ArithmeticError, RecursionError, OverflowError) as exc:
        raise ctx.fail(
            "Error in function call", f"Call to function {go_quote(name)} failed: {exc}.", *start_range(expr)
        ) from None


def _try_can(expr: syn.FunctionCall, ctx: Ctx) -> Any:
    if expr.name == "can":
        if len(expr.args) != 1:
            raise ctx.fail(
                "Not enough function arguments" if not expr.args else "Too many function arguments",
                'Function "can" expects 1 argument(s). Missing value for "expression".'
                if not expr.args
                else 'Function "can" expects only 1 argument(s).',
                expr.s,
                expr.e,
            )
        try:
            value = evaluate(expr.args[0], ctx)
        except HclDiagnostics:
            return False
        return True if is_wholly_known(value) else Unknown(BOOL)
    if not expr.args:
        raise ctx.fail(
            "Error in function call",
            'Call to function "try" failed: at least one argument is required.',
            expr.s,
            expr.e,
        )
    diags: list[Diagnostic] = []
    for arg in expr.args:
        try:
            value = evaluate(arg, ctx)
        except HclDiagnostics as exc:
            diags.extend(exc.diags)
            continue
        return value if is_wholly_known(value) else Unknown()
    raise ctx.fail(
        "Error in function call",
        'Call to function "try" failed: no expression succeeded:\n'
        + "\n".join(f"- {d.summary} (at {d.subject})\n  {d.detail}" for d in diags)
        + "\n\nAt least one expression must produce a successful result.",
        expr.s,
        expr.e,
    )


def _convert_call(expr: syn.FunctionCall, ctx: Ctx) -> Any:
    from nomadmesh.hcl._types import type_constraint

    if len(expr.args) != 2:
        raise ctx.fail(
            "Not enough function arguments" if len(expr.args) < 2 else "Too many function arguments",
            'Function "convert" expects 2 argument(s). Missing value for "type".'
            if len(expr.args) < 2
            else 'Function "convert" expects only 2 argument(s).',
            expr.s,
            expr.e,
        )
    value = evaluate(expr.args[0], ctx)
    want = type_constraint(expr.args[1], ctx)
    if value is None:
        return null_of(want)
    try:
        converted = convert(value, want)
    except ConversionError as exc:
        raise ctx.fail(
            "Invalid function argument",
            f'Invalid value for "value" parameter: {exc}.',
            *start_range(expr.args[0]),
        ) from None
    if type(value) is Unknown:  # hcl's ConvertFunc does not take unknowns: an unrefined unknown
        return Unknown(type_of(converted))
    return converted


def _unknown_as(
    fn: Callable[[Any, Ctx], Any], kind: Callable[[Any], Type | None]
) -> Callable[[Any, Ctx], Any]:
    """Errors inside `fn` leave hcl's unknown of the type `kind(expr)` (None: cty.DynamicVal)."""

    def wrapped(expr: Any, ctx: Ctx) -> Any:
        try:
            return fn(expr, ctx)
        except HclDiagnostics as exc:
            exc.unknown_type = kind(expr)
            raise

    return wrapped


def _op_type(expr: Any) -> Type:
    op = expr.op
    return NUMBER if op in _ARITH else BOOL  # unary "-" is in _ARITH too


def _dynamic(expr: Any) -> None:
    return None


_DISPATCH: dict[type, Callable[[Any, Ctx], Any]] = {
    syn.Literal: _literal,
    syn.TemplateExpr: _unknown_as(_template, lambda e: STRING),
    syn.TemplateWrap: _template_wrap,
    syn.TemplateJoin: _unknown_as(_template_join, lambda e: STRING),
    syn.ScopeTraversal: _unknown_as(_scope_traversal, _dynamic),
    syn.RelativeTraversal: _unknown_as(_relative_traversal, _dynamic),
    syn.IndexExpr: _unknown_as(_index_expr, _dynamic),
    syn.Splat: _splat,
    syn.AnonSymbol: _anon,
    syn.Parens: _parens,
    syn.TupleCons: _tuple,
    syn.ObjectCons: _object,
    syn.ForExpr: _for,
    syn.Conditional: _conditional,
    syn.BinaryOp: _unknown_as(_binary, _op_type),
    syn.UnaryOp: _unknown_as(_unary, _op_type),
    syn.FunctionCall: _unknown_as(_call, _dynamic),
}
