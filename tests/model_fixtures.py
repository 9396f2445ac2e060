"""Jobs that use every field of the model, built from the field table with a seeded generator.

They are not meant to be valid (Nomad's register decodes and canonicalizes without validating);
they are meant to reach every struct, kind and default of Nomad's api package, with awkward values:
Unicode, quotes, runtime interpolations, zero values of pointer fields, big and negative numbers.
`scripts/regen-register-golden` sends them to `nomad-api-oracle register` and commits the answers.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from nomadmesh.model import Job
from nomadmesh.model._base import HOUR, INT_RANGES, SECOND, Kind, label_spec, specs

TEXTS = ("", "web", "a b", "x\"y", "ü€😀", "${NOMAD_PORT_http}", "line\nbreak", "SIGhup", "ß",
         "/local/conf", "http://example.com/a/b.tgz?x=1", "file", "signal", "0644", "..", "/")
KEYS = ("a", "b.c", "team", "ENV_VAR", "x-y", "ünï")


def random_job(seed: int) -> Job:
    """A job whose fields are drawn with `seed`; about half of the optional fields are set."""
    rng = random.Random(seed)
    return _object(Job, rng, 0)  # type: ignore[no-any-return]


def _object(cls: type, rng: random.Random, depth: int) -> Any:
    kwargs: dict[str, Any] = {}
    args: list[Any] = []
    for s in specs(cls):
        if s.label:
            args.append(rng.choice(("web", "api", "db", "cache")) + str(rng.randrange(100)))
            continue
        if rng.random() < 0.45:
            continue
        value = _value(s.kind, s.block, s.go_int, rng, depth)
        if value is not None:
            kwargs[s.name] = value
    return cls(*args, **kwargs)


def _value(kind: Kind, block: type | None, go_int: str, rng: random.Random, depth: int) -> Any:
    if kind is Kind.STR:
        return rng.choice(TEXTS)
    if kind is Kind.BOOL:
        return rng.random() < 0.5
    if kind is Kind.INT:
        low, high = INT_RANGES[go_int]
        return rng.choice((0, 1, 3, high, low, rng.randint(max(low, -1000), min(high, 1000))))
    if kind is Kind.DURATION:
        return rng.choice((0, SECOND, 90 * SECOND, HOUR, 1500))
    if kind is Kind.STRS:
        return [rng.choice(TEXTS) for _ in range(rng.randrange(3))]
    if kind is Kind.INTS:
        return [rng.randrange(65536) for _ in range(rng.randrange(3))]
    if kind is Kind.MAP:
        return {rng.choice(KEYS): rng.choice(TEXTS) for _ in range(rng.randrange(3))}
    if kind is Kind.MAP_STRS:
        return {rng.choice(KEYS): [rng.choice(TEXTS)] for _ in range(rng.randrange(3))}
    if kind is Kind.ANY:
        return _free(rng, 0)
    assert block is not None
    if depth > 12:
        return None
    if kind is Kind.BLOCK:
        return _object(block, rng, depth + 1)
    items = [_object(block, rng, depth + 1) for _ in range(rng.randrange(1, 3))]
    if kind is Kind.BLOCK_MAP:
        lab = label_spec(block)
        assert lab is not None
        return {getattr(item, lab.name): item for item in items}
    return items


def _free(rng: random.Random, depth: int) -> Any:
    """A free-form JSON object (task config): numbers Nomad keeps exactly (float64), nesting."""
    out: dict[str, Any] = {}
    for _ in range(rng.randrange(4)):
        choice = rng.randrange(6 if depth < 3 else 4)
        value: Any
        if choice == 0:
            value = rng.choice(TEXTS)
        elif choice == 1:
            value = rng.choice((0, -7, 2**53, 1.5, -0.25, True, False, None))
        elif choice == 2:
            value = [rng.choice(TEXTS) for _ in range(rng.randrange(3))]
        elif choice == 3:
            value = {}
        elif choice == 4:
            value = _free(rng, depth + 1)
        else:
            value = [_free(rng, depth + 1) for _ in range(rng.randrange(1, 3))]
        out[rng.choice(KEYS)] = value
    return out


def blocks(value: Any) -> list[Any]:
    """Every model object inside `value` (itself included), depth first, as often as it occurs."""
    out: list[Any] = []
    _collect(value, out)
    return out


def _collect(value: Any, out: list[Any]) -> None:
    if attrs.has(type(value)):
        out.append(value)
        for v in value.__dict__.values():
            _collect(v, out)
    elif type(value) is tuple or isinstance(value, dict):
        for v in (value.values() if isinstance(value, dict) else value):
            _collect(v, out)
