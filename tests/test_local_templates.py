"""Template rendering for local runs: the consul-template subset nomadmesh's jobs use."""

from __future__ import annotations

import json

import pytest

from nomadmesh.mesh import Mesh, Sidecar, inject, sidecar_task
from nomadmesh.mesh.node import bootstrap_template
from nomadmesh.mesh.template import render_template
from nomadmesh.model import Group, Job, Network, Port, Service, Task
from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.templates import TemplateError, render


@pytest.fixture
def catalog() -> ConsulEmulator:
    consul = ConsulEmulator()
    consul.register("xds", service_id="xds-1", address="127.0.0.1", port=18000)
    consul.register("xds", service_id="xds-2", address="127.0.0.1", port=18001, tags=["canary"])
    return consul


def test_env_reads_the_task_environment(catalog: ConsulEmulator) -> None:
    assert render('port={{ env "NOMAD_PORT_http" }}', {"NOMAD_PORT_http": "8080"}, catalog) == (
        "port=8080")


def test_range_over_a_service_with_index_and_value(catalog: ConsulEmulator) -> None:
    text = '[{{ range $i, $s := service "xds" }}{{ if $i }},{{ end }}{{ $s.Port }}{{ end }}]'
    assert render(text, {}, catalog) == "[18000,18001]"


def test_service_lists_only_instances_whose_checks_pass(catalog: ConsulEmulator) -> None:
    catalog.register("xds", service_id="xds-3", address="127.0.0.9", port=1,
                     checks=[{"CheckID": "down", "TTL": "5s", "Status": "critical"}])
    assert render('{{ range service "xds" }}{{ .Address }}:{{ .Port }} {{ end }}', {},
                  catalog) == "127.0.0.1:18000 127.0.0.1:18001 "


def test_a_tag_prefix_filters_service_instances(catalog: ConsulEmulator) -> None:
    assert render('{{ range service "canary.xds" }}{{ .ID }}{{ end }}', {}, catalog) == "xds-2"


def test_key_and_key_or_default_read_consul_kv(catalog: ConsulEmulator) -> None:
    catalog.kv_put("app/level", "debug")
    assert render('{{ key "app/level" }} {{ keyOrDefault "app/none" "info" }}', {},
                  catalog) == "debug info"


def test_a_missing_key_is_an_error_naming_it(catalog: ConsulEmulator) -> None:
    with pytest.raises(TemplateError, match='key "app/none"'):
        render('{{ key "app/none" }}', {}, catalog)


def test_else_and_pipelines(catalog: ConsulEmulator) -> None:
    text = ('{{ range service "nothing" }}x{{ else }}none{{ end }} '
            '{{ env "NAME" | toUpper }} {{ len (service "xds") }}')
    assert render(text, {"NAME": "edge"}, catalog) == "none EDGE 2"


def test_dashes_trim_whitespace_around_actions(catalog: ConsulEmulator) -> None:
    assert render("a  \n  {{- 1 -}}  \n  b", {}, catalog) == "a1b"


def test_an_unknown_function_is_an_error_naming_it(catalog: ConsulEmulator) -> None:
    with pytest.raises(TemplateError, match="'vault' not defined"):
        render('{{ vault "secret/x" }}', {}, catalog)


def test_the_sidecar_bootstrap_renders_as_the_mesh_renders_it(catalog: ConsulEmulator) -> None:
    job = Job("web", datacenters=["dc1"], groups=[Group(
        "web", networks=[Network(ports=[Port("http")])], services=[Service(name="web",
                                                                             port="http")],
        tasks=[Task("app", driver="raw_exec", config={"command": "app"})])])
    mesh = Mesh(control_plane="xds", sidecar=Sidecar(driver="raw_exec"))
    sidecar = sidecar_task(inject(job, mesh).groups[0])
    assert sidecar is not None
    env = {"NOMAD_ALLOC_ID": "a1", "NOMAD_SECRETS_DIR": "/secrets",
           **{f"NOMAD_{k}_{label}": v for label in
              ("egress", "envoy_admin", "envoy_metrics", "inbound", "http")
              for k, v in (("IP", "127.0.0.1"), ("PORT", "2000"))}}
    # The bootstrap, and the file of control plane instances it reads.
    files = [t for t in sidecar.templates if not t.env]
    assert bootstrap_template(sidecar) in files and len(files) == 2
    for template in files:
        text = template.data or ""
        ours = json.loads(render(text, env, catalog))
        theirs = json.loads(render_template(text, env, {"xds": [("127.0.0.1", 18000),
                                                                ("127.0.0.1", 18001)]}))
        assert ours == theirs
