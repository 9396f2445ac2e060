"""A mutation fuzzer for nomadmesh's entry points (issue 16): no input may raise anything but a
nomadmesh error, hang, or exhaust memory.

Each target turns seed inputs (the repository's own example files, requests and argument lists)
into cases by mutation: byte edits (flips, inserted format tokens, deleted, duplicated and spliced
ranges), structural edits of decoded JSON trees, and bombs every parser must refuse in bounded time
(nesting 600 and 5,000 deep, 5,000-digit numbers, NaN and Infinity, non-UTF-8 bytes, long lines).
A case crashes when it raises an exception outside `NomadmeshError`, exceeds the per-case time
limit, or runs out of memory (the process is capped). Crashes are grouped by exception type and the
innermost nomadmesh frame, and the first input of each group is shrunk to a small reproducer.

Run one target (e.g. against another branch's checkout on PYTHONPATH):

    python tests/fuzzing.py TARGET [--cases 20000] [--seed 1] [--budget 120] [--json]

`tests/test_fuzz.py` runs every target in CI with a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import re
import resource
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CASE_SECONDS = 10.0  # a case running longer is a hang
MEMORY_BYTES = 3 * 1024**3  # a case needing more is a crash (RLIMIT_AS of the fuzz process)
MAX_INPUT = 256 * 1024
SHRINK_RUNS = 300
SHRINK_SECONDS = 20.0
# Cases write their files to memory where it can: replacing a small file costs ~3 ms on some disks
# and 70 us on tmpfs, which would make file writing the bulk of the fuzzer's time.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

# --- mutation ------------------------------------------------------------------------------

HCL_TOKENS = [b"{", b"}", b"[", b"]", b"(", b")", b"\"", b"${", b"%{", b"}", b"~}", b"<<EOF\n",
              b"\nEOF\n", b"<<-EOT\n", b"=", b"==", b",", b"...", b"=>", b"?", b":", b".", b"*",
              b"[*]", b".*", b"for x in ", b" if ", b"null", b"true", b"false", b"-", b"#",
              b"//", b"/*", b"*/", b"\n", b"\\", b"\\u00", b"\\U0001F600", b"job", b"group",
              b"task", b"variable", b"locals", b"dynamic", b"content", b"var.", b"local.",
              b"file(", b"jsondecode(", b"format(\"%d\", ", b"range(", b"element(", b"try(",
              b"1e400", b"0x", b"-0", b"9999999999999999999999", b"\"${var.x}\"", b"count",
              b"\xff", b"\x00", b"\xc3\x28", "\u2028".encode()]
JSON_TOKENS = [b"{", b"}", b"[", b"]", b"\"", b":", b",", b"null", b"true", b"false", b"-",
               b"0", b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity", b"1.5",
               b"18446744073709551616", b"\\u0000", b"\\ud800", b"\"ID\"", b"\"TaskGroups\"",
               b"\"Tasks\"", b"\"Job\"", b"\xff", b"\x00"]
YAML_TOKENS = [b"\n", b": ", b"- ", b"  ", b"{", b"}", b"[", b"]", b"&a ", b"*a", b"!!python/",
               b"!!binary ", b"<<: *a", b"---\n", b"...", b"~", b".nan", b".inf", b"0x10",
               b"'", b"\"", b"#", b"|\n", b">\n", b"? ", b"%YAML 1.1\n", b"\t", b"\xff"]
TOML_TOKENS = [b"\n", b" = ", b"[", b"]", b"[[", b"]]", b"{", b"}", b"\"", b"'", b"\"\"\"",
               b",", b".", b"nan", b"inf", b"-inf", b"1979-05-27T07:32:00Z", b"0x10", b"1_000",
               b"true", b"#", b"\xff"]


def bombs() -> list[bytes]:
    """Inputs every reader must refuse (or accept) in bounded time and memory."""
    return [b"[" * 600 + b"]" * 600, b"[" * 5000, b"{" * 600, b"{\"a\":" * 5000 + b"1" + b"}" * 5000,
            b"9" * 5000, b"-" + b"1" * 4301, b"NaN", b"Infinity", b"-Infinity", b"1e99999",
            b"\xff\xfe\x00", b"a" * 200_000, b"\"" + b"\\" * 10_001 + b"\"",
            b"job \"x\" {" * 600, b"x = " + b"[" * 5000, b"- " * 5000 + b"a",
            b"a:\n" + b"".join(b"  " * i + b"b:\n" for i in range(1, 400)),
            b"&a [*a, *a, *a, *a, *a, *a, *a, *a, *a]"]


class Mutator:
    """Random byte edits drawn from a format's tokens; deterministic for a given Random."""

    def __init__(self, rng: random.Random, tokens: list[bytes], seeds: list[bytes]) -> None:
        self.rng = rng
        self.tokens = tokens
        self.seeds = seeds
        self.bombs = bombs()

    def case(self) -> bytes:
        """One input: a seed with 1-6 edits, or (1 in 40) a bomb spliced into a seed."""
        rng = self.rng
        data = rng.choice(self.seeds)
        if rng.random() < 0.025:
            bomb = rng.choice(self.bombs)
            return bomb if rng.random() < 0.4 else self._insert(data, bomb)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 6))):
            data = rng.choice(self._edits)(self, data)
        return data[:MAX_INPUT]

    def _pos(self, data: bytes) -> int:
        return self.rng.randint(0, len(data))

    def _insert(self, data: bytes, piece: bytes) -> bytes:
        at = self._pos(data)
        return data[:at] + piece + data[at:]

    def _flip(self, data: bytes) -> bytes:
        if not data:
            return bytes([self.rng.randrange(256)])
        at = self.rng.randrange(len(data))
        return data[:at] + bytes([self.rng.randrange(256)]) + data[at + 1:]

    def _token(self, data: bytes) -> bytes:
        return self._insert(data, self.rng.choice(self.tokens))

    def _replace(self, data: bytes) -> bytes:
        a = self._pos(data)
        b = min(len(data), a + self.rng.randint(1, 16))
        return data[:a] + self.rng.choice(self.tokens) + data[b:]

    def _delete(self, data: bytes) -> bytes:
        a = self._pos(data)
        b = min(len(data), a + self.rng.choice((1, 2, 4, 16, 64, len(data) // 4 + 1)))
        return data[:a] + data[b:]

    def _duplicate(self, data: bytes) -> bytes:
        a = self._pos(data)
        b = min(len(data), a + self.rng.randint(1, 128))
        return self._insert(data, data[a:b] * self.rng.choice((1, 2, 8)))

    def _splice(self, data: bytes) -> bytes:
        other = self.rng.choice(self.seeds)
        a, b = sorted((self._pos(other), self._pos(other)))
        return self._insert(data, other[a:b])

    def _truncate(self, data: bytes) -> bytes:
        return data[:self._pos(data)]

    _edits = (_flip, _token, _token, _replace, _delete, _duplicate, _splice, _truncate)


INTERESTING: list[Any] = [None, "", 0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**400,
                          1.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf"), True, False,
                          [], {}, [None], {"": None}, "x" * 10_000, "\x00", "\ud800", "${x}",
                          "10s", "-5m", "99999999999h", "1e3", [1, "a", None], {"a": {"b": []}}]


def nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


class TreeMutator:
    """Structural edits of decoded JSON documents: values replaced with odd ones, keys removed,
    renamed and added, lists grown, whole subtrees nested hundreds or thousands deep."""

    def __init__(self, rng: random.Random, seeds: list[Any]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.keys = sorted({k for s in seeds for k in _keys(s)})

    def case(self) -> Any:
        doc = copy.deepcopy(self.rng.choice(self.seeds))
        for _ in range(self.rng.choice((1, 1, 2, 3, 5))):
            doc = self._edit(doc)
        if self.rng.random() < 0.05:  # last, so that nothing copies the bomb
            bomb = nested(self.rng.choice((600, 5000)), self.rng.choice(("list", "dict")))
            doc = _set(doc, self.rng.choice(list(_paths(doc))), bomb)
        return doc

    def _edit(self, doc: Any) -> Any:
        rng = self.rng
        paths = list(_paths(doc))
        path = rng.choice(paths)
        choice = rng.random()
        if choice < 0.5:
            value = copy.deepcopy(rng.choice(INTERESTING))
        elif choice < 0.65 and nodes(doc) < 5000:
            value = copy.deepcopy(_get(doc, rng.choice(paths)))
        else:
            return self._edit_container(doc, path)
        return _set(doc, path, value)

    def _edit_container(self, doc: Any, path: tuple[Any, ...]) -> Any:
        rng = self.rng
        target = _get(doc, path)
        if isinstance(target, dict):
            if target and rng.random() < 0.5:
                target.pop(rng.choice(sorted(target, key=str)))
            else:
                key = rng.choice(self.keys) if self.keys and rng.random() < 0.8 else "Unknown"
                target[key] = copy.deepcopy(rng.choice(INTERESTING))
        elif isinstance(target, list):
            if target and rng.random() < 0.5:
                target.append(copy.deepcopy(rng.choice(target)))
            elif target:
                target.pop(rng.randrange(len(target)))
            else:
                target.append(copy.deepcopy(rng.choice(INTERESTING)))
        else:
            return _set(doc, path, [target] if rng.random() < 0.5 else {"x": target})
        return doc


def _keys(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _keys(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _keys(v)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if len(prefix) > 40:
        return
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


# --- running cases -------------------------------------------------------------------------


class Hang(BaseException):
    """A case ran past CASE_SECONDS."""


class Finding(Exception):
    """A failure seen from outside the code under test (a server's traceback, a dropped
    connection); `where` locates it as the traceback or the symptom does."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass
class Crash:
    """One group of crashing cases: what was raised where, how often, a shrunk reproducer."""

    signature: str
    message: str
    count: int
    example: Any
    number: int  # the first crashing case's number (`--replay N` prints it whole)
    traceback: str = ""

    def as_dict(self) -> dict[str, Any]:
        text = self.example if isinstance(self.example, str) else repr(self.example)
        return {"signature": self.signature, "message": self.message[:500], "count": self.count,
                "case": self.number, "reproducer": text[:3000],
                "traceback": self.traceback[-3000:]}


@dataclass
class Target:
    """An entry point: how to make cases, how to run one; `run` raises what the code raised."""

    name: str
    cases: Callable[[random.Random, Workspace], Iterator[Any]]
    run: Callable[[Any, Workspace], None]
    describe: Callable[[Any], str] = repr
    shrink: Callable[[Any], Iterator[Any]] = field(default=lambda case: iter(()))


class Workspace:
    """A scratch directory the cases write their files into (few names, overwritten)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


def signature(exc: BaseException) -> str:
    """`TypeName at nomadmesh/x.py:123 (function)`: the innermost frame of nomadmesh's own code."""
    if isinstance(exc, Hang):
        where = "hang"
    elif isinstance(exc, Finding):
        where = exc.where
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/nomadmesh/" in f.filename and "/tests/" not in f.filename]
        last = (ours or frames or [None])[-1]
        where = (f"{last.filename.split('/nomadmesh/', 1)[-1]}:{last.lineno} ({last.name})"
                 if last is not None else "?")
        if ours and ours[-1] is not frames[-1]:
            where += f" -> {Path(frames[-1].filename).name}:{frames[-1].lineno}"
    return f"{type(exc).__name__} at {where}"


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang()


def attempt(target: Target, case: Any, ws: Workspace) -> BaseException | None:
    """Run one case; the exception that makes it a crash, or None."""
    from nomadmesh.errors import NomadmeshError

    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        target.run(case, ws)
    except NomadmeshError:
        return None
    except (Exception, Hang, RecursionError, MemoryError) as exc:
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None


def fuzz(target: Target, *, cases: int, seed: int, budget: float,
         progress: Path | None = None) -> dict[str, Any]:
    """Run up to `cases` cases within `budget` seconds; the summary with every crash group.
    `progress` receives the number of the case about to run (to name a case that hangs the
    process where no signal reaches it, e.g. inside a C extension)."""
    signal.signal(signal.SIGALRM, _on_alarm)
    rng = random.Random(seed)
    crashes: dict[str, Crash] = {}
    mark = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if progress else None
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-", dir=SCRATCH) as tmp:
        ws = Workspace(Path(tmp))
        start = time.monotonic()
        done = 0
        slowest = (0.0, -1)
        for case in target.cases(rng, ws):
            if done >= cases or time.monotonic() - start > budget:
                break
            if mark is not None:
                os.pwrite(mark, f"{done:>12}\n".encode(), 0)
            began = time.monotonic()
            exc = attempt(target, case, ws)
            took = time.monotonic() - began
            if took > slowest[0]:
                slowest = (took, done)
            done += 1
            if exc is None:
                continue
            sig = signature(exc)
            if sig in crashes:
                crashes[sig].count += 1
            else:
                crashes[sig] = Crash(sig, f"{type(exc).__name__}: {exc}"[:500], 1, case, done - 1,
                                     "".join(traceback.format_exception(exc)))
        elapsed = time.monotonic() - start
        for crash in crashes.values():
            if not crash.signature.endswith("hang"):
                crash.example = _shrunk(target, crash.example, crash.signature, ws)
            crash.example = target.describe(crash.example)
    return {"target": target.name, "cases": done, "seconds": round(elapsed, 1), "seed": seed,
            "slowest": {"seconds": round(slowest[0], 3), "case": slowest[1]},
            "crashes": [c.as_dict() for c in crashes.values()]}


def _shrunk(target: Target, case: Any, sig: str, ws: Workspace) -> Any:
    """A smaller case with the same signature (greedy; at most SHRINK_RUNS attempts and
    SHRINK_SECONDS)."""
    runs = 0
    until = time.monotonic() + SHRINK_SECONDS
    improved = True
    while improved and runs < SHRINK_RUNS and time.monotonic() < until:
        improved = False
        for smaller in target.shrink(case):
            runs += 1
            exc = attempt(target, smaller, ws)
            if exc is not None and signature(exc) == sig:
                case, improved = smaller, True
                break
            if runs >= SHRINK_RUNS or time.monotonic() >= until:
                break
    return case


def replay(target: Target, seed: int, number: int) -> str:
    """The description of case `number` of `seed` (the generator is deterministic)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-") as tmp:
        for i, case in enumerate(target.cases(rng, Workspace(Path(tmp)))):
            if i == number:
                return target.describe(case)
    raise AssertionError("unreachable: the generators never end")


def shrink_bytes(data: bytes) -> Iterator[bytes]:
    """Halves, quarters, ... of `data` removed, largest first."""
    size = len(data) // 2
    while size >= 1:
        for start in range(0, len(data), size):
            yield data[:start] + data[start + size:]
        size //= 2


def depth(doc: Any) -> int:
    """How deeply lists and dicts nest in `doc` (without recursion: bombs are 5,000 deep)."""
    deepest, stack = 0, [(doc, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else (
            node if isinstance(node, list) else ())
        stack.extend((child, level + 1) for child in children)
    return deepest


def nodes(doc: Any) -> int:
    """How many values `doc` holds, counted to 5,000 at most."""
    count, stack = 0, [doc]
    while stack and count < 5000:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def shrink_tree(doc: Any) -> Iterator[Any]:
    """The document with one key or list item removed, or one subtree replaced by its child."""
    if depth(doc) > 100:
        return
    for path in list(_paths(doc))[1:]:
        parent = _get(doc, path[:-1])
        smaller = copy.deepcopy(doc)
        holder = _get(smaller, path[:-1])
        if isinstance(parent, dict):
            del holder[path[-1]]
        else:
            holder.pop(path[-1])
        yield smaller
    for path in _paths(doc):
        node = _get(doc, path)
        children = list(node.values()) if isinstance(node, dict) else (
            node if isinstance(node, list) else [])
        for child in children[:1]:
            yield _set(copy.deepcopy(doc), path, copy.deepcopy(child))


def describe_bytes(data: bytes) -> str:
    return repr(data)


# --- the targets ---------------------------------------------------------------------------


def _files(*patterns: str) -> list[bytes]:
    found = sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()})
    return [p.read_bytes() for p in found]


def _extra_seeds(suffixes: tuple[str, ...]) -> list[bytes]:
    """More seed files from FUZZ_SEEDS (a directory, e.g. Nomad's own job files), if set."""
    directory = os.environ.get("FUZZ_SEEDS")
    if not directory:
        return []
    return [p.read_bytes() for p in sorted(Path(directory).rglob("*"))
            if p.is_file() and p.name.endswith(suffixes) and p.stat().st_size < MAX_INPUT]


def hcl_seeds() -> list[bytes]:
    return (_files("examples/jobs/**/*.hcl", "tests/fixtures/jobspecs/**/*.hcl")
            + _extra_seeds((".hcl", ".nomad")))


def _byte_cases(tokens: list[bytes], seeds: Callable[[], list[bytes]]
                ) -> Callable[[random.Random, Workspace], Iterator[bytes]]:
    def cases(rng: random.Random, ws: Workspace) -> Iterator[bytes]:
        mutator = Mutator(rng, tokens, seeds())
        while True:
            yield mutator.case()
    return cases


def run_hcl_file(data: bytes, ws: Workspace) -> None:
    from nomadmesh.loader import load_all

    load_all(ws.write("job.nomad.hcl", data))


def run_json_file(data: bytes, ws: Workspace) -> None:
    from nomadmesh.loader import load_all

    load_all(ws.write("job.json", data))


def api_seeds() -> list[Any]:
    docs = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "jobs").glob("*.json"))]
    docs += [json.loads(p.read_text()) for p in sorted((ROOT / "tests" / "data").glob("*.json"))]
    from nomadmesh.loader import load_all

    for path in sorted((EXAMPLES / "jobs").glob("*.nomad.hcl"))[:8]:
        docs += [job.to_api() for job in load_all(path)]
    return [d.get("Job", d) if isinstance(d, dict) else d for d in docs]


def run_from_api(doc: Any, ws: Workspace) -> None:
    from nomadmesh.model import Job

    Job.from_api(doc)


def _tree_cases(rng: random.Random, ws: Workspace) -> Iterator[Any]:
    mutator = TreeMutator(rng, api_seeds())
    while True:
        yield mutator.case()


def _describe_tree(doc: Any) -> str:
    if depth(doc) > 100:
        return f"<a document nested {depth(doc)} deep>"
    try:
        return json.dumps(doc)[:3000]
    except ValueError:
        return repr(doc)[:3000]


SETTINGS_FORMATS = {".toml": TOML_TOKENS, ".yaml": YAML_TOKENS, ".json": JSON_TOKENS}


def mesh_seeds() -> dict[str, list[bytes]]:
    toml = _files("examples/mesh/*.toml")
    yaml_ = _files("examples/mesh/*.yaml", "examples/mesh/*.yml")
    as_json = [json.dumps(_yaml(y)).encode() for y in yaml_]
    return {".toml": toml, ".yaml": yaml_, ".json": as_json}


def _yaml(data: bytes) -> Any:
    import yaml

    return yaml.safe_load(data)


def _suffixed_cases(seeds: Callable[[], dict[str, list[bytes]]]
                    ) -> Callable[[random.Random, Workspace], Iterator[tuple[str, bytes]]]:
    def cases(rng: random.Random, ws: Workspace) -> Iterator[tuple[str, bytes]]:
        by_suffix = {k: v for k, v in seeds().items() if v}
        mutators = {s: Mutator(rng, SETTINGS_FORMATS.get(s, HCL_TOKENS), seeds)
                    for s, seeds in by_suffix.items()}
        suffixes = sorted(mutators)
        while True:
            suffix = rng.choice(suffixes)
            yield suffix, mutators[suffix].case()
    return cases


def _shrink_suffixed(case: tuple[str, bytes]) -> Iterator[tuple[str, bytes]]:
    suffix, data = case
    return ((suffix, d) for d in shrink_bytes(data))


def run_mesh_settings(case: tuple[str, bytes], ws: Workspace) -> None:
    from nomadmesh.mesh import Mesh

    suffix, data = case
    Mesh.from_file(ws.write(f"mesh{suffix}", data))


def var_file_seeds() -> dict[str, list[bytes]]:
    values = {"image": "redis:7", "count": 3, "port": 6380, "datacenters": ["dc1", "dc2"],
              "memory_mb": 256, "tags": {"team": "web"}}
    import yaml

    return {".json": [json.dumps(values).encode(), b'{"count": "3", "port": 1e3}'],
            ".yaml": [yaml.safe_dump(values).encode(), b"count: 3\nimage: x\n"],
            ".toml": [b'image = "redis:7"\ncount = 3\ndatacenters = ["dc1"]\n'],
            ".hcl": [b'image = "redis:7"\ncount = 3\ndatacenters = ["dc1"]\n']}


def _sample_pack() -> Any:
    from nomadmesh.packs import find_pack

    return find_pack(str(EXAMPLES / "packs" / "web_service")).pack


def run_pack_var_file(case: tuple[str, bytes], ws: Workspace) -> None:
    suffix, data = case
    _sample_pack().resolve(var_files=[ws.write(f"vars{suffix}", data)], env={})


VAR_NAMES = ["image", "count", "port", "datacenters", "memory_mb", "tags", "upstreams",
             "redis.port", "x", "", "a.b.c", "count.x"]


def _var_cases(rng: random.Random, ws: Workspace) -> Iterator[dict[str, Any]]:
    values = [b"3", b"redis:7", b"[\"dc1\"]", b"{\"a\": 1}", b"true", b"1.5", b"null", b""]
    mutator = Mutator(rng, JSON_TOKENS + HCL_TOKENS, values)
    while True:
        yield {"kind": rng.choice(("pack", "hcl", "env")),
               "values": {rng.choice(VAR_NAMES): mutator.case().decode("utf-8", "replace")
                          for _ in range(rng.randint(1, 3))}}


HCL_VARIABLES_JOB = b'''
variable "image" { type = string }
variable "count" {
  type    = number
  default = 1
}
variable "ratio" {
  type    = number
  default = 0.5
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}
variable "tags" {
  type    = map(string)
  default = {}
}
job "vars" {
  datacenters = var.datacenters
  meta        = var.tags
  group "g" {
    count = var.count
    task "t" {
      driver = "docker"
      config {
        image = var.image
      }
      env {
        RATIO = var.ratio
      }
    }
  }
}
'''


def run_var_values(case: dict[str, Any], ws: Workspace) -> None:
    from nomadmesh.loader import load_all

    values: dict[str, str] = case["values"]
    if case["kind"] == "pack":
        _sample_pack().resolve(values=values, env={})
        return
    path = ws.write("vars.nomad.hcl", HCL_VARIABLES_JOB)
    if case["kind"] == "hcl":
        load_all(path, variables=values)
        return
    env = {f"NOMAD_VAR_{k}": v.replace("\x00", "") for k, v in values.items()
           if k and "\x00" not in k and "=" not in k}
    saved = {n: os.environ.get(n) for n in env}
    try:
        os.environ.update(env)
        load_all(path)
    finally:
        for n, old in saved.items():
            if old is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = old


def _shrink_vars(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in case["values"]:
        if len(case["values"]) > 1:
            yield {**case, "values": {k: v for k, v in case["values"].items() if k != key}}
    for key, value in case["values"].items():
        for smaller in shrink_bytes(value.encode()):
            yield {**case, "values": {**case["values"], key: smaller.decode("utf-8", "replace")}}


OFFLINE_VERBS = ("render", "validate", "inject", "fmt", "sidecar", "pack")
ONLINE = ("plan", "run", "status", "stop", "history", "revert", "dispatch", "promote", "logs",
          "dev", "demo", "xds")


def _argv_cases(rng: random.Random, ws: Workspace) -> Iterator[list[str]]:
    """Argument lists of the offline verbs: real files (copies in the workspace), flags in every
    spelling, values that are wrong in every way; paths never leave the workspace."""
    job = ws.write("job.nomad.hcl", (EXAMPLES / "jobs" / "service-b.nomad.hcl").read_bytes())
    api = ws.write("job.json", (EXAMPLES / "jobs" / "echo-api.json").read_bytes())
    mesh = ws.write("mesh.toml", (EXAMPLES / "mesh" / "mesh.toml").read_bytes())
    vars_ = ws.write("vars.hcl", b'count = 2\n')
    pack = str(EXAMPLES / "packs" / "redis_cache")
    out = str(ws.root / "out.json")
    seeds = [["render", str(job)], ["render", str(api), "--format", "hcl"],
             ["render", str(job), "--inject", "--mesh", str(mesh), "--out", out],
             ["validate", str(job)], ["validate", "-json", str(api)],
             ["validate", "-var", "count=2", f"-var-file={vars_}", str(job)],
             ["inject", str(job), "--mesh", str(mesh)], ["fmt", "--check", str(job)],
             ["sidecar", "bootstrap", str(job), "--group", "service-b", "--env",
              "NOMAD_ALLOC_ID=x"], ["sidecar", "prometheus-config", "--mesh", str(mesh)],
             ["pack", "render", pack, "--var", "port=7000", "--name", "cache"],
             ["pack", "info", pack], ["pack", "list"], ["render", pack, "--name", "c"]]
    words = ["-var", "--var", "-var-file", "-json", "-json=false", "--format", "hcl", "json",
             "--inject", "--mesh", "--name", "--out", "-h", "--help", "--", "-", "=", "k=v",
             "count=", "=x", "-no-color", "-force-color", "-verbose", "--check", str(job),
             str(api), str(mesh), str(vars_), pack, out, str(ws.root), str(ws.root / "missing"),
             "", "\x00", "é", "-" * 3, "x" * 5000, "--var=count=1e999", "-var=count=NaN"]
    while True:
        argv = list(rng.choice(seeds))
        for _ in range(rng.choice((1, 1, 2, 3))):
            op = rng.random()
            at = rng.randint(1, len(argv))
            if op < 0.45:
                argv.insert(at, rng.choice(words))
            elif op < 0.7 and len(argv) > 1:
                del argv[rng.randrange(1, len(argv))]
            elif op < 0.9:
                i = rng.randrange(1, len(argv)) if len(argv) > 1 else 0
                text = bytearray(argv[i].encode())
                if text:
                    text[rng.randrange(len(text))] = rng.randrange(32, 127)
                argv[i] = text.decode("utf-8", "replace")
            else:
                argv[at - 1:at] = [rng.choice(words), rng.choice(words)]
        if argv and argv[0] in OFFLINE_VERBS and all(_inside(a, ws) for a in argv):
            yield argv


def _inside(arg: str, ws: Workspace) -> bool:
    """Paths the CLI might write stay in the workspace (the fuzzer may run as root)."""
    value = arg.split("=", 1)[-1]
    if "/" not in value:
        return True
    resolved = os.path.realpath(value)
    return resolved.startswith((str(ws.root), str(EXAMPLES), str(ROOT / "tests")))


def run_cli(argv: list[str], ws: Workspace) -> None:
    from nomadmesh.cli import main

    sink = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ws.root)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            main(argv)
    except SystemExit:
        pass
    finally:
        os.chdir(cwd)
    if "Traceback (most recent call last)" in sink.getvalue():
        raise AssertionError(f"a traceback was printed: {sink.getvalue()[-2000:]}")


def _shrink_argv(argv: list[str]) -> Iterator[list[str]]:
    for i in range(1, len(argv)):
        yield argv[:i] + argv[i + 1:]


HTTP_SEEDS = [
    b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/job/web HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/job/web/allocations?all=true HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/allocations?prefix=ab HTTP/1.1\r\nHost: x\r\n\r\n",
    b"DELETE /v1/job/web?purge=true HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/client/fs/logs/abc?task=t&type=stdout HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n",
]


def http_seeds() -> list[bytes]:
    seeds = list(HTTP_SEEDS)
    job = json.loads((EXAMPLES / "jobs" / "echo-api.json").read_text())
    job = job.get("Job", job)
    for path, body in (("/v1/jobs", {"Job": job}), ("/v1/job/echo-api/plan", {"Job": job,
                                                                               "Diff": True}),
                       ("/v1/validate/job", {"Job": job}),
                       ("/v1/job/echo-api/dispatch", {"Meta": {"a": "b"}}),
                       ("/v1/job/echo-api/revert", {"JobID": "echo-api", "JobVersion": 0}),
                       ("/v1/jobs/parse", {"JobHCL": "job \"x\" {}", "Canonicalize": True})):
        data = json.dumps(body).encode()
        seeds.append(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(data)).encode()
                     + b"\r\n\r\n" + data)
    return seeds


HTTP_TOKENS = [*JSON_TOKENS, b"\r\n", b"Content-Length: ", b"Content-Length: abc",
               b"Content-Length: 2000000000", b"Transfer-Encoding: chunked", b"?index=",
               b"&wait=", b"%00", b"%", b"../", b"//", b" HTTP/1.0", b"HEAD ", b"PUT ",
               b"X-Nomad-Token: ", b"\t", b"?namespace=*"]


class Emulator:
    """A Nomad emulator for the HTTP target, restarted every 2,000 cases (its state grows)."""

    def __init__(self) -> None:
        self.server: Any = None
        self.uses = 0
        self.stderr = io.StringIO()

    def address(self) -> tuple[str, int]:
        from nomadmesh.testing import NomadEmulator

        if self.server is None or self.uses >= 2000:
            if self.server is not None:
                self.server.stop()
            self.server = NomadEmulator().start()
            self.uses = 0
        self.uses += 1
        host, _, port = self.server.address.rpartition(":")
        return host, int(port)


EMULATOR = Emulator()


def run_http(data: bytes, ws: Workspace) -> None:
    """Send raw bytes; a crash is no status line, an internal error, or a server traceback."""
    data = data.replace(b"index=", b"idx=")  # blocking queries wait by design
    host, port = EMULATOR.address()
    before = len(EMULATOR.stderr.getvalue())
    with socket.create_connection((host, port), timeout=5) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the server closed early (it may refuse a body it will not read)
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
                if len(reply) > 4 * 1024 * 1024:
                    break
        except TimeoutError:
            raise Hang() from None
        except ConnectionResetError:
            pass
    time.sleep(0)  # let a failing handler thread print first
    printed = EMULATOR.stderr.getvalue()[before:]
    if "Traceback" in printed:
        deadline = time.monotonic() + 1.0  # the handler thread may still be printing it
        while _server_traceback(printed).where.endswith(" ?") and time.monotonic() < deadline:
            time.sleep(0.01)
            printed = EMULATOR.stderr.getvalue()[before:]
        raise _server_traceback(printed)
    if not reply and data.strip():
        raise Finding("the connection was closed without an answer", "no answer")
    if b"emulator internal error" in reply:
        body = reply.split(b"\r\n\r\n", 1)[-1][:500].decode("utf-8", "replace")
        raise Finding(body, "500 " + body.split("(", 1)[0][:60])


def _server_traceback(printed: str) -> Finding:
    """The first traceback a server thread printed, as a Finding at its innermost frame."""
    block = printed.split("Traceback (most recent call last):", 1)[1].splitlines()[1:]
    frames: list[tuple[str, str, str]] = []
    error = "?"
    for text in block:
        frame = re.match(r'\s+File "([^"]+)", line (\d+), in (\S+)', text)
        if frame:
            frames.append(frame.groups())  # type: ignore[arg-type]
        elif text and not text[0].isspace():
            error = text
            break
    file, line, function = frames[-1] if frames else ("?", "0", "?")
    where = f"{file.split('/nomadmesh/')[-1].split('/')[-1]}:{line} ({function})"
    return Finding(f"the emulator printed a traceback: {error}",
                   f"{where} {error.split(':')[0]}")


def snapshot_seeds() -> dict[str, list[bytes]]:
    listener = {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "name": "egress", "address": {"socket_address": {"address": "0.0.0.0",
                                                                 "port_value": 3101}}}
    cluster = {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "svc-a",
               "type": "STATIC", "connect_timeout": "1s",
               "load_assignment": {"cluster_name": "svc-a", "endpoints": [{"lb_endpoints": [
                   {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                "port_value": 8080}}}}]}]}}
    route = {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
             "name": "egress_route", "virtual_hosts": [{"name": "all", "domains": ["*"],
                                                         "routes": [{"match": {"prefix": "/a"},
                                                                     "route": {"cluster":
                                                                               "svc-a"}}]}]}
    doc = {"version_info": "1", "node": {"service_name": "edge-router"},
           "resources": [listener, route, cluster]}
    import yaml

    return {".json": [json.dumps(doc).encode(), json.dumps([doc]).encode()],
            ".yaml": [yaml.safe_dump(doc).encode()]}


