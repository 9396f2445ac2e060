"""Hypothesis strategies for valid nomadmesh model objects, from single blocks up to whole jobs.

Every strategy builds objects that pass `validate()`; optional fields are left unset about half of
the time so that both "absent" and "present" paths are exercised. Free text (meta and env values,
template data, check paths...) is drawn from the full Unicode range, so the codecs' escaping is
tested too. Import what you need: `from tests.strategies import jobs, groups, tasks`.
"""

from __future__ import annotations

import string
from functools import cache
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from nomadmesh.model import (
    Affinity,
    Artifact,
    ChangeScript,
    Check,
    Constraint,
    Consul,
    ConsulConnect,
    CSIMountOptions,
    Device,
    Disconnect,
    DNSConfig,
    EphemeralDisk,
    Group,
    Job,
    JobUI,
    JobUILink,
    Lifecycle,
    LogConfig,
    MigrateStrategy,
    Network,
    Parameterized,
    Periodic,
    Port,
    ReschedulePolicy,
    Resources,
    RestartPolicy,
    Scaling,
    Service,
    ServiceWeights,
    Spread,
    SpreadTarget,
    Task,
    Template,
    TemplateWait,
    UpdateStrategy,
    Vault,
    VolumeMount,
    VolumeRequest,
    WorkloadIdentity,
)
from nomadmesh.model._base import HOUR, MILLISECOND, MINUTE, SECOND
from nomadmesh.model._json import decode

T = TypeVar("T")

# --- building blocks ---------------------------------------------------------------------------


def optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """The value or None (field left unset)."""
    return st.none() | strategy


IDENT = string.ascii_letters + string.digits + "_"
names = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_lowercase),
                  st.text(string.ascii_lowercase + string.digits, max_size=10))
"""Names that are valid everywhere (job IDs, groups, tasks, services: RFC 1123 labels)."""
identifiers = st.builds(lambda head, tail: head + tail, st.sampled_from(string.ascii_letters + "_"),
                        st.text(IDENT, max_size=8)).filter(
    lambda s: s not in ("true", "false", "null") and not s.startswith("__"))
"""Keys that HCL can write bare (`key = value`)."""
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
"""Any text: quotes, backslashes, newlines, `${`, `%{`, emoji..."""
runtime_refs = st.sampled_from(["${NOMAD_PORT_http}", "${attr.kernel.name}", "${meta.rack}",
                                "${node.unique.name}", "${NOMAD_META_version}",
                                "${env.HOME}", "${NOMAD_ALLOC_DIR}/data"])
"""Nomad runtime interpolations that must survive every codec literally."""
strings = text | runtime_refs | st.builds(lambda a, b: a + b, text, runtime_refs)
"""Free text, with runtime interpolations mixed in."""
_segment = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=5)
map_keys = identifiers | st.builds(lambda a, sep, b: a + sep + b, _segment,
                                   st.sampled_from(".-"), _segment) | text.filter(
    lambda s: not s.startswith("__"))
"""Map keys: identifiers, dotted/dashed keys (`"a.b"`), and arbitrary text."""
string_maps = st.dictionaries(map_keys, strings, max_size=4)
"""meta / env maps."""
durations = st.integers(0, 4 * MINUTE) | st.sampled_from([SECOND, 10 * SECOND, 90 * SECOND,
                                                          1500 * MILLISECOND, 3 * MINUTE])
"""Durations in nanoseconds, including odd ones like 1500ms (short enough for every rule)."""
seconds = st.integers(1, 3600).map(lambda n: n * SECOND)


@cache
def config_values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Driver config values: scalars, lists, maps, and lists of maps (written as blocks)."""
    scalar = strings | st.integers(-(2**53), 2**53) | st.booleans()
    if depth == 0:
        return scalar
    inner = config_values(depth - 1)
    return (scalar | st.lists(scalar, max_size=3).map(tuple)
            | st.dictionaries(map_keys, inner, max_size=3)
            | st.lists(st.dictionaries(identifiers, inner, max_size=3), min_size=1,
                       max_size=2).map(tuple))


configs = st.dictionaries(map_keys, config_values(), max_size=5)
"""A task's driver config."""


# --- placement (nomad/structs/structs.go:10021 Constraint.Validate and friends) ---------------

attributes = st.sampled_from(["${attr.kernel.name}", "${node.datacenter}", "${meta.rack}",
                              "${attr.cpu.arch}", "${node.class}"])
