"""A whole job file as jobspec2.ParseWithConfig reads it: variables, locals, the job, normalization.

Order and rules from jobspec2 at aa026cc: parse.go `decode`, types.config.go `decodeBody`,
types.variables.go (declarations, `validation`, values from NOMAD_VAR_*, var files, `-var`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._body import View
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, Source, ZeroRange, go_quote
from nomadmesh.hcl._eval import Ctx, evaluate
from nomadmesh.hcl._functions import functions
from nomadmesh.hcl._jobspec import decode_job_block, normalize_job, undefined_variable
from nomadmesh.hcl._types import type_constraint
from nomadmesh.hcl._values import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    ConversionError,
    Type,
    convert,
    is_null,
    null_of,
    type_of,
)

VAR_ENV_PREFIX = "NOMAD_VAR_"
_BAD_IDENTIFIER = (
    "A name must start with a letter or underscore and may contain only letters, digits, "
    "underscores, and dashes."
)


class Variable:
    """A declared input variable: its type (None when neither typed nor defaulted) and values."""

    __slots__ = ("decl", "name", "type", "validations", "values")

    def __init__(self, name: str, decl: tuple[Source, int, int]) -> None:
        self.name = name
        self.type: Type | None = None
        self.values: list[tuple[str, Any, tuple[Source, int, int] | None]] = []
        self.validations: list[tuple[syn.Expr, str, tuple[int, int]]] = []
        self.decl = decl


class ParseConfig:
    """What jobspec2's ParseConfig holds: the file, var files, -var values and the environment."""

    def __init__(
        self,
        text: str,
        filename: str,
        *,
        base_dir: str,
        allow_fs: bool,
        arg_vars: Mapping[str, Any],
        var_files: Sequence[tuple[str, str]],
        environ: Mapping[str, str],
    ) -> None:
        self.text = text
        self.filename = filename
        self.base_dir = base_dir
        self.allow_fs = allow_fs
        self.arg_vars = arg_vars
        self.var_files = var_files
        self.environ = environ


def parse_body(text: str, filename: str) -> syn.Body:
    """hclsyntax.ParseConfig, or HCL's JSON syntax when the text starts with "{" (parse.go:194)."""
    src = Source(text, filename)
    if text.lstrip(" ").startswith("{"):
        from nomadmesh.hcl._json_syntax import parse_json_body

        return parse_json_body(src)
    return syn.parse_config(src)


def decode_file(config: ParseConfig) -> tuple[dict[str, Any], dict[str, Variable]]:
    """The job's API JSON and its declared variables; raises HclDiagnostics."""
    src = Source(config.text, config.filename)
    body = parse_body(config.text, config.filename)
    var_bodies = [(Source(t, name), parse_var_file(t, name)) for name, t in config.var_files]
    funcs = functions(config.base_dir, config.allow_fs)
    static = Ctx(src, {}, None)
    top = View(body, static, expand=False, as_attrs=False)
    _, blocks = top.content(
        ({}, {"job": ("name",), "locals": (), "variable": ("name",), "variables": ()}), partial=False
    )
    variables: dict[str, Variable] = {}
    for b in blocks:
        if b.type == "variable":
            _decode_variable_block(b.node, src, static, variables)
        elif b.type == "variables":
            for name, attr in b.view.just_attributes().items():
                if name in variables:
                    raise static.fail(
                        "Duplicate variable",
                        f"Duplicate {name} variable definition found.",
                        attr.node.s,
                        attr.node.name_e,
                    )
                value = evaluate(attr.expr, static)
                v = Variable(name, (src, attr.node.s, attr.node.e))
                v.values.append(("default", value, (src, attr.expr.s, attr.expr.e)))
                v.type = type_of(value)
                variables[name] = v
    local_exprs: list[tuple[str, syn.Expr]] = []
    seen_locals: set[str] = set()
    for b in blocks:
        if b.type == "locals":
            for name, attr in b.view.just_attributes().items():
                if name in seen_locals:
                    raise static.fail(
                        "Duplicate value in locals",
                        f"Duplicate {name} definition found.",
                        attr.node.s,
                        attr.node.name_e,
                    )
                seen_locals.add(name)
                local_exprs.append((name, attr.expr))
    _collect_values(config, variables, var_bodies)
    values = {name: _variable_value(v, funcs) for name, v in variables.items()}
    locals_: dict[str, Any] = {}
    ctx = Ctx(src, {"var": values, "local": locals_}, funcs, undefined_variable(config.text))
    _evaluate_locals(local_exprs, ctx, locals_)
    job_blocks = [b for b in blocks if b.type == "job"]
    if not job_blocks:
        raise HclDiagnostics([Diagnostic("Missing job block", "A job block is required", None)])
    if len(job_blocks) > 1:
        first, second = job_blocks[0], job_blocks[1]
        raise static.fail(
            "Duplicate job block",
            'Only one block of type "job" is allowed. Previous definition was at '
            f"{src.range(*first.def_range)}.",
            *second.def_range,
        )
    block = job_blocks[0]
    job, tasks, vault, secrets = decode_job_block(block.node, ctx)
    normalize_job(job, block.labels[0], tasks, vault, secrets)
    return job, variables


