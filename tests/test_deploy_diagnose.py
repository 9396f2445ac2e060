"""Diagnosis: Nomad's evaluation metrics and task events become one sentence per failure.

The inputs are JSON documents shaped as Nomad's API returns them (AllocationMetric, Allocation
with TaskStates, Deployment), written by hand from the API documentation.
"""

from __future__ import annotations

from nomadmesh.deploy.diagnose import (
    Diagnosis,
    allocation_failures,
    deployment_finding,
    placement_failures,
    task_failure,
)

EXHAUSTED_MEMORY = {
    "NodesEvaluated": 3,
    "NodesFiltered": 0,
    "NodesAvailable": {"dc1": 3},
    "ClassFiltered": None,
    "ConstraintFiltered": None,
    "NodesExhausted": 3,
    "ClassExhausted": None,
    "DimensionExhausted": {"memory": 3},
    "QuotaExhausted": None,
    "CoalescedFailures": 1,
}

FILTERED = {
    "NodesEvaluated": 2,
    "NodesAvailable": {"dc1": 2},
    "ConstraintFiltered": {"${attr.kernel.name} = windows": 2},
    "ClassFiltered": {"gpu": 1},
    "NodesExhausted": 0,
}


def _alloc(task_events: list[dict[str, object]], *, failed: bool = True,
           client_status: str = "failed", restarts: int = 0) -> dict[str, object]:
    return {
        "ID": "5f1c9e2a-1111-2222-3333-444455556666",
        "TaskGroup": "api",
        "ClientStatus": client_status,
        "DeploymentStatus": {"Healthy": False},
        "TaskStates": {"app": {"State": "dead", "Failed": failed, "Restarts": restarts,
                               "Events": task_events}},
    }


def test_exhausted_dimension_names_group_dimension_and_node_count() -> None:
    (finding,) = placement_failures("web", {"api": EXHAUSTED_MEMORY})
    assert str(finding) == ("group 'api': could not place 2 allocations (3 nodes evaluated): "
                            "memory exhausted on 3 nodes")


def test_constraint_and_class_filters_are_both_reported() -> None:
    (finding,) = placement_failures("web", {"api": FILTERED})
    assert "constraint '${attr.kernel.name} = windows' filtered 2 nodes" in finding.message
    assert "class 'gpu' filtered 1 node" in finding.message


def test_no_eligible_nodes_and_empty_datacenter_are_explained() -> None:
    (finding,) = placement_failures("web", {"api": {"NodesEvaluated": 0,
                                                     "NodesAvailable": {"dc9": 0}}})
    assert finding.message.endswith(
        "no nodes were eligible for evaluation; no nodes are available in datacenter 'dc9'")


def test_no_failed_groups_means_an_empty_diagnosis() -> None:
    assert not placement_failures("web", None)


def test_driver_failure_names_group_task_alloc_and_driver_error() -> None:
    alloc = _alloc([
        {"Type": "Received", "DisplayMessage": "Task received by client"},
        {"Type": "Driver Failure", "DriverError": "failed to pull image \"nginx:nope\"",
         "FailsTask": True},
        {"Type": "Not Restarting", "DisplayMessage": "Error was unrecoverable",
         "FailsTask": True},
    ])
    (finding,) = allocation_failures("web", [alloc])
    assert str(finding) == ("group 'api' task 'app' (alloc 5f1c9e2a): driver failure: failed to "
                            "pull image \"nginx:nope\"; not restarting (restart policy exhausted)")


def test_exit_code_signal_and_restart_count_are_reported() -> None:
    state = {"Failed": True, "Restarts": 2, "Events": [
        {"Type": "Terminated", "ExitCode": 137, "Signal": 9, "Message": "OOM"},
        {"Type": "Not Restarting", "RestartReason":
         "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\""},
    ]}
    assert task_failure(state) == (
        "exited with code 137 on signal 9: OOM; not restarting (Exceeded allowed attempts 2 in "
        "interval 30m0s and mode is \"fail\"); restarted 2 times")


def test_clean_exit_is_not_a_cause() -> None:
    state = {"Failed": False, "Events": [{"Type": "Terminated", "ExitCode": 0}]}
    assert task_failure(state) is None


def test_setup_artifact_and_template_failures_have_their_own_words() -> None:
    setup = {"Failed": True, "Events": [{"Type": "Setup Failure",
                                         "SetupError": "failed to build task directory"}]}
    artifact = {"Failed": True, "Events": [{"Type": "Failed Artifact Download",
                                            "DownloadError": "bad response code: 404"}]}
    template = {"Failed": True, "Events": [{"Type": "Killing", "FailsTask": True,
                                            "DisplayMessage": "Template failed: missing key"}]}
    assert task_failure(setup) == "setup failure: failed to build task directory"
    assert task_failure(artifact) == "artifact download failed: bad response code: 404"
    assert task_failure(template) == "template failure: Template failed: missing key"


def test_sibling_failure_comes_after_the_task_that_caused_it() -> None:
    alloc = _alloc([])
    alloc["TaskStates"] = {
        "a-sidecar": {"Failed": True, "Events": [
            {"Type": "Sibling Task Failed", "FailedSibling": "z-app"}]},
        "z-app": {"Failed": True, "Events": [{"Type": "Terminated", "ExitCode": 1}]},
    }
    first, second = allocation_failures("web", [alloc])
    assert (first.task, first.message) == ("z-app", "exited with code 1")
    assert (second.task, second.message) == ("a-sidecar",
                                             "killed because sibling task 'z-app' failed")


def test_running_but_unhealthy_allocation_says_so() -> None:
    alloc = _alloc([{"Type": "Started"}], failed=False, client_status="running")
    alloc["TaskStates"]["app"]["State"] = "running"  # type: ignore[index]
    (finding,) = allocation_failures("web", [alloc])
    assert finding.kind == "allocation"
    assert finding.message.startswith("allocation unhealthy")


def test_healthy_allocations_produce_no_findings() -> None:
    healthy = {"ID": "x", "TaskGroup": "api", "ClientStatus": "running",
               "DeploymentStatus": {"Healthy": True},
               "TaskStates": {"app": {"State": "running", "Failed": False, "Events": []}}}
    assert not allocation_failures("web", [healthy])


def test_deployment_finding_quotes_nomads_status_description() -> None:
    finding = deployment_finding("web", {"ID": "0123456789", "Status": "failed",
                                         "StatusDescription": "Failed due to progress deadline"})
    assert str(finding) == "job 'web': deployment 01234567 failed: Failed due to progress deadline"


def test_adding_diagnoses_drops_duplicates_and_keeps_order() -> None:
    a = placement_failures("web", {"api": FILTERED})
    b = placement_failures("web", {"api": FILTERED, "db": EXHAUSTED_MEMORY})
    assert [f.group for f in a + b] == ["api", "db"]


def test_diagnosis_renders_as_an_html_table_with_escaped_text() -> None:
    diagnosis = Diagnosis(tuple(allocation_failures("web", [_alloc([
        {"Type": "Driver Failure", "DriverError": "<image> missing"}])])))
    html = diagnosis._repr_html_()
    assert "<table>" in html
    assert "&lt;image&gt; missing" in html
