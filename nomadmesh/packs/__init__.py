"""Packs: reusable, parameterized job packages in plain Python (Nomad Pack without templates).

The names below are imported on first use (PEP 562): the loader asks `is_pack_ref` of every job
file, and that must not cost the import of the model, YAML or the installed distributions.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nomadmesh.model import Job
    from nomadmesh.packs.definition import (
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

_EXPORTS = {
    **dict.fromkeys(("META_DEPLOYMENT", "META_PACK", "META_PACK_VERSION", "META_VARIABLES_DIGEST",
                     "Pack", "dependency", "dependency_deployment", "pack"),
                    "nomadmesh.packs.definition"),
    **dict.fromkeys(("FoundPack", "find_pack", "is_pack_ref", "list_packs"),
                    "nomadmesh.packs.registry"),
    **dict.fromkeys(("VariableInfo", "read_var_file", "variable"), "nomadmesh.packs.variables"),
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nomadmesh.packs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


def render_ref(ref: str, *, variables: Mapping[str, Any] | None = None,
               var_files: Iterable[str | os.PathLike[str]] = (), deployment: str | None = None,
               env: Mapping[str, str] | None = None) -> list[Job]:
    """Find the pack `ref` names, resolve its variables (env default: os.environ), render it."""
    from nomadmesh.packs.registry import find_pack

    found = find_pack(ref)
    chosen = found.pack.resolve(values=variables, var_files=var_files, env=env)
    return found.pack.render(chosen, deployment=deployment)
