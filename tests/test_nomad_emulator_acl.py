"""The emulator's ACL bootstrap, token and policy endpoints (gaps python-nomad's suite found).

Expected texts and codes are Nomad's: command/agent/acl_endpoint.go and nomad/acl_endpoint.go,
nomad/structs/acl.go at aa026cc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from nomadmesh.testing import NomadEmulator


@pytest.fixture
def fresh() -> Iterator[NomadEmulator]:
    """ACLs enabled, not bootstrapped yet (as `nomad agent -dev -acl-enabled`)."""
    with NomadEmulator(acl_bootstrap=True) as emulator:
        yield emulator


def _call(nomad: NomadEmulator, method: str, path: str, token: str = "",
          body: Any = None) -> requests.Response:
    headers = {"X-Nomad-Token": token} if token else {}
    return requests.request(method, f"{nomad.url}{path}", json=body, headers=headers, timeout=5)


def test_bootstrap_once_then_already_done(fresh: NomadEmulator) -> None:
    assert _call(fresh, "GET", "/v1/jobs").status_code == 403
    first = _call(fresh, "POST", "/v1/acl/bootstrap")
    assert first.status_code == 200
    token = first.json()
    assert (token["Name"], token["Type"], token["Global"]) == ("Bootstrap Token",
                                                               "management", True)
    # nomad/acl_endpoint.go:478
    again = _call(fresh, "POST", "/v1/acl/bootstrap")
    assert again.status_code == 400
    assert again.text.startswith("ACL bootstrap already done (reset index: ")
    assert _call(fresh, "GET", "/v1/jobs", token["SecretID"]).status_code == 200


def test_bootstrap_refused_when_acls_are_disabled() -> None:
    with NomadEmulator() as nomad:
        r = _call(nomad, "POST", "/v1/acl/bootstrap")
        assert (r.status_code, r.text) == (400, "ACL support disabled")  # acl_endpoint.go:38


def test_tokens_create_read_update_delete(fresh: NomadEmulator) -> None:
    root = _call(fresh, "POST", "/v1/acl/bootstrap").json()["SecretID"]
    made = _call(fresh, "POST", "/v1/acl/token", root,
                 {"Name": "ro", "Type": "client", "Policies": ["readonly"]}).json()
    accessor = made["AccessorID"]
    assert made["SecretID"] and made["CreateIndex"] == made["ModifyIndex"]
    listed = _call(fresh, "GET", "/v1/acl/tokens", root).json()
    assert [t["Name"] for t in listed] == ["Bootstrap Token", "ro"]
    assert "SecretID" not in listed[1]  # ACLTokenListStub
    assert _call(fresh, "GET", f"/v1/acl/token/{accessor}", root).json()["Name"] == "ro"
    mismatch = _call(fresh, "POST", f"/v1/acl/token/{accessor}", root,
                     {"AccessorID": "other", "Name": "x", "Type": "client", "Policies": ["p"]})
    assert (mismatch.status_code, mismatch.text) == (
        400, "ACL token accessor does not match request path")
    updated = _call(fresh, "POST", f"/v1/acl/token/{accessor}", root,
                    {"AccessorID": accessor, "Name": "renamed", "Type": "client",
                     "Policies": ["readonly"]}).json()
    assert (updated["Name"], updated["SecretID"]) == ("renamed", made["SecretID"])
    assert updated["ModifyIndex"] > made["ModifyIndex"]
    # a client token reads itself, nothing else (its policies are not evaluated)
    own = _call(fresh, "GET", "/v1/acl/token/self", made["SecretID"])
    assert own.json()["AccessorID"] == accessor
    assert _call(fresh, "GET", "/v1/jobs", made["SecretID"]).status_code == 403
    assert _call(fresh, "DELETE", f"/v1/acl/token/{accessor}", root).status_code == 200
    gone = _call(fresh, "GET", f"/v1/acl/token/{accessor}", root)
    assert (gone.status_code, gone.text) == (404, "ACL token not found")
    unknown = _call(fresh, "GET", "/v1/jobs", made["SecretID"])
    assert (unknown.status_code, unknown.text) == (403, "ACL token not found")


def test_token_validation_texts(fresh: NomadEmulator) -> None:
    """ACLToken.Validate (structs/acl.go:757) wrapped as upsertTokens does (acl_endpoint.go:659)."""
    root = _call(fresh, "POST", "/v1/acl/bootstrap").json()["SecretID"]
    r = _call(fresh, "POST", "/v1/acl/token", root, {"Name": "x", "Type": "client"})
    assert (r.status_code, r.text) == (
        400, "token 0 invalid: 1 error occurred:\n\t* client token missing policies or roles\n\n")
    r = _call(fresh, "POST", "/v1/acl/token", root, {"Name": "x", "Type": "bogus"})
    assert "token type must be client or management" in r.text
    # encoding/json's type error, as the agent's decodeBody answers it
    r = _call(fresh, "POST", "/v1/acl/token", root, {"Name": "x", "Policies": "readonly"})
    assert (r.status_code, r.text) == (400, "json: cannot unmarshal string into Go struct field "
                                            "ACLToken.Policies of type []string")


def test_policies_upsert_read_list_delete(fresh: NomadEmulator) -> None:
    root = _call(fresh, "POST", "/v1/acl/bootstrap").json()["SecretID"]
    body = {"Name": "my-policy", "Description": "great", "Rules": ""}
    assert _call(fresh, "POST", "/v1/acl/policy/my-policy", root, body).status_code == 200
    wrong = _call(fresh, "POST", "/v1/acl/policy/other", root, body)
    assert (wrong.status_code, wrong.text) == (400, "ACL policy name does not match request path")
    got = _call(fresh, "GET", "/v1/acl/policy/my-policy", root).json()
    assert (got["Description"], got["Rules"]) == ("great", "")
    stubs = _call(fresh, "GET", "/v1/acl/policies", root).json()
    assert [p["Name"] for p in stubs] == ["my-policy"] and "Rules" not in stubs[0]
    assert _call(fresh, "DELETE", "/v1/acl/policy/my-policy", root).status_code == 200
    missing = _call(fresh, "GET", "/v1/acl/policy/my-policy", root)
    assert (missing.status_code, missing.text) == (404, "ACL policy not found")
