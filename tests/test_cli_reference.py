"""docs/cli.md is generated from the CLI and stays current."""

from __future__ import annotations

from pathlib import Path

from nomadmesh.cli.reference import reference

CLI_DOC = Path(__file__).parent.parent / "docs" / "cli.md"


def test_the_cli_reference_matches_the_cli() -> None:
    assert CLI_DOC.read_text() == reference(), "run: python -m nomadmesh.cli.reference > docs/cli.md"
