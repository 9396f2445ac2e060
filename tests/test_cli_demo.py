"""`nomadmesh demo` without --once: it stays up, and the addresses it prints to explore answer."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

NOMADMESH = str(Path(sys.executable).parent / "nomadmesh")


@pytest.mark.envoy
@pytest.mark.timeout(300)
def test_the_explore_addresses_answer_while_the_demo_runs_and_sigterm_stops_it() -> None:
    process = subprocess.Popen([NOMADMESH, "demo"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    explored = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "nomadmesh logs service-b" in line:  # the last line of the explore block
                explored.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not explored.wait(0.5) and process.poll() is None and time.monotonic() < deadline:
            pass
        assert explored.is_set(), "".join(lines) + (
            process.stderr.read() if process.poll() is not None and process.stderr else "")
        text = "".join(lines)
        addresses = dict(re.findall(r"^  (NOMAD_ADDR|mesh entry \(edge-router egress\)) +(\S+)$",
                                    text, re.M))
        nomad = addresses["NOMAD_ADDR"]
        assert requests.get(f"{nomad}/v1/jobs", timeout=10).status_code == 200
        entry = addresses["mesh entry (edge-router egress)"]
        assert requests.get(f"{entry}/hi_a", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    reader.join(timeout=10)
    with pytest.raises(requests.ConnectionError):  # stopped with the demo, as it said
        requests.get(f"{nomad}/v1/jobs", timeout=5)
