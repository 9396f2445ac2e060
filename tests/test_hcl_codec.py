"""The HCL2 codec: what loads, what it evaluates, what it refuses, and what it writes."""

from __future__ import annotations

import re
from typing import Any

import hcl2
import pytest

from nomadmesh.codec.hcl import decode_variables, format_hcl
from nomadmesh.errors import InputError, ParseError, UnsupportedExpression, ValidationError
from nomadmesh.model import Constraint, Group, Job, Network, Port, Service, Task
from nomadmesh.model._base import SECOND


def job_hcl(task_body: str = "", *, group_body: str = "", job_body: str = "",
            prelude: str = "") -> str:
    """A minimal valid job with extra lines in its job, group and task bodies."""
    return f"""{prelude}
job "web" {{
  {job_body}
  group "api" {{
    {group_body}
    task "app" {{
      driver = "docker"
      {task_body}
    }}
  }}
}}
"""


def task_of(job: Job) -> Task:
    return job.groups[0].tasks[0]


# --- names, labels and forms --------------------------------------------------------------------


def test_block_labels_fill_the_label_fields() -> None:
    job = Job.from_hcl(job_hcl(group_body='network {\n port "http" { to = 8080 }\n}'))
    assert (job.id, job.groups[0].name, task_of(job).name) == ("web", "api", "app")
    assert job.groups[0].networks[0].ports == (Port("http", to=8080),)


def test_meta_loads_from_the_block_form() -> None:
    job = Job.from_hcl(job_hcl(job_body='meta {\n team = "core"\n}'))
    assert job.meta == {"team": "core"}


def test_meta_loads_from_the_map_attribute_form_with_dotted_keys() -> None:
    job = Job.from_hcl(job_hcl(job_body='meta = { "team.name" = "core", plain = "x" }'))
    assert job.meta == {"team.name": "core", "plain": "x"}


def test_env_and_config_accept_both_forms() -> None:
    job = Job.from_hcl(job_hcl('env = { "A.B" = "1" }\nconfig {\n image = "nginx"\n}'))
    assert task_of(job).env == {"A.B": "1"}
    assert task_of(job).config == {"image": "nginx"}


def test_repeated_config_blocks_become_lists_of_maps() -> None:
    job = Job.from_hcl(job_hcl('config {\n mount {\n type = "bind"\n }\n'
                               ' mount {\n type = "tmpfs"\n }\n}'))
    assert task_of(job).config == {"mount": ({"type": "bind"}, {"type": "tmpfs"})}


def test_hcl_names_map_to_nomad_json_keys() -> None:
    job = Job.from_hcl(job_hcl('resources {\n memory = 256\n}\nlogs {\n max_file_size = 5\n}',
                               group_body='network {\n port "http" { static = 8080 }\n}\n'
                                          'service {\n port = "http"\n}'))
    api = job.to_api()["TaskGroups"][0]
    assert api["Tasks"][0]["Resources"] == {"MemoryMB": 256}
    assert api["Tasks"][0]["LogConfig"] == {"MaxFileSizeMB": 5}
    assert api["Networks"][0]["ReservedPorts"] == [{"Label": "http", "Value": 8080}]
    assert api["Services"][0]["PortLabel"] == "http"


def test_durations_are_go_duration_strings() -> None:
    job = Job.from_hcl(job_hcl('kill_timeout = "1m30s"'))
    assert task_of(job).kill_timeout == 90 * SECOND


def test_a_number_as_duration_is_an_error_with_its_path() -> None:
    with pytest.raises(ValidationError) as err:
        Job.from_hcl(job_hcl("kill_timeout = 10"))
    assert err.value.problems[0].path == "job[web].group[api].task[app].kill_timeout"


def test_numbers_and_bools_convert_to_strings_as_in_hcl() -> None:
    job = Job.from_hcl(job_hcl("user = 1000\nmeta {\n debug = true\n}"))
    assert (task_of(job).user, task_of(job).meta) == ("1000", {"debug": "true"})


# --- strings ------------------------------------------------------------------------------------


def test_string_escapes_are_resolved() -> None:
    job = Job.from_hcl(job_hcl(r'env { A = "tab\there \"q\" back\\ \u00e9" }'))
    assert task_of(job).env["A"] == 'tab\there "q" back\\ é'


def test_escaped_template_markers_are_literal() -> None:
    job = Job.from_hcl(job_hcl('env { A = "$${not.var} %%{ if }" }'))
    assert task_of(job).env["A"] == "${not.var} %{ if }"


@pytest.mark.parametrize("ref", ["NOMAD_PORT_http", "attr.kernel.name", "meta.rack",
                                 "node.unique.name", "env.HOME", "NOMAD_META_version"])
