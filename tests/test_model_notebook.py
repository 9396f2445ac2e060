"""Jobs read well in a notebook: compact reprs and an HTML table."""

from __future__ import annotations

from nomadmesh import Group, Job, Lifecycle, Network, Port, Resources, Task


def test_repr_shows_only_fields_that_differ_from_defaults() -> None:
    task = Task("app", driver="docker", resources=Resources(memory=64))
    assert repr(task) == "Task('app', driver='docker', resources=Resources(memory=64))"


def test_repr_of_a_job_evaluates_back_to_an_equal_job() -> None:
    from nomadmesh import model

    job = Job("web", groups=[Group("api", count=2, networks=[Network(ports=[Port("http")])],
                                   tasks=[Task("app", driver="exec")])])
    assert eval(repr(job), vars(model)) == job


def test_html_lists_every_task_with_its_group_ports_and_lifecycle() -> None:
    job = Job("web", groups=[Group(
        "api", count=3, networks=[Network(mode="bridge", ports=[Port("http", to=8080)])],
        tasks=[Task("app", driver="docker", config={"image": "nginx:1.27"}),
               Task("proxy", driver="docker", lifecycle=Lifecycle(hook="prestart", sidecar=True))])])
    page = job._repr_html_()
    assert "<strong>job web</strong>" in page
    assert "<td rowspan='2'>3</td>" in page
    assert "http→8080" in page
    assert "<td>nginx:1.27</td>" in page
    assert "<td>prestart (sidecar)</td>" in page


def test_html_escapes_user_text() -> None:
    job = Job("web", groups=[Group("<g>", tasks=[Task("t", driver="exec",
                                                      config={"command": "a<b"})])])
    page = job._repr_html_()
    assert "&lt;g&gt;" in page and "a&lt;b" in page and "<g>" not in page
