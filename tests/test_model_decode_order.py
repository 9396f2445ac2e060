"""Decoding is deterministic: the Nomad-internal fields a GET returns are stored in the input's
key order, not in an order that depends on the hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_SCRIPT = r"""
import json, sys
from nomadmesh.model import Job
data = {"ID": "web", "Name": "web", "Type": "service", "TaskGroups": [
    {"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker"}]}]}
keys = ["ParentID", "Dispatched", "DispatchIdempotencyToken", "Payload", "NomadTokenID",
        "Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
        "ModifyIndex", "JobModifyIndex", "VersionTag"]
values = {"Dispatched": False, "Stable": True, "Version": 3, "SubmitTime": 17, "CreateIndex": 5,
          "ModifyIndex": 9, "JobModifyIndex": 9, "VersionTag": None, "Payload": None}
data.update({k: values.get(k, "x") for k in keys})
out = []
for validate in (False, True):
    for _ in range(3):  # the fast decoder learns the shape on repeats: its shaped branch too
        job = Job.from_api(json.loads(json.dumps(data)), validate=validate)
        out.append([list(job.server), list(job.to_api())])
print(json.dumps(out))
"""


def _decoded_order(seed: str) -> list[object]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_server_fields_are_stored_in_the_input_order_whatever_the_hash_seed() -> None:
    runs = [_decoded_order(seed) for seed in ("0", "1", "2", "3")]
    expected = ["ParentID", "Dispatched", "DispatchIdempotencyToken", "NomadTokenID", "Status",
                "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
                "ModifyIndex", "JobModifyIndex"]
    for run in runs:
        for server, _api in run:  # type: ignore[attr-defined]
            assert server == expected
    assert all(run == runs[0] for run in runs)