nonempty = (st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30)
            | runtime_refs)
_valued = st.sampled_from([("=", nonempty), ("!=", nonempty), ("<", nonempty), (">=", nonempty),
                           ("regexp", st.sampled_from(["^linux$", "a.*b", "[0-9]+"])),
                           ("version", st.sampled_from([">= 1.2", "< 2.0.0, >= 1.0", "~> 1.4"])),
                           ("semver", st.sampled_from([">= 1.2.0", "^1.4", "1.x || 2.x"])),
                           ("set_contains", nonempty)])


@cache
def constraints() -> st.SearchStrategy[Constraint]:
    """Valid constraints: each operator with a value it accepts, value-less ones, distinct_hosts."""
    valued = _valued.flatmap(lambda pair: st.builds(
        Constraint, attribute=attributes, operator=st.just(pair[0]), value=pair[1]))
    bare = st.builds(Constraint, attribute=attributes,
                     operator=st.sampled_from(["distinct_property", "is_set", "is_not_set"]))
    hosts = st.builds(Constraint, operator=st.just("distinct_hosts"))
    return valued | bare | hosts


@cache
def affinities() -> st.SearchStrategy[Affinity]:
    """Valid affinities with non-zero weights."""
    return _valued.flatmap(lambda pair: st.builds(
        Affinity, attribute=attributes, operator=st.just(pair[0]), value=pair[1],
        weight=optional(st.integers(-100, 100).filter(bool))))


@cache
def spreads() -> st.SearchStrategy[Spread]:
    """Valid spreads with targets adding up to at most 100%."""
    targets = st.lists(st.builds(SpreadTarget, value=names, percent=optional(st.integers(0, 33))),
                       max_size=3, unique_by=lambda t: t.value)
    return st.builds(Spread, attribute=attributes, weight=optional(st.integers(1, 100)),
                     targets=targets)


# --- policies ----------------------------------------------------------------------------------


@cache
def restart_policies() -> st.SearchStrategy[RestartPolicy]:
    """Valid restart policies: attempts x delay fits in the interval, delay mode retries."""
    return st.builds(RestartPolicy, attempts=optional(st.integers(1, 5)),
                     interval=optional(st.just(HOUR)),
                     delay=optional(seconds.filter(lambda d: d <= 5 * MINUTE)),
                     mode=optional(st.sampled_from(["delay", "fail"])),
                     render_templates=optional(st.booleans()))


@cache
def reschedule_policies() -> st.SearchStrategy[ReschedulePolicy]:
    """Valid reschedule policies: unlimited with a growing delay, or a few constant attempts."""
    unlimited = st.builds(ReschedulePolicy, unlimited=st.just(True), attempts=st.just(0),
                          interval=st.just(0), delay=st.just(30 * SECOND), max_delay=st.just(HOUR),
                          delay_function=st.sampled_from(["exponential", "fibonacci"]))
    limited = st.builds(ReschedulePolicy, unlimited=st.just(False), attempts=st.integers(1, 3),
                        interval=st.just(24 * HOUR), delay=st.just(30 * SECOND),
                        max_delay=st.just(HOUR), delay_function=st.just("constant"))
    return unlimited | limited


@cache
def update_strategies() -> st.SearchStrategy[UpdateStrategy]:
    """Valid update strategies (canary present when auto_promote is)."""
    return st.builds(UpdateStrategy, stagger=optional(seconds),
                     max_parallel=optional(st.integers(0, 10)),
                     health_check=optional(st.sampled_from(["checks", "task_states", "manual"])),
                     min_healthy_time=optional(st.just(10 * SECOND)),
                     healthy_deadline=optional(st.just(5 * MINUTE)),
                     progress_deadline=optional(st.just(10 * MINUTE)),
                     canary=optional(st.integers(1, 3)),
                     auto_revert=optional(st.booleans()),
                     auto_promote=st.none())


@cache
def migrate_strategies() -> st.SearchStrategy[MigrateStrategy]:
    """Valid migrate strategies."""
    return st.builds(MigrateStrategy, max_parallel=optional(st.integers(0, 5)),
                     health_check=optional(st.sampled_from(["checks", "task_states"])),
                     min_healthy_time=optional(st.just(10 * SECOND)),
                     healthy_deadline=optional(st.just(5 * MINUTE)))


# --- tasks -------------------------------------------------------------------------------------


