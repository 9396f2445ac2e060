"""Mesh settings: defaults, merging, and loading TOML/YAML files with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomadmesh.contract import HeaderMatch, OutlierDetection, Policy, Retries, Split
from nomadmesh.errors import LoadError, MeshError, ParseError
from nomadmesh.mesh import DEFAULT_SIDECAR, GroupMesh, Mesh, Sidecar, Upstream
from nomadmesh.model import LogConfig, Resources
from nomadmesh.model._base import SECOND

EXAMPLES = Path(__file__).parent.parent / "examples" / "mesh"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def paths(exc: pytest.ExceptionInfo[MeshError]) -> list[str]:
    return [p.path for p in exc.value.problems]


def test_defaults_follow_the_original_design_and_nomads_connect() -> None:
    mesh = Mesh()
    assert (mesh.control_plane, mesh.egress_port, mesh.admin_port) == ("nomadmesh-xds", 3101, 19000)
    assert (mesh.xds_host_env, mesh.xds_port_env) == ("XDS_HOST", "XDS_PORT")
    assert (mesh.egress_host_env, mesh.egress_port_env) == ("EGRESS_HOST", "EGRESS_PORT")
    assert mesh.sidecar == DEFAULT_SIDECAR
    assert DEFAULT_SIDECAR.resources == Resources(cpu=250, memory=128)
    assert DEFAULT_SIDECAR.logs == LogConfig(max_files=2, max_file_size=2)
    assert DEFAULT_SIDECAR.shutdown_delay == 5 * SECOND


def test_a_partial_mesh_sidecar_keeps_every_other_default() -> None:
    mesh = Mesh(sidecar=Sidecar(image="registry.local/envoy"))
    assert mesh.sidecar.image == "registry.local/envoy"
    assert mesh.sidecar.resources == Resources(cpu=250, memory=128)
    assert mesh.sidecar.driver == "docker"


def test_a_fixed_control_plane_address_is_recognised() -> None:
    assert Mesh(control_plane="10.0.0.5:18000").control_plane_address == ("10.0.0.5", 18000)
    assert Mesh(control_plane="xds.internal:443").control_plane_address == ("xds.internal", 443)
    assert Mesh(control_plane="nomadmesh-xds").control_plane_address is None


def test_bad_settings_are_listed_with_their_paths() -> None:
    mesh = Mesh(egress_port=0, xds_host_env="1BAD", sidecar=Sidecar(driver="podman"),
                groups={"api": GroupMesh(upstreams=[Upstream("api", prefix="nope")])})
    with pytest.raises(MeshError) as caught:
        mesh.validate()
    assert paths(caught) == ["mesh.egress_port", "mesh.xds_host_env", "mesh.sidecar.driver",
                             "mesh.groups.api.upstreams[0]"]


def test_example_toml_settings_load() -> None:
    mesh = Mesh.from_file(EXAMPLES / "mesh.toml")
    assert mesh.sidecar.resources == Resources(cpu=300, memory=128)
    assert mesh.groups["service-b"].upstreams == (Upstream("service-a", prefix="/hi_a"),)
    assert mesh.groups["batch-worker"].enabled is False


def test_example_yaml_settings_load() -> None:
    mesh = Mesh.from_file(EXAMPLES / "mesh.yaml")
    assert mesh.control_plane_address == ("10.0.0.5", 18000)
    assert mesh.sidecar.driver == "exec"
    assert mesh.sidecar.logs == LogConfig(max_files=3, max_file_size=2)
    assert mesh.groups["service-b"].upstreams == (Upstream("service-a", prefix="/hi_a"),
                                                  Upstream("service-c", prefix="/hi_c"))


def test_group_sidecar_settings_from_a_file_merge_onto_the_mesh_sidecar(tmp_path: Path) -> None:
    path = write(tmp_path, "mesh.toml", '[sidecar]\nshutdown_delay = "10s"\n'
                 "[groups.api.sidecar.env]\nA = \"1\"\n")
    sidecar = Mesh.from_file(path).sidecar_for("api")
    assert (sidecar.shutdown_delay, dict(sidecar.env)) == (10 * SECOND, {"A": "1"})
    assert sidecar.resources == Resources(cpu=250, memory=128)


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "mesh.yaml", "sidecar:\n  resources:\n    cpus: 2\n")
    with pytest.raises(MeshError, match=r"sidecar\.resources\.cpus: unknown setting 'cpus' "
                       r"\(did you mean 'cpu'\?\)"):
        Mesh.from_file(path)


def test_a_wrong_type_is_named_with_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, "mesh.toml", 'egress_port = "3101"\n[groups.api]\nenabled = "no"\n')
    with pytest.raises(MeshError) as caught:
        Mesh.from_file(path)
    assert paths(caught) == ["egress_port", "groups.api.enabled"]


def test_a_bad_upstream_in_a_file_names_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "mesh.yaml", "groups:\n  api:\n    upstreams: [a=/x, b-no-prefix]\n")
    with pytest.raises(MeshError) as caught:
        Mesh.from_file(path)
    assert paths(caught) == ["groups.api.upstreams[1]"]


def test_a_rule_broken_in_a_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "mesh.toml", "[sidecar.resources]\nmemory = 5\n")
    with pytest.raises(MeshError) as caught:
        Mesh.from_file(path)
    assert paths(caught) == ["sidecar.resources.memory"]


def test_toml_syntax_errors_are_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"mesh\.toml"):
        Mesh.from_file(write(tmp_path, "mesh.toml", "control_plane = \n"))


def test_yaml_syntax_errors_carry_the_line(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as caught:
        Mesh.from_file(write(tmp_path, "mesh.yaml", "sidecar:\n  driver: [docker\n"))
    assert caught.value.line is not None


def test_an_unsupported_settings_file_type_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"\.toml, \.yaml"):
        Mesh.from_file(write(tmp_path, "mesh.ini", "x=1\n"))


POLICY_TOML = """
[policy]
timeout = "5s"
retries = { attempts = 3, retry_on = ["connect-failure", "5xx"] }

