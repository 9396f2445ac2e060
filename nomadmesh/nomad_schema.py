"""Nomad's `api` structs as data: every field reachable from `api.Job`, from Nomad's own code.

`nomadmesh/data/nomad_api_schema.json` is what `nomad-api-oracle schema` prints (Nomad 2.0.6's
`api` package, compiled unmodified; regenerate with `scripts/regen-schema`). It is the source of
truth for JSON keys, HCL names and JSON shapes (a Go map is a JSON object, a slice a list). The
model and the HCL codec read it through this module; the Nomad emulator reads the file on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

SCHEMA_FILE = "nomad_api_schema.json"


@dataclass(frozen=True, slots=True)
class GoField:
    """One field of a Go struct in Nomad's `api` package."""

    name: str  # the Go field name
    json: str  # its JSON key (Nomad's api package serializes Go names)
    hcl: str  # its jobspec name from the `hcl` tag, "" when HCL cannot set it
    hcl_kind: str  # "label", "block", "optional", "remain" or "" (a plain attribute)
    go_type: str  # e.g. "*time.Duration", "map[string]*api.VolumeRequest"
    kind: str  # "ptr", "slice", "map", "struct", "interface" or "scalar"
    elem: str  # the api struct it holds ("" for scalars and scalar collections)
    omitempty: bool
    skip: bool  # `hcl:"-"` or `json:"-"`: never decoded from a jobspec

    @property
    def is_duration(self) -> bool:
        return self.go_type.lstrip("*[]") == "time.Duration"


@dataclass(frozen=True, slots=True)
class Schema:
    """Every api struct by name, its fields in Go declaration order."""

    nomad_version: str
    structs: Mapping[str, tuple[GoField, ...]]

    def struct(self, name: str) -> tuple[GoField, ...]:
        return self.structs[name]

    def field(self, struct: str, json_key: str) -> GoField | None:
        for f in self.structs[struct]:
            if f.json == json_key:
                return f
        return None


def _field(raw: Mapping[str, object]) -> GoField:
    tag = str(raw["hcl"])
    hcl, _, hcl_kind = tag.partition(",")
    return GoField(
        name=str(raw["name"]),
        json=str(raw["json"]),
        hcl=hcl,
        hcl_kind=hcl_kind,
        go_type=str(raw["type"]),
        kind=str(raw["kind"]),
        elem=str(raw["elem"]),
        omitempty=bool(raw["omitempty"]),
        skip=bool(raw["skip"]),
    )


@cache
def schema() -> Schema:
    """The committed schema (read once)."""
    text = resources.files("nomadmesh.data").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    structs = {
        name: tuple(_field(f) for f in (fields or ()))
        for name, fields in data["structs"].items()
    }
    return Schema(nomad_version=str(data["nomad"]), structs=structs)