@cache
def resources() -> st.SearchStrategy[Resources]:
    """Valid resources, sometimes with device requests."""
    devices = st.lists(st.builds(Device, name=st.sampled_from(["nvidia/gpu", "fpga"]),
                                 count=st.integers(1, 4)), max_size=2)
    return st.builds(Resources, cpu=optional(st.integers(1, 4000)),
                     memory=optional(st.integers(300, 4096)),
                     memory_max=st.none(), secrets=optional(st.integers(1, 100)),
                     devices=devices)


@cache
def templates(destination: st.SearchStrategy[str]) -> st.SearchStrategy[Template]:
    """Valid templates: inline data (often multi-line) or a source file."""
    data = st.text(max_size=60) | st.lists(st.text(alphabet=st.characters(
        blacklist_categories=["Cs", "Cc"]), max_size=20), min_size=1, max_size=4).map(
        lambda lines: "\n".join(lines) + "\n")
    body = (st.fixed_dictionaries({"data": data.filter(bool)})
            | st.fixed_dictionaries({"source": nonempty}))
    modes = st.sampled_from([
        {}, {"change_mode": "restart"}, {"change_mode": "noop"},
        {"change_mode": "signal", "change_signal": "SIGHUP", "env": False},
    ]) | st.builds(lambda cs: {"change_mode": "script", "change_script": cs},
                   st.builds(ChangeScript, command=nonempty, args=st.lists(strings, max_size=2),
                             timeout=optional(durations), fail_on_error=optional(st.booleans())))
    return st.builds(
        lambda b, m, **kw: Template(**b, **{**kw, **m}), body, modes,
        destination=destination, splay=optional(durations),
        perms=optional(st.sampled_from(["0644", "0600", "755"])),
        uid=optional(st.integers(0, 65535)), gid=optional(st.integers(0, 65535)),
        left_delimiter=optional(st.just("[[")), right_delimiter=optional(st.just("]]")),
        env=optional(st.booleans()),
        wait=optional(st.builds(TemplateWait, min=optional(st.just(SECOND)),
                                max=optional(st.just(MINUTE)))),
        error_on_missing_key=optional(st.booleans()), once=optional(st.booleans()),
    )


@cache
def artifacts() -> st.SearchStrategy[Artifact]:
    """Valid artifacts."""
    return st.builds(Artifact, source=nonempty,
                     destination=optional(st.sampled_from(["local/", "local/bin", "alloc/x"])),
                     mode=optional(st.sampled_from(["any", "file", "dir"])),
                     options=st.dictionaries(identifiers.filter(lambda k: k != "checksum"), strings,
                                             max_size=3),
                     headers=string_maps, chown=optional(st.booleans()))


@cache
def checks(port: str | None, task_names: tuple[str, ...], provider: str, tcp: bool = True
           ) -> st.SearchStrategy[list[Check]]:
    """Valid health checks of a service on `port` (a port label, or None: script checks only)."""
    kinds: list[dict[str, Any]] = [{"type": "script", "command": "/bin/check"}]
    if port is not None:
        kinds += [{"type": "http", "path": "/health"}] + ([{"type": "tcp"}] if tcp else [])
        if provider == "consul":
            kinds.append({"type": "grpc"})
    if provider == "nomad":
        kinds = [k for k in kinds if k["type"] in ("http", "tcp")]
    if not kinds:
        return st.just([])
    task = st.sampled_from(task_names) if task_names else st.none()
    check = st.builds(
        lambda k, t, **kw: Check(**k, **kw, task=t if k["type"] == "script" else None),
        st.sampled_from(kinds), task,
        name=names, interval=seconds, timeout=seconds,
        method=optional(st.sampled_from(["GET", "POST"])),
        header=optional(st.dictionaries(identifiers | map_keys, st.lists(text, min_size=1,
                                                                         max_size=2).map(tuple),
                                        min_size=1, max_size=2)),
        initial_status=optional(st.sampled_from(["passing", "warning", "critical"])),
        on_update=optional(st.sampled_from(["require_healthy", "ignore"])),
        notes=optional(nonempty.map(lambda n: n[:200])) if provider == "consul" else st.none(),
    )
    return st.lists(check, max_size=2, unique_by=lambda c: c.name)