def test_runtime_interpolations_stay_literal(ref: str) -> None:
    job = Job.from_hcl(job_hcl(f'env {{ A = "x-${{{ref}}}-y" }}'))
    assert task_of(job).env["A"] == f"x-${{{ref}}}-y"


def test_heredoc_value_keeps_its_final_newline() -> None:
    job = Job.from_hcl(job_hcl('template {\n data = <<EOF\nline 1\n  line 2\nEOF\n'
                               ' destination = "local/a"\n}'))
    assert task_of(job).templates[0].data == "line 1\n  line 2\n"


def test_indented_heredoc_is_trimmed() -> None:
    job = Job.from_hcl(job_hcl('template {\n  data = <<-EOF\n    a\n      b\n    EOF\n'
                               '  destination = "local/a"\n}'))
    assert task_of(job).templates[0].data == "a\n  b\n"


# --- variables and locals -----------------------------------------------------------------------


def test_variable_defaults_are_used() -> None:
    job = Job.from_hcl(job_hcl(job_body="datacenters = [var.dc]",
                               prelude='variable "dc" {\n default = "eu-1"\n}'))
    assert job.datacenters == ("eu-1",)


@pytest.mark.parametrize(("vtype", "line", "given", "read", "expected"), [
    ("number", "priority = var.v", "70", lambda j: j.priority, 70),
    ("bool", "all_at_once = var.v", "true", lambda j: j.all_at_once, True),
    ("list(string)", "datacenters = var.v", '["a", "b"]', lambda j: j.datacenters, ("a", "b")),
    ("map(string)", "meta = var.v", '{ team = "core" }', lambda j: j.meta, {"team": "core"}),
    ("string", "region = var.v", 7, lambda j: j.region, "7"),
])
def test_supplied_values_convert_to_the_declared_type(vtype: str, line: str, given: object,
                                                      read: Any, expected: object) -> None:
    text = job_hcl(job_body=line, prelude=f'variable "v" {{\n type = {vtype}\n}}')
    assert read(Job.from_hcl(text, variables={"v": given})) == expected


def test_a_supplied_count_string_becomes_the_group_count() -> None:
    text = job_hcl(group_body="count = var.n", prelude='variable "n" {\n type = number\n}')
    assert Job.from_hcl(text, variables={"n": "4"}).groups[0].count == 4


def test_an_undeclared_supplied_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError) as err:
        Job.from_hcl(job_hcl(), variables={"replicas": "2"})
    assert err.value.problems[0].path == "var.replicas"


def test_a_variable_without_value_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError) as err:
        Job.from_hcl(job_hcl(prelude='variable "image" {\n type = string\n}'))
    assert err.value.problems[0].path == "var.image"


def test_a_value_of_the_wrong_type_is_an_error() -> None:
    with pytest.raises(ValidationError, match=r"var\.n"):
        Job.from_hcl(job_hcl(prelude='variable "n" {\n type = number\n}'), variables={"n": "x"})


def test_locals_may_reference_variables_and_each_other_in_any_order() -> None:
    prelude = ('variable "tag" {\n default = "1.2"\n}\n'
               'locals {\n image = "nginx:${local.tag}"\n tag = var.tag\n}')
    job = Job.from_hcl(job_hcl("config {\n image = local.image\n}", prelude=prelude))
    assert task_of(job).config == {"image": "nginx:1.2"}


def test_locals_in_a_cycle_are_an_error() -> None:
    with pytest.raises(ValidationError, match="cycle"):
        Job.from_hcl(job_hcl("user = local.a", prelude="locals {\n a = local.b\n b = local.a\n}"))


def test_attribute_and_index_access_on_variables() -> None:
    prelude = ('variable "cfg" {\n default = { port = 8080, tags = ["a", "b"] }\n}')
    job = Job.from_hcl(job_hcl(group_body='network {\n port "http" { to = var.cfg.port }\n}\n'
                                          'service {\n tags = [var.cfg.tags[1]]\n}',
                               prelude=prelude))
    assert job.groups[0].networks[0].ports[0].to == 8080
    assert job.groups[0].services[0].tags == ("b",)


def test_templates_mix_literals_references_and_runtime_interpolations() -> None:
    prelude = 'variable "env" {\n default = "prod"\n}'
    job = Job.from_hcl(job_hcl('env { URL = "http://${var.env}.local:${NOMAD_PORT_http}" }',
                               prelude=prelude))
    assert task_of(job).env["URL"] == "http://prod.local:${NOMAD_PORT_http}"


def test_var_files_are_read_as_name_value_lines() -> None:
    assert decode_variables('image = "nginx"\ncount = 3\ntags = ["a"]\n') == {
        "image": "nginx", "count": 3, "tags": ["a"]}


