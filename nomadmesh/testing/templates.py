"""Nomad `template` blocks rendered locally: the consul-template subset nomadmesh's jobs use.

Go template syntax (`{{ }}`, `{{-`/`-}}` trimming, `if`/`else`/`range`/`end`, `$variables`, `.Field`,
pipelines with `|`) and the functions `env`, `service` (healthy instances: `.Address`, `.Port`, `.ID`,
`.Name`, `.Tags`, `.ServiceMeta`), `key`, `keyOrDefault`, `eq`, `ne`, `not`, `and`, `or`, `len`,
`toUpper`, `toLower`, evaluated against a Consul source. Anything else is a `TemplateError`
naming it, as a real client fails a template it cannot render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message says where and why."""


class ConsulSource(Protocol):
    """What templates read from Consul (the emulator provides exactly this)."""

    def healthy_instances(self, name: str) -> list[dict[str, Any]]:
        """Instances of a service whose checks pass."""

    def kv_get(self, key: str) -> bytes | None:
        """A KV value (None when missing)."""


def render(text: str, env: Mapping[str, str], consul: ConsulSource | None) -> str:
    """Render consul-template text with a task's environment and a Consul source."""
    try:
        tokens = _tokens(text)
        nodes, rest = _parse(tokens, 0, ())
        if rest != len(tokens):
            raise TemplateError("unexpected {{ end }} or {{ else }}")
        out: list[str] = []
        _Renderer(env, consul).run(nodes, {}, None, out)
    except RecursionError:
        raise TemplateError("template nested too deeply") from None
    return "".join(out)


# --- parsing ---------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||:=|,|[^\s()|,]+')


@attrs.frozen
class _Text:
    text: str


@attrs.frozen
class _Output:
    expr: tuple[str, ...]


