"""pytest plugin (entry point `nomadmesh`): fixtures for the Nomad and Consul emulators.

`consul` and `nomad` are fresh emulators per test (the Nomad one registers services in the Consul
one); `consul_api` / `nomad_api` are python-consul2 / python-nomad clients and `consul_url` /
`nomad_url` base URLs. In a test marked `real_cluster`, the clients and URLs point at the real
cluster named by `NOMAD_ADDR` / `CONSUL_HTTP_ADDR` when those are set, so the same test runs
unchanged against both. Script failures with `nomad.script_task(...)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from nomadmesh.testing.config import Timings
from nomadmesh.testing.consul import ConsulEmulator
from nomadmesh.testing.nomad import NomadEmulator


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker for projects that use the plugin without declaring it themselves."""
    config.addinivalue_line(
        "markers", "real_cluster: also runs against NOMAD_ADDR / CONSUL_HTTP_ADDR when set")


def _real(request: pytest.FixtureRequest, variable: str) -> str | None:
    if request.node.get_closest_marker("real_cluster") is None:
        return None
    value = os.environ.get(variable)
    if not value:
        return None
    return value if "://" in value else f"http://{value}"


@pytest.fixture
def consul(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsulEmulator]:
    """A running Consul emulator; CONSUL_HTTP_* variables are cleared for python-consul2."""
    for name in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL"):
        monkeypatch.delenv(name, raising=False)
    with ConsulEmulator() as emulator:
        yield emulator


@pytest.fixture
def nomad_timings() -> Timings:
    """Simulated delays of the `nomad` fixture; override this fixture to change them."""
    return Timings()


@pytest.fixture
def nomad(consul: ConsulEmulator, nomad_timings: Timings,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[NomadEmulator]:
    """A running Nomad emulator linked to the `consul` emulator; NOMAD_* variables cleared."""
    for name in ("NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE", "NOMAD_REGION"):
        monkeypatch.delenv(name, raising=False)
    with NomadEmulator(consul=consul, timings=nomad_timings) as emulator:
        yield emulator


@pytest.fixture
def nomad_url(request: pytest.FixtureRequest) -> str:
    """Base URL of the Nomad API under test (the emulator, or the real cluster)."""
    real = _real(request, "NOMAD_ADDR")
    if real is not None:
        return real.rstrip("/")
    emulator: NomadEmulator = request.getfixturevalue("nomad")
    return emulator.url


@pytest.fixture
def consul_url(request: pytest.FixtureRequest) -> str:
    """Base URL of the Consul API under test (the emulator, or the real cluster)."""
    real = _real(request, "CONSUL_HTTP_ADDR")
    if real is not None:
        return real.rstrip("/")
    emulator: ConsulEmulator = request.getfixturevalue("consul")
    return emulator.url


@pytest.fixture
def nomad_api(nomad_url: str) -> Any:
    """A python-nomad client for `nomad_url`."""
    import nomad as python_nomad

    parts = urlsplit(nomad_url)
    return python_nomad.Nomad(host=parts.hostname, port=parts.port, secure=parts.scheme == "https",
                              token=os.environ.get("NOMAD_TOKEN") or None, timeout=10)


@pytest.fixture
def consul_api(consul_url: str) -> Any:
    """A python-consul2 client for `consul_url`."""
    import consul as python_consul

    parts = urlsplit(consul_url)
    return python_consul.Consul(host=parts.hostname, port=parts.port, scheme=parts.scheme)