# --- what cannot be evaluated -------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "kind"), [
    ('upper("x")', "function call"), ("var.n > 1 ? 2 : 3", "conditional"),
    ("[for s in var.l : s]", "for-expression"), ("var.l[*].x", "splat"),
    ("1 + 2", "expression"),
])
def test_unsupported_expressions_are_named_with_a_suggestion(expression: str, kind: str) -> None:
    with pytest.raises(UnsupportedExpression) as err:
        Job.from_hcl(job_hcl(f"user = {expression}",
                             prelude='variable "n" {\n default = 1\n}\n'
                                     'variable "l" {\n default = []\n}'))
    message = str(err.value)
    assert kind in message and "job[web].group[api].task[app].user" in message
    assert "nomad job run -output" in message


def test_unsupported_expression_reports_its_line() -> None:
    text = job_hcl('user = lower("ROOT")')
    with pytest.raises(UnsupportedExpression) as err:
        Job.from_hcl(text)
    assert err.value.line == text.splitlines().index('      user = lower("ROOT")') + 1


def test_dynamic_blocks_are_unsupported() -> None:
    text = job_hcl(group_body='dynamic "task" {\n for_each = []\n content {}\n}')
    with pytest.raises(UnsupportedExpression, match="dynamic block"):
        Job.from_hcl(text)


def test_template_directives_are_unsupported() -> None:
    with pytest.raises(UnsupportedExpression, match="template directive"):
        Job.from_hcl(job_hcl('user = "%{ if true }x%{ endif }"'))


# --- errors -------------------------------------------------------------------------------------


def test_syntax_errors_keep_line_and_column() -> None:
    with pytest.raises(ParseError) as err:
        Job.from_hcl('job "web" {\n  group "api" {\n    count = \n  }\n}\n', source="web.nomad")
    assert (err.value.source, err.value.line) == ("web.nomad", 3)
    assert err.value.column is not None


def test_unknown_fields_have_a_path_and_a_suggestion() -> None:
    with pytest.raises(ValidationError) as err:
        Job.from_hcl(job_hcl("drivr = 1"))
    problem = err.value.problems[0]
    assert problem.path == "job[web].group[api].task[app].drivr"
    assert "did you mean 'driver'" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        Job.from_hcl(job_hcl('kill_timeout = "soon"\ncount = 1', group_body='count = "many"'))
    assert len(err.value.problems) == 3


def test_a_file_without_a_job_block_is_an_error() -> None:
    with pytest.raises(ValidationError, match="job"):
        Job.from_hcl('variable "x" {\n default = 1\n}\n')


def test_two_blocks_where_one_is_allowed_is_an_error() -> None:
    with pytest.raises(ValidationError, match="only one update block"):
        Job.from_hcl(job_hcl(job_body="update {\n}\nupdate {\n}"))


def test_model_rules_are_validated_unless_disabled() -> None:
    text = job_hcl("resources {\n memory = 5\n}")
    with pytest.raises(ValidationError, match=r"resources\.memory"):
        Job.from_hcl(text)
    assert task_of(Job.from_hcl(text, validate=False)).resources.memory == 5  # type: ignore[union-attr]


# --- constraints, passthrough blocks and connect ------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ("distinct_hosts = true", Constraint(operator="distinct_hosts")),
    ('distinct_property = "${meta.rack}"',
     Constraint(attribute="${meta.rack}", operator="distinct_property")),
    ('attribute = "${attr.os.version}"\nversion = ">= 1.2"',
     Constraint(attribute="${attr.os.version}", operator="version", value=">= 1.2")),
    ('attribute = "${attr.os.version}"\nsemver = "~> 1.2"',
     Constraint(attribute="${attr.os.version}", operator="semver", value="~> 1.2")),
    ('attribute = "${attr.kernel.name}"\nregexp = "^lin"',
     Constraint(attribute="${attr.kernel.name}", operator="regexp", value="^lin")),
    ('attribute = "${meta.tags}"\nset_contains = "a,b"',
     Constraint(attribute="${meta.tags}", operator="set_contains", value="a,b")),
])
def test_constraint_shorthands_set_the_operator(body: str, expected: Constraint) -> None:
    job = Job.from_hcl(job_hcl(job_body=f"constraint {{\n{body}\n}}"))
    assert job.constraints == (expected,)


def test_passthrough_blocks_are_kept_in_nomad_json_form() -> None:
    job = Job.from_hcl(job_hcl('identity {\n env = true\n aud = ["vault"]\n}',
                               group_body='disconnect {\n lost_after = "1h"\n replace = true\n}'))
    assert task_of(job).extra == {"Identity": {"Env": True, "Aud": ("vault",)}}
    assert job.groups[0].extra == {"Disconnect": {"LostAfter": 3600 * SECOND, "Replace": True}}