def run_snapshot_file(case: tuple[str, bytes], ws: Workspace) -> None:
    from nomadmesh.xds.sources.static import load_snapshot_file

    suffix, data = case
    load_snapshot_file(ws.write(f"snapshot{suffix}", data))


TARGETS = {t.name: t for t in (
    Target("hcl-file", _byte_cases(HCL_TOKENS, hcl_seeds), run_hcl_file, describe_bytes,
           shrink_bytes),
    Target("json-file", _byte_cases(JSON_TOKENS, lambda: _files("examples/jobs/*.json",
                                                                "tests/data/*.json")),
           run_json_file, describe_bytes, shrink_bytes),
    Target("job-from-api", _tree_cases, run_from_api, _describe_tree, shrink_tree),
    Target("mesh-settings", _suffixed_cases(mesh_seeds), run_mesh_settings, repr,
           _shrink_suffixed),
    Target("pack-var-file", _suffixed_cases(var_file_seeds), run_pack_var_file, repr,
           _shrink_suffixed),
    Target("var-values", _var_cases, run_var_values, repr, _shrink_vars),
    Target("cli-argv", _argv_cases, run_cli, repr, _shrink_argv),
    Target("emulator-http", _byte_cases(HTTP_TOKENS, http_seeds), run_http, describe_bytes,
           shrink_bytes),
    Target("xds-snapshot-file", _suffixed_cases(snapshot_seeds), run_snapshot_file, repr,
           _shrink_suffixed),
)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--progress", type=Path, help="write the running case's number here")
    parser.add_argument("--replay", type=int, metavar="N", help="print case N and exit")
    args = parser.parse_args()
    if args.replay is not None:
        sys.stdout.write(replay(TARGETS[args.target], args.seed, args.replay) + "\n")
        return 0
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    if args.target == "emulator-http":
        sys.stderr = EMULATOR.stderr  # the server threads' tracebacks are findings
    report = fuzz(TARGETS[args.target], cases=args.cases, seed=args.seed, budget=args.budget,
                  progress=args.progress)
    if EMULATOR.server is not None:
        EMULATOR.server.stop()
    sys.stderr = sys.__stderr__
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['target']}: {report['cases']} cases in {report['seconds']} s, "
              f"{len(report['crashes'])} crash group(s); slowest: case "
              f"{report['slowest']['case']}, {report['slowest']['seconds']} s")
        for crash in report["crashes"]:
            print(f"\n* {crash['signature']} ({crash['count']}x, first: case {crash['case']}): "
                  f"{crash['message']}\n  reproducer: {crash['reproducer'][:600]}")
    return 1 if report["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
