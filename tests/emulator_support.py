"""Shared by the emulator jobspec tests: Nomad's own code (the oracle) and api-JSON generators.

The generators are driven by the committed api schema (`nomad_api_schema.json`), read through the
emulator's loader, never through the client's model: what they build is whatever Go's decoder
would accept (or, mutated, refuse), not what nomadmesh's model thinks a job is.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

from nomadmesh.testing.nomad_api import NomadApiError, api_job_json, decode_register
from nomadmesh.testing.nomad_api.api_canonical import canonicalize_job
from nomadmesh.testing.nomad_api.schema import structs
from tests import nomad_oracle

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "emulator"


def oracle_path() -> Path | None:
    """The nomad-api-oracle binary (tests/nomad_oracle.py finds it), None when absent."""
    path = nomad_oracle.oracle_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def require_oracle() -> Path:
    """The oracle; a missing one fails the test in CI and skips it elsewhere."""
    return nomad_oracle.oracle()


def oracle_register(bodies: list[bytes], oracle: Path) -> list[dict[str, Any]]:
    """What Nomad's agent code answers for each register body (`register --batch`)."""
    answers: list[dict[str, Any] | None] = [None] * len(bodies)
    batch: list[int] = []
    for i, body in enumerate(bodies):
        if _is_json(body):
            batch.append(i)
        else:  # --batch takes JSON values: a body that is not one goes alone, on stdin
            done = subprocess.run([str(oracle), "register"], input=body, capture_output=True,
                                  timeout=60)  # exits 1 when the agent refuses the body
            answers[i] = json.loads(done.stdout)
    if batch:
        payload = b"[" + b",".join(bodies[i] for i in batch) + b"]"
        done = subprocess.run([str(oracle), "register", "--batch"], input=payload,
                              capture_output=True, check=True, timeout=300)
        for i, answer in zip(batch, json.loads(done.stdout), strict=True):
            answers[i] = answer
    return [a for a in answers if a is not None]


