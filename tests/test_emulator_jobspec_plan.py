"""Update kinds and plan diffs against Nomad's source and its tests.

Cases reproduce scheduler/util_test.go (TestTasksUpdated), nomad/structs/diff_test.go (TestJobDiff,
TestTaskGroupDiff) and scheduler/annotate.go, at aa026cc.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from nomadmesh.testing.nomad_api import (
    NomadApiError,
    ServerConfig,
    admit,
    check_register,
    decode_register,
    job_diff,
    plan_diff,
    tasks_updated,
    update_kind,
)
from nomadmesh.testing.nomad_api.convert import new
from nomadmesh.testing.nomad_api.diff import group_diff, service_diffs
from tests.emulator_support import GOLDEN, mutate

Obj = dict[str, Any]
CASES: list[Obj] = json.loads((GOLDEN / "register.json").read_text())


def field(kind: str, name: str, old: str, new_value: str) -> Obj:
    return {"Type": kind, "Name": name, "Old": old, "New": new_value, "Annotations": None}


def stored(index: int = 1, **changes: Any) -> Obj:
    """An admitted job (structs JSON) with a service, a network port, meta and a template."""
    job = {"ID": "web", "Meta": {"owner": "team"}, "TaskGroups": [{
        "Name": "api", "Count": 2, "Meta": {"tier": "front"},
        "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
        "Services": [{"Name": "web", "PortLabel": "http"}],
        "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": "busybox:1.36"},
                   "Env": {"A": "1"}, "Meta": {"role": "app"}, "KillTimeout": 5 * 10**9,
                   "Templates": [{"EmbeddedTmpl": "x", "DestPath": "local/x"}]}]}]}
    out = admit(check_register(decode_register(json.dumps({"Job": job}).encode()), None)).job
    out["JobModifyIndex"] = index
    for path, value in changes.items():
        target = out
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[keys[-1]] = value
    return out


def task(job: Obj) -> Obj:
    return job["TaskGroups"][0]["Tasks"][0]  # type: ignore[no-any-return]


def group(job: Obj) -> Obj:
    return job["TaskGroups"][0]  # type: ignore[no-any-return]


# --- scheduler/util_test.go TestTasksUpdated -------------------------------------------------

def _config(j: Obj) -> None:
    task(j)["Config"]["command"] = "/bin/other"


def _env(j: Obj) -> None:
    task(j)["Env"]["NEW_ENV"] = "NEW_VALUE"


def _task_meta(j: Obj) -> None:
    task(j)["Meta"]["baz"] = "boom"


def _group_meta(j: Obj) -> None:
    group(j)["Meta"]["j17_test"] = "roll_baby_roll"


def _job_meta(j: Obj) -> None:
    j["Meta"]["j18_test"] = "roll_baby_roll"


def _cpu(j: Obj) -> None:
    task(j)["Resources"]["CPU"] = 1337


def _port_label(j: Obj) -> None:
    group(j)["Networks"][0]["DynamicPorts"][0]["Label"] = "foobar"


def _sticky(j: Obj) -> None:
    group(j)["EphemeralDisk"]["Sticky"] = True


def _network_mode(j: Obj) -> None:
    group(j)["Networks"][0]["Mode"] = "bridge"


def _template(j: Obj) -> None:
    task(j)["Templates"][0]["ChangeMode"] = "noop"


def _user(j: Obj) -> None:
    task(j)["User"] = "foo"


@pytest.mark.parametrize(("change", "label"), [
    (_config, "task config"), (_env, "task env"), (_task_meta, "task meta"),
    (_group_meta, "task meta"), (_job_meta, "task meta"), (_cpu, "task cpu"),
    (_port_label, "network port map"), (_sticky, "ephemeral disk"),
    (_network_mode, "network mode"), (_template, "task templates"), (_user, "task user"),
])
def test_changes_tasks_updated_reports_as_destructive(change: Callable[[Obj], None],
                                                      label: str) -> None:
    old = stored()
    changed = copy.deepcopy(old)
    change(changed)
    changed["JobModifyIndex"] = 2
    assert tasks_updated(old, changed, "api") == label
    assert update_kind(old, changed, "api") == "destructive"


@pytest.mark.parametrize("change", [
    {"TaskGroups__0__Count": 5},
    {"TaskGroups__0__Tasks__0__KillTimeout": 30 * 10**9},
    {"TaskGroups__0__Services": None},
    {"TaskGroups__0__Constraints": [new("Constraint", LTarget="${node.class}", RTarget="x",
                                        Operand="=")]},
])
def test_count_timeouts_services_and_constraints_update_in_place(change: Obj) -> None:
    old = stored()
    assert tasks_updated(old, stored(2, **change), "api") is None
    assert update_kind(old, stored(2, **change), "api") == "inplace"


def test_same_job_modify_index_is_ignored() -> None:
    # scheduler/util.go:807 genericAllocUpdateFn
    assert update_kind(stored(), stored(), "api") == "ignore"


def test_dynamic_port_values_do_not_count() -> None:
    # scheduler/util.go:505 networkPortMap sets dynamic values to -1
    old = stored()
    changed = copy.deepcopy(old)
    group(changed)["Networks"][0]["DynamicPorts"][0]["Value"] = 25000
    assert tasks_updated(old, changed, "api") is None


# --- nomad/structs/diff_test.go ------------------------------------------------------------------

@pytest.mark.parametrize(("old_dcs", "new_dcs", "contextual", "expected"), [
    # TestJobDiff "Datacenter diff both added and removed"
    (["foo", "bar"], ["baz", "bar"], False,
     {"Type": "Edited", "Name": "Datacenters", "Objects": None, "Fields": [
         field("Added", "Datacenters", "", "baz"), field("Deleted", "Datacenters", "foo", "")]}),
    # "Datacenter diff just added"
    (["foo", "bar"], ["foo", "bar", "baz"], False,
     {"Type": "Added", "Name": "Datacenters", "Objects": None,
      "Fields": [field("Added", "Datacenters", "", "baz")]}),
    # "Datacenter contextual"
    (["foo", "bar"], ["foo", "bar", "baz"], True,
     {"Type": "Added", "Name": "Datacenters", "Objects": None, "Fields": [
         field("Added", "Datacenters", "", "baz"), field("None", "Datacenters", "bar", "bar"),
         field("None", "Datacenters", "foo", "foo")]}),
])
def test_datacenter_diffs(old_dcs: list[str], new_dcs: list[str], contextual: bool,
                          expected: Obj) -> None:
    diff = job_diff(new("Job", Datacenters=old_dcs), new("Job", Datacenters=new_dcs),
                    contextual)
    assert (diff["Type"], diff["Objects"]) == ("Edited", [expected])


def test_unchanged_datacenters_contextual_is_no_diff() -> None:
    # TestJobDiff "Datacenter contextual no change"
    diff = job_diff(new("Job", Datacenters=["foo", "bar"]), new("Job", Datacenters=["foo", "bar"]),
                    True)
    assert (diff["Type"], diff["Objects"]) == ("None", None)


def test_restart_policy_edited_with_context() -> None:
    # TestTaskGroupDiff "RestartPolicy edited with context"
    old = new("TaskGroup", RestartPolicy=new("RestartPolicy", Attempts=1, Interval=10**9,
                                              Delay=10**9, Mode="fail"))
    changed = new("TaskGroup", RestartPolicy=new("RestartPolicy", Attempts=2,
                                                  Interval=2 * 10**9, Delay=10**9, Mode="fail",
                                                  RenderTemplates=True))
    diff = group_diff(old, changed, True)
    assert diff["Type"] == "Edited"
    assert diff["Objects"] == [{"Type": "Edited", "Name": "RestartPolicy", "Objects": None,
                                "Fields": [
                                    field("Edited", "Attempts", "1", "2"),
                                    field("None", "Delay", "1000000000", "1000000000"),
                                    field("Edited", "Interval", "1000000000", "2000000000"),
                                    field("None", "Mode", "fail", "fail"),
                                    field("Edited", "RenderTemplates", "false", "true")]}]


def test_new_job_diff_has_no_id_no_empty_fields_and_no_job_update() -> None:
    # nomad/structs/diff.go:79 filter, :3191 fieldDiff, :3276 stringSetDiff
    diff = plan_diff(None, stored(), {"api": {"Place": 2}})
    names = [f["Name"] for f in diff["Fields"]]
    assert "ID" not in names and "ParentID" not in names and "Update" not in names
    assert diff["Objects"] == [{"Type": "Added", "Name": "Datacenters", "Objects": None,
                                "Fields": [field("Added", "Datacenters", "", "*")]}]
    api = diff["TaskGroups"][0]
    assert api["Updates"] == {"create": 2}
    assert api["Tasks"][0]["Annotations"] == ["forces create"]
    count = next(f for f in api["Fields"] if f["Name"] == "Count")
    assert count["Annotations"] == ["forces create"]


def test_count_change_plan_is_annotated_as_nomad_annotates() -> None:
    # scheduler/annotate.go annotateCountChange; the task itself has no diff
    diff = plan_diff(stored(), stored(2, TaskGroups__0__Count=3),
                     {"api": {"Place": 1, "Ignore": 2}})
    api = diff["TaskGroups"][0]
    assert api["Fields"] == [{**field("Edited", "Count", "2", "3"),
                              "Annotations": ["forces create"]}]
    assert api["Updates"] == {"ignore": 2, "create": 1}
    assert api["Tasks"][0] == {"Type": "None", "Name": "app", "Fields": None, "Objects": None,
                               "Annotations": None}


def test_config_change_is_a_contextual_config_object_forcing_destroy() -> None:
    changed = stored(2)
    task(changed)["Config"]["image"] = "busybox:1.37"
    app = plan_diff(stored(), changed, {})["TaskGroups"][0]["Tasks"][0]
    assert app["Objects"] == [{"Type": "Edited", "Name": "Config", "Objects": None,
                               "Fields": [field("Edited", "image", "busybox:1.36",
                                                "busybox:1.37")]}]
    assert app["Annotations"] == ["forces create/destroy update"]


def test_kill_timeout_change_is_in_place() -> None:
    # scheduler/annotate.go annotateTask: KillTimeout alone is not destructive
    app = plan_diff(stored(), stored(2, TaskGroups__0__Tasks__0__KillTimeout=30 * 10**9),
                    {})["TaskGroups"][0]["Tasks"][0]
    assert app["Fields"] == [field("Edited", "KillTimeout", "5000000000", "30000000000")]
    assert app["Annotations"] == ["forces in-place update"]


def test_service_edit_lists_unchanged_fields_as_none() -> None:
    changed = stored(2)
    group(changed)["Services"][0]["Tags"] = ["v2"]
    service = plan_diff(stored(), changed, {})["TaskGroups"][0]["Objects"][0]
    assert (service["Name"], service["Type"]) == ("Service", "Edited")
    fields = {f["Name"]: f for f in service["Fields"]}
    assert fields["PortLabel"] == field("None", "PortLabel", "http", "http")
    assert service["Objects"] == [{"Type": "Added", "Name": "Tags", "Objects": None,
                                   "Fields": [field("Added", "Tags", "", "v2")]}]


def test_job_meta_change_shows_as_a_job_field() -> None:
    changed = stored(2)
    changed["Meta"]["nomadmesh.digest"] = "abc"
    diff = plan_diff(stored(), changed, {"api": {"DestructiveUpdate": 2}})
    assert diff["Fields"] == [field("Added", "Meta[nomadmesh.digest]", "", "abc")]
    assert diff["TaskGroups"][0]["Updates"] == {"create/destroy update": 2}


# the examples place on a "web" node pool; a server knows the pools of its nodes
EXAMPLES_SERVER = ServerConfig(node_pools=("all", "default", "web"), vault_clusters=("default",))


def _admitted(body: bytes) -> Obj | None:
    try:
        return admit(check_register(decode_register(body), None), config=EXAMPLES_SERVER).job
    except NomadApiError:
        return None


def test_mutated_examples_diff_and_classify_without_errors() -> None:
    # every answer is Nomad-shaped: a refusal is a NomadApiError, an admitted job diffs
    # against itself as unchanged and against its mutation with Nomad's update kinds
    rng = random.Random(16)
    bodies = [c["body"].encode() for c in CASES if c["name"].startswith("examples/")
              and "mutation" not in c["name"]]
    kinds: set[str] = set()
    for body in bodies:
        old = _admitted(body)
        assert old is not None, body[:200]
        old["JobModifyIndex"] = 1
        assert job_diff(old, copy.deepcopy(old), True)["Type"] == "None"
        for _ in range(5):
            new = _admitted(mutate(json.loads(body), rng))
            if new is None:
                continue
            new["JobModifyIndex"] = 2
            plan_diff(old, new, {})
            kinds |= {update_kind(old, new, g["Name"]) for g in new["TaskGroups"] or ()
                      if any(o["Name"] == g["Name"] for o in old["TaskGroups"] or ())}
    assert kinds <= {"inplace", "destructive"} and kinds


def test_services_diff_detect_changes() -> None:
    # nomad/structs/diff_test.go:9663 TestServicesDiff "Detect changes"
    old = new("Service", Name="webapp", PortLabel="http", AddressMode="host",
              Address="a.example.com", EnableTagOverride=True, Tags=["prod"],
              CanaryTags=["canary"], Weights=new("ServiceWeights", Passing=1, Warning=1))
    changed = new("Service", Name="webapp-2", PortLabel="https", AddressMode="alloc",
                  Address="b.example.com", EnableTagOverride=False, Tags=["prod", "dev"],
                  CanaryTags=["qa"], Weights=new("ServiceWeights", Passing=5, Warning=1))
    assert service_diffs([old], [changed], True) == [{
        "Type": "Edited", "Name": "Service", "Fields": [
            field("Edited", "Address", "a.example.com", "b.example.com"),
            field("Edited", "AddressMode", "host", "alloc"),
            field("None", "Cluster", "", ""),
            field("Edited", "EnableTagOverride", "true", "false"),
            field("None", "Kind", "", ""),
            field("Edited", "Name", "webapp", "webapp-2"),
            field("None", "Namespace", "", ""),
            field("None", "OnUpdate", "", ""),
            field("Edited", "PortLabel", "http", "https"),
            field("None", "Provider", "", ""),
            field("None", "TaskName", "", "")],
        "Objects": [
            {"Type": "Edited", "Name": "CanaryTags", "Objects": None, "Fields": [
                field("Added", "CanaryTags", "", "qa"),
                field("Deleted", "CanaryTags", "canary", "")]},
            {"Type": "Added", "Name": "Tags", "Objects": None, "Fields": [
                field("Added", "Tags", "", "dev"), field("None", "Tags", "prod", "prod")]},
            {"Type": "Edited", "Name": "Weights", "Objects": None, "Fields": [
                field("Edited", "Passing", "1", "5"), field("None", "Warning", "1", "1")]}]}]


def test_ingress_listener_port_change_is_a_deleted_and_an_added_listener() -> None:
    # nomad/structs/diff.go:1402 connectGatewayIngressListenersDiff keys listeners by protocol/port
    def gateway(port: int) -> Obj:
        ingress = {"Listeners": [{"Port": port, "Protocol": "tcp",
                                  "Services": [{"Name": "api"}]}]}
        job = {"ID": "gw", "TaskGroups": [{"Name": "g", "Networks": [{"Mode": "bridge"}],
                                           "Services": [{"Name": "ingress", "PortLabel": "8080",
                                                         "Connect": {"Gateway": {
                                                             "Ingress": ingress}}}]}]}
        return admit(check_register(decode_register(json.dumps({"Job": job}).encode()),
                                    None)).job

    service = job_diff(gateway(8080), gateway(9090), True)["TaskGroups"][0]["Objects"][0]
    gw = service["Objects"][0]["Objects"][0]
    assert (service["Name"], gw["Name"]) == ("Service", "Gateway")
    ingress = next(o for o in gw["Objects"] if o["Name"] == "Ingress")
    assert [(o["Name"], o["Type"]) for o in ingress["Objects"]] == [
        ("Listener", "Added"), ("Listener", "Deleted")]