def parse_var_file(text: str, filename: str) -> syn.Body:
    try:
        return parse_body(text, filename)
    except HclDiagnostics as exc:
        raise HclDiagnostics(
            [Diagnostic(exc.diags[0].summary, exc.diags[0].detail, exc.diags[0].subject)],
        ) from None


def _decode_variable_block(
    block: syn.Block, src: Source, static: Ctx, variables: dict[str, Variable]
) -> None:
    """types.variables.go:214 decodeVariableBlock."""
    name = block.labels[0]
    if name in variables:
        raise HclDiagnostics(
            [Diagnostic("Duplicate variable", f"Duplicate {name} variable definition found.", None)]
        )
    view = View(block.body, static, expand=False, as_attrs=False)
    attrs, vblocks = view.content(
        ({"default": False, "description": False, "type": False}, {"validation": ()}), partial=False
    )
    if not syn_valid_identifier(name):
        raise static.fail("Invalid variable name", _BAD_IDENTIFIER, *block.label_ranges[0])
    v = Variable(name, (src, *block.def_range()))
    if "description" in attrs:
        desc = attrs["description"]
        value = evaluate(desc.expr, static)
        try:
            convert(value, STRING)
        except ConversionError as exc:
            raise static.fail(
                "Unsuitable value type", f"Unsuitable value: {exc}", desc.expr.s, desc.expr.e
            ) from None
    if "type" in attrs:
        v.type = type_constraint(attrs["type"].expr, static)
    if "default" in attrs:
        dexpr = attrs["default"].expr
        value = evaluate(dexpr, static)
        if v.type is not None:
            try:
                value = null_of(v.type) if value is None else convert(value, v.type)
            except ConversionError as exc:
                raise static.fail(
                    "Invalid default value for variable",
                    f"This default value is not compatible with the variable's type constraint: {exc}.",
                    dexpr.s,
                    dexpr.e,
                ) from None
        v.values.append(("default", value, (src, dexpr.s, dexpr.e)))
        if v.type is None:
            v.type = type_of(value)
    for vb in vblocks:
        vattrs, _ = vb.view.content(({"condition": True, "error_message": True}, {}), partial=False)
        cond = vattrs["condition"].expr
        good = 0
        for trav in _traversals(cond):
            if trav.root == "var" and trav.steps and trav.steps[0][0] == "attr" and trav.steps[0][1] == name:
                good += 1
                continue
            raise static.fail(
                "Invalid reference in variable validation",
                f"The condition for variable {go_quote(name)} can only refer to the variable "
                f"itself, using var.{name}.",
                trav.s,
                trav.e,
            )
        if good < 1:
            raise static.fail(
                "Invalid variable validation condition",
                f"The condition for variable {go_quote(name)} must refer to var.{name} in order "
                "to test incoming values.",
                cond.s,
                cond.e,
            )
        mexpr = vattrs["error_message"].expr
        message = evaluate(mexpr, static)
        try:
            message = convert(message, STRING)
        except ConversionError as exc:
            raise static.fail("Unsuitable value type", f"Unsuitable value: {exc}", mexpr.s, mexpr.e) from None
        if message is None or not str(message).strip():
            raise static.fail(
                "Invalid validation error message",
                "An empty or blank string is not a valid nor useful error message.",
                mexpr.s,
                mexpr.e,
            )
        v.validations.append((cond, message, vb.def_range))
    variables[name] = v


