"""Sidecar injection: every meshed group gets an Envoy task fed by the nomadmesh control plane.

Per meshed group, `inject` adds: the sidecar task (prestart + sidecar, bootstrap from a template),
the ports it needs, the egress env vars and upstream URLs on the application tasks, the sidecar's
metrics service, and the group's routes as Consul service meta for the control plane. It is pure
(a new Job, the input untouched) and idempotent (a group that has a sidecar is left alone).
Every conflict with what the user wrote is a MeshError with the path of the conflicting field.

Network modes decide where things listen (see docs/mesh.md): in `bridge` (and `cni/*`) the group
has its own network namespace, so egress and admin use fixed ports on loopback and only the metrics
port is mapped to the host; in `host` mode every listener gets a dynamic Nomad port.
"""

from __future__ import annotations

import functools
import json
import re
from typing import NamedTuple

from nomadmesh._gc import collector_paused
from nomadmesh.contract import (
    APP_ADDRESS_KEY,
    APP_PORT_KEY,
    INBOUND_ADDRESS_KEY,
    INBOUND_PORT_KEY,
    MESH_META_KEY,
    ROUTES_TAG_PREFIX,
    SIDECAR_META_KEY,
)
from nomadmesh.errors import MeshError, Problem
from nomadmesh.mesh.bootstrap import METRICS_PATH, BootstrapParams
from nomadmesh.mesh.settings import GroupMesh, Mesh, Sidecar
from nomadmesh.mesh.template import Runtime, bootstrap_template, xds_endpoints_template
from nomadmesh.mesh.upstreams import (
    GROUP_META_KEY,
    SERVICE_META_KEY,
    Upstream,
    format_upstreams,
    parse_upstreams,
    url_env_name,
)
from nomadmesh.model import (
    Check,
    Group,
    Job,
    Lifecycle,
    Network,
    Port,
    Service,
    Task,
    Template,
)
from nomadmesh.model._base import SECOND, FrozenDict
from nomadmesh.model._copy import copier

XDS_ENV_PATH = "secrets/nomadmesh_xds.env"
XDS_ENDPOINTS_PATH = "secrets/nomadmesh_xds_endpoints.json"
LOOPBACK = "127.0.0.1"

DEFAULT_MESH = Mesh()
_NOTHING_INSIDE: dict[int, str] = {}  # host mode: no port of the group is inside a namespace

# The copies inject makes, compiled per class with the changed fields fixed (`evolve` with these
# keywords, without building and walking a keyword dict); each replaces its stand-in on first use.
_with_groups = copier(Job, ("groups",), globals(), "_with_groups")
_injected_group = copier(Group, ("tasks", "services", "networks"), globals(), "_injected_group")
_with_ports = copier(Network, ("ports",), globals(), "_with_ports")
_with_env_map = copier(Task, ("env",), globals(), "_with_env_map")
_with_services = copier(Task, ("services",), globals(), "_with_services")
_named_sidecar = copier(Task, ("name", "templates", "services", "meta"), globals(),
                        "_named_sidecar")
_with_data = copier(Template, ("data",), globals(), "_with_data")
_named_service = copier(Service, ("name", "meta"), globals(), "_named_service")
_published_service = copier(Service, ("meta", "tags", "port", "checks"), globals(),
                            "_published_service")
_with_port = copier(Check, ("port",), globals(), "_with_port")

def inject(job: Job, mesh: Mesh | None = None) -> Job:
    """The job with an Envoy sidecar in every meshed group; raises MeshError on any conflict."""
    kit = _Kit(_checked(mesh or DEFAULT_MESH), job)
    problems: list[Problem] = []
    with collector_paused():  # thousands of new values, no reference cycles
        groups = tuple([_inject_group(job, g, kit, problems) for g in job.groups])
    if problems:
        raise MeshError(problems, subject=f"job {job.id!r}")
    if all(new is old for new, old in zip(groups, job.groups, strict=True)):
        return job
    return _with_groups(job, groups)


def is_meshed(job: Job, group: Group, mesh: Mesh | None = None) -> bool:
    """Whether `inject` would add a sidecar to this group (or already did)."""
    mesh = mesh or DEFAULT_MESH
    problems: list[Problem] = []
    return _wants_mesh(group, mesh.group_settings(group.name), f"{job.path}.group[{group.name}]",
                       problems, app_service(group)) and not problems


