"""A fleet of simulated Envoys in one process: N ADS streams that subscribe and ACK like Envoy.

Run by bench_xds.py as a child process (so the clients do not share the control plane's GIL):

    python benchmarks/_ads_fleet.py --port P --clusters svc-0000,svc-0001,... [--per-connection 1]

It prints `ready <seconds>` once every stream has received and acknowledged CDS, EDS, LDS and
RDS, then reads commands on stdin:

    arm       -> `armed`; from now on the first EDS response of each stream is timed
    collect N -> waits (<= 30 s) for N timed streams, prints `times t1 t2 ...` (time.monotonic())
    memory    -> `rss <bytes>` of this process
    quit
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


class Fleet:
    """Every stream's progress and the timing window."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.subscribed = 0
        self.ready: set[int] = set()
        self.all_subscribed = asyncio.Event()
        self.armed = False
        self.times: dict[int, float] = {}
        self.enough = asyncio.Event()
        self.wanted = 0

    def timed(self, stream: int) -> None:
        if stream not in self.times:
            self.times[stream] = time.monotonic()
            if len(self.times) >= self.wanted:
                self.enough.set()


async def envoy(fleet: Fleet, number: int, channel: grpc.aio.Channel, cluster: str) -> None:
    """One simulated Envoy: a stream, reopened after a short back-off when it fails, as Envoy's."""
    while True:
        try:
            await stream(fleet, number, channel, cluster)
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.2)


async def stream(fleet: Fleet, number: int, channel: grpc.aio.Channel, cluster: str) -> None:
    """One stream: CDS first, then EDS for its clusters, LDS, RDS for `egress_route`; ACK all."""
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    call = stub.StreamAggregatedResources()
    node = base_pb2.Node(id=f"fleet-{number}", cluster=cluster)
    await call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=CLUSTER))
    names: dict[str, list[str]] = {CLUSTER: [], ENDPOINT: [], LISTENER: [], ROUTE: []}
    seen: set[str] = set()
    while True:
        response = await call.read()
        if response is grpc.aio.EOF:
            return
        type_url = response.type_url
        if type_url == ENDPOINT and fleet.armed:
            fleet.timed(number)
        if type_url == CLUSTER:
            clusters = []
            for packed in response.resources:
                item = cluster_pb2.Cluster()
                packed.Unpack(item)
                clusters.append(item.eds_cluster_config.service_name or item.name)
            names[ENDPOINT] = sorted(clusters)
        await call.write(discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=response.version_info,
            response_nonce=response.nonce, resource_names=names[type_url],
        ))
        if type_url not in seen:
            seen.add(type_url)
            follow = {CLUSTER: ENDPOINT, ENDPOINT: LISTENER, LISTENER: ROUTE}.get(type_url)
            if follow == ROUTE:
                names[ROUTE] = ["egress_route"]
            if follow is not None:
                await call.write(discovery_pb2.DiscoveryRequest(
                    type_url=follow, resource_names=names[follow]))
            if type_url == ROUTE and number not in fleet.ready:
                fleet.ready.add(number)
                fleet.subscribed += 1
                if fleet.subscribed == fleet.count:
                    fleet.all_subscribed.set()


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clusters", required=True)
    parser.add_argument("--per-connection", type=int, default=1)
    args = parser.parse_args()
    clusters = args.clusters.split(",")
    fleet = Fleet(len(clusters))
    started = time.monotonic()
    channels = []
    tasks = []
    for number, cluster in enumerate(clusters):
        if number % args.per_connection == 0:
            channels.append(grpc.aio.insecure_channel(
                f"127.0.0.1:{args.port}", options=[("grpc.use_local_subchannel_pool", 1)]))
        tasks.append(asyncio.ensure_future(envoy(fleet, number, channels[-1], cluster)))
    await asyncio.wait_for(fleet.all_subscribed.wait(), timeout=600)
    print(f"ready {time.monotonic() - started:.2f}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "arm":
            fleet.times.clear()
            fleet.enough.clear()
            fleet.wanted = fleet.count + 1
            fleet.armed = True
            print("armed", flush=True)
        elif line[0] == "collect":
            fleet.wanted = int(line[1])
            if len(fleet.times) >= fleet.wanted:
                fleet.enough.set()
            await asyncio.wait({asyncio.ensure_future(fleet.enough.wait())}, timeout=30)
            fleet.armed = False
            print("times " + " ".join(f"{t:.6f}" for t in fleet.times.values()), flush=True)
        elif line[0] == "memory":
            print(f"rss {rss()}", flush=True)
        elif line[0] == "quit":
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(channel.close() for channel in channels))


if __name__ == "__main__":
    asyncio.run(main())