def syn_valid_identifier(name: str) -> bool:
    import re

    return re.fullmatch(r"[^\W\d][\w-]*", name) is not None


def _traversals(expr: syn.Expr) -> list[syn.ScopeTraversal]:
    """Every variable reference in an expression (hcl's Expression.Variables())."""
    out: list[syn.ScopeTraversal] = []
    bound: list[set[str]] = []

    def visit(node: Any) -> None:
        if isinstance(node, syn.ScopeTraversal):
            if not any(node.root in b for b in bound):
                out.append(node)
            return
        if isinstance(node, syn.ForExpr):
            visit(node.coll)
            bound.append({n for n in (node.key_var, node.val_var) if n})
            for part in (node.key_expr, node.val_expr, node.cond):
                if part is not None:
                    visit(part)
            bound.pop()
            return
        for slot in getattr(type(node), "__slots__", ()):
            child = getattr(node, slot, None)
            if isinstance(child, syn.Node):
                visit(child)
            elif isinstance(child, list):
                for item in child:
                    if isinstance(item, syn.Node):
                        visit(item)
                    elif isinstance(item, tuple):
                        for x in item:
                            if isinstance(x, syn.Node):
                                visit(x)

    visit(expr)
    return out


def _value_expression(text: str, vtype: Type | None, filename: str) -> tuple[Any, Source, syn.Expr | None]:
    """types.variables.go:650 expressionFromVariableDefinition: strings stay strings unless typed."""
    src = Source(text, filename)
    if vtype is None or vtype in (STRING, NUMBER):
        return text, src, None
    expr = syn.parse_expression(src)
    return evaluate(expr, Ctx(src, {}, None)), src, expr


def _collect_values(
    config: ParseConfig, variables: dict[str, Variable], var_bodies: list[tuple[Source, syn.Body]]
) -> None:
    """types.variables.go:460 collectInputVariableValues: env, then var files, then -var."""
    for key, raw in config.environ.items():
        if not key.startswith(VAR_ENV_PREFIX):
            continue
        name = key[len(VAR_ENV_PREFIX) :]
        variable = variables.get(name)
        if variable is None or not name:
            continue
        value, src, expr = _value_expression(raw, variable.type, f"<value for var.{name} from env>")
        value = _typed(
            variable,
            value,
            src,
            expr,
            "Invalid value for variable",
            f"The value for {name} is not compatible with the variable's type constraint",
        )
        variable.values.append(("env", value, (src, 0, len(raw)) if expr is not None else None))
    for src, body in var_bodies:
        for block in _declared_blocks(body):
            if block.type == "variable" and len(block.labels) == 1:
                name = block.labels[0]
                raise HclDiagnostics(
                    [
                        Diagnostic(
                            "Variable declaration in a .var file",
                            "A .var file is used to assign values to variables that have already been "
                            "declared in job files, not to declare new variables. To declare variable "
                            f"{go_quote(name)}, place this block in one of your job files\n\nTo set a value "
                            "for this variable in "
                            f"{src.filename}, use the definition syntax instead:\n    {name} = <value>",
                            src.range(block.s, block.type_e),
                        )
                    ]
                )
        view = View(body, Ctx(src, {}, None), expand=False, as_attrs=False)
        for name, attr in view.just_attributes().items():
            variable = variables.get(name)
            if variable is None:
                raise HclDiagnostics(
                    [
                        Diagnostic(
                            "Undefined variable",
                            f"A {go_quote(name)} variable was set but was not found in known variables. "
                            f"To declare variable {go_quote(name)}, place this block in your job files",
                            None,
                        )
                    ]
                )
            value = evaluate(attr.expr, attr.ctx)
            value = _typed(
                variable,
                value,
                src,
                attr.expr,
                "Invalid value for variable",
                f"The value for {name} is not compatible with the variable's type constraint",
            )
            variable.values.append(("varfile", value, (src, attr.expr.s, attr.expr.e)))
    for name, raw in config.arg_vars.items():
        variable = variables.get(name)
        if variable is None:
            raise HclDiagnostics(
                [
                    Diagnostic(
                        "Undefined -var variable",
                        f"A {go_quote(name)} variable was passed in the command line but was not found "
                        f"in known variables. To declare variable {go_quote(name)}, place this block in "
                        "your job file",
                        None,
                    )
                ]
            )
        if isinstance(raw, str):
            value, src, expr = _value_expression(raw, variable.type, f"<value for var.{name} from arguments>")
        else:
            from nomadmesh.hcl._eval import FunctionError
            from nomadmesh.hcl._functions import from_python

            try:
                value, src, expr = from_python(raw, f"var.{name}"), Source("", "<arguments>"), None
            except FunctionError as exc:
                raise HclDiagnostics(
                    [Diagnostic("Invalid argument value for -var variable", f"{exc}.", ZeroRange())]
                ) from None
        value = _typed(
            variable,
            value,
            src,
            expr,
            "Invalid argument value for -var variable",
            f"The received arg value for {name} is not compatible with the variable's type constraint",
        )
        variable.values.append(("cmd", value, (src, expr.s, expr.e) if expr is not None else None))


