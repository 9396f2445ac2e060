"""Client settings: the Nomad CLI's environment, explicit arguments winning, TLS on by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nomadmesh.deploy import NomadClient, NomadConfig
from nomadmesh.deploy._http import make_session
from nomadmesh.errors import InputError

SECRET = "s3cr3t-7b1e-token"

FULL_ENV = {
    "NOMAD_ADDR": "https://nomad.example:4646/",
    "NOMAD_TOKEN": SECRET,
    "NOMAD_NAMESPACE": "prod",
    "NOMAD_REGION": "eu",
    "NOMAD_CACERT": "/etc/nomad/ca.pem",
    "NOMAD_CAPATH": "/etc/nomad/cas",
    "NOMAD_CLIENT_CERT": "/etc/nomad/cli.pem",
    "NOMAD_CLIENT_KEY": "/etc/nomad/cli-key.pem",
    "NOMAD_TLS_SERVER_NAME": "server.global.nomad",
    "NOMAD_SKIP_VERIFY": "false",
}


def test_every_nomad_cli_variable_is_read() -> None:
    config = NomadConfig.from_env(FULL_ENV)
    assert config == NomadConfig(
        address="https://nomad.example:4646", token=SECRET, namespace="prod", region="eu",
        ca_cert="/etc/nomad/ca.pem", ca_path="/etc/nomad/cas", client_cert="/etc/nomad/cli.pem",
        client_key="/etc/nomad/cli-key.pem", tls_server_name="server.global.nomad",
        skip_verify=False)


def test_explicit_arguments_win_over_the_environment() -> None:
    config = NomadConfig.from_env(FULL_ENV, address="http://other:4646", namespace="dev")
    assert (config.address, config.namespace, config.region) == ("http://other:4646", "dev", "eu")


def test_defaults_without_environment_are_the_local_agent_with_verification_on() -> None:
    config = NomadConfig.from_env({})
    assert (config.address, config.token, config.verify) == ("http://127.0.0.1:4646", None, True)


def test_address_without_scheme_gets_http() -> None:
    assert NomadConfig.from_env({"NOMAD_ADDR": "10.0.0.5:4646"}).address == "http://10.0.0.5:4646"


def test_ca_file_becomes_the_verify_setting_of_the_session(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    session = make_session(NomadConfig.from_env({"NOMAD_CACERT": str(ca)}))
    assert session.verify == str(ca)


def test_missing_ca_file_is_an_input_error_naming_the_variable() -> None:
    with pytest.raises(InputError, match=r"NOMAD_CACERT: no such file: /nowhere/ca\.pem"):
        NomadClient(ca_cert="/nowhere/ca.pem")


def test_tls_verification_is_on_unlike_python_nomads_default() -> None:
    session = make_session(NomadConfig.from_env({"NOMAD_ADDR": "https://n:4646"}))
    assert session.verify is True


def test_skip_verify_turns_verification_off_only_when_asked() -> None:
    assert NomadConfig.from_env({"NOMAD_SKIP_VERIFY": "1"}).verify is False


def test_skip_verify_rejects_a_non_boolean() -> None:
    with pytest.raises(InputError, match="NOMAD_SKIP_VERIFY"):
        NomadConfig.from_env({"NOMAD_SKIP_VERIFY": "maybe"})


def test_client_certificate_without_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="NOMAD_CLIENT_KEY"):
        NomadConfig.from_env({"NOMAD_CLIENT_CERT": "/c.pem"})


def test_client_from_env_reads_the_given_environment() -> None:
    with NomadClient.from_env({"NOMAD_ADDR": "http://n1:4646", "NOMAD_NAMESPACE": "ops"}) as c:
        assert (c.address, c.config.namespace) == ("http://n1:4646", "ops")


def test_plain_constructor_ignores_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_TOKEN", SECRET)
    monkeypatch.setenv("NOMAD_ADDR", "http://from-env:4646")
    with NomadClient("http://explicit:4646") as c:
        assert (c.address, c.config.token) == ("http://explicit:4646", None)


def test_token_is_not_in_client_or_config_repr() -> None:
    with NomadClient.from_env({"NOMAD_TOKEN": SECRET}) as client:
        assert SECRET not in repr(client)
        assert SECRET not in repr(client.config)
        assert "token=<set>" in repr(client)


def test_the_payload_keeps_only_stable_meta_and_writes_only_the_tool() -> None:
    from nomadmesh import Group, Job, Task

    job = Job("web", meta={"nomadmesh.pack": "web", "nomadmesh.digest": "stale", "team": "a"},
              groups=[Group("g", tasks=[Task("t", driver="exec")])])
    meta = NomadClient("http://127.0.0.1:1").payload(job)["Meta"]
    assert meta == {"nomadmesh.pack": "web", "team": "a", "nomadmesh.tool": "nomadmesh"}


def test_the_payload_keeps_an_older_versions_bookkeeping_at_the_servers_value() -> None:
    # Removing the key would change Meta, and any Meta change replaces every allocation.
    from nomadmesh import Group, Job, Task

    job = Job("web", groups=[Group("g", tasks=[Task("t", driver="exec")])])
    current = {"Meta": {"nomadmesh.digest": "0123abcd", "nomadmesh.version": "0.0.9"}}
    meta = NomadClient("http://127.0.0.1:1").payload(job, current=current)["Meta"]
    assert meta == {"nomadmesh.digest": "0123abcd", "nomadmesh.version": "0.0.9",
                    "nomadmesh.tool": "nomadmesh"}


def test_a_python_built_job_is_submitted_with_its_json_as_the_source() -> None:
    from nomadmesh import Group, Job, Task

    job = Job("web", groups=[Group("g", tasks=[Task("t", driver="exec")])])
    client = NomadClient("http://127.0.0.1:1")
    api = client.payload(job)
    submission = client.submission(job, api)
    assert (submission["Format"], submission["VariableFlags"], submission["Variables"]) == (
        "json", {}, "")
    assert json.loads(submission["Source"]) == {"Job": api}


def test_a_body_with_its_own_submission_is_submitted_as_given() -> None:
    given = {"Source": 'job "web" {}', "Format": "hcl2", "VariableFlags": {"a": "b c"},
             "Variables": 'x = "1"'}
    body = {"Job": {"ID": "web"}, "Submission": given}
    client = NomadClient("http://127.0.0.1:1")
    assert client.submission(body, client.payload(body)) == given
