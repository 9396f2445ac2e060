"""Result records: ownership read from meta, readable text, and HTML for notebooks."""

from __future__ import annotations

from nomadmesh.deploy import DeployEvent, DeployResult, GroupProgress, Owner
from nomadmesh.deploy.diagnose import Diagnosis, Finding


def test_nomadmesh_meta_names_the_tool_and_the_pack_deployment() -> None:
    owner = Owner.from_meta({"nomadmesh.tool": "nomadmesh", "nomadmesh.pack": "web",
                             "nomadmesh.deployment": "blue"})
    assert str(owner) == "nomadmesh from pack web (deployment blue)"
    assert str(Owner.from_meta({"nomadmesh.tool": "nomadmesh"})) == "nomadmesh"


def test_nomad_pack_meta_is_recognised_as_another_tool() -> None:
    assert Owner.from_meta({"pack.name": "web", "pack.version": "1.2"}).tool == "nomad-pack"


def test_job_without_ownership_meta_has_no_owner() -> None:
    assert Owner.from_meta({"team": "platform"}).tool is None


def test_group_progress_from_a_deployment_state_counts_canaries() -> None:
    progress = GroupProgress.from_deployment_state("api", {
        "DesiredTotal": 4, "PlacedAllocs": 2, "HealthyAllocs": 1, "DesiredCanaries": 1,
        "PlacedCanaries": ["c1"], "Promoted": False})
    assert str(progress) == "api: 1/4 healthy, 2 placed, canaries 1/1"


def test_event_text_names_group_task_and_short_alloc_id() -> None:
    event = DeployEvent("task", "Started", group="api", task="app", alloc_id="0123456789abcdef")
    assert str(event) == "[task] group 'api' task 'app' (alloc 01234567): Started"


def test_healthy_result_html_shows_a_progress_row_per_group() -> None:
    result = DeployResult("web", "healthy", job_version=3,
                          groups=(GroupProgress("api", desired=2, placed=2, healthy=2),))
    html = result._repr_html_()
    assert "color:#1a7f37" in html
    assert "<td>api</td>" in html
    assert "width:100%" in html


def test_failed_result_html_includes_the_diagnosis_table() -> None:
    diagnosis = Diagnosis((Finding("task", "web", "exited with code 3", group="api",
                                   task="app", alloc_id="abc"),))
    html = DeployResult("web", "failed", diagnosis=diagnosis)._repr_html_()
    assert "color:#b00020" in html
    assert "exited with code 3" in html


def test_failed_result_text_lists_each_finding() -> None:
    diagnosis = Diagnosis((Finding("placement", "web", "memory exhausted on 3 nodes",
                                   group="api"),))
    text = str(DeployResult("web", "failed", diagnosis=diagnosis))
    assert text.splitlines() == ["job 'web': failed",
                                 "  * group 'api': memory exhausted on 3 nodes"]
