"""The control plane's own Nomad job, as a mesh's settings describe it."""

from __future__ import annotations

from nomadmesh.mesh import Mesh, inject
from nomadmesh.xds.job import control_plane_job


def test_the_control_plane_registers_under_the_name_sidecars_look_up() -> None:
    mesh = Mesh(control_plane="mesh-xds")
    job = control_plane_job(service=mesh.control_plane)
    assert [s.name for s in job.groups[0].services] == ["mesh-xds", "mesh-xds-metrics"]
    assert job.validate() is job


def test_injection_leaves_the_control_plane_without_a_sidecar() -> None:
    job = control_plane_job()
    assert inject(job, Mesh()) == job


def test_replicas_and_mtls_are_options_of_the_job() -> None:
    job = control_plane_job(count=3, mtls=True)
    assert job.groups[0].count == 3
    assert "--mtls" in job.groups[0].tasks[0].config["args"]
    assert "--mtls" not in control_plane_job().groups[0].tasks[0].config["args"]
