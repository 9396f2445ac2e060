"""Model classes built by `_base.frozen` without attrs' generated code behave as attrs' own.

Each plain model class is compared with the class `attrs.frozen` builds from the same field
definitions (its "twin", what the class would have been): the attrs metadata, `__match_args__`,
equality and hashing, the frozen errors, pickling and the constructor's signature.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from nomadmesh.model import Group, Job, Port, Submission, Task, model_classes
from nomadmesh.model._base import _attrs_twin, field, frozen, label, side

CLASSES = (*model_classes(Job), Submission)


def test_every_model_class_is_built_without_attrs_generated_code() -> None:
    assert [c.__name__ for c in CLASSES if "__model_fields__" not in c.__dict__] == []


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_attrs_metadata_is_what_attrs_builds(cls: type) -> None:
    twin = _attrs_twin(cls)
    assert attrs.has(cls)
    assert attrs.fields(cls) == attrs.fields(twin)
    assert [a.name for a in attrs.fields(cls)] == list(attrs.fields_dict(cls))
    assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
    assert cls.__attrs_props__ == twin.__attrs_props__  # type: ignore[attr-defined]
    for name in ("__setattr__", "__delattr__", "__ne__"):
        assert getattr(cls, name) is getattr(twin, name)
    # The field definitions are not left on the class (attrs deletes them too).
    assert not any(a.name in cls.__dict__ for a in attrs.fields(cls))


def _equality_cases() -> list[tuple[Any, Any]]:
    web = Job("web", groups=[Group("g", tasks=[Task("t", driver="docker")])])
    return [
        (Port("http"), Port("http")),
        (Port("http"), Port("http", static=8080)),
        (Port("http", static=0), Port("http")),  # a Go zero is unset
        (Task("t"), Task("u")),
        (web, attrs.evolve(web)),
        (web, attrs.evolve(web, priority=70)),
        (web, attrs.evolve(web, server={"Status": "running"})),  # side values are not compared
        (Job("a"), Job("a", groups=[])),
    ]


@pytest.mark.parametrize("a, b", _equality_cases())
def test_equality_and_hash_are_attrs_own(a: Any, b: Any) -> None:
    twin = _attrs_twin(type(a))

    def as_twin(obj: Any) -> Any:
        copied = object.__new__(twin)
        copied.__dict__.update(obj.__dict__)
        return copied

    ta, tb = as_twin(a), as_twin(b)
    assert (a == b) is (ta == tb)
    assert (a != b) is (ta != tb)
    if a == b:
        assert hash(a) == hash(b)
    assert a.__eq__(ta) is NotImplemented  # another class, even with the same fields
    assert (a == object()) is False
    assert a != "text"


def test_frozen_copy_and_pickle() -> None:
    job = Job("web", groups=[Group("g", tasks=[Task("t", driver="docker")])])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.id = "other"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del job.id  # type: ignore[misc]
    for again in (pickle.loads(pickle.dumps(job)), copy.copy(job), copy.deepcopy(job)):
        assert again == job and hash(again) == hash(job) and type(again) is Job
    assert attrs.evolve(job, priority=70).priority == 70
    assert attrs.asdict(Port("http", static=8080))["static"] == 8080


def test_match_statements_read_the_labels() -> None:
    match Port("http", static=8080):
        case Port("http", static=port):
            assert port == 8080
        case _:
            pytest.fail("Port('http') did not match")


def test_a_fresh_process_pickles_before_any_construction() -> None:
    # An object unpickled before its class built anything still compares, hashes and prints.
    data = pickle.dumps(Port("http", static=8080))
    code = ("import pickle, sys; p = pickle.loads(sys.stdin.buffer.read()); "
            "from nomadmesh.model import Port; "
            "print(p == Port('http', static=8080), hash(p) == hash(Port('http', static=8080)), "
            "repr(p))")
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True,
                          check=True)
    assert done.stdout.decode().split() == ["True", "True", "Port('http',", "static=8080)"]


def test_the_signature_before_and_after_the_first_construction() -> None:
    code = ("import inspect; from nomadmesh.model import Task; "
            "from nomadmesh.model._base import attrs_constructor; "
            "before = inspect.signature(Task.__init__); Task('t'); "
            "after = inspect.signature(Task.__init__); "
            "print(before == after == inspect.signature(attrs_constructor(Task)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "True"
    assert str(inspect.signature(Port)).startswith("(label: 'str', *, static:")


@frozen(slots=False, repr=False)
class _Plain:
    _go: ClassVar[str] = "Plain"

    name: str = label("Name")
    count: int | None = field("Count")
    server: Any = side()


@frozen(slots=False, repr=False)
class _Validated:
    name: str = attrs.field(validator=attrs.validators.instance_of(str))


@frozen(slots=False, repr=True)
class _Repr:
    name: str = label("Name")


def test_a_class_of_its_own_is_built_the_same_way() -> None:
    assert "__model_fields__" in _Plain.__dict__
    assert "_go" not in {a.name for a in attrs.fields(_Plain)}
    assert _Plain("a", count=0) == _Plain("a") != _Plain("a", count=2)
    assert _Plain("a", server={"x": 1}) == _Plain("a")
    assert _Plain.__match_args__ == ("name",)


def test_classes_using_other_attrs_features_are_attrs_classes() -> None:
    assert "__model_fields__" not in _Validated.__dict__
    with pytest.raises(TypeError):
        _Validated(3)  # type: ignore[arg-type]
    assert "__model_fields__" not in _Repr.__dict__
    assert repr(_Repr("x")) == "_Repr(name='x')"


_CACHE_RUN = """
import builtins, sys
sys.dont_write_bytecode = False
from nomadmesh.model import _base
_base._CACHE_FILE = sys.argv[1]  # (what the model's import built came from the package's cache)
_base._generated = None
compiled = []
real_compile = builtins.compile
def counting_compile(source, filename, *args, **kwargs):
    if str(filename).startswith("<nomadmesh "):
        compiled.append(filename)
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting_compile
from nomadmesh.loader import load_all
jobs = load_all(sys.argv[2])
again = load_all(sys.argv[2])[0]
print(len(compiled), len(list(jobs[0].warnings())), jobs[0].to_api()["ID"], jobs[0] == again)
"""


def test_generated_code_is_compiled_once_and_read_back(tmp_path: Any) -> None:
    from pathlib import Path

    job_file = Path(__file__).parent.parent / "examples" / "jobs" / "web-canary.nomad.hcl"
    cache = tmp_path / "generated.bin"

    def run() -> list[str]:
        done = subprocess.run([sys.executable, "-c", _CACHE_RUN, str(cache), str(job_file)],
                              capture_output=True, check=True, text=True)
        return done.stdout.split()

    first = run()
    assert int(first[0]) > 10 and cache.exists()  # decoders, constructors, type checks
    second = run()
    assert second[0] == "0" and second[1:] == first[1:]  # every unit read back, same results
    cache.write_bytes(b"not a cache")  # a damaged file is compiled past, and written again
    assert run()[1:] == first[1:]
    assert run()[0] == "0"


def test_loading_and_checking_a_job_builds_no_attrs_class() -> None:
    # attrs' metadata of a plain model class is built on first use, with attrs' generated code;
    # decoding, constructing, validating and encoding read the model's own field table instead.
    code = ("import sys\n"
            "from nomadmesh.loader import load_all\n"
            "from nomadmesh.model import _base\n"
            "job = load_all(sys.argv[1])[0]\n"
            "list(job.warnings()); job.to_api()\n"
            "print(sorted(c.__name__ for c in _base._twins))\n")
    job_file = Path(__file__).parent.parent / "examples" / "jobs" / "web-canary.nomad.hcl"
    done = subprocess.run([sys.executable, "-c", code, str(job_file)], capture_output=True,
                          check=True, text=True)
    assert done.stdout.strip() == "[]"