def has_sidecar(group: Group) -> bool:
    """A group already proxied: injected by nomadmesh, or using Nomad's own Connect sidecar."""
    for service in group.services:
        if service.connect:
            return True
    for task in group.tasks:
        if SIDECAR_META_KEY in task.meta or (task.kind and task.kind.startswith("connect-proxy")):
            return True
        for service in task.services:
            if service.connect:
                return True
    return False


def sidecar_task(group: Group) -> Task | None:
    """The sidecar nomadmesh injected into this group, if any."""
    for task in group.tasks:
        if SIDECAR_META_KEY in task.meta:
            return task
    return None


@functools.lru_cache(maxsize=32)
def _checked(mesh: Mesh) -> Mesh:
    return mesh.validate()


# --- one group -----------------------------------------------------------------------------------


def _wants_mesh(group: Group, settings: GroupMesh, path: str, problems: list[Problem],
                found: tuple[Service, Task | None] | None) -> bool:
    """Python settings win, then the group's `nomadmesh.mesh` meta, then "has a service"
    (`found`, the group's `app_service`)."""
    flag = group.meta.get(MESH_META_KEY)
    if flag is not None and flag not in ("true", "false"):
        problems.append(Problem(f"{path}.meta.{MESH_META_KEY}",
                                f"{flag!r} must be \"true\" or \"false\""))
        return False
    if settings.enabled is not None:
        return settings.enabled
    if flag is not None:
        return flag == "true"
    return found is not None


def app_service(group: Group) -> tuple[Service, Task | None] | None:
    """The service that names the group in the mesh: the first group service, else a task's."""
    if group.services:
        return group.services[0], None
    for task in group.tasks:
        if task.services and task.is_main:
            return task.services[0], task
    return None


class _Plan(NamedTuple):
    """What one group's injection needs to know, decided once."""

    path: str
    service: str
    bridge: bool
    sidecar: Sidecar
    upstreams: tuple[Upstream, ...]
    # Where the app listens behind the inbound listener: its service's port (a label or a
    # number); None when the group gets no inbound listener.
    app_port: str | None


def _inject_group(job: Job, group: Group, kit: _Kit, problems: list[Problem]) -> Group:
    mesh = kit.mesh
    path = f"{kit.job_path}.group[{group.name}]"
    settings = mesh.group_settings(group.name)
    found = app_service(group)
    if not _wants_mesh(group, settings, path, problems, found) or has_sidecar(group):
        return group
    if found is None:
        problems.append(Problem(path, "the group is meshed but has no service to name its "
                                "sidecar after; add a service block"))
        return group
    service, owner = found
    before = len(problems)
    bridge = _network_mode(group, path, problems)
    sidecar = mesh.sidecar if settings.sidecar is None else mesh.sidecar_for(group.name)
    if bridge and sidecar.driver == "raw_exec":
        problems.append(Problem(f"{path}.network.mode", "a raw_exec sidecar cannot join the "
                                "group's bridge network namespace; use docker or exec, or "
                                "network mode host"))
    plan = _Plan(  # positional: this runs once per group
        path,
        service.name or f"{job.name or job.id}-{group.name}"
        + (f"-{owner.name}" if owner is not None else ""),
        bool(bridge),
        sidecar,
        group_upstreams(group, settings, mesh, path, problems),
        service.port if mesh.inbound and service.port else None,
    )
    task = _sidecar_task(group, plan, service, kit, problems)
    _check_ports(group, plan, kit, problems)
    tasks = _with_env(group.tasks, kit.app_env(plan), plan, problems)
    if len(problems) > before or bridge is None:
        return group
    tasks.append(task)
    services = group.services
    if plan.upstreams or plan.app_port is not None:
        published = _published(service, routes_meta(plan.upstreams) if plan.upstreams else None,
                               plan, owner, problems, kit.mesh)
        if owner is None:
            services = (published, *services[1:])
        else:
            tasks = [_with_services(t, (published, *t.services[1:]))
                     if t.name == owner.name else t for t in tasks]
        if len(problems) > before:
            return group
    # The new ports are dynamic and go last, so the network keeps its static-first order.
    networks = group.networks
    network = _with_ports(networks[0], networks[0].ports + kit.ports[
        plan.bridge, plan.app_port is not None])
    return _injected_group(group, tuple(tasks), services, (network, *networks[1:]))


