"""Validation rules that mirror Go code, checked against that code's own semantics.

The reschedule policy's cross-check (Nomad's viableAttempts) in bounded time, as Nomad computes
it: `literal` below is nomad/structs/structs.go:6733-6796 (viableAttempts) transcribed line by
line with Go's int64 arithmetic: one step per attempt, as Nomad loops. nomadmesh's
`validation._reschedule_delays` counts the repeating part instead of walking it; it must give the
same (possible, recommended, valid) for every policy the literal loop can walk, and answer
in bounded time for the attempts it cannot (any int64).

The CSI plugin rule's helper.IsSubdirectory, through Go's filepath.Rel (never the process's
working directory).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomadmesh.model import Group, Job, ReschedulePolicy, Task, validation
from nomadmesh.model._base import SECOND, go_quote
from nomadmesh.model.validation import go_duration

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def wrap(v: int) -> int:
    return (v + 2**63) % 2**64 - 2**63


def go_pow2_duration(i: int) -> int:
    """time.Duration(math.Pow(2, float64(i))) on amd64: exact while it fits, else min int64."""
    return 2**i if i <= 62 else I64_MIN


def go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def literal(attempts: int, interval: int, delay: int, max_delay: int,
            function: str) -> tuple[int, int, bool]:
    possible, recommended, valid = 0, 0, True
    if function == "constant":
        recommended = wrap(attempts * delay)
        if interval < recommended:
            possible, valid = go_div(interval, delay), False
    elif function == "exponential":
        for i in range(attempts):
            next_delay = wrap(go_pow2_duration(i) * delay)
            if next_delay > max_delay:
                next_delay = max_delay
                recommended = wrap(recommended + next_delay)
            else:
                recommended = next_delay
            if recommended < interval:
                possible += 1
        if possible < attempts:
            valid = False
    else:
        slots = [delay, delay]
        reached = False
        for i in range(2, attempts):
            if reached:
                next_delay = wrap(slots[i - 1] + max_delay)
            else:
                next_delay = wrap(slots[i - 1] + slots[i - 2])
                if next_delay > max_delay:
                    next_delay, reached = max_delay, True
            slots.append(next_delay)
        recommended = slots[-1]
        if interval < recommended:
            valid = False
            for i, s in enumerate(slots):
                if s > interval:
                    possible = i
                    break
    return max(possible, 0), recommended, valid


class Captured:
    def __init__(self) -> None:
        self.added: list[tuple[str, str | None]] = []

    def add(self, text: str, field: str | None = None) -> None:
        self.added.append((text, field))


def ours(attempts: int, interval: int, delay: int, max_delay: int, function: str) -> list[Any]:
    found = Captured()
    validation._reschedule_delays(attempts, interval, delay, max_delay, function, found)  # type: ignore[arg-type]
    return found.added


def expected(attempts: int, interval: int, delay: int, max_delay: int, function: str) -> list[Any]:
    possible, recommended, valid = literal(attempts, interval, delay, max_delay, function)
    if valid:
        return []
    found = Captured()
    # The messages as validateDelayParams writes them, formatted by nomadmesh's Go formatters
    # (checked against Nomad's own texts in tests/test_model_validation.py).
    if function == "constant":
        found.add(f"Nomad can only make {possible} attempts in {go_duration(interval)} with initial "
                  f"delay {go_duration(delay)} and delay function {go_quote(function)}")
    else:
        found.add(f"Nomad can only make {possible} attempts in {go_duration(interval)} with initial "
                  f"delay {go_duration(delay)}, delay function {go_quote(function)}, and delay "
                  f"ceiling {go_duration(max_delay)}")
    found.add(f"Set the interval to at least {go_duration(validation._go_round_second(recommended))}"
              f" to accommodate {attempts} attempts", "interval")
    return found.added


durations = st.one_of(
    st.integers(5 * SECOND, 3600 * SECOND),
    st.integers(5 * SECOND, I64_MAX),
    st.sampled_from([5 * SECOND, 2**62, I64_MAX, I64_MAX - 1, 2**40 + 1]),
)


@settings(max_examples=600, deadline=None)
@given(attempts=st.integers(0, 300), interval=st.integers(I64_MIN, I64_MAX) | durations,
       delay=durations, extra=st.integers(0, I64_MAX) | st.just(0),
       function=st.sampled_from(["constant", "exponential", "fibonacci"]))
def test_the_bounded_check_is_nomads_loop(attempts: int, interval: int, delay: int, extra: int,
                                          function: str) -> None:
    max_delay = min(delay + extra, I64_MAX)  # Validate's pre-check: max_delay >= delay >= 5s
    assert ours(attempts, interval, delay, max_delay, function) == \
        expected(attempts, interval, delay, max_delay, function)


@pytest.mark.parametrize("function", ["exponential", "fibonacci"])
@pytest.mark.parametrize("attempts", [10**6, 2**31, I64_MAX])
def test_any_number_of_attempts_is_checked_at_once(function: str, attempts: int) -> None:
    start = time.perf_counter()
    added = ours(attempts, 3600 * SECOND, 30 * SECOND, 3600 * SECOND, function)
    assert time.perf_counter() - start < 1.0
    # With a 1h ceiling, a 1h interval holds only the first few attempts (Nomad's loop would say
    # so after `attempts` steps), unless the recommendation wrapped below it in int64.
    recommended = added_recommended(attempts, function)
    if function == "fibonacci" and recommended <= 3600 * SECOND:
        assert added == []
        return
    assert added[0][0].startswith("Nomad can only make "), added
    assert added[-1] == (f"Set the interval to at least "
                         f"{go_duration(validation._go_round_second(recommended))}"
                         f" to accommodate {attempts} attempts", "interval")


def added_recommended(attempts: int, function: str) -> int:
    """The interval Nomad recommends for a 30s delay and a 1h ceiling, worked out by hand, for
    more than 63 attempts: exponential's next delay is min int64 * 30s (even: 0) from attempt 63
    on, so the recommendation is 0; fibonacci's slots pass 1h at index 11 (30s, 30s, 1m, 1m30s,
    2m30s, 4m, 6m30s, 10m30s, 17m, 27m30s, 44m30s, then 1h) and grow by 1h a slot."""
    assert attempts > 63
    if function == "exponential":
        return 0
    return wrap((attempts - 11) * 3600 * SECOND)


def test_constant_overflow_is_nomads() -> None:
    # attempts * delay wraps in int64 as in Nomad: the policy below passes Nomad's check.
    assert literal(I64_MAX, 3600 * SECOND, 30 * SECOND, 0, "constant")[2] is True
    assert ours(I64_MAX, 3600 * SECOND, 30 * SECOND, 0, "constant") == []
    assert ours(2**31, 3600 * SECOND, 30 * SECOND, 0, "constant") == \
        expected(2**31, 3600 * SECOND, 30 * SECOND, 0, "constant")


def test_huge_attempts_in_a_job_are_problems_not_a_hang() -> None:
    policy = ReschedulePolicy(attempts=2**62, interval=3600 * SECOND, delay=30 * SECOND,
                              delay_function="exponential", max_delay=3600 * SECOND,
                              unlimited=False)
    job = Job(id="j", groups=(Group(name="g", reschedule=policy,
                                    tasks=(Task(name="t", driver="docker"),)),))
    texts = [p.message for p in validation.refusals(job, job.path)]
    assert any("Nomad can only make" in t for t in texts), texts


def test_exponential_past_63_attempts_follows_amd64_conversion() -> None:
    # From attempt 63 on, Nomad's next delay is min int64 * delay: 0 for an even delay, so every
    # later attempt fits an interval of at least 1ns; min int64 for an odd one.
    even = literal(100, 10**15, 30 * SECOND, 3600 * SECOND, "exponential")
    odd = literal(100, 10**15, 30 * SECOND + 1, 3600 * SECOND, "exponential")
    assert ours(100, 10**15, 30 * SECOND, 3600 * SECOND, "exponential") == \
        expected(100, 10**15, 30 * SECOND, 3600 * SECOND, "exponential")
    assert even[1] == 0 and odd[1] == I64_MIN


# --- helper.IsSubdirectory (helper/funcs.go:573), through Go's filepath.Rel ----------------------
# Each expectation is Go's path/filepath Rel on Unix worked through by hand: an error (None) when
# exactly one path is absolute or the first differing base element is "..".
GO_REL = [
    ("/a", "/a/b", "b"), ("/a/b", "/a", ".."), ("a", "a/b", "b"), ("a", "/a", None),
    ("/a", "a", None), ("", "a", "a"), ("a/..", "b", "b"), ("../x", "y", None), ("/", "/a", "a"),
    ("/a", "/", ".."), ("/a/b", "/c/d", "../../c/d"), ("a/b", "a/b", "."), ("..", "../a", "a"),
    ("x", "", "../."), ("/csi", "/csi/../x", "../x"), ("//a", "/a/b", "b"),
]


@pytest.mark.parametrize(("base", "target", "rel"), GO_REL)
def test_paths_relate_as_gos_filepath_rel(base: str, target: str, rel: str | None) -> None:
    assert validation._go_rel(base, target) == rel


@pytest.mark.parametrize("cwd", ["/", "/tmp"])
def test_the_csi_subdirectory_rule_does_not_depend_on_the_working_directory(
        cwd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # posixpath.relpath made relative paths absolute against the process's directory: from "/",
    # "csi" vs "/csi/x" related; from elsewhere they did not. Go's Rel refuses the pair.
    monkeypatch.chdir(cwd)
    assert validation._is_subdirectory("csi", "/csi/x") is False
    assert validation._is_subdirectory("/csi", "csi/x") is False
    assert validation._is_subdirectory("csi", "csi/x") is True
    assert validation._is_subdirectory("/csi", "/csi/../elsewhere") is False
