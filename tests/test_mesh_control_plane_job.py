"""The control plane's own Nomad job, as a mesh's settings describe it."""

from __future__ import annotations

import pytest

from nomadmesh.errors import MeshError
from nomadmesh.mesh import Mesh, inject


def test_the_control_plane_registers_under_the_name_sidecars_look_up() -> None:
    job = Mesh(control_plane="mesh-xds").control_plane_job()
    assert [s.name for s in job.groups[0].services] == ["mesh-xds", "mesh-xds-metrics"]
    assert job.validate() is job


def test_injection_leaves_the_control_plane_without_a_sidecar() -> None:
    mesh = Mesh()
    job = mesh.control_plane_job()
    assert inject(job, mesh) == job


def test_a_fixed_address_control_plane_has_no_job_to_generate() -> None:
    with pytest.raises(MeshError, match=r"mesh\.control_plane"):
        Mesh(control_plane="10.0.0.5:18000").control_plane_job()
