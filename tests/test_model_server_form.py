"""`Job.from_api` reads exactly what `GET /v1/job/<id>` returns: the server's form of the job (every
structs field, zeros for the values the server keeps, the job-level update with only stagger and
max_parallel, `Resources.DiskMB: 0`, status, version and indexes), built from Nomad's own facts in
tests/server_form.py, for every example job and fixture of the oracle's golden register answers.
"""

from __future__ import annotations

import pytest

from nomadmesh import Group, Job, JobUI, JobUILink, Network, Port, Task, canonicalize
from nomadmesh.model import (
    ConsulConnect,
    ConsulGateway,
    ConsulIngressConfigEntry,
    ConsulIngressListener,
    ConsulIngressService,
    Service,
)
from tests.golden_register import golden
from tests.server_form import server_form

GOLDEN = golden()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_get_reads_back_as_the_stored_job(name: str) -> None:
    stored = canonicalize(Job.from_api(GOLDEN[name]["body"], validate=False))
    back = Job.from_api(server_form(stored), validate=False)  # strict: no key unknown
    assert back == stored
    assert canonicalize(back) == stored


@pytest.mark.parametrize("name", sorted(n for n in GOLDEN if n.startswith("example-")))
def test_a_get_of_an_example_passes_validation(name: str) -> None:
    stored = canonicalize(Job.from_api(GOLDEN[name]["body"]))
    Job.from_api(server_form(stored))


def test_the_server_form_is_what_nomad_returns() -> None:
    """The shapes the brief names: job Update with only Stagger/MaxParallel set, task
    Resources.DiskMB 0, the server's own fields kept on `job.server`."""
    stored = canonicalize(Job("web", groups=[Group("api", tasks=[Task("app", driver="docker")])]))
    got = server_form(stored)
    assert got["Update"] == {"Stagger": 30_000_000_000, "MaxParallel": 1, "HealthCheck": "",
                             "MinHealthyTime": 0, "HealthyDeadline": 0, "ProgressDeadline": 0,
                             "Canary": 0, "AutoRevert": False, "AutoPromote": False}
    assert got["TaskGroups"][0]["Tasks"][0]["Resources"]["DiskMB"] == 0
    assert "Reschedule" not in got and "Migrate" not in got  # structs.Job has neither
    back = Job.from_api(got)
    assert back == stored
    assert (back.server["Status"], back.server["Version"], back.server["JobModifyIndex"]) == (
        "pending", 0, 11)


def test_fields_the_server_spells_or_keys_otherwise_are_read() -> None:
    """structs.JobUILink.Url (api URL: Go's decoder folds case) and a gateway's bind addresses,
    which structs.ConsulGatewayBindAddress keeps without their Name (the map key)."""
    gateway = ConsulGateway(ingress=ConsulIngressConfigEntry(listeners=[ConsulIngressListener(
        port=8080, services=[ConsulIngressService(name="api")])]))
    job = Job("web", ui=JobUI(links=[JobUILink(label="docs", url="https://example.com")]),
              groups=[Group("gw", networks=[Network(mode="bridge", ports=[Port("http")])],
                            services=[Service(name="ingress", port="http",
                                              connect=ConsulConnect(gateway=gateway))])])
    stored = canonicalize(job)
    got = server_form(stored)
    assert got["UI"]["Links"] == [{"Label": "docs", "Url": "https://example.com"}]
    proxy = got["TaskGroups"][0]["Services"][0]["Connect"]["Gateway"]["Proxy"]
    assert proxy["EnvoyGatewayBindAddresses"] == {"api": {"Address": "0.0.0.0", "Port": 8080}}
    assert Job.from_api(got) == stored
