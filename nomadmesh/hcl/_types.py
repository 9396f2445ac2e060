"""HCL type expressions (`string`, `list(number)`, `object({a = string})`), as hcl's typeexpr reads
them for variable `type` arguments and the `convert` function."""

from __future__ import annotations

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._diag import go_quote
from nomadmesh.hcl._eval import Ctx, object_key
from nomadmesh.hcl._values import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    Type,
    list_of,
    map_of,
    object_of,
    set_of,
    tuple_of,
)

_INVALID = "Invalid type specification"
_KEYWORDS = {"string": STRING, "number": NUMBER, "bool": BOOL, "any": DYNAMIC}


def type_constraint(expr: syn.Expr, ctx: Ctx, *, allow_optional: bool = False) -> Type:
    """The type an expression names; raises hcl's "Invalid type specification" diagnostics."""
    from nomadmesh.hcl._json_syntax import JValue

    if isinstance(expr, JValue) and expr.kind == "string":  # HCL's JSON syntax: the string is the expression
        from nomadmesh.hcl._diag import Source

        inner = syn.parse_expression(Source(expr.value, ctx.src.filename))
        return type_constraint(inner, ctx, allow_optional=allow_optional)
    if type(expr) is syn.ScopeTraversal and not expr.steps:
        kw = expr.root
        if kw in _KEYWORDS:
            return _KEYWORDS[kw]
        if kw in ("list", "map", "set"):
            raise ctx.fail(
                _INVALID,
                f"The {kw} type constructor requires one argument specifying the element type.",
                expr.s,
                expr.e,
            )
        if kw == "object":
            raise ctx.fail(
                _INVALID,
                "The object type constructor requires one argument specifying the "
                "attribute types and values as a map.",
                expr.s,
                expr.e,
            )
        if kw == "tuple":
            raise ctx.fail(
                _INVALID,
                "The tuple type constructor requires one argument specifying the element types as a list.",
                expr.s,
                expr.e,
            )
        raise ctx.fail(
            _INVALID, f"The keyword {go_quote(kw)} is not a valid type specification.", expr.s, expr.e
        )
    if type(expr) is not syn.FunctionCall:
        raise ctx.fail(
            _INVALID,
            "A type specification is either a primitive type keyword (bool, number, "
            "string) or a complex type constructor call, like list(string).",
            expr.s,
            expr.e,
        )
    name = expr.name
    if name in ("string", "number", "bool"):
        raise ctx.fail(
            _INVALID, f"Primitive type keyword {go_quote(name)} does not expect arguments.", expr.s, expr.e
        )
    if name == "any":
        raise ctx.fail(
            _INVALID, f"Type constraint keyword {go_quote(name)} does not expect arguments.", expr.s, expr.e
        )
    if len(expr.args) != 1:
        if name in ("list", "map", "set"):
            raise ctx.fail(
                _INVALID,
                f"The {name} type constructor requires one argument specifying the element type.",
                expr.s,
                expr.e,
            )
        if name == "object":
            raise ctx.fail(
                _INVALID,
                "The object type constructor requires one argument specifying the "
                "attribute types and values as a map.",
                expr.s,
                expr.e,
            )
        if name == "tuple":
            raise ctx.fail(
                _INVALID,
                "The tuple type constructor requires one argument specifying the element types as a list.",
                expr.s,
                expr.e,
            )
    arg = expr.args[0] if expr.args else expr
    if name in ("list", "map", "set"):
        elem = type_constraint(arg, ctx)
        return {"list": list_of, "map": map_of, "set": set_of}[name](elem)
    if name == "object":
        if type(arg) is not syn.ObjectCons:
            raise ctx.fail(
                _INVALID,
                "Object type constructor requires a map whose keys are attribute names "
                "and whose values are the corresponding attribute types.",
                arg.s,
                arg.e,
            )
        attrs: dict[str, Type] = {}
        optional: set[str] = set()
        for key, value in arg.items:
            attr = key.literal_name()
            if attr is None:
                attr = object_key(key, ctx)
            if attr in attrs:
                raise ctx.fail(_INVALID, "Object constructor map keys must be unique.", key.s, key.e)
            if type(value) is syn.FunctionCall and value.name == "optional":
                if not allow_optional:
                    raise ctx.fail(
                        _INVALID,
                        "Optional attribute modifier is only for type constraints, not for exact types.",
                        value.s,
                        value.name_e,
                    )
                if len(value.args) != 1:
                    raise ctx.fail(
                        _INVALID,
                        "Optional attribute modifier expects only one argument: the attribute type.",
                        value.s,
                        value.e,
                    )
                attrs[attr] = type_constraint(value.args[0], ctx, allow_optional=allow_optional)
                optional.add(attr)
            else:
                attrs[attr] = type_constraint(value, ctx, allow_optional=allow_optional)
        return object_of(attrs, frozenset(optional))
    if name == "tuple":
        if type(arg) is not syn.TupleCons:
            raise ctx.fail(
                _INVALID,
                "The tuple type constructor requires one argument specifying the element types as a list.",
                arg.s,
                arg.e,
            )
        return tuple_of([type_constraint(x, ctx, allow_optional=allow_optional) for x in arg.exprs])
    raise ctx.fail(_INVALID, f"Keyword {go_quote(name)} is not a valid type constructor.", expr.s, expr.e)
