"""Nomad Variables (`/v1/var/<path>`, `/v1/vars`), as command/agent/variable_endpoint.go and
nomad/structs/variables.go define them: check-and-set, 409 with the conflicting variable, path
rules, blocking queries on one variable."""

from __future__ import annotations

import threading

import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.envoy import eventually


def _put(nomad: NomadEmulator, path: str, items: object, **params: str) -> requests.Response:
    return requests.put(f"{nomad.url}/v1/var/{path}", params=params, json={"Items": items},
                        timeout=5)


def test_a_variable_round_trips_with_its_indexes(nomad: NomadEmulator) -> None:
    put = _put(nomad, "nomadmesh/mesh/config", {"config": '{"routes": []}'})
    got = requests.get(f"{nomad.url}/v1/var/nomadmesh/mesh/config", timeout=5)
    assert put.status_code == got.status_code == 200
    var = got.json()
    assert (var["Namespace"], var["Path"], var["Items"]) == (
        "default", "nomadmesh/mesh/config", {"config": '{"routes": []}'})
    assert var["ModifyIndex"] == int(got.headers["X-Nomad-Index"]) == put.json()["ModifyIndex"]


def test_list_shows_metadata_under_a_prefix(nomad: NomadEmulator) -> None:
    _put(nomad, "nomadmesh/a", {"k": "1"})
    _put(nomad, "nomadmesh/b", {"k": "2"})
    _put(nomad, "other", {"k": "3"})
    listed = requests.get(f"{nomad.url}/v1/vars", params={"prefix": "nomadmesh/"},
                          timeout=5).json()
    assert [v["Path"] for v in listed] == ["nomadmesh/a", "nomadmesh/b"]
    assert all("Items" not in v for v in listed)


def test_a_missing_variable_is_404(nomad: NomadEmulator) -> None:
    missing = requests.get(f"{nomad.url}/v1/var/nope", timeout=5)
    assert (missing.status_code, missing.text) == (404, "variable not found")


def test_check_and_set_conflicts_answer_409_with_the_current_variable(
        nomad: NomadEmulator) -> None:
    first = _put(nomad, "app", {"v": "1"}).json()
    create_only = _put(nomad, "app", {"v": "2"}, cas="0")
    stale = _put(nomad, "app", {"v": "2"}, cas=str(first["ModifyIndex"] + 100))
    fresh = _put(nomad, "app", {"v": "2"}, cas=str(first["ModifyIndex"]))
    assert (create_only.status_code, create_only.json()["Items"]) == (409, {"v": "1"})
    assert stale.status_code == 409 and fresh.status_code == 200
    assert requests.get(f"{nomad.url}/v1/var/app", timeout=5).json()["Items"] == {"v": "2"}
    deleted = requests.delete(f"{nomad.url}/v1/var/app", params={"cas": "1"}, timeout=5)
    assert deleted.status_code == 409
    assert requests.delete(f"{nomad.url}/v1/var/app", timeout=5).status_code == 200
    assert requests.get(f"{nomad.url}/v1/var/app", timeout=5).status_code == 404


def test_bad_variables_are_refused_with_nomads_text(nomad: NomadEmulator) -> None:
    empty = _put(nomad, "app", {})
    bad_path = _put(nomad, "a b", {"k": "v"})
    reserved = _put(nomad, "nomad/other", {"k": "v"})
    assert (empty.status_code, empty.text) == (400, "variable missing required Items object")
    assert (bad_path.status_code, bad_path.text) == (400, 'invalid path "a b"')
    assert reserved.status_code == 400 and reserved.text.startswith("only paths at")


def test_a_blocking_read_wakes_when_the_variable_changes(nomad: NomadEmulator) -> None:
    index = _put(nomad, "cfg", {"v": "1"}).json()["ModifyIndex"]
    seen: list[dict[str, str]] = []

    def block() -> None:
        seen.append(requests.get(f"{nomad.url}/v1/var/cfg", timeout=30,
                                 params={"index": str(index), "wait": "20s"}).json()["Items"])

    waiter = threading.Thread(target=block)
    waiter.start()
    eventually(lambda: nomad.watches.waiting(("variables", ("default", "cfg"))) == 1,
               what="the parked query")
    _put(nomad, "other", {"v": "x"})
    _put(nomad, "cfg", {"v": "2"})
    waiter.join(timeout=20)
    assert seen == [{"v": "2"}]
