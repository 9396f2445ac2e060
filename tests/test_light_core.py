"""The core installs light: without the xds extra, everything but the control plane works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

# Runs the CLI with the xds extra's packages made unimportable.
WITHOUT_XDS = """
import sys
class NoXdsExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("grpc", "envoy", "xds", "prometheus_client", "google", "udpa"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoXdsExtra())
from nomadmesh.cli import main
main(sys.argv[1:])
"""


def nomadmesh_without_xds(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_XDS, *argv], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def test_job_verbs_work_without_the_xds_extra() -> None:
    done = nomadmesh_without_xds("render", "examples/jobs/service-b.nomad.hcl", "--inject")
    assert done.returncode == 0, done.stderr
    assert '"service-b-sidecar"' in done.stdout


def test_the_control_plane_job_renders_without_the_xds_extra() -> None:
    done = nomadmesh_without_xds("render", "mesh-control-plane")
    assert done.returncode == 0, done.stderr


def test_xds_serve_without_the_extra_says_what_to_install() -> None:
    done = nomadmesh_without_xds("xds", "serve")
    assert done.returncode == 1
    assert "pip install 'nomadmesh[xds]'" in done.stderr
    assert "Traceback" not in done.stderr
