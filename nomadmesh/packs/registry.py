"""Finding packs: installed distributions (entry points), local directories, pinned git URLs.

A reference is one of:
- a name: an entry point in the `nomadmesh.packs` group, else a pack directory in one of the
  directories of `NOMADMESH_PACKS_PATH` (`os.pathsep`-separated);
- a path to a pack directory (a Python package whose module declares a `Pack`);
- `git+URL@REF[#subdirectory=PATH]` (pip's syntax): REF, a tag or commit, is required; the checkout
  is cached under `$NOMADMESH_CACHE_DIR/packs` (default `~/.cache/nomadmesh/packs`) per URL and REF.

A pack directory is imported under its own name with its parent directory on `sys.path`, so
packs in the same directory import each other as dependencies the way installed packs do.

The loader asks `is_pack_ref` of every job file the CLI reads, so this module imports little at
its top; what only fetching, listing or rendering needs is imported where it is used.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nomadmesh.errors import LoadError, NomadmeshError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from nomadmesh.packs.definition import Pack

ENTRY_POINT_GROUP = "nomadmesh.packs"
PATH_ENV = "NOMADMESH_PACKS_PATH"
CACHE_ENV = "NOMADMESH_CACHE_DIR"
COMMIT_FILE = ".nomadmesh-commit"

_GIT = re.compile(r"^git\+(?P<url>.+?)(?:#subdirectory=(?P<subdir>[^#]+))?$")


@attrs.frozen
class FoundPack:
    """A pack and where it came from (entry point, directory, or git URL at a commit)."""

    pack: Pack[Any]
    origin: str


def find_pack(ref: str, *, search_path: Iterable[str | os.PathLike[str]] | None = None,
              cache_dir: str | os.PathLike[str] | None = None) -> FoundPack:
    """The pack a reference names (see the module docstring); LoadError says what was tried."""
    if ref.startswith("git+"):
        directory, origin = fetch_git(ref, cache_dir=cache_dir)
        return FoundPack(load_directory(directory), origin)
    path = Path(ref)
    kind = _kind(path)
    if kind == "directory":
        return FoundPack(load_directory(path), str(path.resolve()))
    if kind is not None:
        raise LoadError(f"{ref}: not a pack directory (a pack is a Python package directory)")
    for ep in _entry_points():
        if ep.name == ref:
            return FoundPack(_from_entry_point(ep), _entry_point_origin(ep))
    for directory in _pack_dirs(search_path):
        if directory.name in (ref, ref.replace("-", "_")):
            return FoundPack(load_directory(directory), str(directory))
    everything = list_packs(search_path=search_path)
    for found in everything:
        if found.pack.name == ref:
            return found
    known = sorted({f.pack.name for f in everything})
    import difflib

    close = difflib.get_close_matches(ref, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else (
        f"; known packs: {', '.join(known)}" if known else
        f"; no packs are installed or on {PATH_ENV}")
    raise LoadError(f"pack {ref!r} not found{hint}")


def list_packs(*, search_path: Iterable[str | os.PathLike[str]] | None = None) -> list[FoundPack]:
    """Every pack installed (entry points) or in the search path directories, by name."""
    found = [FoundPack(_from_entry_point(ep), _entry_point_origin(ep)) for ep in _entry_points()]
    found += [FoundPack(load_directory(d), str(d)) for d in _pack_dirs(search_path)]
    return sorted(found, key=lambda f: (f.pack.name, f.origin))


def is_pack_ref(ref: str, *, search_path: Iterable[str | os.PathLike[str]] | None = None) -> bool:
    """Whether `ref` names a pack rather than a job file (cheap: nothing is imported)."""
    if ref.startswith("git+"):
        return True
    path = Path(ref)
    kind = _kind(path)
    if kind is not None:
        return kind == "directory" and _is_pack_dir(path)
    if not ref or len(ref) > 255 or "\x00" in ref:
        return False  # not a name an entry point or a directory can have
    names = {ep.name for ep in _entry_points()}
    names |= {d.name for d in _pack_dirs(search_path)}
    return ref in names or ref.replace("-", "_") in names


def load_directory(path: str | os.PathLike[str]) -> Pack[Any]:
    """Import a pack directory (a Python package) and return the pack it declares."""
    directory = Path(path).resolve()
    if not _is_pack_dir(directory):
        raise LoadError(f"{path}: not a pack directory (no __init__.py)")
    name = directory.name
    if not name.isidentifier():
        raise LoadError(f"{path}: a pack directory's name must be a Python identifier")
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent != directory:
        raise LoadError(f"{path}: the module name {name!r} is already taken by "
                        f"{getattr(loaded, '__file__', None) or 'a built-in module'}")
    parent = str(directory.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        module = importlib.import_module(name)
    except NomadmeshError:
        raise
    except SyntaxError as exc:
        raise LoadError(f"{exc.filename}:{exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise LoadError(f"{path}: importing the pack failed: {type(exc).__name__}: {exc}") from None
    return pack_of(module, str(path))


def pack_of(module: types.ModuleType, where: str) -> Pack[Any]:
    """The pack a module declares: its `pack` attribute, else the one Pack defined in it."""
    from nomadmesh.packs.definition import Pack

    declared = getattr(module, "pack", None)
    if isinstance(declared, Pack):
        return declared
    own = [v for v in vars(module).values()
           if isinstance(v, Pack) and getattr(v.function, "__module__", None) == module.__name__]
    if len(own) != 1:
        raise LoadError(f"{where}: declares {len(own)} packs; set `pack = ...` to choose one"
                        if own else f"{where}: declares no pack (use @nomadmesh.packs.pack)")
    return own[0]


def fetch_git(ref: str, *, cache_dir: str | os.PathLike[str] | None = None,
              env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """Check out `git+URL@REF[#subdirectory=P]` once into the cache; the pack directory and origin."""
    match = _GIT.match(ref)
    url, _, pinned = (match.group("url") if match else "").rpartition("@")
    if not match or not url or "/" in pinned or not pinned:
        raise LoadError(f"{ref}: a git pack needs a pinned ref: git+URL@TAG_OR_COMMIT"
                        "[#subdirectory=PATH]")
    subdir = match.group("subdir") or ""
    root = Path(cache_dir or (env or os.environ).get(CACHE_ENV) or _default_cache()) / "packs"
    import hashlib

    key = hashlib.sha256(f"{url}@{pinned}".encode()).hexdigest()[:16]
    checkout = root / f"{_slug(url)}-{_slug(pinned)}-{key}"
    if not (checkout / COMMIT_FILE).is_file():
        _clone(url, pinned, checkout)
    commit = (checkout / COMMIT_FILE).read_text().strip()
    directory = (checkout / subdir).resolve()
    if checkout.resolve() not in (directory, *directory.parents):
        raise LoadError(f"{ref}: subdirectory {subdir!r} leaves the repository")
    return directory, f"{url}@{pinned} (commit {commit[:12]})"


def _clone(url: str, ref: str, checkout: Path) -> None:
    import shutil
    import tempfile

    checkout.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=checkout.parent))
    try:
        _git("clone", "--quiet", "--no-checkout", url, str(work), what=url)
        commit = _git("-C", str(work), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                      what=f"{url}: no tag, branch or commit named {ref!r}").strip()
        _git("-C", str(work), "-c", "advice.detachedHead=false", "checkout", "--quiet", commit,
             what=f"checking out {ref!r} of {url}")
        (work / COMMIT_FILE).write_text(commit + "\n")
        if checkout.exists():  # another process fetched the same ref meanwhile
            shutil.rmtree(work)
        else:
            work.rename(checkout)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _git(*args: str, what: str) -> str:
    """Run git; a failure is a LoadError starting with `what`, ending with git's last line."""
    import subprocess

    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)
    except FileNotFoundError:
        raise LoadError("git is not installed; it is needed for git+ pack references") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise LoadError(what + (f": {detail[-1]}" if detail else ""))
    return done.stdout


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nomadmesh"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.rstrip("/").rsplit("/", 1)[-1])[:40]