@cache
def connects(port: str, dynamic: bool) -> st.SearchStrategy[ConsulConnect]:
    """Consul Connect sidecars (one per service, exclusive of native and gateways); the sidecar
    service names the service's port only when it is dynamic (nomad/job_endpoint_hook_connect.go:239
    injectPort adds a dynamic port of that label unless one exists)."""
    upstream = st.fixed_dictionaries(
        {"DestinationName": names, "LocalBindPort": st.integers(1, 65535)},
        optional={"Datacenter": names, "LocalBindAddress": st.just("127.0.0.1"),
                  "MeshGateway": st.fixed_dictionaries({"Mode": st.sampled_from(["local",
                                                                                  "remote"])}),
                  "Config": st.dictionaries(identifiers, strings, max_size=2)})
    proxy = st.fixed_dictionaries({}, optional={
        "LocalServicePort": st.integers(1, 65535),
        # nomad/job_endpoint_hook_connect.go:567: no two upstreams listen on one address
        "Upstreams": st.lists(upstream, min_size=1, max_size=3,
                              unique_by=lambda u: u["LocalBindPort"]),
        "Config": st.dictionaries(map_keys, config_values(1), max_size=3),
        "TransparentProxy": st.fixed_dictionaries({}, optional={
            "UID": st.just("101"), "ExcludeOutboundCIDRs": st.lists(st.just("10.0.0.0/8"),
                                                                    max_size=1),
            "NoDNS": st.booleans()}),
    })
    sidecar_service = st.fixed_dictionaries({}, optional={
        **({"Port": st.just(port)} if dynamic else {}), "Tags": st.lists(names, max_size=2),
        "Proxy": proxy, "DisableDefaultTCPCheck": st.booleans(), "Meta": string_maps})
    sidecar_task = st.fixed_dictionaries({}, optional={
        "Name": names, "Driver": st.just("docker"),
        "Config": st.dictionaries(map_keys, config_values(1), max_size=3), "Env": string_maps,
        "Resources": st.fixed_dictionaries({"CPU": st.integers(1, 1000),
                                            "MemoryMB": st.integers(10, 1000)}),
        "LogConfig": st.fixed_dictionaries({"MaxFiles": st.integers(1, 5),
                                            "MaxFileSizeMB": st.integers(1, 5)}),
        "KillTimeout": durations, "ShutdownDelay": durations, "KillSignal": st.just("SIGTERM")})
    return st.fixed_dictionaries({"SidecarService": sidecar_service},
                                 optional={"SidecarTask": sidecar_task}).map(
        lambda d: decode(ConsulConnect, d, "connect"))


@cache
def services(ports: tuple[str, ...], task_names: tuple[str, ...], provider: str,
             group: bool, dynamic: tuple[str, ...] = ()) -> st.SearchStrategy[Service]:
    """Valid services of one provider, on one of `ports` (`dynamic` those without a static
    port) or none, with checks; group Consul services sometimes with a Connect sidecar."""
    def build(port: str | None, connect: ConsulConnect | None) -> st.SearchStrategy[Service]:
        return st.builds(
            Service, name=optional(names), port=st.just(port), provider=st.just(provider),
            tags=st.lists(strings, max_size=3), canary_tags=st.lists(names, max_size=2),
            enable_tag_override=optional(st.booleans()),
            address_mode=optional(st.sampled_from(["auto", "host"])),
            task=optional(st.sampled_from(task_names)) if group and task_names else st.none(),
            on_update=optional(st.just("ignore")), meta=string_maps, canary_meta=string_maps,
            tagged_addresses=string_maps if provider == "consul" else st.just({}),
            # nomad/structs/services.go:860: no tcp checks on a Connect sidecar service
            checks=checks(port, task_names if group else (), provider, tcp=connect is None),
            connect=st.just(connect),
            weights=optional(st.builds(ServiceWeights, passing=st.integers(1, 10),
                                       warning=st.integers(1, 10)))
            if provider == "consul" else st.none(),
        )

    def with_connect(port: str | None) -> st.SearchStrategy[Service]:
        connect = (optional(connects(port, port in dynamic)) if group and provider == "consul" and port
                   else st.none())
        return connect.flatmap(lambda c: build(port, c))

    return (st.sampled_from(ports) if ports else st.none()).flatmap(with_connect)


