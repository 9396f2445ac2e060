"""Docs that are generated from code stay in step with it."""

from __future__ import annotations

from pathlib import Path

from nomadmesh.model.names import with_mapping

DOCS = Path(__file__).parent.parent / "docs"


def test_the_name_mapping_table_in_the_model_docs_is_current() -> None:
    doc = (DOCS / "model.md").read_text()
    assert doc == with_mapping(doc), "run: python -m nomadmesh.model.names docs/model.md"