def _kind(path: Path) -> str | None:
    """"directory", "other" (it exists, as a file or anything else) or None (it does not);
    a path the system refuses to look up (too long, a loop, no permission) is an error."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # a NUL byte: no such path can exist
        return None
    except OSError as exc:
        raise LoadError(f"{path}: cannot be looked up: {exc.strerror}") from None
    import stat

    return "directory" if stat.S_ISDIR(mode) else "other"


def _is_pack_dir(path: Path) -> bool:
    return _kind(path) == "directory" and _kind(path / "__init__.py") == "other"


def _pack_dirs(search_path: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    roots = ([Path(p) for p in search_path] if search_path is not None else
             [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p])
    return [d for root in roots if _kind(root) == "directory" for d in sorted(root.iterdir())
            if _is_pack_dir(d) and not d.name.startswith(("_", "."))]


def _entry_points() -> list[EntryPoint]:
    import importlib.metadata

    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _from_entry_point(ep: EntryPoint) -> Pack[Any]:
    from nomadmesh.packs.definition import Pack

    try:
        target = ep.load()
    except NomadmeshError:
        raise
    except Exception as exc:
        raise LoadError(f"entry point {ep.name!r} ({ep.value}): cannot be loaded: "
                        f"{type(exc).__name__}: {exc}") from None
    if isinstance(target, Pack):
        return target
    if isinstance(target, types.ModuleType):
        return pack_of(target, f"entry point {ep.name!r} ({ep.value})")
    raise LoadError(f"entry point {ep.name!r} ({ep.value}) is a {type(target).__name__}, "
                    "not a pack or a module declaring one")


def _entry_point_origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"