def _network_mode(group: Group, path: str, problems: list[Problem]) -> bool | None:
    """True for a namespaced network (bridge, cni/*), False for host; None (a problem) otherwise."""
    if not group.networks:
        problems.append(Problem(f"{path}.network", "a meshed group needs a network block "
                                "(mode \"bridge\" or \"host\") for the sidecar's ports"))
        return None
    mode = group.networks[0].mode or "host"
    if mode == "none":
        problems.append(Problem(f"{path}.network.mode", "a meshed group cannot have network "
                                "mode \"none\"; the sidecar needs a network"))
        return None
    return mode == "bridge" or mode.startswith("cni/")


def group_upstreams(group: Group, settings: GroupMesh, mesh: Mesh, path: str,
               problems: list[Problem]) -> tuple[Upstream, ...]:
    """The group meta's upstreams, then the Python settings'; prefixes and env names unique."""
    text = group.meta.get(GROUP_META_KEY)
    if text is None and not settings.upstreams:
        return ()
    located: list[tuple[Upstream, str]] = []
    if text is not None:
        meta_path = f"{path}.meta.{GROUP_META_KEY}"
        found, bad = parse_upstreams(text, meta_path)
        problems.extend(bad)
        located.extend((u, meta_path) for u in found)
    located.extend((u, f"mesh.groups.{group.name}.upstreams[{i}]")
                   for i, u in enumerate(settings.upstreams))
    matches: dict[tuple[object, ...], Upstream] = {}
    env_names: dict[str, str] = {}
    out: list[Upstream] = []
    for upstream, where in located:
        if upstream in out:
            continue
        match = (upstream.prefix, upstream.methods, upstream.headers)
        other = matches.get(match)
        if other is not None and other.service == upstream.service:
            # The settings refine a route the group meta declares (a policy, a split): theirs wins.
            out[out.index(other)] = matches[match] = upstream
            continue
        if other is not None:
            problems.append(Problem(where, f"prefix {upstream.prefix!r} is used by both "
                                    f"{other.service!r} and {upstream.service!r}"
                                    + (" with the same methods and headers"
                                       if upstream.methods or upstream.headers else "")))
            continue
        env = url_env_name(mesh.upstream_url_env, upstream.service)
        owner = env_names.setdefault(env, upstream.service)
        if owner != upstream.service:
            problems.append(Problem(where, f"{upstream.service!r} and {owner!r} would both set "
                                    f"{env}; rename one of the services"))
            continue
        matches[match] = upstream
        out.append(upstream)
    return tuple(out)


def routes_meta(upstreams: tuple[Upstream, ...]) -> str:
    """The short form published in service meta: each (service, prefix) once, in order."""
    seen: dict[tuple[str, str], Upstream] = {}
    for upstream in upstreams:
        seen.setdefault((upstream.service, upstream.prefix),
                        Upstream(upstream.service, upstream.prefix))
    return format_upstreams(seen.values())


def _check_ports(group: Group, plan: _Plan, kit: _Kit, problems: list[Problem]) -> None:
    labels = kit.port_labels(plan.bridge)
    inside = kit.inside_ports if plan.bridge else _NOTHING_INSIDE
    for network in group.networks:
        for port in network.ports:
            if port.label in labels:
                problems.append(Problem(f"{plan.path}.network.port[{port.label}]",
                                        f"port label {port.label!r} is needed by the sidecar; "
                                        "rename the port or change the mesh's port labels"))
            if port.to in inside:
                setting = inside[port.to]
                problems.append(Problem(f"{plan.path}.network.port[{port.label}].to",
                                        f"port {port.to} inside the namespace is the sidecar's "
                                        f"{setting}; use another port or change mesh.{setting}"))


