"""Client endpoints: host and allocation stats, signals, garbage collection
(command/agent/alloc_endpoint.go:218, stats_endpoint.go, client/alloc_endpoint.go).

Emulated tasks consume nothing, so every usage counter is 0; host totals are the node's
fingerprinted resources. A signal is recorded as the task's `Signaling` event (a docker task
refuses a signal name moby's parser does not know); it is not delivered to a process.
`fs/ls`, `fs/stat` and `fs/stream` see the layout a client gives an allocation directory
(client/allocdir: `alloc/{data,logs,tmp}`, `<task>/{local,secrets,tmp}`) with the task logs
as the runner reports them; a stream sends what the file holds and ends (it does not follow).
"""

from __future__ import annotations

import base64
import json
import posixpath
import signal
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing._gotypes import check_fields
from nomadmesh.testing._http import HttpError, Request, Response, decode_json
from nomadmesh.testing.server import structs as s

if TYPE_CHECKING:
    from nomadmesh.testing.nomad import NomadEmulator

_MIB = 1024 * 1024
# moby/sys/signal SignalMap (linux): names without the SIG prefix
_DOCKER_SIGNALS = frozenset(sig.name[3:] for sig in signal.Signals
                            if not sig.name.startswith("SIGRT")) | {"RTMIN", "RTMAX"}


def _unknown(alloc_id: str) -> HttpError:
    """structs.NewErrUnknownAllocation (nomad/structs/errors.go:136) as the agent's 404."""
    return HttpError(404, f'Unknown allocation "{alloc_id}"')


def _usage() -> dict[str, Any]:
    """A structs.ResourceUsage of a task that uses nothing."""
    return {"MemoryStats": {"RSS": 0, "Cache": 0, "Swap": 0, "MappedFile": 0, "Usage": 0,
                            "MaxUsage": 0, "KernelUsage": 0, "KernelMaxUsage": 0,
                            "Measured": ["RSS", "Cache", "Swap", "Usage", "Max Usage"]},
            "CpuStats": {"SystemMode": 0.0, "UserMode": 0.0, "TotalTicks": 0.0,
                         "ThrottledPeriods": 0, "ThrottledTime": 0, "Percent": 0.0,
                         "Measured": ["System Mode", "User Mode", "Percent"]},
            "DeviceStats": None}


def docker_signal_problem(name: str) -> str:
    """moby's signal.ParseSignal as the docker driver calls it (drivers/docker/handle.go:129)."""
    bare = name.upper().removeprefix("SIG")
    if (bare.isdigit() and int(bare) > 0) or bare in _DOCKER_SIGNALS:
        return ""
    return f"failed to parse signal: invalid signal: {name}"


