"""The mesh config transport: each meshed service's upstreams and policy, stored where the
control plane watches them, apart from the job.

Job meta cannot carry policy: Consul limits service meta to 64 keys of 512 characters, and any
change of group or task meta makes Nomad replace every allocation. So the full config of each
service (routes, matches, splits, policy) is one JSON document in Consul KV at
`nomadmesh/mesh/<service>`, written by `nomadmesh mesh apply` (or `apply_config`) and read by
the control plane with a blocking query: a policy change reaches every sidecar in about a second
and restarts nothing. A mesh without Consul keeps the same documents as Nomad Variables at the
same paths (`apply_nomad_config`, `nomadmesh mesh apply --nomad`), in the item `config`.
The routes' short form stays in service meta (`nomadmesh-upstreams`), so a
service whose document is missing still gets its routes, with the default policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import attrs
import requests

from nomadmesh.contract import (
    CONFIG_ITEM,
    CONFIG_PREFIX,
    DEFAULT_POLICY,
    Policy,
    ServiceConfig,
    Upstream,
    config_document,
)
from nomadmesh.errors import (
    ApiError,
    ConsulUnavailable,
    InputError,
    NotFound,
    PermissionDenied,
    Problem,
)
from nomadmesh.mesh.inject import DEFAULT_MESH, app_service, group_upstreams, inject, is_meshed
from nomadmesh.mesh.settings import Mesh
from nomadmesh.model import Group, Job

if TYPE_CHECKING:
    from nomadmesh.deploy import NomadClient


def service_configs(job: Job, mesh: Mesh | None = None) -> dict[str, ServiceConfig]:
    """The mesh config of every meshed group of `job`, by the group's service name."""
    mesh = mesh or DEFAULT_MESH
    upstreams = service_upstreams(job, mesh)
    names = {app_service_name(g): g.name for g in job.groups}
    return {service: ServiceConfig(routes, mesh.group_settings(names[service]).allow)
            for service, routes in upstreams.items()}


def service_upstreams(job: Job, mesh: Mesh | None = None) -> dict[str, tuple[Upstream, ...]]:
    """The upstreams of every meshed group of `job`, by the group's service name, with the
    mesh-wide policy applied (what the control plane will serve)."""
    mesh = mesh or DEFAULT_MESH
    inject(job, mesh)  # every conflict is a MeshError, exactly as at submit
    found: dict[str, tuple[Upstream, ...]] = {}
    for group in job.groups:
        if not is_meshed(job, group, mesh):
            continue
        app = app_service(group)
        if app is None or not app[0].name or "${" in app[0].name:
            continue
        problems: list[Problem] = []
        upstreams = group_upstreams(group, mesh.group_settings(group.name), mesh,
                               f"{job.path}.group[{group.name}]", problems)
        found[app[0].name] = tuple(_effective(u, mesh) for u in upstreams)
    return found


def app_service_name(group: Group) -> str | None:
    """The name a group has in the mesh (its application service), if it has one."""
    app = app_service(group)
    return app[0].name if app is not None else None


def effective_route(upstream: Upstream, default: Policy = DEFAULT_POLICY) -> dict[str, Any]:
    """An upstream as plain data with its whole effective policy, every default written out."""
    policy = upstream.policy.merged_onto(default) if upstream.policy else default
    return {**upstream.to_dict(), "policy": attrs.asdict(policy)}


def _effective(upstream: Upstream, mesh: Mesh) -> Upstream:
    if mesh.policy == DEFAULT_POLICY:
        return upstream
    policy = upstream.policy.merged_onto(mesh.policy) if upstream.policy else mesh.policy
    return upstream.with_policy(policy)


def config_entries(jobs: Iterable[Job], mesh: Mesh | None = None) -> dict[str, str]:
    """The KV key → JSON document of every meshed service of `jobs`."""
    entries: dict[str, str] = {}
    for job in jobs:
        for service, config in service_configs(job, mesh).items():
            entries[CONFIG_PREFIX + service] = config_document(config.upstreams, config.allow)
    return entries


def apply_config(entries: Mapping[str, str], *, consul: str | None = None,
                 token: str | None = None, verify: bool | str = True,
                 timeout: float = 10.0) -> list[str]:
    """Write the documents to Consul KV (`consul` or `$CONSUL_HTTP_ADDR`); returns the keys
    whose content changed. The token is sent as a header and never shown."""
    address = consul or os.environ.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500"
    token = token if token is not None else os.environ.get("CONSUL_HTTP_TOKEN")
    base = address if "://" in address else "http://" + address
    try:
        if not urlsplit(base).hostname:
            raise ValueError("no host")
    except ValueError as exc:
        raise InputError(f"Consul address {address!r} is malformed: {exc}") from None
    headers = {"X-Consul-Token": token} if token else {}
    changed = []
    with requests.Session() as session:
        session.verify = verify
        session.headers.update(headers)
        for key, document in sorted(entries.items()):
            url = f"{base.rstrip('/')}/v1/kv/{quote(key)}"
            current = _request(session, "GET", url, timeout, missing_ok=True)
            if current is not None and current == document.encode():
                continue
            _request(session, "PUT", url, timeout, data=document.encode())
            changed.append(key)
    return changed


def apply_nomad_config(entries: Mapping[str, str], client: NomadClient,
                       namespace: str | None = None) -> list[str]:
    """Write the documents as Nomad Variables (item `config`) through the client's API
    boundary; returns the paths whose content changed. Each write is a check-and-set on the
    ModifyIndex read, so a concurrent writer's change is never overwritten (ConflictError)."""
    from nomadmesh.deploy._http import Answer

    http = client.api.http
    params = http.params(namespace)
    changed = []
    for key, document in sorted(entries.items()):
        path = ("var", *key.split("/"))
        try:
            current = http.request("get", path, Answer.OBJECT, params=params,
                                   retry=http.retry).body
        except NotFound:
            current = {}
        items = current.get("Items")
        if isinstance(items, Mapping) and items.get(CONFIG_ITEM) == document:
            continue
        index = current.get("ModifyIndex", 0)
        body = {"Path": key, "Items": {CONFIG_ITEM: document}}
        http.request("put", path, Answer.OBJECT,
                     params={**params, "cas": index if isinstance(index, int) else 0},
                     body=body)
        changed.append(key)
    return changed


def _request(session: requests.Session, method: str, url: str, timeout: float, *,
             data: bytes | None = None, missing_ok: bool = False) -> bytes | None:
    try:
        response = session.request(method, url + ("?raw" if method == "GET" else ""),
                                    data=data, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise ConsulUnavailable("Consul could not be reached", address=urlsplit(url).netloc,
                                cause=type(exc).__name__) from None
    if response.status_code == 404 and missing_ok:
        return None
    if response.status_code in (401, 403):
        raise PermissionDenied("Consul refused the mesh config", status=response.status_code,
                               method=method, url=url)
    if response.status_code != 200:
        raise ApiError("Consul refused the mesh config", status=response.status_code,
                       body=response.text[:300], method=method, url=url)
    return response.content