@cache
def tasks(name: st.SearchStrategy[str] = names, *, volumes: tuple[str, ...] | None = None,
          ports: tuple[str, ...] | None = None, provider: str = "consul",
          main: bool = True, system: bool = False) -> st.SearchStrategy[Task]:
    """Valid tasks; volume mounts and service ports refer to the given group volumes and ports."""
    mounts = (st.lists(st.builds(VolumeMount, volume=st.sampled_from(volumes),
                                 destination=st.sampled_from(["/data", "/srv"]),
                                 read_only=optional(st.booleans()),
                                 propagation_mode=optional(st.sampled_from(
                                     ["private", "host-to-task", "bidirectional"]))),
                       max_size=2) if volumes else st.just([]))
    identity = st.builds(WorkloadIdentity, env=st.just(True),
                         aud=st.lists(names, min_size=1, max_size=2), file=optional(st.booleans()))
    identities = st.lists(st.builds(WorkloadIdentity, name=names, aud=st.lists(
        names, min_size=1, max_size=2), ttl=optional(seconds)), max_size=2,
        unique_by=lambda d: d.name)
    lifecycle = st.none() if main else optional(st.builds(
        Lifecycle, hook=st.sampled_from(["prestart", "poststart"]), sidecar=optional(st.booleans())))
    return st.builds(
        Task, name=name, driver=st.sampled_from(["docker", "exec", "raw_exec", "java"]),
        config=configs, env=string_maps, user=optional(names), kind=optional(names),
        leader=optional(st.just(False)), lifecycle=lifecycle,
        resources=optional(resources()),
        services=st.lists(services(ports or (), (), provider, False), max_size=1),
        templates=st.lists(templates(st.just("local/a")), max_size=1)
        | st.lists(templates(st.just("local/b")), max_size=1),
        artifacts=st.lists(artifacts(), max_size=2), volume_mounts=mounts,
        vault=optional(st.builds(Vault, policies=st.lists(names, max_size=2),
                                 role=optional(names), env=optional(st.booleans()),
                                 change_mode=optional(st.sampled_from(["noop", "restart"])))),
        restart=optional(restart_policies()),
        logs=optional(st.builds(LogConfig, max_files=optional(st.integers(1, 5)),
                                # below 20: with Nomad's default of 10 files it stays under
                                # the smallest disk drawn (200 MB; LogConfig.Validate,
                                # nomad/structs/structs.go:7865)
                                max_file_size=optional(st.integers(1, 19)),
                                disabled=optional(st.booleans()))),
        kill_timeout=optional(durations), kill_signal=optional(st.sampled_from(["SIGINT"])),
        shutdown_delay=optional(durations), meta=string_maps,
        constraints=st.lists(constraints().filter(
            lambda c: c.operator not in ("distinct_hosts", "distinct_property")), max_size=2),
        affinities=st.just(()) if system else st.lists(affinities(), max_size=1),
        identity=optional(identity), identities=identities,
    )


# --- groups ------------------------------------------------------------------------------------


def ports() -> st.SearchStrategy[list[Port]]:
    """Valid port lists: unique labels, distinct static ports, dynamic ones with `to`."""
    labels = st.lists(st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_lowercase),
                                st.text(string.ascii_lowercase + "_", max_size=6)),
                      unique=True, max_size=3)

    def build(ls: tuple[str, ...]) -> st.SearchStrategy[list[Port]]:
        statics = st.lists(st.integers(1, 65535), min_size=len(ls), max_size=len(ls), unique=True)
        return st.builds(lambda values, flags, tos, hns: [
            Port(label, static=v if f else None, to=t, host_network=h)
            for label, v, f, t, h in zip(ls, values, flags, tos, hns, strict=True)],
            statics, st.lists(st.booleans(), min_size=len(ls), max_size=len(ls)),
            st.lists(optional(st.integers(-1, 65535)), min_size=len(ls), max_size=len(ls)),
            st.lists(optional(st.just("public")), min_size=len(ls), max_size=len(ls)))

    return labels.flatmap(build)


def networks(port_list: list[Port]) -> st.SearchStrategy[Network]:
    """A group network holding the given ports."""
    return st.builds(
        Network, mode=optional(st.sampled_from(["host", "bridge", "none", "cni/mesh"])),
        ports=st.just(port_list), hostname=optional(names),
        dns=optional(st.builds(DNSConfig, servers=st.lists(st.just("1.1.1.1"), max_size=1),
                               searches=st.lists(names, max_size=1),
                               options=st.lists(st.just("ndots:2"), max_size=1))))


