"""Properties of pack variables: every source carries any valid value through unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import attrs
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nomadmesh.packs import variable
from nomadmesh.packs.variables import resolve


@attrs.frozen(kw_only=True)
class Inner:
    port: int = variable(1)
    enabled: bool = variable(False)


@attrs.frozen(kw_only=True)
class Sample:
    name: str = variable("x")
    count: int = variable(0)
    ratio: float = variable(0.0)
    tags: list[str] = variable(factory=list)
    labels: dict[str, str] = variable(factory=dict)
    inner: Inner = variable(factory=Inner)


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
values = st.fixed_dictionaries({
    "name": texts,
    "count": st.integers(-10**12, 10**12),
    "ratio": st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: x + 0.0),
    "tags": st.lists(texts, max_size=4),
    "labels": st.dictionaries(texts, texts, max_size=3),
    "inner": st.fixed_dictionaries({"port": st.integers(0, 65535), "enabled": st.booleans()}),
})


def as_instance(data: dict[str, Any]) -> Sample:
    return Sample(**{**data, "inner": Inner(**data["inner"])})


@settings(max_examples=60, deadline=None)
@given(values, st.sampled_from([".json", ".yaml"]))
def test_values_written_to_a_var_file_resolve_to_themselves(data: dict[str, Any],
                                                            suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"vars{suffix}"
        f.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
        assert resolve(Sample, var_files=[f], env={}) == as_instance(data)


@settings(max_examples=60, deadline=None)
@given(values)
def test_values_given_as_command_line_text_resolve_to_themselves(data: dict[str, Any]) -> None:
    text = {"name": data["name"], "count": str(data["count"]), "ratio": repr(data["ratio"]),
            "tags": json.dumps(data["tags"]), "labels": json.dumps(data["labels"]),
            "inner.port": str(data["inner"]["port"]),
            "inner.enabled": str(data["inner"]["enabled"]).lower()}
    assert resolve(Sample, values=text, env={}) == as_instance(data)

