"""`evolve` copies store exactly what the class's attrs `__init__` stores for the merged fields."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model_construction import CLASSES, SAMPLES, VALUES, _same, _with_attrs

from nomadmesh.model import Job, Task, evolve
from nomadmesh.model._base import freeze, thaw


def _built(cls: type, data: st.DataObject) -> tuple[Any, dict[str, Any]] | None:
    """An instance of `cls` built from drawn values, with the keyword arguments it was built from."""
    fields = attrs.fields(cls)
    args = tuple(data.draw(VALUES) for a in fields if not a.kw_only)
    kwargs = {a.alias: data.draw(VALUES) for a in data.draw(st.lists(
        st.sampled_from([a for a in fields if a.kw_only] or [None]), unique=True)) if a is not None}
    try:
        obj = cls(*args, **kwargs)
    except Exception:  # a value this class's converters refuse: draw again
        return None
    return obj, {a.alias: getattr(obj, a.name) for a in fields}


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_copy_stores_what_attrs_stores_for_the_merged_fields(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(CLASSES))
    built = _built(cls, data)
    if built is None:
        return
    obj, merged = built
    names = [a.name for a in attrs.fields(cls)]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    changes = {n: data.draw(VALUES) for n in chosen}
    try:
        expected = _with_attrs(cls, (), {**merged, **changes})
    except Exception as error:  # the copy must refuse the same way
        with pytest.raises(type(error)):
            evolve(obj, **changes)
        return
    copy = evolve(obj, **changes)
    assert type(copy) is cls
    assert _same(copy.__dict__, expected.__dict__), changes
    assert copy.__dict__ is not obj.__dict__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_sample_in_every_field(cls: type) -> None:
    fields = attrs.fields(cls)
    obj = cls(*("label" for a in fields if not a.kw_only))
    base = {a.alias: getattr(obj, a.name) for a in fields}
    for a in fields:
        for value in SAMPLES:
            try:
                expected = _with_attrs(cls, (), {**base, a.alias: value})
            except Exception as error:
                with pytest.raises(type(error)):
                    evolve(obj, **{a.name: value})
                continue
            assert _same(evolve(obj, **{a.name: value}).__dict__, expected.__dict__), (a.name, value)


def test_the_original_is_unchanged_and_copies_are_frozen() -> None:
    task = Task("web", env={"A": "1"})
    copy = evolve(task, env={"B": "2"}, user="nobody")
    assert task.env == {"A": "1"} and task.user is None
    assert copy.env == {"B": "2"} and copy.user == "nobody" and copy.name == "web"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        copy.user = "root"  # type: ignore[misc]
    assert evolve(copy, env={"A": "1"}, user=None) == task
    assert hash(evolve(task)) == hash(task)


def test_an_unknown_field_is_refused_as_the_constructor_refuses() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        evolve(Task("t"), colour="red")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        evolve(Job("j"), colour="red")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20)


def _plain(value: Any) -> bool:
    """Only dicts, lists and atoms, all the way down (no FrozenDict, no tuple)."""
    if isinstance(value, dict):
        return type(value) is dict and all(map(_plain, value.values()))
    if isinstance(value, (list, tuple)):
        return type(value) is list and all(map(_plain, value))
    return True


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_thaw_returns_the_plain_value_that_was_frozen(value: Any) -> None:
    thawed = thaw(freeze(value))
    assert thawed == value and _plain(thawed)
