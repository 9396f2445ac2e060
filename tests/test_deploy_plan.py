"""Plans: Nomad's JobPlanResponse read into a Plan and rendered like `nomad job plan`."""

from __future__ import annotations

from nomadmesh.deploy import Plan

# Shaped as Nomad returns `POST /v1/job/web/plan` with Diff=true for a changed image and count.
RESPONSE = {
    "JobModifyIndex": 42,
    "Annotations": {"DesiredTGUpdates": {
        "api": {"Place": 1, "Stop": 0, "InPlaceUpdate": 0, "DestructiveUpdate": 2, "Canary": 0,
                "Ignore": 0, "Migrate": 0, "Preemptions": 0}}},
    "FailedTGAllocs": None,
    "Warnings": "",
    "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
    "Diff": {
        "Type": "Edited", "ID": "web", "Fields": None, "Objects": None,
        "TaskGroups": [{
            "Type": "Edited", "Name": "api",
            "Fields": [{"Type": "Edited", "Name": "Count", "Old": "2", "New": "3",
                        "Annotations": ["forces create"]}],
            "Objects": None,
            "Updates": {"create": 1, "create/destroy update": 2},
            "Tasks": [{
                "Type": "Edited", "Name": "app", "Annotations": ["forces create/destroy update"],
                "Fields": None,
                "Objects": [{"Type": "Edited", "Name": "Config", "Objects": None, "Fields": [
                    {"Type": "Edited", "Name": "image", "Old": "nginx:1", "New": "nginx:2",
                     "Annotations": None}]}],
            }],
        }],
    },
}

UNCHANGED = {
    "JobModifyIndex": 42,
    "Annotations": {"DesiredTGUpdates": {"api": {"Ignore": 2}}},
    "Diff": {"Type": "None", "ID": "web", "TaskGroups": [
        {"Type": "None", "Name": "api", "Updates": {"ignore": 2}, "Tasks": []}]},
}


def test_plan_carries_the_job_modify_index_for_enforce_index() -> None:
    assert Plan.from_api("web", RESPONSE).job_modify_index == 42


def test_per_group_counts_come_from_desired_tg_updates() -> None:
    group = Plan.from_api("web", RESPONSE).group("api")
    assert group is not None
    assert (group.place, group.destructive_update, group.summary()) == (
        1, 2, "1 place, 2 destructive update")


def test_rendered_diff_follows_nomads_layout_with_markers_and_annotations() -> None:
    text = [line for _, line in Plan.from_api("web", RESPONSE).lines()]
    assert text == [
        '+/- Job: "web"',
        '  +/- Task Group: "api" (1 create, 2 create/destroy update)',
        '    +/- Count: "2" => "3" (forces create)',
        '    +/- Task: "app" (forces create/destroy update)',
        "      +/- Config {",
        '        +/- image: "nginx:1" => "nginx:2"',
        "          }",
    ]


def test_changed_job_reports_changes() -> None:
    assert Plan.from_api("web", RESPONSE).changes


def test_identical_job_reports_no_changes() -> None:
    assert not Plan.from_api("web", UNCHANGED).changes


def test_failed_placements_appear_in_the_rendered_plan() -> None:
    response = {**UNCHANGED, "FailedTGAllocs": {"api": {
        "NodesEvaluated": 1, "NodesExhausted": 1, "DimensionExhausted": {"cpu": 1}}}}
    text = Plan.from_api("web", response).render()
    assert "- WARNING: Failed to place all allocations." in text
    assert "group 'api': could not place an allocation (1 node evaluated): cpu exhausted on 1 node" \
        in text


def test_html_plan_colors_edits_and_tabulates_groups() -> None:
    html = Plan.from_api("web", RESPONSE)._repr_html_()
    assert "color:#9a6700" in html
    assert "<td>api</td><td>1</td>" in html