def _app_env(plan: _Plan, mesh: Mesh) -> dict[str, str]:
    if plan.bridge:
        host, port = LOOPBACK, str(mesh.egress_port)
        base = f"http://{LOOPBACK}:{mesh.egress_port}"
    else:
        label = mesh.egress_port_label
        host, port = f"${{NOMAD_IP_{label}}}", f"${{NOMAD_PORT_{label}}}"
        base = f"http://${{NOMAD_ADDR_{label}}}"
    env = {mesh.egress_host_env: host, mesh.egress_port_env: port}
    for upstream in plan.upstreams:
        # A service routed under several prefixes (or matches) gets the URL of its first route.
        env.setdefault(url_env_name(mesh.upstream_url_env, upstream.service),
                       base + upstream.prefix)
    return env


def _with_env(tasks: tuple[Task, ...], env: dict[str, str], plan: _Plan,
              problems: list[Problem]) -> list[Task]:
    """The group's tasks, each main task with the mesh's env added to its own."""
    out = []
    added = len(env)
    for task in tasks:
        if task.is_main:
            merged = FrozenDict({**task.env, **env})
            if len(merged) != len(task.env) + added:
                for name in sorted(task.env.keys() & env.keys()):
                    problems.append(Problem(f"{plan.path}.task[{task.name}].env.{name}",
                                            f"{name} is set by the mesh; remove it or rename the "
                                            "mesh's env var"))
            task = _with_env_map(task, merged)
        out.append(task)
    return out


def _published(service: Service, routes: str | None, plan: _Plan, owner: Task | None,
               problems: list[Problem], mesh: Mesh) -> Service:
    """The application service as the mesh registers it: at the sidecar's inbound port (its
    checks still reach the app directly), carrying the routes the control plane reads."""
    meta, tags, port, checks = service.meta, service.tags, service.port, service.checks
    if routes is not None:
        current = service.meta.get(SERVICE_META_KEY)
        if current is not None and current != routes:
            where = f"task[{owner.name}].service[0]" if owner is not None else "service[0]"
            problems.append(Problem(f"{plan.path}.{where}.meta.{SERVICE_META_KEY}",
                                    f"already set to {current!r}, but the group's upstreams are "
                                    f"{routes!r}; declare upstreams in one place"))
        meta = FrozenDict({**meta, SERVICE_META_KEY: routes})
        tag = ROUTES_TAG_PREFIX + routes
        if service.provider == "nomad" and tag not in service.tags:
            # Nomad's registrations keep tags only; the control plane reads the routes there.
            if any(t.startswith(ROUTES_TAG_PREFIX) for t in service.tags):
                problems.append(Problem(f"{plan.path}.service[0].tags", "a routes tag is already "
                                        f"set, but the group's upstreams are {routes!r}"))
            tags = (*tags, tag)
    if plan.app_port is not None:
        port = mesh.inbound_port_label
        checks = tuple([c if c.port else _with_port(c, plan.app_port) for c in checks])
    # The fields left as they are go through their converters' fast path: stored as they are.
    return _published_service(service, meta, tags, port, checks)


# --- the sidecar task ---------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def _sidecar_task(group: Group, plan: _Plan, app: Service, kit: _Kit,
                  problems: list[Problem]) -> Task:
    """The sidecar of one group: the shared prototype with its names, meta and bootstrap."""
    sidecar = plan.sidecar
    name_source = group.name if "${" in plan.service else plan.service
    name = (sidecar.name or "").replace("{service}", name_source)
    metrics_name = kit.mesh.metrics_service.replace("{service}", name_source)
    for task in group.tasks:
        if task.name == name:
            problems.append(Problem(f"{plan.path}.task[{name}]", f"task name {name!r} is needed "
                                    "by the sidecar; rename the task or set the sidecar's name"))
        for service in task.services:
            if service.name == metrics_name:
                _metrics_name_taken(plan, metrics_name, problems)
    for service in group.services:
        if service.name == metrics_name:
            _metrics_name_taken(plan, metrics_name, problems)
    for key in sidecar.env:
        if key in kit.xds_env:
            problems.append(Problem(f"mesh.groups.{group.name}.sidecar.env.{key}",
                                    f"{key} is set by the mesh from the control plane address"))
    cluster = _template_value(plan.service, plan.path, problems)
    prototype = kit.prototype(sidecar, plan.bridge)
    bootstrap = _with_data(kit.bootstrap_file,
                           kit.bootstrap(plan.bridge, cluster, group.name, plan.app_port))
    metrics = _named_service(kit.metrics_service(app.provider), metrics_name, FrozenDict(
        {"metrics_path": METRICS_PATH, "nomadmesh-service": plan.service}))
    return _named_sidecar(prototype, name, (*prototype.templates, bootstrap), (metrics,),
                          FrozenDict({**sidecar.meta, SIDECAR_META_KEY: plan.service}))