@st.composite
def groups(draw: st.DrawFn, name: st.SearchStrategy[str] = names,
           job_type: str = "service") -> Group:
    """A valid group whose services, checks and mounts refer to its own ports, tasks, volumes."""
    network_list = draw(st.just([]) | ports().flatmap(networks).map(lambda n: [n]))
    labels = tuple(p.label for n in network_list for p in n.ports)
    provider = draw(st.sampled_from(["consul", "nomad"]))
    many = job_type in ("service", "batch")
    count = draw(optional(st.integers(0, 10 if many else 1)))
    volumes = draw(st.lists(st.builds(VolumeRequest, name=names, type=st.just("host"),
                                      source=names, read_only=optional(st.booleans())),
                            max_size=2, unique_by=lambda v: v.name)
                   | st.lists(st.builds(
                       VolumeRequest, name=st.just("csi"), type=st.just("csi"), source=names,
                       access_mode=st.just("multi-node-multi-writer"),
                       attachment_mode=st.just("file-system"),
                       mount_options=optional(st.builds(
                           CSIMountOptions, fs_type=st.just("ext4"),
                           mount_flags=st.lists(st.just("noatime"), max_size=1)))), max_size=1))
    system = job_type == "system"
    main = draw(tasks(volumes=tuple(v.name for v in volumes), ports=labels, provider=provider,
                      system=system))
    others = draw(st.lists(tasks(volumes=tuple(v.name for v in volumes), ports=labels,
                                 provider=provider, main=False, system=system), max_size=1))
    task_list = [main, *(t for t in others if t.name != main.name)]
    task_names = tuple(t.name for t in task_list)
    update = draw(optional(update_strategies())) if job_type in ("service", "system") else None
    scaling = None
    if job_type != "system" and draw(st.booleans()):
        low = draw(st.integers(0, 2))
        high = draw(st.integers(max(low, 2), 10))
        count = draw(st.integers(low, high)) if count is not None else None
        scaling = Scaling(min=low, max=high, enabled=draw(optional(st.booleans())),
                          policy=draw(st.dictionaries(identifiers, config_values(1), max_size=2)))
    dynamic = tuple(p.label for n in network_list for p in n.ports if not p.static)
    service_list = draw(st.lists(services(labels, task_names, provider, True, dynamic),
                                 max_size=2, unique_by=lambda s: (s.name, s.port)))
    sidecar = next((s.connect for s in service_list if s.connect is not None), None)
    if sidecar is not None:
        # nomad/job_endpoint_hook_connect.go:549 groupConnectValidate: one sidecar (a transparent
        # proxy allows no other connect block), its one network in bridge or CNI mode, no DNS
        # beside a transparent proxy that keeps it
        service_list = [s if s.connect is None or s.connect is sidecar
                        else attrs.evolve(s, connect=None) for s in service_list]
        proxy = sidecar.sidecar_service.proxy if sidecar.sidecar_service is not None else None
        tproxy = proxy is not None and proxy.transparent_proxy is not None
        network_list = [attrs.evolve(
            network_list[0], mode=draw(st.sampled_from(["bridge", "cni/mesh"])),
            dns=None if tproxy else network_list[0].dns)]
    return draw(st.builds(
        Group, name=name, count=st.just(count),
        tasks=st.just(task_list),
        networks=st.just(network_list),
        services=st.just(service_list),
        volumes=st.just(volumes),
        restart=optional(restart_policies()),
        reschedule=optional(reschedule_policies()) if job_type not in ("system", "sysbatch")
        else st.none(),
        update=st.just(update),
        migrate=optional(migrate_strategies()) if job_type == "service" else st.none(),
        ephemeral_disk=optional(st.builds(EphemeralDisk, size=optional(st.integers(200, 1000)),
                                          sticky=optional(st.booleans()),
                                          migrate=optional(st.booleans()))),
        scaling=st.just(scaling),
        shutdown_delay=optional(durations),
        constraints=st.lists(constraints(), max_size=2),
        affinities=st.just(()) if system else st.lists(affinities(), max_size=1),
        spreads=st.just(()) if system else st.lists(spreads(), max_size=1),
        meta=string_maps,
        consul=optional(st.builds(Consul, namespace=names)),
        disconnect=optional(st.builds(Disconnect, lost_after=seconds, replace=st.booleans())),
    ))


# --- jobs --------------------------------------------------------------------------------------


