"""The mesh verbs of the command line, the examples they document, and HCL round trips."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nomadmesh
from nomadmesh.cli import main
from nomadmesh.contract import Policy, ServiceConfig, Upstream, read_config_document
from nomadmesh.mesh import Mesh, inject, sidecar_task
from nomadmesh.mesh.prometheus import prometheus_config
from nomadmesh.model import Job, canonicalize
from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.envoy import envoy_path

ROOT = Path(__file__).parent.parent
JOBS = ROOT / "examples" / "jobs"
MESH_EXAMPLES = ROOT / "examples" / "mesh"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; returns exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_inject_prints_the_registration_payload(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["inject", str(JOBS / "service-b.nomad.hcl")], capsys)
    job = Job.from_api(json.loads(out))
    assert code == 0
    assert job == inject(nomadmesh.load(JOBS / "service-b.nomad.hcl"))


def test_inject_writes_hcl_to_a_file_with_mesh_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "service-b.nomad.hcl"
    code, _, err = run(["inject", str(JOBS / "service-b.nomad.hcl"), "--mesh",
                        str(MESH_EXAMPLES / "mesh.yaml"), "--output", "hcl", "-o",
                        str(out_file)], capsys)
    assert (code, err.strip()) == (0, f"wrote 1 injected job(s) to {out_file}")
    sidecar = sidecar_task(nomadmesh.load(out_file).groups[0])
    assert sidecar is not None
    assert sidecar.driver == "exec"


def test_inject_reports_conflicts_with_paths(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (JOBS / "service-b.nomad.hcl").read_text().replace(
        'LOG_LEVEL = "info"', 'EGRESS_PORT = "1"')
    path = tmp_path / "conflict.nomad.hcl"
    path.write_text(text)
    code, _, err = run(["inject", str(path)], capsys)
    assert code == 2
    assert "job[service-b].group[service-b].task[service-b-app].env.EGRESS_PORT" in err


def test_sidecar_bootstrap_prints_the_bootstrap(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sidecar", "bootstrap", str(JOBS / "service-b.nomad.hcl"), "--group",
                        "service-b", "--env", "NOMAD_ALLOC_ID=alloc-7"], capsys)
    bootstrap = json.loads(out)
    assert code == 0
    assert (bootstrap["node"]["id"], bootstrap["node"]["cluster"]) == ("alloc-7", "service-b")


@pytest.mark.envoy
def test_sidecar_bootstrap_writes_files_envoy_validates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sidecar", "bootstrap", str(JOBS / "service-b.nomad.hcl"), "--group",
                        "service-b", "--dir", str(tmp_path)], capsys)
    assert (code, out.strip()) == (0, str(tmp_path / "secrets" / "envoy_bootstrap.json"))
    result = subprocess.run([envoy_path(), "--mode", "validate", "-c", out.strip(), "-l",
                             "error"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sidecar_bootstrap_uses_the_given_control_plane_instance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["sidecar", "bootstrap", str(JOBS / "echo-api.json"), "-g", "echo", "--xds",
         "10.1.2.3:7000", "--dir", str(tmp_path)], capsys)
    instances = json.loads((tmp_path / "secrets" / "nomadmesh_xds_endpoints.json").read_text())
    (endpoint,) = instances["resources"][0]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "10.1.2.3", "port_value": 7000}


def test_sidecar_bootstrap_of_an_unmeshed_group_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["sidecar", "bootstrap", str(JOBS / "batch-report.nomad.hcl"), "-g",
                        "report"], capsys)
    assert code == 2
    assert "is not meshed" in err


def test_prometheus_config_finds_sidecars_by_tag_and_the_control_plane(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sidecar", "prometheus-config", "--consul", "consul:8500"], capsys)
    sidecars, control_plane = yaml.safe_load(out)["scrape_configs"]
    assert code == 0
    assert sidecars["metrics_path"] == "/stats/prometheus"
    assert sidecars["consul_sd_configs"] == [{"server": "consul:8500",
                                              "tags": ["prometheus", "nomadmesh-sidecar"]}]
    assert control_plane["consul_sd_configs"][0]["services"] == ["nomadmesh-xds-metrics"]


def test_prometheus_config_can_pin_control_plane_targets() -> None:
    config = prometheus_config(Mesh(), control_plane_targets=("10.0.0.5:9090",))
    assert config["scrape_configs"][1]["static_configs"] == [{"targets": ["10.0.0.5:9090"]}]


# --- examples and HCL ----------------------------------------------------------------------------


def test_the_python_example_prints_both_injected_jobs() -> None:
    result = subprocess.run([sys.executable, str(MESH_EXAMPLES / "original_design.py")],
                            capture_output=True, text=True, check=True, timeout=60)
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(result.stdout)
    second, _ = decoder.raw_decode(result.stdout[end:].lstrip())
    assert [first["Job"]["ID"], second["Job"]["ID"]] == ["service-a", "service-b"]


def test_the_python_example_loads_as_a_job_file() -> None:
    example = runpy.run_path(str(MESH_EXAMPLES / "original_design.py"))
    assert nomadmesh.load_all(MESH_EXAMPLES / "original_design.py") == example["jobs"]()


@pytest.mark.parametrize("name", ["service-a.nomad.hcl", "service-b.nomad.hcl",
                                  "web-canary.nomad.hcl", "node-exporter.nomad.hcl",
                                  "cache-bridge-dns.nomad.hcl", "echo-api.json"])
def test_an_injected_example_renders_back_to_hcl_unchanged(name: str) -> None:
    # Nomad's parser fills its own defaults (template change_mode, splay, ...), so the round trip
    # is exact once both sides carry Nomad's defaults.
    injected = inject(nomadmesh.load(JOBS / name))
    assert canonicalize(Job.from_hcl(injected.to_hcl())) == canonicalize(injected)


POLICY_MESH = """
[groups.service-b]
allow = ["edge-router"]