def _metrics_name_taken(plan: _Plan, metrics_name: str, problems: list[Problem]) -> None:
    problems.append(Problem(f"{plan.path}.service[{metrics_name}]",
                            f"service name {metrics_name!r} is needed for the sidecar's metrics"))


class _Kit:
    """What the groups of one `inject` call share, built once: prototypes, bootstrap skeletons."""

    def __init__(self, mesh: Mesh, job: Job) -> None:
        self.mesh = mesh
        self.job_path = job.path
        self._job_id = _quoted(job.id)
        self.xds_env, self.xds_templates = _xds(mesh)
        self.bootstrap_file = Template(destination=mesh.bootstrap_path, change_mode="restart")
        self._check = Check(type="tcp", interval=10 * SECOND, timeout=2 * SECOND)
        # Keyed by identity (the sidecar is kept alive in the value): hashing settings per group
        # would cost more than building the prototype.
        self._tasks: dict[bool | tuple[int, bool], tuple[Sidecar, Task]] = {}
        self._services: dict[str | None, Service] = {}
        self._skeletons: dict[tuple[bool, bool], tuple[list[str], tuple[tuple[int, str], ...]]] = {}
        self._app_values: dict[tuple[bool, str], dict[str, str]] = {}
        self._app_envs: dict[bool | tuple[bool, tuple[Upstream, ...]], dict[str, str]] = {}
        # Egress and admin stay inside a bridge namespace; only metrics reach the host there.
        self._ports = {
            True: (Port(mesh.metrics_port_label, to=mesh.metrics_port),),
            False: (Port(mesh.egress_port_label), Port(mesh.admin_port_label),
                    Port(mesh.metrics_port_label)),
        }
        self._inbound_ports = {
            True: (Port(mesh.inbound_port_label, to=mesh.inbound_port),),
            False: (Port(mesh.inbound_port_label),),
        }
        # The ports the sidecar adds to the group network, by (bridge, inbound).
        self.ports = {(bridge, inbound): sidecar + (self._inbound_ports[bridge] if inbound else ())
                      for bridge, sidecar in self._ports.items() for inbound in (True, False)}
        self._labels = {bridge: frozenset(p.label for p in ports + self._inbound_ports[bridge])
                        for bridge, ports in self._ports.items()}
        self.inside_ports = {mesh.egress_port: "egress_port", mesh.admin_port: "admin_port",
                             mesh.metrics_port: "metrics_port",
                             mesh.inbound_port: "inbound_port"}

    def app_env(self, plan: _Plan) -> dict[str, str]:
        """The env every main task gets; shared by groups with the same mode and upstreams."""
        key = plan.bridge if not plan.upstreams else (plan.bridge, plan.upstreams)
        env = self._app_envs.get(key)
        if env is None:
            env = self._app_envs[key] = _app_env(plan, self.mesh)
        return env

    def port_labels(self, bridge: bool) -> frozenset[str]:
        return self._labels[bridge]

    def prototype(self, sidecar: Sidecar, bridge: bool) -> Task:
        """Everything of the sidecar task that does not depend on the group."""
        key = bridge if sidecar is self.mesh.sidecar else (id(sidecar), bridge)
        found = self._tasks.get(key)
        if found is None:
            task = Task(
                "sidecar",
                driver=sidecar.driver,
                config=_driver_config(sidecar, self.mesh, bridge),
                env={**self.xds_env, **sidecar.env},
                lifecycle=Lifecycle(hook="prestart", sidecar=True),
                resources=sidecar.resources,
                logs=sidecar.logs,
                shutdown_delay=sidecar.shutdown_delay,
                kill_timeout=sidecar.kill_timeout,
                templates=self.xds_templates,
            )
            found = self._tasks[key] = (sidecar, task)
        return found[1]

    def metrics_service(self, provider: str | None) -> Service:
        """The sidecar's metrics service, less its name and meta."""
        service = self._services.get(provider)
        if service is None:
            service = self._services[provider] = Service(
                port=self.mesh.metrics_port_label, provider=provider, tags=self.mesh.metrics_tags,
                checks=(self._check,))
        return service

    def bootstrap(self, bridge: bool, cluster: str, group: str, app_port: str | None) -> str:
        """The bootstrap template text of one group: the skeleton with its names filled in."""
        inbound = app_port is not None
        skeleton = self._skeletons.get((bridge, inbound))
        if skeleton is None:
            skeleton = self._skeletons[(bridge, inbound)] = self._split(
                _bootstrap_skeleton(self.mesh, bridge, inbound))
        pieces, slots = skeleton
        cluster_text = _quoted(cluster)
        if "@@" in cluster_text:
            cluster_text = re.sub(r"@@([A-Za-z0-9_]+)@@", r'{{ env "\1" }}', cluster_text)
        values = {"CLUSTER": cluster_text, "GROUP": _quoted(group)}
        if app_port is not None:
            app = self._app_values.get((bridge, app_port))
            if app is None:
                # A number is where the app listens inside the group; a label is a Nomad port.
                app = self._app_values[(bridge, app_port)] = {
                    "APP_PORT": app_port if app_port.isdigit() else (
                        f'{{{{ env "NOMAD_PORT_{app_port}" }}}}'),
                    "APP_IP": LOOPBACK if bridge or app_port.isdigit() else (
                        f'{{{{ env "NOMAD_IP_{app_port}" }}}}'),
                }
            values.update(app)
        out = pieces.copy()
        for index, slot in slots:
            out[index] = values[slot]
        return "".join(out)

    def _split(self, skeleton: str) -> tuple[list[str], tuple[tuple[int, str], ...]]:
        """The skeleton as text pieces with the job id filled in, and the (index, slot name)
        of each slot left for a group's values."""
        pieces = _SKELETON_SLOTS.split(skeleton)
        slots = []
        for index in range(1, len(pieces), 2):
            if pieces[index] == "JOB":
                pieces[index] = self._job_id
            else:
                slots.append((index, pieces[index]))
        return pieces, tuple(slots)


