"""`POST /v1/job/<id>/plan`: a real Diff, DesiredTGUpdates, FailedTGAllocs and JobModifyIndex."""

from __future__ import annotations

from typing import Any

import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import service_job


def _plan(nomad_api: Any, job: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = nomad_api.job.plan_job(job["ID"], {"Job": job}, diff=True)
    return result


def _ready(nomad: NomadEmulator, job: dict[str, Any]) -> None:
    nomad.register(job)
    assert nomad.wait_for(lambda: nomad.deployment_status(job["ID"]) == "successful")


def test_plan_of_a_new_job_is_an_added_diff_placing_count(nomad_api: Any) -> None:
    plan = _plan(nomad_api, service_job("web", count=2))
    assert plan["Diff"]["Type"] == "Added"
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["Place"] == 2
    assert plan["JobModifyIndex"] == 0


def test_plan_of_an_unchanged_job_is_none_and_ignores(nomad: NomadEmulator,
                                                      nomad_api: Any) -> None:
    _ready(nomad, service_job("web", count=2))
    plan = _plan(nomad_api, service_job("web", count=2))
    assert plan["Diff"]["Type"] == "None"
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["Ignore"] == 2


def test_plan_job_modify_index_allows_a_lost_update_safe_submit(nomad: NomadEmulator,
                                                               nomad_api: Any) -> None:
    _ready(nomad, service_job("web"))
    stored_index = nomad_api.job.get_job("web")["JobModifyIndex"]
    plan = _plan(nomad_api, service_job("web", image="nginx:2"))
    result = requests.post(f"{nomad.url}/v1/jobs", timeout=5, json={
        "Job": service_job("web", image="nginx:2"), "EnforceIndex": True,
        "JobModifyIndex": plan["JobModifyIndex"]})
    assert (plan["JobModifyIndex"], result.status_code) == (stored_index, 200)


def test_image_change_is_an_edited_config_field_forcing_destructive_update(
        nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web"))
    plan = _plan(nomad_api, service_job("web", image="nginx:2"))
    [group] = plan["Diff"]["TaskGroups"]
    [task] = group["Tasks"]
    [config] = [o for o in task["Objects"] if o["Name"] == "Config"]
    # The diff is contextual (diff.go): an edited object lists its unchanged fields as None.
    assert config["Fields"] == [
        {"Type": "Edited", "Name": "image", "Old": "nginx:1.27", "New": "nginx:2",
         "Annotations": None},
        {"Type": "None", "Name": "ports[0]", "Old": "http", "New": "http", "Annotations": None}]
    assert task["Annotations"] == ["forces create/destroy update"]
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["DestructiveUpdate"] == 1
    assert group["Updates"] == {"create/destroy update": 1}


def test_count_change_is_a_group_field(nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web", count=1))
    plan = _plan(nomad_api, service_job("web", count=3))
    [group] = plan["Diff"]["TaskGroups"]
    # scheduler/annotate.go annotates a count increase with "forces create".
    assert {"Type": "Edited", "Name": "Count", "Old": "1", "New": "3",
            "Annotations": ["forces create"]} in group["Fields"]
    updates = plan["Annotations"]["DesiredTGUpdates"]["app"]
    # A count-only change updates the running allocation in place (util.go tasksUpdated).
    assert (updates["Place"], updates["InPlaceUpdate"], updates["DestructiveUpdate"]) == (2, 1, 0)


def test_scale_down_plans_stops(nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web", count=3))
    plan = _plan(nomad_api, service_job("web", count=1))
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["Stop"] == 2


def test_rolling_update_plans_one_batch(nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web", count=3))
    plan = _plan(nomad_api, service_job("web", count=3, image="nginx:2"))
    updates = plan["Annotations"]["DesiredTGUpdates"]["app"]
    assert (updates["DestructiveUpdate"], updates["Ignore"]) == (1, 2)


def test_canary_update_plans_canaries(nomad: NomadEmulator, nomad_api: Any) -> None:
    update = {"Canary": 1}
    _ready(nomad, service_job("web", count=2, update=update))
    plan = _plan(nomad_api, service_job("web", count=2, image="v2", update=update))
    updates = plan["Annotations"]["DesiredTGUpdates"]["app"]
    assert (updates["Canary"], updates["Ignore"]) == (1, 2)


def test_service_tag_change_is_an_in_place_update(nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web", service="web"))
    job = service_job("web", service="web")
    job["TaskGroups"][0]["Services"][0]["Tags"] = ["v2"]
    plan = _plan(nomad_api, job)
    [group] = plan["Diff"]["TaskGroups"]
    [service] = group["Objects"]
    [tags] = service["Objects"]
    assert service["Name"] == "Service"
    assert {(f["Type"], f["New"] or f["Old"]) for f in tags["Fields"]} == {
        ("Added", "v2"), ("Deleted", "v1")}
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["InPlaceUpdate"] == 1


def test_meta_change_shows_as_keyed_fields(nomad: NomadEmulator, nomad_api: Any) -> None:
    _ready(nomad, service_job("web", meta={"a": "1"}))
    plan = _plan(nomad_api, service_job("web", meta={"a": "2", "b": "x"}))
    assert [(f["Type"], f["Name"]) for f in plan["Diff"]["Fields"]] == [
        ("Edited", "Meta[a]"), ("Added", "Meta[b]")]


def test_plan_reports_failed_tg_allocs_without_placing(nomad: NomadEmulator,
                                                       nomad_api: Any) -> None:
    plan = _plan(nomad_api, service_job("big", memory_mb=100_000))
    assert plan["FailedTGAllocs"]["app"]["DimensionExhausted"] == {"memory": 3}
    assert nomad.snapshot().count("allocs") == 0


def test_plan_without_diff_has_null_diff(nomad_api: Any) -> None:
    plan = nomad_api.job.plan_job("web", {"Job": service_job("web")}, diff=False)
    assert plan["Diff"] is None


def test_plan_does_not_register_the_job(nomad_url: str, nomad_api: Any) -> None:
    _plan(nomad_api, service_job("web"))
    assert requests.get(f"{nomad_url}/v1/job/web", timeout=5).status_code == 404


def test_versions_with_diffs_describe_each_change(nomad_api: Any) -> None:
    nomad_api.job.register_job("web", {"Job": service_job("web")})
    nomad_api.job.register_job("web", {"Job": service_job("web", image="nginx:2")})
    result = nomad_api.job.request("web", "versions", params={"diffs": "true"},
                                   method="get").json()
    assert [d["Type"] for d in result["Diffs"]] == ["Edited"]
