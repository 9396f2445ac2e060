"""Finding packs: local directories, search path, entry points, pinned git URLs (local repos)."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

import nomadmesh
from nomadmesh.errors import LoadError
from nomadmesh.packs import find_pack, is_pack_ref, list_packs, render_ref
from tests.packs_support import bare_repo_with_tags, unique_module, write_pack


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("NOMADMESH_PACKS_PATH", raising=False)
    monkeypatch.setenv("NOMADMESH_CACHE_DIR", str(tmp_path / "cache"))


def test_a_pack_directory_is_found_by_its_path(tmp_path: Path) -> None:
    directory = write_pack(tmp_path, name="demo")
    found = find_pack(str(directory))
    assert (found.pack.name, found.origin) == ("demo", str(directory.resolve()))


def test_a_pack_is_found_by_name_on_the_search_path(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_pack(tmp_path, name="searched")
    monkeypatch.setenv("NOMADMESH_PACKS_PATH", str(tmp_path))
    assert find_pack("searched").pack.name == "searched"


def test_list_shows_every_pack_on_the_search_path(tmp_path: Path) -> None:
    write_pack(tmp_path, name="one")
    write_pack(tmp_path, name="two")
    found = [(f.pack.name, f.origin) for f in list_packs(search_path=[tmp_path])]
    # the search path's packs, and the one installed with nomadmesh (an entry point)
    assert [name for name, _ in found] == ["mesh-control-plane", "one", "two"]
    assert found[0][1] == f"nomadmesh {nomadmesh.__version__}"


def test_an_unknown_name_suggests_a_close_one(tmp_path: Path) -> None:
    write_pack(tmp_path, name="webservice")
    with pytest.raises(LoadError, match="pack 'websrvice' not found; did you mean webservice"):
        find_pack("websrvice", search_path=[tmp_path])


def test_a_file_is_not_a_pack(tmp_path: Path) -> None:
    job_file = tmp_path / "web.nomad.hcl"
    job_file.write_text("job {}")
    assert not is_pack_ref(str(job_file))


def test_pack_references_are_told_apart_without_importing(tmp_path: Path) -> None:
    directory = write_pack(tmp_path)
    assert is_pack_ref(str(directory))
    assert is_pack_ref(directory.name, search_path=[tmp_path])
    assert is_pack_ref("git+https://example.com/packs.git@v1")
    assert not is_pack_ref("no-such-pack", search_path=[tmp_path])


def test_a_pack_that_fails_to_import_names_the_error(tmp_path: Path) -> None:
    directory = tmp_path / unique_module()
    directory.mkdir()
    (directory / "__init__.py").write_text("import no_such_module_here\n")
    with pytest.raises(LoadError, match="importing the pack failed: ModuleNotFoundError"):
        find_pack(str(directory))


def test_a_directory_without_a_pack_says_so(tmp_path: Path) -> None:
    directory = tmp_path / unique_module()
    directory.mkdir()
    (directory / "__init__.py").write_text("x = 1\n")
    with pytest.raises(LoadError, match="declares no pack"):
        find_pack(str(directory))


def test_an_installed_distribution_provides_packs_through_its_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = write_pack(tmp_path, name="installed").name
    dist = tmp_path / "installed_packs-3.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: installed-packs\nVersion: 3.2\n")
    (dist / "entry_points.txt").write_text(f"[nomadmesh.packs]\ninstalled = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    found = find_pack("installed", search_path=[])
    assert (found.pack.name, found.origin) == ("installed", "installed-packs 3.2")


def test_a_git_pack_is_checked_out_at_the_pinned_tag(tmp_path: Path) -> None:
    module = unique_module()
    bare = bare_repo_with_tags(tmp_path, module, {"v1": "1.0.0", "v2": "2.0.0"})
    found = find_pack(f"git+file://{bare}@v1#subdirectory=packs/{module}")
    assert found.pack.version == "1.0.0"
    assert found.origin.startswith(f"file://{bare}@v1 (commit ")


def test_a_fetched_git_ref_is_served_from_the_cache(tmp_path: Path) -> None:
    module = unique_module()
    bare = bare_repo_with_tags(tmp_path, module, {"v1": "1.0.0"})
    ref = f"git+file://{bare}@v1#subdirectory=packs/{module}"
    first = find_pack(ref).origin
    shutil.rmtree(bare)
    assert find_pack(ref).origin == first
    assert list((tmp_path / "cache" / "packs").iterdir())


def test_a_git_url_without_a_pinned_ref_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="needs a pinned ref"):
        find_pack(f"git+file://{tmp_path}/remote.git")


def test_an_unknown_git_ref_is_reported(tmp_path: Path) -> None:
    module = unique_module()
    bare = bare_repo_with_tags(tmp_path, module, {"v1": "1.0.0"})
    with pytest.raises(LoadError, match="no tag, branch or commit named 'v9'"):
        find_pack(f"git+file://{bare}@v9#subdirectory=packs/{module}")


def test_render_ref_resolves_variables_and_renders(tmp_path: Path) -> None:
    directory = write_pack(tmp_path, suffixes=("web", "worker"))
    jobs = render_ref(str(directory), variables={"count": "3"}, deployment="shop", env={})
    assert [(j.id, j.groups[0].count) for j in jobs] == [("shop-web", 3), ("shop-worker", 3)]
