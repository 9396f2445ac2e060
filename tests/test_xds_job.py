"""The Nomad job that runs the control plane."""

from __future__ import annotations

from nomadmesh.mesh import Mesh
from nomadmesh.xds.job import control_plane_job


def test_the_job_is_valid() -> None:
    job = control_plane_job()
    assert job.validate() == job


def test_the_grpc_service_has_the_name_sidecars_resolve() -> None:
    group = control_plane_job().groups[0]
    assert group.services[0].name == Mesh().control_plane
    assert group.services[0].port == "grpc"


def test_the_task_serves_consul_on_its_dynamic_ports() -> None:
    args = list(control_plane_job(consul="consul.service:8500").groups[0].tasks[0].config["args"])
    assert args == [
        "xds", "serve",
        "--listen", "0.0.0.0:${NOMAD_PORT_grpc}",
        "--consul", "consul.service:8500",
        "--metrics", "0.0.0.0:${NOMAD_PORT_metrics}",
    ]
