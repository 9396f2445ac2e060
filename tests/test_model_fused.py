"""The canonical passes' compiled copies (nomadmesh.model._copy) store exactly what `evolve` stores.

The canonical forms themselves are checked against Nomad by the golden register tests
(tests/test_model_oracle.py, tests/test_golden*.py); this checks the copying machinery they use.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_model_construction import CLASSES, SAMPLES, VALUES, _same

from nomadmesh.model import Job, _json, evolve, resources, server, task
from nomadmesh.model._base import go_quote
from nomadmesh.model._base import overlay as _base_overlay
from nomadmesh.model._copy import DECLARED, compile_copier, copier, overlay
from tests.model_fixtures import blocks, random_job


def _instance(cls: type) -> Any:
    return cls(*("label" for a in attrs.fields(cls) if not a.kw_only))


def _outcome(make: Any) -> Any:
    try:
        return make().__dict__
    except Exception as error:
        return type(error)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_compiled_copy_is_evolve(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(CLASSES))
    obj = _instance(cls)
    names = [a.name for a in attrs.fields(cls)]
    chosen = tuple(data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
                   if names else ())
    values = [data.draw(VALUES) for _ in chosen]
    expected = _outcome(lambda: evolve(obj, **dict(zip(chosen, values, strict=True))))
    got = _outcome(lambda: compile_copier(cls, chosen)(obj, *values))
    if isinstance(expected, type):
        assert got is expected
    else:
        assert not isinstance(got, type), got
        assert _same(got, expected), (chosen, values)
        assert got is not obj.__dict__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_sample_in_every_field(cls: type) -> None:
    obj = _instance(cls)
    for a in attrs.fields(cls):
        copy = compile_copier(cls, (a.name,))
        for value in SAMPLES:
            expected = _outcome(lambda: evolve(obj, **{a.name: value}))  # noqa: B023
            got = _outcome(lambda: copy(obj, value))  # noqa: B023
            if isinstance(expected, type):
                assert got is expected, (a.name, value)
            else:
                assert _same(got, expected), (a.name, value)


def test_an_unknown_field_is_refused_as_evolve_refuses_it() -> None:
    obj = task.Task("t")
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        compile_copier(task.Task, ("nope",))(obj, 1)


def test_a_subclass_is_copied_by_evolve() -> None:
    @attrs.frozen(slots=False)
    class Special(task.Template):
        pass

    obj = Special(data="x")
    copy = compile_copier(task.Template, ("data",))(obj, "y")
    assert type(copy) is Special
    assert copy.data == "y"


def test_the_stand_in_compiles_once_and_replaces_itself() -> None:
    namespace: dict[str, Any] = {}
    namespace["c"] = first = copier(resources.LogConfig, ("max_files",), namespace, "c")
    one = namespace["c"](resources.LogConfig(), 3)
    assert namespace["c"] is not first
    assert namespace["c"](resources.LogConfig(max_files=1), 4).max_files == 4
    assert one.max_files == 3


def test_the_canonicalize_methods_declare_their_copies() -> None:
    declared = {(cls.__name__, names[0]) for cls, names in DECLARED}
    assert {("Template", "source"), ("Task", "resources"), ("Resources", "cores"),
            ("LogConfig", "max_files"), ("EphemeralDisk", "sticky"), ("Group", "count"),
            ("Check", "check_restart"), ("Service", "name")} <= declared


@pytest.mark.parametrize(("cls", "names"), DECLARED, ids=[c.__name__ for c, _ in DECLARED])
def test_each_declared_copy_names_fields_of_its_class(cls: type, names: tuple[str, ...]) -> None:
    assert set(names) <= {a.name for a in attrs.fields(cls)}
    obj = _instance(cls)
    values = [getattr(obj, n) for n in names]
    assert _same(compile_copier(cls, names)(obj, *values).__dict__,
                 evolve(obj, **dict(zip(names, values, strict=True))).__dict__)


@pytest.mark.parametrize("seed", range(0, 120, 3))
def test_a_decoded_block_is_what_its_constructor_stores(seed: int) -> None:
    """The decoders build an object's dict themselves (its constructor's defaults, then each
    decoded field through its converter): the same dict, in the same order, as the constructor
    called with the decoded fields, for every block of a drawn job."""
    found = blocks(Job.from_api(random_job(seed).to_api(), validate=False))
    assert found
    for block in found:
        cls = type(block)
        data = _json.encode(block)
        direct, problems_direct, unknown_direct = _decode(_json.decoder(cls), data)
        built, problems, unknown = _decode(_json._compile_decoder(cls, direct=False), data)
        assert (problems_direct, unknown_direct) == (problems, unknown)
        assert type(direct) is cls
        assert _same(direct.__dict__, built.__dict__), cls.__name__


def _decode(decoder: Any, data: Any) -> tuple[Any, list[Any], list[Any]]:
    problems: list[Any] = []
    unknown: list[Any] = []
    return decoder(data, "x", problems, unknown), problems, unknown


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_the_server_pass_quotes_as_go_quote(text: str) -> None:
    assert server._quote(text) == go_quote(text)


def test_the_quote_fast_path_agrees_on_every_character() -> None:
    for code in range(0x110000):
        if not 0xD800 <= code < 0xE000:
            assert server._quote(chr(code) + "a") == go_quote(chr(code) + "a"), hex(code)


def _drawn(cls: type, data: st.DataObject) -> Any:
    """An instance of `cls` with drawn values in drawn fields, or None if its converters refuse."""
    fields = attrs.fields(cls)
    chosen = data.draw(st.lists(st.sampled_from([a for a in fields if a.kw_only] or [None]),
                                unique=True))
    try:
        return cls(*("label" for a in fields if not a.kw_only),
                   **{a.alias: data.draw(VALUES) for a in chosen if a is not None})
    except Exception:
        return None


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_compiled_overlay_is_overlay(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(CLASSES))
    base, override = _drawn(cls, data), _drawn(cls, data)
    assume(base is not None and override is not None)
    expected = _outcome(lambda: _base_overlay(base, override))
    got = _outcome(lambda: overlay(base, override))
    if isinstance(expected, type):
        assert got is expected
        return
    assert _same(got, expected)
    assert (overlay(base, override) is base) == (_base_overlay(base, override) is base)
    assert overlay(None, override) is override
    assert overlay(base, None) is base
