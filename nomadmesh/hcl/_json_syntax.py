"""HCL's JSON syntax (hashicorp/hcl json package), which jobspec2 uses for text starting with "{"."""

from __future__ import annotations

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, Source


def parse_json_body(src: Source) -> syn.Body:
    """Not yet supported: say so with the file position."""
    raise HclDiagnostics(
        [Diagnostic("Unsupported syntax", "nomadmesh does not read HCL's JSON syntax yet.", src.range(0, 1))]
    )