class ClientEndpoints:
    """/v1/client/stats, /v1/client/gc and /v1/client/allocation/<id>/{stats,signal,gc}."""

    def __init__(self, emulator: NomadEmulator) -> None:
        self.nomad = emulator
        self.started = time.monotonic()

    def routes(self, add: Callable[[str, str, Any], None]) -> None:
        """Register the routes (command/agent/http.go:466-470)."""
        add("GET", "/v1/client/stats", self._h_host_stats)
        add("GET PUT POST", "/v1/client/gc", self._h_gc_all)
        add("GET", "/v1/client/allocation/([^/]+)/stats", self._h_alloc_stats)
        add("PUT POST", "/v1/client/allocation/([^/]+)/signal", self._h_signal)
        add("GET PUT POST", "/v1/client/allocation/([^/]+)/gc", self._h_gc)
        add("GET", "/v1/client/fs/ls/([^/]*)", self._h_ls)
        add("GET", "/v1/client/fs/stat/([^/]*)", self._h_stat)
        add("GET", "/v1/client/fs/stream/([^/]*)", self._h_stream)

    def _node(self, req: Request) -> Mapping[str, Any]:
        node_id = req.query.get("node_id", "")
        snap = self.nomad.snapshot()
        if not node_id:
            nodes = snap.nodes()
            if not nodes:
                raise HttpError(400, "No local Node and node_id not provided")
            return nodes[0]
        node = snap.node_by_id(node_id)
        if node is None:
            raise HttpError(404, f"Unknown node {node_id}")
        return node

    def _h_host_stats(self, req: Request) -> Response:
        """hoststats.HostStats (client/hoststats/host.go:21) of a node."""
        node = self._node(req)
        resources = node.get("NodeResources") or {}
        memory = int((resources.get("Memory") or {}).get("MemoryMB") or 0) * _MIB
        disk = int((resources.get("Disk") or {}).get("DiskMB") or 0) * _MIB
        disk_stats = {"Device": "emulated", "Mountpoint": "/", "Size": disk, "Used": 0,
                      "Available": disk, "UsedPercent": 0.0, "InodesUsedPercent": 0.0}
        return Response({
            "Memory": {"Total": memory, "Available": memory, "Used": 0, "Free": memory},
            "CPU": [{"CPU": "cpu0", "User": 0.0, "System": 0.0, "Idle": 100.0, "Total": 0.0}],
            "DiskStats": [disk_stats], "AllocDirStats": disk_stats, "DeviceStats": [],
            "Uptime": int(time.monotonic() - self.started), "Timestamp": time.time_ns(),
            "CPUTicksConsumed": 0.0})

    def _alloc(self, alloc_id: str) -> Mapping[str, Any]:
        alloc = self.nomad.snapshot().alloc_by_id(alloc_id)
        if alloc is None:
            raise _unknown(alloc_id)
        return alloc

    def _h_alloc_stats(self, req: Request) -> Response:
        """cstructs.AllocResourceUsage (client/structs/structs.go:344) of the running tasks."""
        alloc_id = req.params[0]
        self._alloc(alloc_id)
        runner = self.nomad.client.runner_of(alloc_id)
        if runner is None or runner.destroyed:
            raise _unknown(alloc_id)
        now = time.time_ns()
        tasks = {name: {"ResourceUsage": _usage(), "Timestamp": now, "Pids": None}
                 for name, state in runner.states.items() if state.get("State") == "running"}
        only = req.query.get("task")
        if only:
            tasks = {k: v for k, v in tasks.items() if k == only}
        return Response({"ResourceUsage": _usage(), "Tasks": tasks, "Timestamp": now})

    def _h_signal(self, req: Request) -> Response:
        """allocRunner.Signal (client/allocrunner/alloc_runner.go:1476) and the task runner's
        (taskrunner/lifecycle.go:143): a Signaling event, then the driver's answer."""
        alloc_id = req.params[0]
        body = decode_json(req.body) if req.body.strip() else {}
        if not isinstance(body, dict):
            raise HttpError(400, "Failed to decode body: json: cannot unmarshal array into Go "
                                 "value of type structs.AllocSignalRequest")
        check_fields(body, "AllocSignalRequest", {"Task": "string", "Signal": "string"})
        alloc = self._alloc(alloc_id)
        runner = self.nomad.client.runner_of(alloc_id)
        if runner is None or runner.destroyed:
            raise _unknown(alloc_id)
        name, task = str(body.get("Signal") or ""), str(body.get("Task") or "")
        group = s.lookup_group(alloc["Job"], alloc["TaskGroup"]) or {}
        drivers = {t["Name"]: t.get("Driver") for t in group.get("Tasks") or ()}
        if task and task not in runner.states:
            raise HttpError(500, "Task not found")
        errors = []
        for each in [task] if task else sorted(runner.states):
            if runner.states[each].get("State") != "running":
                problem = "Task not running"
            else:
                runner.task_event(each, "Signaling", f"Task being sent signal {name}",
                                  {"TaskSignal": name})
                problem = docker_signal_problem(name) if drivers.get(each) == "docker" else ""
            if problem and task:
                raise HttpError(500, problem)
            if problem:
                errors.append(f"Failed to signal task: {each}, err: {problem}")
        if errors:
            word = "error" if len(errors) == 1 else "errors"
            items = "".join(f"\t* {e}\n" for e in errors)
            raise HttpError(500, f"{len(errors)} {word} occurred:\n{items}\n")
        return Response({"Index": 0})

    def _h_gc(self, req: Request) -> Response:
        """Allocations.GarbageCollect: nothing is kept on disk for a simulated allocation."""
        self._alloc(req.params[0])
        return Response(None)

    def _h_gc_all(self, req: Request) -> Response:
        """Allocations.GarbageCollectAll (alloc_endpoint.go:253)."""
        self._node(req)
        return Response(None)

    # --- the allocation directory (client/allocdir/alloc_dir.go:383, :413) -------------------

    def _tree(self, alloc: Mapping[str, Any]) -> dict[str, bytes | None]:
        """path -> content (None: a directory) of the allocation directory."""
        group = s.lookup_group(alloc["Job"], alloc["TaskGroup"]) or {}
        tasks = [t["Name"] for t in group.get("Tasks") or ()]
        tree: dict[str, bytes | None] = {"": None, "alloc": None, "alloc/data": None,
                                         "alloc/logs": None, "alloc/tmp": None}
        for task in tasks:
            tree.update({task: None, f"{task}/local": None, f"{task}/secrets": None,
                         f"{task}/tmp": None})
            for kind in ("stdout", "stderr"):
                tree[f"alloc/logs/{task}.{kind}.0"] = self.nomad.runner.logs(
                    alloc["ID"], task, kind)
        return tree

    def _fs_args(self, req: Request) -> tuple[Mapping[str, Any], str, dict[str, bytes | None]]:
        alloc_id = req.params[0]
        if not alloc_id:
            raise HttpError(400, "must provide a valid alloc id")
        path = req.query.get("path", "")
        if not path:
            raise HttpError(400, "must provide a file path")
        alloc = self._alloc(alloc_id)
        clean = posixpath.normpath("/" + path).lstrip("/")
        if posixpath.normpath(path.lstrip("/") or ".").startswith(".."):
            raise HttpError(500, "Path escapes the alloc directory")
        return alloc, clean, self._tree(alloc)

    @staticmethod
    def _info(alloc: Mapping[str, Any], path: str, content: bytes | None) -> dict[str, Any]:
        """cstructs.AllocFileInfo."""
        stamp = s.rfc3339(int(alloc.get("CreateTime") or 0))
        info = {"Name": posixpath.basename(path) or alloc["ID"], "IsDir": content is None,
                "Size": 4096 if content is None else len(content),
                "FileMode": "drwxrwxrwx" if content is None else "-rw-r--r--",
                "ModTime": stamp}
        return info

    @staticmethod
    def _missing(alloc: Mapping[str, Any], path: str) -> str:
        """os.Stat's error for a path under the client's allocation directory."""
        return (f"stat /var/lib/nomad/alloc/{alloc['ID']}/{path}: "
                "no such file or directory")

    def _h_ls(self, req: Request) -> Response:
        """FileSystem.List; a missing path is the agent's 404 (command/agent/fs_endpoint.go:86)."""
        alloc, path, tree = self._fs_args(req)
        if path not in tree:
            raise HttpError(404, f"open /var/lib/nomad/alloc/{alloc['ID']}/{path}: "
                                 "no such file or directory")
        if tree[path] is not None:
            raise HttpError(500, f"readdirent /var/lib/nomad/alloc/{alloc['ID']}/{path}: "
                                 "not a directory")
        prefix = f"{path}/" if path else ""
        children = sorted(p for p in tree if p.startswith(prefix) and p != path
                          and "/" not in p[len(prefix):])
        return Response([self._info(alloc, p, tree[p]) for p in children])

    def _h_stat(self, req: Request) -> Response:
        """FileSystem.Stat, with the ContentType detectContentType gives."""
        alloc, path, tree = self._fs_args(req)
        if path not in tree:
            raise HttpError(404, self._missing(alloc, path))
        info = self._info(alloc, path, tree[path])
        content = tree[path]
        info["ContentType"] = ("" if content is None else "text/plain; charset=utf-8"
                               if content else "application/octet-stream")
        return Response(info)

    def _h_stream(self, req: Request) -> Response:
        """FileSystem.stream (client/fs_endpoint.go:160): a missing file or a directory is a 400."""
        alloc, path, tree = self._fs_args(req)
        origin = req.query.get("origin") or "start"
        if origin not in ("start", "end"):
            raise HttpError(400, "origin must be start or end")
        offset_text = req.query.get("offset") or "0"
        if not offset_text.lstrip("-").isdigit():
            raise HttpError(400, f'error parsing offset: strconv.ParseInt: parsing '
                                 f'"{offset_text}": invalid syntax')
        if path not in tree:
            raise HttpError(400, self._missing(alloc, path))
        content = tree[path]
        if content is None:
            raise HttpError(400, f'file "{req.query["path"]}" is a directory')
        offset = int(offset_text)
        start = max(0, len(content) - offset) if origin == "end" else min(len(content), offset)
        frame = {"Data": base64.b64encode(content[start:]).decode(), "File": path,
                 "Offset": len(content), "FileEvent": ""} if content[start:] else {}
        return Response(raw=json.dumps(frame).encode())