def _declared_blocks(body: syn.Body) -> list[syn.Block]:
    """The `variable` blocks of a var file (jobspec2 asks with PartialContent, ignoring its errors)."""
    from nomadmesh.hcl._json_syntax import JsonBody

    if isinstance(body, JsonBody):
        try:
            return body.split({}, {"variable": ("name",)}, frozenset(), True)[1]
        except HclDiagnostics:
            return []
    return body.blocks


def _typed(
    variable: Variable, value: Any, src: Source, expr: syn.Expr | None, summary: str, detail: str
) -> Any:
    if variable.type is None:
        return value
    if value is None:  # a typed variable's null is a null of its type
        return null_of(variable.type)
    try:
        return convert(value, variable.type)
    except ConversionError as exc:
        subject = src.range(expr.s, expr.e) if expr is not None else ZeroRange()
        raise HclDiagnostics([Diagnostic(summary, f"{detail}: {exc}.", subject)]) from None


def _variable_value(v: Variable, funcs: dict[str, Any]) -> Any:
    """types.variables.go:140 Variable.Value, with its validation rules."""
    if not v.values:
        raise HclDiagnostics(
            [
                Diagnostic(
                    f"Unset variable {go_quote(v.name)}",
                    "A used variable must be set or have a default value; see "
                    "https://developer.hashicorp.com/nomad/docs/reference/hcl2/variables  for details.",
                    None,
                )
            ]
        )
    origin, value, where = v.values[-1]
    if v.validations:
        decl_src = v.decl[0]
        vctx = Ctx(decl_src, {"var": {v.name: value}}, functions("", False))
        for cond, message, def_range in v.validations:
            result = evaluate(cond, vctx)
            if is_null(result):
                raise vctx.fail(
                    "Invalid variable validation result",
                    "Validation condition expression must return either true or false, not null.",
                    cond.s,
                    cond.e,
                )
            try:
                result = convert(result, BOOL)
            except ConversionError as exc:
                raise vctx.fail(
                    "Invalid variable validation result",
                    f"Invalid validation condition result value: {exc}.",
                    cond.s,
                    cond.e,
                ) from None
            if result is False:
                subject = (
                    where[0].range(where[1], where[2]) if where is not None else decl_src.range(*def_range)
                )
                raise HclDiagnostics(
                    [
                        Diagnostic(
                            f"Invalid value for {origin} variable",
                            f"{message}\n\nThis was checked by the validation rule at "
                            f"{decl_src.range(*def_range)}.",
                            subject,
                        )
                    ]
                )
    return value


def _evaluate_locals(exprs: list[tuple[str, syn.Expr]], ctx: Ctx, locals_: dict[str, Any]) -> None:
    """types.config.go:198 evaluateLocalVariables: retry until each local's references resolve."""
    pending = list(exprs)
    retry = 0
    previous = 0
    while pending:
        name, expr = pending[0]
        try:
            locals_[name] = evaluate(expr, ctx)
            retry = 0
        except HclDiagnostics:
            if len(pending) == 1:
                raise
            if previous == len(pending):
                if retry == 100:
                    raise
                retry += 1
            previous = len(pending)
            pending.append(pending[0])
        pending.pop(0)


__all__ = ["DYNAMIC", "ParseConfig", "Variable", "decode_file"]
