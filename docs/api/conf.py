"""Sphinx configuration of the API reference, generated from the docstrings (autodoc).

Built by `python -m sphinx -W -b html docs/api build/api` (tests/test_docs.py does it in CI and
fails on any warning).
"""

from __future__ import annotations

import nomadmesh

project = "nomadmesh"
release = version = nomadmesh.__version__
extensions = ["sphinx.ext.autodoc"]
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autoclass_content = "class"
html_theme = "alabaster"
exclude_patterns: list[str] = []
nitpicky = False
