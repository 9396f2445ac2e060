"""Docs that are generated from code stay in step with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.model.names import with_mapping

DOCS = Path(__file__).parent.parent / "docs"


def test_the_name_mapping_table_in_the_model_docs_is_current() -> None:
    doc = (DOCS / "model.md").read_text()
    assert doc == with_mapping(doc), "run: python -m nomadmesh.model.names docs/model.md"


@pytest.mark.timeout(600)
def test_the_api_reference_builds_from_the_docstrings_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                           "html", str(DOCS / "api"), str(tmp_path / "html")],
                          capture_output=True, text=True, check=False, timeout=580)
    assert done.returncode == 0, done.stderr
    model = (tmp_path / "html" / "model.html").read_text()
    assert 'id="nomadmesh.model.Job"' in model  # the classes are there, not just the headings
    for page in ("deploy", "mesh", "packs", "xds", "testing", "errors", "loading"):
        assert 'class="sig sig-object py"' in (tmp_path / "html" / f"{page}.html").read_text()
