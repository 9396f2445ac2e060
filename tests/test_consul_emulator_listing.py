"""The Consul emulator's health answers, kept per instance, against an encoding from scratch.

`GET /v1/health/service/<name>` re-encodes only the instances a write changed; after any
sequence of registrations, re-registrations under another name, check flips (the node's own
check included) and deregistrations, every answer must be the bytes an encoding of the whole
service from scratch gives.
"""

from __future__ import annotations

import random
from typing import Any

import requests

from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing._http import go_json

NAMES = ("web", "api")


def _from_scratch(consul: ConsulEmulator, name: str, passing: bool, tag: str | None,
                  filter_tag: str | None = None) -> bytes:
    with consul._lock:
        entries = [consul._health_entry(s) for s in consul._instances(name)]
        parts = [go_json(e) for e in entries
                 if (not tag or tag in e["Service"]["Tags"])
                 and (not passing or all(c["Status"] == "passing" for c in e["Checks"]))
                 and (not filter_tag or filter_tag in e["Service"]["Tags"])]
    return b"[" + b",".join(parts) + b"]"


def _step(consul: ConsulEmulator, rng: random.Random, step: int) -> str:
    ids = consul.service_ids()
    checks = [c["CheckID"] for c in consul.check_definitions()]
    action = rng.choice(["register", "register", "rename", "flip", "flip", "flip", "node",
                         "deregister"] if ids else ["register"])
    if action == "register":
        consul.register(rng.choice(NAMES), service_id=f"i-{rng.randrange(12)}",
                        port=8000 + step, tags=rng.sample(["v1", "v2", "canary"], 2),
                        checks=[{"CheckID": f"c-{step}-{n}", "TTL": "10s",
                                 "Status": rng.choice(["passing", "critical"])}
                                for n in range(rng.randrange(3))])
    elif action == "rename":
        consul.register(rng.choice(NAMES), service_id=rng.choice(ids), port=7000 + step)
    elif action == "flip":
        consul.set_check_status(rng.choice(checks), rng.choice(["passing", "warning"]),
                                f"output {step}")
    elif action == "node":
        consul.set_check_status("serfHealth", rng.choice(["passing", "critical"]))
    else:
        consul.deregister(rng.choice(ids))
    return action


def test_health_answers_are_byte_for_byte_an_encoding_from_scratch(
        consul: ConsulEmulator) -> None:
    rng = random.Random(5)
    session = requests.Session()
    for step in range(100):
        action = _step(consul, rng, step)
        for name in (*NAMES, "nothing"):
            for passing in (False, True):
                for tag in (None, "v1"):
                    params: dict[str, Any] = {"passing": "1"} if passing else {}
                    if tag:
                        params["tag"] = tag
                    got = session.get(f"{consul.url}/v1/health/service/{name}", params=params,
                                      timeout=10)
                    assert got.status_code == 200, got.text
                    assert got.content == _from_scratch(consul, name, passing, tag), (
                        step, action, name, passing, tag)
            filtered = session.get(f"{consul.url}/v1/health/service/{name}",
                                   params={"passing": "1", "filter": '"canary" in Service.Tags'},
                                   timeout=10)
            assert filtered.content == _from_scratch(consul, name, True, None, "canary"), (
                step, action, name)


def test_a_large_answer_written_in_blocks_is_the_encoding_from_scratch(
        consul: ConsulEmulator) -> None:
    rng = random.Random(11)
    session = requests.Session()
    for n in range(97):  # two blocks and one entry, then exactly two blocks, then fewer
        consul.register("big", service_id=f"big-{n:03d}", port=n, tags=["v1"],
                        meta={"pad": "x" * 600},
                        checks=[{"CheckID": f"b-{n}", "TTL": "10s", "Status": "passing"}])
    assert len(_from_scratch(consul, "big", False, None)) > 64 * 1024  # written in pieces
    for step in range(24):
        if step == 8:
            consul.deregister("big-096")
        elif step == 16:
            consul.deregister(f"big-{rng.randrange(96):03d}")
        checks = [c["CheckID"] for c in consul.check_definitions() if c["CheckID"] != "serfHealth"]
        consul.set_check_status(rng.choice(checks), rng.choice(["passing", "critical"]),
                                f"output {step}")
        for params in ({}, {"passing": "1"}, {"tag": "v1"}):
            got = session.get(f"{consul.url}/v1/health/service/big", params=params, timeout=10)
            assert got.status_code == 200
            assert got.content == _from_scratch(consul, "big", "passing" in params,
                                                params.get("tag")), (step, params)
        head = session.head(f"{consul.url}/v1/health/service/big", timeout=10)
        assert int(head.headers["Content-Length"]) == len(
            _from_scratch(consul, "big", False, None))
