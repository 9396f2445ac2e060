"""Rendering packs: jobs from typed variables, dependencies, deployment meta, failures."""

from __future__ import annotations

import attrs
import pytest

from nomadmesh import Group, Job, Task
from nomadmesh.errors import InputError, ValidationError
from nomadmesh.packs import (
    META_DEPLOYMENT,
    META_PACK,
    META_PACK_VERSION,
    META_VARIABLES_DIGEST,
    Pack,
    dependency,
    pack,
    variable,
)


def simple_job(job_id: str, image: str, count: int = 1) -> Job:
    return Job(job_id, groups=[Group("main", count=count, tasks=[
        Task("main", driver="docker", config={"image": image})])])


@attrs.frozen(kw_only=True)
class CacheVariables:
    port: int = variable(6379, description="cache port")


@pack(name="cache", version="1.0.0", variables=CacheVariables)
def cache(v: CacheVariables, deployment: str) -> Job:
    """A cache server."""
    return simple_job(deployment, f"redis:7 --port {v.port}")


@attrs.frozen(kw_only=True)
class AppVariables:
    image: str = variable("app:1")
    count: int = variable(1)
    cache: CacheVariables = dependency(cache)


@pack(name="app", version="2.1.0", variables=AppVariables, url="https://example.com/app")
def app(v: AppVariables, deployment: str) -> list[Job]:
    """An app with a cache."""
    return [simple_job(deployment, v.image, v.count)]


def test_the_decorator_makes_a_pack_with_its_docstring_as_description() -> None:
    assert isinstance(app, Pack) and (app.name, app.version, app.description) == (
        "app", "2.1.0", "An app with a cache.")


def test_render_with_defaults_uses_the_pack_name_as_deployment() -> None:
    assert [j.id for j in app.render()] == ["app", "app-cache"]


def test_a_dependency_renders_under_the_deployment_name_with_its_field() -> None:
    jobs = app.render(AppVariables(cache=CacheVariables(port=7000)), deployment="shop")
    assert jobs[1].id == "shop-cache"
    assert jobs[1].groups[0].tasks[0].config["image"] == "redis:7 --port 7000"


def test_dependency_variables_nest_under_the_field_name() -> None:
    assert [i.path for i in app.describe()] == ["image", "count", "cache.port"]


def test_every_job_carries_the_deployment_meta() -> None:
    v = app.resolve(values={"count": "2"}, env={})
    for job in app.render(v, deployment="shop"):
        assert job.meta[META_PACK] == "app"
        assert job.meta[META_DEPLOYMENT] == "shop"


def test_the_meta_stays_the_same_across_pack_versions_and_values() -> None:
    # Any meta change replaces every allocation on a real Nomad (scheduler/util.go
    # tasksUpdated), so neither the pack version nor the variables may live there.
    one = app.render(AppVariables(count=1))[0].meta
    two = attrs.evolve(app, version="9.9.9").render(AppVariables(count=2))[0].meta
    assert one == two
    assert META_PACK_VERSION not in one and META_VARIABLES_DIGEST not in one


def test_resolve_reports_a_dependency_variable_with_its_path() -> None:
    with pytest.raises(ValidationError) as exc:
        app.resolve(values={"cache.port": "x"}, env={})
    assert [p.path for p in exc.value.problems] == ["cache.port"]
    assert "variables of pack 'app'" in str(exc.value)


def test_an_invalid_rendered_job_is_reported_with_the_job_path() -> None:
    bad = pack(name="bad", version="1", variables=CacheVariables)(
        lambda v, d: Job(d, groups=[]))
    with pytest.raises(ValidationError) as exc:
        bad.render()
    assert exc.value.problems[0].path == "job[bad]"


def test_two_jobs_with_one_id_are_an_error() -> None:
    twice = pack(name="twice", version="1", variables=CacheVariables)(
        lambda v, d: [simple_job(d, "a"), simple_job(d, "b")])
    with pytest.raises(ValidationError, match="produced twice"):
        twice.render()


def test_an_exception_in_the_pack_function_names_the_pack() -> None:
    def broken(v: CacheVariables, deployment: str) -> Job:
        raise KeyError("port")

    with pytest.raises(InputError, match=r"pack 'broken' 1 failed to render at "
                       r".*test_packs_render\.py:\d+: KeyError"):
        pack(name="broken", version="1", variables=CacheVariables)(broken).render()


def test_variables_of_another_class_are_refused() -> None:
    with pytest.raises(InputError, match="takes AppVariables, not CacheVariables"):
        app.render(CacheVariables())  # type: ignore[arg-type]


def test_a_deployment_name_with_spaces_is_refused() -> None:
    with pytest.raises(InputError, match="deployment name"):
        app.render(deployment="my shop")


def test_a_pack_name_must_be_lowercase() -> None:
    with pytest.raises(ValidationError) as exc:
        pack(name="My Pack", version="1", variables=CacheVariables)(lambda v, d: [])
    assert exc.value.problems[0].path == "name"


def test_render_without_variables_reports_a_required_one_by_path() -> None:
    @attrs.frozen(kw_only=True)
    class Needs:
        image: str = variable(description="required")

    needy = pack(name="needy", version="1", variables=Needs)(lambda v, d: simple_job(d, v.image))
    with pytest.raises(ValidationError) as exc:
        needy.render()
    assert [p.path for p in exc.value.problems] == ["image"]