[[groups.web.upstreams]]
service = "api"
prefix = "/api"
methods = ["GET"]
headers = [{ name = "x-canary", exact = "1" }]
rewrite = "/"
timeout = "250ms"
split = [{ weight = 95 }, { weight = 5, tag = "canary" }]
outlier_detection = { consecutive_gateway_failure = 2, base_ejection_time = "10s" }
"""


def test_upstreams_with_policy_load_from_a_file_with_the_mesh_default(tmp_path: Path) -> None:
    mesh = Mesh.from_file(write(tmp_path, "mesh.toml", POLICY_TOML))
    assert mesh.policy.timeout == 5.0
    assert mesh.policy.retries == Retries(attempts=3, retry_on=("connect-failure", "5xx"))
    (upstream,) = mesh.groups["web"].upstreams
    assert (upstream.service, upstream.prefix, upstream.methods, upstream.rewrite) == (
        "api", "/api", ("GET",), "/")
    assert upstream.headers == (HeaderMatch(name="x-canary", exact="1"),)
    assert upstream.split == (Split(weight=95), Split(weight=5, tag="canary"))
    assert upstream.policy == Policy(timeout=0.25, outlier_detection=OutlierDetection(
        consecutive_gateway_failure=2, base_ejection_time=10.0))


@pytest.mark.parametrize(("snippet", "path", "message"), [
    ('timeout = "soon"', "groups.web.upstreams[0].timeout", "is not a duration"),
    ("retries = { attempts = -1 }", "groups.web.upstreams[0].policy.retries.attempts",
     "must be an integer from 0"),
    ('retries = { retry_on = ["sometimes"] }', "groups.web.upstreams[0].policy.retries.retry_on",
     "not an Envoy retry condition"),
    ("rate_limit = { requests = 5, per = \"10ms\" }",
     "groups.web.upstreams[0].policy.rate_limit.per", "at most every 50ms"),
    ('headers = [{ name = "x", regex = "(?=a)" }]', "groups.web.upstreams[0].headers[0].regex",
     "not RE2 syntax"),
    ("split = [{ weight = 0 }]", "groups.web.upstreams[0].split", "the weights add up to 0"),
    ("retires = 3", "groups.web.upstreams[0].retires", "did you mean 'retries'"),
    ('timeout = "400000000000s"', "groups.web.upstreams[0].policy.timeout",
     "longer than Envoy's largest duration"),
])
def test_policy_values_envoy_would_refuse_are_errors_with_paths(
        tmp_path: Path, snippet: str, path: str, message: str) -> None:
    text = f'[[groups.web.upstreams]]\nservice = "api"\nprefix = "/api"\n{snippet}\n'
    with pytest.raises(MeshError) as refused:
        Mesh.from_file(write(tmp_path, "mesh.toml", text))
    assert [(p.path, message in p.message) for p in refused.value.problems] == [(path, True)]


@pytest.mark.parametrize("value", [
    "secrets/../../../etc/envoy.json", "local/./x.json", "/etc/envoy.json", "secrets/",
    "secrets", "local//x.json",
])
def test_a_bootstrap_path_must_stay_inside_the_task_directory(value: str) -> None:
    with pytest.raises(MeshError) as refused:
        Mesh(bootstrap_path=value).validate()
    assert paths(refused) == ["mesh.bootstrap_path"]


@pytest.mark.parametrize(("name", "text", "error"), [
    ("nan.json", '{"egress_port": NaN}', "NaN is not JSON"),
    ("inf.json", '{"egress_port": Infinity}', "Infinity is not JSON"),
    ("nan.toml", "egress_port = nan", "nan is not a usable number"),
    ("inf.yaml", "egress_port: .inf", "inf is not a usable number"),
    ("huge.json", '{"egress_port": ' + "9" * 5000 + "}", "huge.json:1: an integer has more"),
    # Fuzz finding: tomllib's int() refused a 4,301-digit integer with a bare ValueError.
    ("huge.toml", "inbound = true\negress_port = " + "9" * 4301,
     "huge.toml:2: an integer has more than 4,300 digits"),
    ("huge.yaml", "egress_port: 1_" + "9" * 4301, "huge.yaml:1: an integer has more than"),
    ("huge.toml", "egress_port = " + "9" * 30, "integer too large"),
    ("deep.json", "[" * 5000 + "]" * 5000, "deep.json: brackets nested more than 32 levels"),
    # Fuzz finding: PyYAML took seconds (a hang under load) on 5,000 flow brackets.
    ("deep.yaml", "[" * 5000, "deep.yaml: brackets nested more than 32 levels deep"),
    ("deeper.yml", "a: " + "{a: " * 33, "brackets nested more than 32 levels deep"),
    ("deep.yaml", "a:\n" + "".join("  " * i + "- \n" for i in range(1, 60)), "nested more than"),
])
def test_unusable_numbers_and_deep_nesting_are_one_error(
        tmp_path: Path, name: str, text: str, error: str) -> None:
    with pytest.raises((MeshError, ParseError)) as refused:
        Mesh.from_file(write(tmp_path, name, text))
    assert error in str(refused.value)


def test_settings_that_are_not_utf8_or_not_a_file_are_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "mesh.toml"
    bad.write_bytes(b"egress_port = 1\n\xff\xfe")
    with pytest.raises(ParseError, match="not UTF-8"):
        Mesh.from_file(bad)
    with pytest.raises(LoadError, match="not a regular file"):
        Mesh.from_file(tmp_path)


def test_example_policy_settings_load() -> None:
    mesh = Mesh.from_file(EXAMPLES / "policy.toml")
    assert mesh.policy.timeout == 10.0
    assert mesh.groups["service-b"].allow == ("edge-router",)
    (upstream,) = mesh.groups["service-b"].upstreams
    assert upstream.policy is not None
    assert upstream.policy.retries == Retries(attempts=3, per_try_timeout="500ms")
    assert [s.weight for s in upstream.split] == [95, 5]