def _is_json(body: bytes) -> bool:
    def refuse(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(body, parse_constant=refuse)
    except (ValueError, RecursionError):
        return False
    return b"\\u" not in body  # surrogate escapes: the batch reader may differ from the agent


def emulator_register(body: bytes) -> dict[str, Any]:
    """The emulator's answer in the oracle's shape: decode + api.Job.Canonicalize()."""
    try:
        request = decode_register(body)
        if request.job is None:
            raise NomadApiError(400, "Job must be specified")
        canonicalize_job(request.job)
    except NomadApiError as exc:
        return {"ok": False, "status": exc.status, "error": exc.text}
    return {"ok": True, "job": api_job_json(request.job)}


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An oracle answer without `unknown` (the name of a key Nomad drops, not part of its reply)."""
    return {k: v for k, v in answer.items() if k != "unknown"}


# --- api JSON generated from the schema -----------------------------------------------------------

_CHOICES: dict[str, list[str]] = {
    "Type": ["service", "batch", "system", "sysbatch", ""],
    "ChangeMode": ["signal", "restart", "noop", "script"],
    "GetterMode": ["file", "any", "dir"],
    "Mode": ["fail", "delay"],
    "HealthCheck": ["checks", "task_states", "manual"],
    "DelayFunction": ["constant", "exponential", "fibonacci"],
    "AddressMode": ["auto", "host", "driver", "alloc"],
    "Provider": ["consul", "nomad"],
    "Driver": ["docker", "exec", "raw_exec"],
}
_TEXT = "abcxyz-_./ 0é"
_INT_TYPES = {"int": (-3, 500), "int64": (-3, 500), "int8": (-60, 60), "uint8": (0, 255),
              "uint16": (0, 70000), "uint32": (0, 500), "uint64": (0, 500),
              "time.Duration": (0, 10**12)}


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_TEXT) for _ in range(rng.randrange(7)))


def _generic(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth > 0 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-10**6, 10**6) if rng.random() < 0.8 else rng.random() * 100
    if kind in (3, 4):
        return _text(rng)
    if kind == 5:
        return [_generic(rng, depth - 1) for _ in range(rng.randrange(3))]
    return {_text(rng): _generic(rng, depth - 1) for _ in range(rng.randrange(3))}


def api_value(rng: random.Random, go_type: str, name: str = "", depth: int = 0) -> Any:
    """JSON that Go decodes into `go_type` without error."""
    if go_type.startswith("*"):
        return None if rng.random() < 0.15 else api_value(rng, go_type[1:], name, depth)
    if go_type == "[]uint8":
        return base64.b64encode(rng.randbytes(rng.randrange(5))).decode()
    if go_type.startswith("[]"):
        return [api_value(rng, go_type[2:], name, depth + 1)
                for _ in range(rng.randrange(3 if depth < 3 else 2))]
    if go_type.startswith("map[string]"):
        return {_text(rng): api_value(rng, go_type[11:], name, depth + 1)
                for _ in range(rng.randrange(3))}
    if go_type == "interface {}":
        return _generic(rng, 2)
    if go_type.startswith("api.") and go_type[4:] in structs():
        return api_struct(rng, go_type[4:], depth + 1)
    if go_type in ("string", "api.CSIPluginType"):
        return rng.choice(_CHOICES[name]) if name in _CHOICES else _text(rng)
    if go_type == "bool":
        return rng.random() < 0.5
    low, high = _INT_TYPES[go_type]
    return rng.randint(low, high)


def api_struct(rng: random.Random, name: str, depth: int = 0) -> dict[str, Any]:
    """A JSON object for api struct `name` with a few of its fields."""
    fields = [f for f in structs()[name] if f.json != "SecretID"]
    if depth > 6 or not fields:
        return {}
    chosen = rng.sample(fields, min(len(fields), rng.randrange(2, 9 if depth < 4 else 4)))
    return {f.json: api_value(rng, f.go_type, f.json, depth) for f in chosen}


def random_body(rng: random.Random) -> dict[str, Any]:
    """A register body whose job has an ID, groups and tasks (other fields left to chance)."""
    def task() -> dict[str, Any]:
        return {**api_struct(rng, "Task", 2), "Name": rng.choice(["web", "api", "t"])}

    def group() -> dict[str, Any]:
        return {**api_struct(rng, "TaskGroup", 1),
                "Tasks": [task() for _ in range(rng.randrange(1, 3))]}

    job = {**api_struct(rng, "Job"), "ID": rng.choice(["web", "x", "batch-1"]),
           "TaskGroups": [group() for _ in range(rng.randrange(1, 3))]}
    return {"Job": job}


_WRONG: list[Any] = ["s", 1.5, -1, True, [], {}, [1], {"k": 1}, 10**20, None]


def mutate(body: dict[str, Any], rng: random.Random) -> bytes:
    """The body with one change Go may refuse (wrong type, renamed or unknown key, deep nesting)."""
    paths: list[tuple[Any, Any]] = []
    todo: list[Any] = [body]
    while todo:
        node = todo.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for k in keys:
            paths.append((node, k))
            if isinstance(node[k], (dict, list)):
                todo.append(node[k])
    node, key = rng.choice(paths)
    kind = rng.randrange(5)
    if kind == 4:
        depth = rng.randrange(1, 400)
        node[key] = json.loads("[" * depth + json.dumps(node[key]) + "]" * depth)
    elif kind == 0:
        node[key] = rng.choice(_WRONG)
    elif kind == 1 and isinstance(key, str):
        node[key.lower() if rng.random() < 0.5 else key.upper()] = node.pop(key)
    elif kind == 2 and isinstance(node, dict):
        node["NoSuchField" + str(rng.randrange(3))] = rng.choice(_WRONG)
    elif isinstance(node[key], list):
        node[key] = {str(i): v for i, v in enumerate(node[key])}
    elif isinstance(node[key], dict):
        node[key] = list(node[key].values())
    else:
        node[key] = None
    return json.dumps(body).encode()