@st.composite
def jobs(draw: st.DrawFn, job_type: st.SearchStrategy[str | None] | None = None) -> Job:
    """A valid job of any type: service, batch (periodic or parameterized), system, sysbatch."""
    kind = draw(job_type if job_type is not None
                else st.sampled_from([None, "service", "batch", "system", "sysbatch"]))
    effective = kind or "service"
    batchy = effective in ("batch", "sysbatch")
    system = effective == "system"
    group_list = draw(st.lists(groups(job_type=effective), min_size=1, max_size=2,
                               unique_by=lambda g: g.name))
    return draw(st.builds(
        Job, id=names, name=optional(names), type=st.just(kind),
        region=optional(names), namespace=optional(names),
        datacenters=st.lists(names, max_size=3), node_pool=optional(names),
        priority=optional(st.integers(1, 100)), all_at_once=optional(st.booleans()),
        meta=string_maps, constraints=st.lists(constraints(), max_size=2),
        affinities=st.just(()) if system else st.lists(affinities(), max_size=2),
        spreads=st.just(()) if system else st.lists(spreads(), max_size=1),
        update=optional(update_strategies()) if effective in ("service", "system")
        else st.none(),
        migrate=optional(migrate_strategies()) if effective == "service" else st.none(),
        reschedule=optional(reschedule_policies()) if effective not in ("system", "sysbatch")
        else st.none(),
        periodic=optional(st.builds(Periodic, crons=st.lists(st.just("*/5 * * * *"), min_size=1,
                                                             max_size=2),
                                    prohibit_overlap=optional(st.booleans()),
                                    time_zone=optional(st.just("Europe/Paris")))) if batchy
        else st.none(),
        parameterized=optional(st.builds(Parameterized, payload=optional(st.sampled_from(
            ["optional", "required", "forbidden"])), meta_required=st.lists(
            st.just("a"), max_size=1), meta_optional=st.lists(st.just("b"), max_size=1)))
        if batchy else st.none(),
        groups=st.just(group_list),
        ui=optional(st.builds(JobUI, description=nonempty, links=st.lists(
            st.builds(JobUILink, label=names, url=names), max_size=2))),
        consul_namespace=optional(names),
    ))


# --- any value of any model class, from the field table (not meant to be valid) ---------------

_go_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
"""Text Go's JSON carries unchanged (no lone surrogates, which Go replaces with U+FFFD)."""
_float64_ints = st.integers(-(2**53), 2**53)
_json_scalars = _go_text | _float64_ints | st.booleans() | st.none() | st.floats(
    allow_nan=False, allow_infinity=False, width=64)
free_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(_go_text, inner, max_size=3), max_leaves=8)
"""Free-form JSON as Nomad keeps it: numbers it can hold in a float64."""


def _kind_strategy(s: Any) -> st.SearchStrategy[Any]:
    from nomadmesh.model._base import INT_RANGES, Kind

    kind = s.kind
    if kind is Kind.STR:
        return _go_text
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.INT:
        low, high = INT_RANGES[s.go_int]
        return st.integers(low, high)
    if kind is Kind.DURATION:
        return st.integers(0, 2**63 - 1)
    if kind is Kind.STRS:
        return st.lists(_go_text, max_size=3)
    if kind is Kind.INTS:
        low, high = INT_RANGES[s.go_int]
        return st.lists(st.integers(low, high), max_size=3)
    if kind is Kind.MAP:
        return st.dictionaries(_go_text, _go_text, max_size=3)
    if kind is Kind.MAP_STRS:
        return st.dictionaries(_go_text, st.lists(_go_text, max_size=2), max_size=2)
    if kind is Kind.ANY:
        return st.dictionaries(_go_text, free_json, max_size=3)
    block = st.deferred(lambda: any_of(s.block))
    if kind is Kind.BLOCK:
        return block
    if kind is Kind.BLOCKS:
        return st.lists(block, max_size=2)
    return st.lists(block, max_size=2).map(lambda items: {x.name: x for x in items})


@cache
def any_of(cls: type) -> st.SearchStrategy[Any]:
    """Any object of a model class: every field drawn by its kind, each set about half the time."""
    from nomadmesh.model._base import specs

    args = []
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for s in specs(cls):
        if s.label:
            args.append(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8))
        else:
            fields[s.name] = optional(_kind_strategy(s))
    return st.builds(lambda *a, **kw: cls(*a, **{k: v for k, v in kw.items() if v is not None}),
                     *args, **fields)