@attrs.frozen
class _Block:
    kind: str  # "if" or "range"
    names: tuple[str, ...]
    expr: tuple[str, ...]
    body: tuple[object, ...]
    otherwise: tuple[object, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    """Text and action tokens, with `{{-` / `-}}` whitespace trimming applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        chunk = text[pos:match.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if match.group(1):
            chunk = chunk.rstrip()
        if chunk:
            out.append(("text", chunk))
        out.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = text[pos:]
    if trim_next:
        tail = tail.lstrip()
    if "{{" in tail:
        raise TemplateError("unclosed action: '{{' without '}}'")
    if tail:
        out.append(("text", tail))
    return out


def _parse(tokens: list[tuple[str, str]], i: int,
           stop: tuple[str, ...]) -> tuple[tuple[object, ...], int]:
    nodes: list[object] = []
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            nodes.append(_Text(value))
            i += 1
            continue
        words = _WORD.findall(value)
        head = words[0] if words else ""
        if head in stop:
            return tuple(nodes), i
        if head.startswith("/*"):
            i += 1
        elif head in ("if", "range"):
            names, expr = _declarations(words[1:]) if head == "range" else ((), tuple(words[1:]))
            body, i = _parse(tokens, i + 1, ("end", "else"))
            otherwise: tuple[object, ...] = ()
            if i < len(tokens) and _WORD.findall(tokens[i][1])[:1] == ["else"]:
                otherwise, i = _parse(tokens, i + 1, ("end",))
            if i >= len(tokens):
                raise TemplateError(f"{{{{ {head} }}}} without {{{{ end }}}}")
            nodes.append(_Block(head, names, expr, body, otherwise))
            i += 1
        elif head in ("end", "else"):
            return tuple(nodes), i
        else:
            nodes.append(_Output(tuple(words)))
            i += 1
    return tuple(nodes), i


def _declarations(words: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if ":=" not in words:
        return (), tuple(words)
    split = words.index(":=")
    return tuple(w for w in words[:split] if w != ","), tuple(words[split + 1:])


# --- evaluation ------------------------------------------------------------------------------------


class _Renderer:
    def __init__(self, env: Mapping[str, str], consul: ConsulSource | None) -> None:
        self.env = env
        self.consul = consul
        self.functions: dict[str, Callable[..., Any]] = {
            "env": lambda name: self.env.get(str(name), ""),
            "service": self._service,
            "key": self._key,
            "keyOrDefault": lambda key, default: self._kv(key, default),
            "eq": lambda a, *b: any(a == x for x in b),
            "ne": lambda a, b: a != b,
            "not": lambda a: not bool(a),
            "and": lambda *a: next((x for x in a if not bool(x)), _last("and", a)),
            "or": lambda *a: next((x for x in a if bool(x)), _last("or", a)),
            "len": len,
            "toUpper": lambda s: str(s).upper(),
            "toLower": lambda s: str(s).lower(),
        }

    def run(self, nodes: Sequence[object], scope: dict[str, Any], dot: Any,
            out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Output):
                out.append(_format(self.pipeline(list(node.expr), scope, dot)))
            elif isinstance(node, _Block):
                self.block(node, scope, dot, out)

    def block(self, node: _Block, scope: dict[str, Any], dot: Any, out: list[str]) -> None:
        value = self.pipeline(list(node.expr), scope, dot)
        if node.kind == "if":
            self.run(node.body if bool(value) else node.otherwise, scope, dot, out)
            return
        if value is not None and not isinstance(value, (dict, list, tuple, str)):
            raise TemplateError(f"range can't iterate over {_format(value)}")
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
        if not items:
            self.run(node.otherwise, scope, dot, out)
        for index, item in items:
            inner = dict(scope)
            if len(node.names) == 1:
                inner[node.names[0]] = item
            elif len(node.names) == 2:
                inner[node.names[0]], inner[node.names[1]] = index, item
            self.run(node.body, inner, item, out)

    def pipeline(self, words: list[str], scope: dict[str, Any], dot: Any) -> Any:
        commands: list[list[str]] = [[]]
        depth = 0
        for word in words:
            depth += word == "("
            depth -= word == ")"
            if word == "|" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(word)
        value: Any = None
        for n, command in enumerate(commands):
            value = self.command(command, scope, dot, (value,) if n else ())
        return value

    def command(self, words: list[str], scope: dict[str, Any], dot: Any,
                piped: tuple[Any, ...]) -> Any:
        if not words:
            raise TemplateError("empty command")
        args: list[Any] = []
        i = 1
        while i < len(words):
            if words[i] == "(":
                end = _closing(words, i)
                args.append(self.pipeline(words[i + 1:end], scope, dot))
                i = end + 1
            else:
                args.append(self.value(words[i], scope, dot))
                i += 1
        head = words[0]
        if head == "(":
            if _closing(words, 0) != len(words) - 1 or piped:
                raise TemplateError("a parenthesized pipeline cannot take arguments")
            return self.pipeline(words[1:-1], scope, dot)
        if head in self.functions:
            try:
                return self.functions[head](*args, *piped)
            except TypeError as exc:
                raise TemplateError(f"wrong arguments to {head}: {exc}") from None
        if args or piped:
            raise TemplateError(f"function {head!r} not defined")
        return self.value(head, scope, dot)

    def value(self, word: str, scope: dict[str, Any], dot: Any) -> Any:
        if word.startswith('"'):
            try:
                return json.loads(word)
            except ValueError:
                raise TemplateError("unterminated quoted string") from None
        if word.startswith("`"):
            return word[1:-1]
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word in ("true", "false"):
            return word == "true"
        if word.startswith("$"):
            name, _, path = word.partition(".")
            if name not in scope:
                raise TemplateError(f"undefined variable {name!r}")
            return _field(scope[name], path, word)
        if word == ".":
            return dot
        if word.startswith("."):
            return _field(dot, word[1:], word)
        if word in self.functions:
            return self.functions[word]()
        raise TemplateError(f"function {word!r} not defined")

    def _service(self, name: str) -> list[dict[str, Any]]:
        if self.consul is None:
            raise TemplateError(f'service "{name}": no Consul to read from')
        tag, _, service = str(name).rpartition(".")
        return [{"ID": s["ID"], "Name": s["Service"], "Address": s["Address"],
                 "Port": s["Port"], "Tags": list(s["Tags"]), "ServiceMeta": dict(s["Meta"])}
                for s in self.consul.healthy_instances(service)
                if not tag or tag in s["Tags"]]

    def _key(self, key: str) -> str:
        value = self._kv(key, None)
        if value is None:
            raise TemplateError(f'key "{key}" is not in Consul KV')
        return value

    def _kv(self, key: str, default: str | None) -> str | None:
        if self.consul is None:
            raise TemplateError(f'key "{key}": no Consul to read from')
        raw = self.consul.kv_get(str(key))
        # Go strings are bytes: a value that is not UTF-8 renders as it is (write the result
        # with errors="surrogateescape" to get its bytes back).
        return default if raw is None else raw.decode("utf-8", "surrogateescape")


def _last(name: str, args: tuple[Any, ...]) -> Any:
    if not args:
        raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
    return args[-1]


def _closing(words: list[str], start: int) -> int:
    depth = 0
    for i in range(start, len(words)):
        depth += words[i] == "("
        depth -= words[i] == ")"
        if depth == 0:
            return i
    raise TemplateError("unbalanced parentheses")


def _field(value: Any, path: str, word: str) -> Any:
    for part in filter(None, path.split(".")):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"can't evaluate field {part} in {word}")
        value = value[part]
    return value


def _format(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_format(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)
