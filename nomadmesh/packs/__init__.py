"""Packs: reusable, parameterized job packages in plain Python (Nomad Pack without templates)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from nomadmesh.model import Job
from nomadmesh.packs.pack import (
    META_DEPLOYMENT,
    META_PACK,
    META_PACK_VERSION,
    META_VARIABLES_DIGEST,
    Pack,
    dependency,
    dependency_deployment,
    pack,
)
from nomadmesh.packs.registry import FoundPack, find_pack, is_pack_ref, list_packs
from nomadmesh.packs.variables import VariableInfo, read_var_file, variable

__all__ = [
    "META_DEPLOYMENT",
    "META_PACK",
    "META_PACK_VERSION",
    "META_VARIABLES_DIGEST",
    "FoundPack",
    "Pack",
    "VariableInfo",
    "dependency",
    "dependency_deployment",
    "find_pack",
    "is_pack_ref",
    "list_packs",
    "pack",
    "read_var_file",
    "render_ref",
    "variable",
]


def render_ref(ref: str, *, variables: Mapping[str, Any] | None = None,
               var_files: Iterable[str | os.PathLike[str]] = (), deployment: str | None = None,
               env: Mapping[str, str] | None = None) -> list[Job]:
    """Find the pack `ref` names, resolve its variables (env default: os.environ), render it."""
    found = find_pack(ref)
    chosen = found.pack.resolve(values=variables, var_files=var_files, env=env)
    return found.pack.render(chosen, deployment=deployment)
