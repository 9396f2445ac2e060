"""The quickstart notebook runs headless from any directory (nbclient, a real kernel), and shows
the plan summary first, the deploy results, the status tables with services and a diagnosis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from nomadmesh.deploy import Allocation, JobStatus, Owner, Plan, ServiceInstance

NOTEBOOK = Path(__file__).parent.parent / "examples" / "notebooks" / "quickstart.ipynb"


def html_outputs(notebook: Any) -> list[str]:
    return [o["data"]["text/html"] for cell in notebook.cells if cell.cell_type == "code"
            for o in cell.outputs if "text/html" in o.get("data", {})]


@pytest.mark.envoy
@pytest.mark.timeout(300)
def test_the_quickstart_notebook_runs_from_another_directory(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    views = html_outputs(notebook)
    plan = next(v for v in views if "Plan for job service-a" in v)
    assert "a new job" in plan and plan.index("<table>") < plan.index("<details>")
    assert any("<strong>service-a</strong>" in v and "healthy" in v for v in views)  # a result
    status = next(v for v in views if "<th>allocation</th>" in v)
    assert "<th>service</th>" in status and "passing" in status
    assert any("<th>why</th>" in v for v in views)  # the failed deploy's diagnosis


def test_a_status_shows_allocations_and_services_as_tables() -> None:
    status = JobStatus(
        job_id="web", type="service", status="running", version=2, stable=True, stopped=False,
        owner=Owner("nomadmesh"), summary={"api": {"Running": 2}},
        allocations=(Allocation("5f1c9e2a-0000", "api", "node-1", "running", "run", 2, True),),
        services=(ServiceInstance("web", "web-1", "10.0.0.5", 23456,
                                  {"service: \"web\" check": "passing"}),))
    html = status._repr_html_()
    assert "<td>api</td><td>0</td><td>0</td><td>2</td>" in html
    assert "<td>5f1c9e2a</td><td>api</td><td>node-1</td>" in html
    assert "<td>web</td><td>web-1</td><td>10.0.0.5:23456</td>" in html


def test_a_new_jobs_plan_shows_the_summary_before_the_folded_diff() -> None:
    plan = Plan.from_api("web", {
        "JobModifyIndex": 0, "Diff": {"Type": "Added", "ID": "web", "TaskGroups": [
            {"Type": "Added", "Name": "api", "Updates": {"create": 2}}]},
        "Annotations": {"DesiredTGUpdates": {"api": {"Place": 2}}}})
    html = plan._repr_html_()
    assert "a new job (exit code 1" in html
    assert html.index("<td>api</td><td>2</td>") < html.index("<details><summary>diff")