_SKELETON_SLOTS = re.compile(r"@@(CLUSTER|JOB|GROUP|APP_PORT|APP_IP)@@")


def _driver_config(sidecar: Sidecar, mesh: Mesh, bridge: bool) -> dict[str, object]:
    directory, _, file = mesh.bootstrap_path.partition("/")
    base = "${NOMAD_SECRETS_DIR}" if directory == "secrets" else "${NOMAD_TASK_DIR}"
    args = ["-c", f"{base}/{file}", "-l", sidecar.log_level or "info"]
    if sidecar.concurrency:
        args += ["--concurrency", str(sidecar.concurrency)]
    args += ["--disable-hot-restart", *(sidecar.args or ())]
    config: dict[str, object]
    if sidecar.driver == "docker":
        config = {"image": sidecar.image_ref, "args": args}
        if not bridge:
            # In host mode a container would otherwise get Docker's own bridge network.
            config["network_mode"] = "host"
    else:
        config = {"command": sidecar.envoy_binary, "args": args}
    return {**config, **sidecar.config}


@functools.lru_cache(maxsize=64)
def _xds(mesh: Mesh) -> tuple[dict[str, str], tuple[Template, ...]]:
    """XDS_HOST / XDS_PORT: literal for a fixed address; with a control plane service, every
    instance in a file Envoy watches (no restart when replicas change) and the first one, for
    information, in the env."""
    address = mesh.control_plane_address
    if address is not None:
        return {mesh.xds_host_env: address[0], mesh.xds_port_env: str(address[1])}, ()
    data = (f'{{{{ range $i, $s := service "{mesh.control_plane}" }}}}{{{{ if eq $i 0 }}}}'
            f"{mesh.xds_host_env}={{{{ $s.Address }}}}\n{mesh.xds_port_env}={{{{ $s.Port }}}}\n"
            "{{ end }}{{ end }}")
    return {}, (
        Template(data=data, destination=XDS_ENV_PATH, env=True, change_mode="noop"),
        Template(data=xds_endpoints_template(mesh.control_plane),
                 destination=XDS_ENDPOINTS_PATH, change_mode="noop"),
    )