[[groups.service-b.upstreams]]
service = "service-a"
prefix = "/hi_a"
timeout = "2s"
"""


def test_mesh_apply_writes_each_services_config_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "mesh.toml"
    settings.write_text(POLICY_MESH)
    job = str(JOBS / "service-b.nomad.hcl")
    with ConsulEmulator() as consul:
        code, out, _ = run(["mesh", "apply", job, "--mesh", str(settings), "--consul",
                              consul.address], capsys)
        assert (code, out.split()) == (0, ["nomadmesh/mesh/service-b"])
        stored = consul.kv_get("nomadmesh/mesh/service-b")
        assert stored is not None
        assert read_config_document(stored, "kv") == ServiceConfig(
            (Upstream("service-a", "/hi_a", policy=Policy(timeout="2s")),), ("edge-router",))
        again = run(["mesh", "apply", job, "--mesh", str(settings), "--consul", consul.address],
                    capsys)
    assert again[0] == 0
    assert "0 of 1 service config(s) changed" in again[2]


def test_sidecar_config_shows_every_default_of_the_effective_policy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "mesh.toml"
    settings.write_text(POLICY_MESH)
    code, out, _ = run(["sidecar", "config", str(JOBS / "service-b.nomad.hcl"), "--mesh",
                        str(settings)], capsys)
    (route,) = json.loads(out)["service-b"]
    assert code == 0
    assert route["policy"]["timeout"] == 2.0
    assert route["policy"]["retries"]["attempts"] == 2
    assert route["policy"]["outlier_detection"]["consecutive_gateway_failure"] == 3


def test_prometheus_config_reads_consul_http_addr(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "https://consul.internal:8501")
    code, out, _ = run(["sidecar", "prometheus-config", "--output", "json"], capsys)
    sd = json.loads(out)["scrape_configs"][0]["consul_sd_configs"][0]
    assert code == 0
    assert (sd["server"], sd["scheme"]) == ("consul.internal:8501", "https")