CONNECT = """
network {
  mode = "bridge"
  port "http" { to = 8080 }
}
service {
  name = "api"
  port = "http"
  connect {
    sidecar_service {
      proxy {
        upstreams {
          destination_name = "db"
          local_bind_port  = 5432
        }
        expose {
          path {
            path            = "/metrics"
            protocol        = "http"
            local_path_port = 9102
            listener_port   = "http"
          }
        }
        config {
          envoy_prometheus_bind_addr = "0.0.0.0:9102"
        }
      }
    }
    sidecar_task {
      shutdown_delay = "5s"
      resources {
        cpu    = 250
        memory = 128
      }
    }
  }
}
"""


def test_connect_is_stored_in_nomad_json_form() -> None:
    service = Job.from_hcl(job_hcl(group_body=CONNECT)).groups[0].services[0]
    assert service.connect == {
        "SidecarService": {"Proxy": {
            "Upstreams": ({"DestinationName": "db", "LocalBindPort": 5432},),
            "Expose": {"Paths": ({"Path": "/metrics", "Protocol": "http", "LocalPathPort": 9102,
                                  "ListenerPort": "http"},)},
            "Config": {"envoy_prometheus_bind_addr": "0.0.0.0:9102"}}},
        "SidecarTask": {"ShutdownDelay": 5 * SECOND, "Resources": {"CPU": 250, "MemoryMB": 128}},
    }


def test_connect_round_trips_through_hcl() -> None:
    job = Job.from_hcl(job_hcl(group_body=CONNECT))
    assert Job.from_hcl(job.to_hcl()) == job


def test_connect_round_trips_hcl_to_json_to_hcl() -> None:
    job = Job.from_hcl(job_hcl(group_body=CONNECT))
    assert Job.from_api(job.to_api()).to_hcl() == job.to_hcl()


# --- writing ------------------------------------------------------------------------------------


def sample_job(**task: object) -> Job:
    return Job("web", groups=[Group("api", tasks=[Task("app", driver="docker", **task)])])


def test_written_hcl_parses_with_python_hcl2() -> None:
    written = sample_job(meta={"a.b": "x"}).to_hcl()
    assert hcl2.loads(written)["job"][0]['"web"']["group"][0]['"api"']["task"]


def test_maps_with_non_identifier_keys_use_the_attribute_form() -> None:
    assert re.search(r'meta +\= \{ "a\.b" = "x" \}', sample_job(meta={"a.b": "x"}).to_hcl())


def test_literal_interpolation_markers_are_escaped_when_written() -> None:
    written = sample_job(env={"A": "${var.x} %{ if }"}).to_hcl()
    assert 'A = "$${var.x} %%{ if }"' in written


def test_runtime_interpolations_are_written_live() -> None:
    assert 'A = "${NOMAD_PORT_http}"' in sample_job(env={"A": "${NOMAD_PORT_http}"}).to_hcl()


def test_multi_line_strings_are_written_as_heredocs() -> None:
    from nomadmesh.model import Template

    job = sample_job(templates=[Template(data="a\nb\n", destination="local/x")])
    assert re.search(r"data +\= <<EOT\na\nb\nEOT\n", job.to_hcl())


def test_services_with_connect_are_written_as_blocks() -> None:
    job = Job("web", groups=[Group("api", networks=[Network(ports=[Port("http")])],
                                   services=[Service(port="http", connect={"SidecarService": {}})],
                                   tasks=[Task("app", driver="docker")])])
    assert "connect {\n        sidecar_service {}\n      }" in job.to_hcl()


def test_format_hcl_rewrites_a_file_canonically() -> None:
    messy = 'job "web" {\ngroup "api" {\n      task "app" { driver = "docker" }\n}\n}\n'
    assert format_hcl(messy) == sample_job().to_hcl()


def test_format_hcl_refuses_files_with_variables() -> None:
    with pytest.raises(InputError, match="variable"):
        format_hcl(job_hcl(prelude='variable "x" {\n default = 1\n}'))


def test_fmt_keeps_every_comment_at_the_top_of_its_block() -> None:
    from nomadmesh.codec.hcl import format_hcl

    text = ('# owned by platform\njob "web" {\n  group "api" {\n    count = 2 // plenty\n'
            '    task "app" {\n      /* the app */\n      driver = "exec"\n    }\n  }\n}\n')
    formatted = format_hcl(text)
    assert formatted.startswith("# owned by platform\n")
    assert '  group "api" {\n    # plenty\n    count = 2\n' in formatted
    assert '    task "app" {\n      # the app\n      driver = "exec"\n' in formatted
    assert format_hcl(formatted) == formatted
