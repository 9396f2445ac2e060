"""The model's compiled constructors build exactly what attrs' own `__init__` builds."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomadmesh.model import Job, Port, Submission, Task, model_classes
from nomadmesh.model._base import EMPTY, FrozenDict, attrs_constructor

CLASSES = (*model_classes(Job), Submission)

# Values of every shape a caller may pass, including the ones converters change or keep for
# validation to name: Go zeros, lists for tuples, plain dicts for maps, duration strings.
SAMPLES = [
    None, "", 0, False, True, 0.0, 1.5, 7, -3, 2**70, "x", "10s", "1h30m", "bad duration",
    timedelta(seconds=90), [], (), ["a", "b"], ("a",), [Port("http")],
    (Port("a"), Port("b", static=8080)), {}, {"k": "v"}, {"n": {"deep": [1, 2]}}, {1: "one"},
    FrozenDict({"k": "v"}), EMPTY, b"bytes", frozenset({"s"}), Port("db"), Task("t"),
]
VALUES = st.sampled_from(SAMPLES)


def _with_attrs(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    obj = object.__new__(cls)
    attrs_constructor(cls)(obj, *args, **kwargs)
    return obj


def _check(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        expected = _with_attrs(cls, args, kwargs)
    except Exception as error:  # the compiled constructor must refuse the same way
        with pytest.raises(type(error)):
            cls(*args, **kwargs)
        return
    built = cls(*args, **kwargs)
    assert _same(built.__dict__, expected.__dict__), (args, kwargs)


def _same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down (a tuple is not a list here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def test_every_model_class_has_a_compiled_constructor() -> None:
    assert all(cls.__init__ is not attrs_constructor(cls) for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_signature_is_attrs_signature(cls: type) -> None:
    assert inspect.signature(cls.__init__) == inspect.signature(attrs_constructor(cls))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_field_stores_what_attrs_stores_for_every_sample(cls: type) -> None:
    fields = attrs.fields(cls)
    labels = [a for a in fields if not a.kw_only]
    for value in SAMPLES:
        _check(cls, tuple(value for _ in labels), {})
        for a in fields:
            if a.kw_only:
                _check(cls, tuple("label" for _ in labels), {a.alias: value})


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_combination_stores_what_attrs_stores(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(CLASSES))
    fields = attrs.fields(cls)
    args = tuple(data.draw(VALUES) for a in fields if not a.kw_only)
    chosen = data.draw(st.lists(st.sampled_from([a for a in fields if a.kw_only] or [None]),
                                unique=True))
    _check(cls, args, {a.alias: data.draw(VALUES) for a in chosen if a is not None})


def test_unknown_and_missing_arguments_are_refused_as_attrs_refuses() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Task("t", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'name'"):
        Task()  # type: ignore[call-arg]
