"""The fast decoders (nomadmesh.model._json.fast_decoder) agree with the thorough ones.

`decode` tries a class's fast decoder first, which builds no paths and collects no problems, and
runs the thorough decoder (which names every problem) only when the fast one refers the input to
it. These check that the fast one stores exactly what the thorough one stores, field for field and
in order, and refers everything the thorough one reports or treats specially.
"""

from __future__ import annotations

import json
import types
from typing import Any

import attrs
import pytest

from nomadmesh import Job, canonicalize
from nomadmesh.errors import ValidationError
from nomadmesh.model import _json
from nomadmesh.model._base import model_classes
from tests.model_fixtures import blocks, random_job
from tests.server_form import server_form

# Values of every JSON shape (and a few Python ones), put in every field of every block.
WRONG: tuple[Any, ...] = (
    None, True, False, 0, -1, 7, 2**63, 1.5, float("nan"), "", "x", "\ud800", "ü", [], [1],
    ["a", 2], ["é"], {}, {"a": 1}, {"a": "b"}, {"a": None}, {"a": [None]}, {1: "a"},
    types.MappingProxyType({"a": "b"}),
)


def _state(value: Any) -> Any:
    """A value's full internal state: every field of every block, in order, with its type."""
    t = type(value)
    if attrs.has(t):
        return t.__name__, [(k, _state(v)) for k, v in value.__dict__.items()]
    if t is tuple or isinstance(value, dict):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return t.__name__, [(k, _state(v)) for k, v in items]
    return t.__name__, value


def _thorough(cls: type, data: Any, strict: bool = True) -> tuple[Any, list[Any]]:
    problems: list[Any] = []
    unknown: list[Any] = []
    obj = _json.decoder(cls)(data, "x", problems, unknown)
    return obj, problems + (unknown if strict else [])


def _fast(cls: type, data: Any, strict: bool = True) -> Any:
    """The fast decoder's object, or None when it refers the input to the thorough decoder."""
    try:
        return _json.fast_decoder(cls)(data, not strict)
    except _json._Refer:
        return None


def _same_decoding(cls: type, data: Any, strict: bool = True) -> None:
    fast = _fast(cls, data, strict)
    thorough, problems = _thorough(cls, data, strict)
    if problems:
        assert fast is None, (cls.__name__, data, problems)
    elif fast is not None:
        assert _state(fast) == _state(thorough), cls.__name__
    else:  # referred without a problem: only for what the thorough decoder alone handles
        assert _has_mapping(data) or _has_unknown_key(cls, data), (cls.__name__, data)


def _has_mapping(data: Any) -> bool:
    if isinstance(data, types.MappingProxyType):
        return True
    if isinstance(data, dict):
        return any(_has_mapping(v) for v in data.values())
    return isinstance(data, list) and any(_has_mapping(v) for v in data)


def _has_unknown_key(cls: type, data: Any) -> bool:
    return isinstance(data, dict) and not data.keys() <= _json._known_keys(cls)


@pytest.mark.parametrize("seed", range(0, 200, 5))
def test_a_drawn_job_decodes_to_the_same_objects(seed: int) -> None:
    job = random_job(seed)
    for data in (job.to_api(), json.loads(json.dumps(job.to_api()))):
        fast = _fast(Job, data)
        assert fast is not None
        thorough, problems = _thorough(Job, data)
        assert not problems
        assert _state(fast) == _state(thorough)


@pytest.mark.parametrize("seed", range(1, 200, 10))
def test_what_a_get_returns_decodes_to_the_same_objects(seed: int) -> None:
    """The server's form: every field present, most null or zero."""
    data = json.loads(json.dumps(server_form(canonicalize(random_job(seed)))))
    fast = _fast(Job, data)
    assert fast is not None
    thorough, problems = _thorough(Job, data)
    assert not problems
    assert _state(fast) == _state(thorough)


def _samples() -> dict[type, list[dict[str, Any]]]:
    """Each block class's JSON, from the blocks of drawn jobs (a few per class)."""
    found: dict[type, list[dict[str, Any]]] = {}
    for seed in range(0, 60, 3):
        for block in blocks(random_job(seed)):
            items = found.setdefault(type(block), [])
            if len(items) < 3:
                items.append(_json.encode(block))
    return found


SAMPLES = _samples()


def test_the_samples_reach_most_classes() -> None:
    assert len(SAMPLES) >= len(model_classes(Job)) * 3 // 4


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_every_value_in_every_field(cls: type) -> None:
    """A wrong type, range or shape in any field is referred to the thorough decoder (which
    reports it); a value it accepts is stored as it stores it."""
    for data in SAMPLES[cls]:
        _same_decoding(cls, data)
        for key in [*data, *_json._known_keys(cls)]:
            for value in WRONG:
                changed = {**data, key: value}
                _same_decoding(cls, changed)
                _same_decoding(cls, changed, strict=False)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_unknown_and_case_folded_keys(cls: type) -> None:
    for data in SAMPLES[cls]:
        unknown = {**data, "Bogus": 1}
        assert _fast(cls, unknown) is None
        dropped = _fast(cls, unknown, strict=False)
        assert dropped is not None
        assert _state(dropped) == _state(_thorough(cls, unknown, strict=False)[0])
        for key in data:
            folded = {(k.lower() if k == key else k): v for k, v in data.items()}
            _same_decoding(cls, folded)
            _same_decoding(cls, folded, strict=False)


def test_decode_reports_what_the_thorough_decoder_finds() -> None:
    data = random_job(7).to_api()
    data["TaskGroups"] = [{"Name": "g", "Count": "2", "Tasks": [{"Name": "t", "Driver": 3}]}]
    with pytest.raises(ValidationError) as raised:
        Job.from_api(data, validate=False)
    assert [(p.path, p.message) for p in raised.value.problems] == [
        (f"job[{data['ID']}].group[g].count",
         "expected an integer from -9223372036854775808 to 9223372036854775807 (Go int), "
         "got str '2'"),
        (f"job[{data['ID']}].group[g].task[t].driver", "expected a string, got int 3"),
    ]


def test_a_mapping_that_is_not_a_dict_decodes_through_the_thorough_decoder() -> None:
    data = random_job(11).to_api()
    proxied = {**data, "TaskGroups": [types.MappingProxyType(g) for g in data["TaskGroups"]]}
    assert _fast(Job, proxied) is None
    assert _state(Job.from_api(proxied, validate=False)) == _state(Job.from_api(data, validate=False))


def test_config_nested_too_deep_is_a_validation_error() -> None:
    config: dict[str, Any] = {}
    inner = config
    for _ in range(500):
        inner["a"] = {}
        inner = inner["a"]
    data = {"ID": "deep", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Config": config}]}]}
    with pytest.raises(ValidationError, match="nested more than 100 levels deep"):
        Job.from_api(data, validate=False)
