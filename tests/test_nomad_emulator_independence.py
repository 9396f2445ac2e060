"""The emulators stand alone: nothing under nomadmesh.testing imports the client they check."""

from __future__ import annotations

import ast
from pathlib import Path

import nomadmesh.testing

CLIENT = ("nomadmesh.model", "nomadmesh.codec", "nomadmesh.hcl", "nomadmesh.mesh",
          "nomadmesh.deploy", "nomadmesh.loader", "nomadmesh.canonical")
ROOT = Path(nomadmesh.testing.__file__).parent
# The Envoy test kit (mesh and xds tests) is not an emulator: it builds bootstraps with the mesh.
NOT_EMULATORS = {"envoy.py"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_emulator_module_imports_the_client() -> None:
    found = {str(path.relative_to(ROOT)): name for path in ROOT.rglob("*.py")
             if str(path.relative_to(ROOT)) not in NOT_EMULATORS
             for name in _imports(path) if name.startswith(CLIENT)}
    assert found == {}