def _template_value(text: str, path: str, problems: list[Problem]) -> str:
    """A Nomad `${VAR}` inside the group's service name (at `path`) becomes the template's
    `{{ env "VAR" }}`."""
    if "${" not in text:
        return text

    def to_env(match: re.Match[str]) -> str:
        var = match.group(1)
        if var.startswith("meta."):
            var = "NOMAD_META_" + var.removeprefix("meta.")
        if not re.fullmatch(r"[A-Za-z0-9_]+", var):
            problems.append(Problem(f"{path}.service[0].name",
                                    f"${{{match.group(1)}}} cannot be resolved in the "
                                    "sidecar's bootstrap; use a NOMAD_* variable or a literal"))
            return match.group(0)
        return f"@@{var}@@"

    return _INTERPOLATION.sub(to_env, text)


@functools.lru_cache(maxsize=256)
def _bootstrap_skeleton(mesh: Mesh, bridge: bool, inbound: bool) -> str:
    """The bootstrap template of every group with this mesh and mode; names are placeholders."""
    address = mesh.control_plane_address
    runtime = [Runtime("NOMAD_ALLOC_ID")]
    if bridge:
        ports: dict[str, object] = {
            "admin_port": mesh.admin_port, "metrics_address": "0.0.0.0",
            "metrics_port": mesh.metrics_port, "egress_address": LOOPBACK,
            "egress_port": mesh.egress_port,
        }
    else:
        admin = Runtime(f"NOMAD_PORT_{mesh.admin_port_label}", number=True)
        metrics_ip = Runtime(f"NOMAD_IP_{mesh.metrics_port_label}")
        metrics = Runtime(f"NOMAD_PORT_{mesh.metrics_port_label}", number=True)
        egress_ip = Runtime(f"NOMAD_IP_{mesh.egress_port_label}")
        egress = Runtime(f"NOMAD_PORT_{mesh.egress_port_label}", number=True)
        runtime += [admin, metrics_ip, metrics, egress_ip, egress]
        ports = {
            "admin_port": admin.placeholder, "metrics_address": metrics_ip.placeholder,
            "metrics_port": metrics.placeholder, "egress_address": egress_ip.placeholder,
            "egress_port": egress.placeholder,
        }
    inbound_metadata: dict[str, object] = {}
    if inbound and bridge:
        inbound_metadata = {INBOUND_ADDRESS_KEY: "0.0.0.0", INBOUND_PORT_KEY: mesh.inbound_port,
                            APP_ADDRESS_KEY: "@@APP_IP@@", APP_PORT_KEY: "@@APP_PORT@@"}
    elif inbound:
        inbound_ip = Runtime(f"NOMAD_IP_{mesh.inbound_port_label}")
        inbound_port = Runtime(f"NOMAD_PORT_{mesh.inbound_port_label}", number=True)
        runtime += [inbound_ip, inbound_port]
        inbound_metadata = {INBOUND_ADDRESS_KEY: inbound_ip.placeholder,
                            INBOUND_PORT_KEY: inbound_port.placeholder,
                            APP_ADDRESS_KEY: "@@APP_IP@@", APP_PORT_KEY: "@@APP_PORT@@"}
    endpoints_file = None
    if address is None:
        secrets = Runtime("NOMAD_SECRETS_DIR")
        runtime.append(secrets)
        endpoints_file = f"{secrets.placeholder}/{XDS_ENDPOINTS_PATH.partition('/')[2]}"
    params = BootstrapParams(
        node_id=runtime[0].placeholder,
        cluster="@@CLUSTER@@",
        xds_host=address[0] if address is not None else "@@XDS_HOST@@",
        xds_port=address[1] if address is not None else "@@XDS_PORT@@",
        admin_address=LOOPBACK,
        node_metadata={"nomad_job": "@@JOB@@", "nomad_group": "@@GROUP@@", **inbound_metadata},
        xds_endpoints_file=endpoints_file,
        **ports,  # type: ignore[arg-type]
    )
    return bootstrap_template(params, runtime=runtime)


def _quoted(value: str) -> str:
    """`value` as the inside of a JSON string: printable ASCII as it is, the rest escaped."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return json.dumps(value)[1:-1]

