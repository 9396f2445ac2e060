"""Cron specs as Nomad reads them (hashicorp/cronexpr v1.1.3) and `PeriodicConfig.Next`.

Written from cronexpr's documented behaviour and checked against its test expectations: 5 fields
(minute hour day-of-month month day-of-week), 6 (+ year) or 7 (second first, + year); `*` and `?`,
values, ranges, steps, lists, month and weekday names, `@yearly`/`@annually`/`@monthly`/`@weekly`/
`@daily`/`@hourly`, `L`, `W`, `LW` in day-of-month and `nL`, `n#k` in day-of-week. Day-of-month and
day-of-week restrict together as a union when both are given, as cron does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_NUMBER = r"\d{1,4}"
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_DAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_MACROS = {"@yearly": "0 0 0 1 1 * *", "@annually": "0 0 0 1 1 * *",
           "@monthly": "0 0 0 1 * * *", "@weekly": "0 0 0 * * 0 *",
           "@daily": "0 0 0 * * * *", "@hourly": "0 0 * * * * *"}


_UTC = ZoneInfo("UTC")


class CronError(ValueError):
    """A cron spec cronexpr refuses; the text is cronexpr's."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    value: str  # the regex of one value, as cronexpr's valuePattern
    names: dict[str, int] = field(default_factory=dict)

    def atoi(self, text: str) -> int:
        return self.names[text] if text in self.names else int(text)


_SECOND = _Field("second", 0, 59, r"0?[0-9]|[1-5][0-9]")
_MINUTE = _Field("minute", 0, 59, r"0?[0-9]|[1-5][0-9]")
_HOUR = _Field("hour", 0, 23, r"0?[0-9]|1[0-9]|2[0-3]")
_DOM = _Field("day-of-month", 1, 31, r"0?[1-9]|[12][0-9]|3[01]")
_MONTH = _Field("month", 1, 12, "0?[1-9]|1[012]|" + "|".join(_MONTHS + _MONTH_NAMES),
                {**{m: i + 1 for i, m in enumerate(_MONTHS)},
                 **{m: i + 1 for i, m in enumerate(_MONTH_NAMES)}})
_DOW = _Field("day-of-week", 0, 6, "0?[0-7]|" + "|".join(_DAYS + _DAY_NAMES),
              {**{d: i for i, d in enumerate(_DAYS)}, **{d: i for i, d in enumerate(_DAY_NAMES)},
               "7": 0, "07": 0})
_YEAR = _Field("year", 1970, 2099, r"19[789][0-9]|20[0-9]{2}")


@dataclass
class Cron:
    """A parsed spec: the allowed values of each field."""

    seconds: list[int]
    minutes: list[int]
    hours: list[int]
    months: list[int]
    years: list[int]
    dom: set[int] = field(default_factory=set)
    dom_restricted: bool = True
    last_dom: bool = False
    last_workday: bool = False
    workdays: set[int] = field(default_factory=set)
    dow: set[int] = field(default_factory=set)
    dow_restricted: bool = True
    nth_dow: set[tuple[int, int]] = field(default_factory=set)  # (weekday, week 1-5)
    last_dow: set[int] = field(default_factory=set)

    def days(self, year: int, month: int) -> list[int]:
        """The days of a month the spec allows (cronexpr calculateActualDaysOfMonth)."""
        last = calendar.monthrange(year, month)[1]
        if not self.dom_restricted and not self.dow_restricted:
            return list(range(1, last + 1))
        out: set[int] = set()
        if self.dom_restricted:
            out |= {d for d in self.dom if d <= last}
            if self.last_dom:
                out.add(last)
            if self.last_workday:
                out.add(_workday(year, month, last, last))
            out |= {_workday(year, month, d, last) for d in self.workdays if d <= last}
        if self.dow_restricted:
            for d in range(1, last + 1):
                weekday = (date(year, month, d).weekday() + 1) % 7  # 0 = Sunday
                if weekday in self.dow or (weekday, (d - 1) // 7 + 1) in self.nth_dow or (
                        weekday in self.last_dow and d > last - 7):
                    out.add(d)
        return sorted(out)


def _workday(year: int, month: int, day: int, last: int) -> int:
    """The weekday nearest to `day` within the month (cron's `W`)."""
    weekday = date(year, month, day).weekday()  # 0 = Monday
    if weekday == 5:  # Saturday: Friday, or Monday when Friday is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday, or Friday when Monday is next month
        return day + 1 if day < last else day - 2
    return day


@cache
def _layout(pattern: str, value: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("%value%", value))


def _directives(text: str, f: _Field) -> list[tuple[str, int, int, int, str]]:
    """cronexpr genericFieldParse: (kind, first, last, step, source) per comma-separated entry."""
    entries = [e for e in text.split(",") if e]
    if not entries:
        raise CronError(f"{f.name} field: missing directive")
    out = []
    for entry in entries:
        e = entry.lower()
        if _layout(r"^\*$|^\?$", f.value).match(e):
            out.append(("all", f.low, f.high, 1, entry))
            continue
        if m := _layout(r"^(%value%)$", f.value).match(e):
            out.append(("one", f.atoi(m.group(1)), 0, 0, entry))
            continue
        if m := _layout(r"^(%value%)-(%value%)$", f.value).match(e):
            out.append(("span", f.atoi(m.group(1)), f.atoi(m.group(2)), 1, entry))
            continue
        step_forms = ((r"^\*/(\d+)$", None), (r"^(%value%)/(\d+)$", "from"),
                      (r"^(%value%)-(%value%)/(\d+)$", "range"))
        for pattern, form in step_forms:
            m = _layout(pattern, f.value).match(e)
            if m is None:
                continue
            groups = m.groups()
            step = _step(groups[-1])
            if step < 1 or step > f.high:
                raise CronError(f"invalid interval {e}")
            first = f.low if form is None else f.atoi(groups[0])
            last = f.atoi(groups[1]) if form == "range" else f.high
            out.append(("span", first, last, step, entry))
            break
        else:
            out.append(("none", 0, 0, 0, entry))
    return out


def _step(text: str) -> int:
    """cronexpr's atoi for steps: only the numbers of its token table (0-59 and years)."""
    value = int(text)
    known = text == str(value) or (len(text) == 2 and text[0] == "0")
    return value if known and (value <= 59 or 1970 <= value <= 2099) else 0


def _values(text: str, f: _Field) -> list[int]:
    values: set[int] = set()
    for kind, first, last, step, source in _directives(text, f):
        if kind == "none":
            raise CronError(f"syntax error in {f.name} field: '{source}'")
        if kind == "all":
            return list(range(f.low, f.high + 1))
        values |= {first} if kind == "one" else set(range(first, last + 1, step))
    return sorted(values)


def parse_cron(spec: str) -> Cron:
    """cronexpr.Parse, or CronError with its text."""
    for macro, expansion in _MACROS.items():
        spec = spec.replace(macro, expansion)
    fields = spec.split()
    if len(fields) < 5:
        raise CronError("missing field(s)")
    fields = fields[:7]
    seconds = _values(fields.pop(0), _SECOND) if len(fields) == 7 else [0]
    cron = Cron(seconds=seconds, minutes=_values(fields[0], _MINUTE),
                hours=_values(fields[1], _HOUR), months=[], years=[])
    _dom(cron, fields[2])
    cron.months = _values(fields[3], _MONTH)
    _dow(cron, fields[4])
    cron.years = _values(fields[5], _YEAR) if len(fields) > 5 else list(range(1970, 2100))
    return cron


def _dom(cron: Cron, text: str) -> None:
    for kind, first, last, step, source in _directives(text, _DOM):
        e = source.lower()
        if kind == "none":
            if e == "l":
                cron.last_dom = True
            elif e == "lw":
                cron.last_workday = True
            elif m := _layout(r"^(%value%)w$", _DOM.value).match(e):
                cron.workdays.add(_DOM.atoi(m.group(1)))
            else:
                raise CronError(f"syntax error in day-of-month field: '{source}'")
        elif kind == "one":
            cron.dom.add(first)
        else:
            cron.dom |= set(range(first, last + 1, step))
            if kind == "all":
                cron.dom_restricted = False


def _dow(cron: Cron, text: str) -> None:
    for kind, first, last, step, source in _directives(text, _DOW):
        e = source.lower()
        if kind == "none":
            if m := _layout(r"^(%value%)l$", _DOW.value).match(e):
                cron.last_dow.add(_DOW.atoi(m.group(1)))
            elif m := _layout(r"^(%value%)#([1-5])$", _DOW.value).match(e):
                cron.nth_dow.add((_DOW.atoi(m.group(1)) % 7, int(m.group(2))))
            else:
                raise CronError(f"syntax error in day-of-week field: '{source}'")
        elif kind == "one":
            cron.dow.add(first)
        else:
            cron.dow |= set(range(first, (last or 6) + 1, step))
            if kind == "all":
                cron.dow_restricted = False


def cron_next(cron: Cron, after: datetime) -> datetime | None:
    """The first instant after `after` (aware) the spec matches, in `after`'s zone.

    As hashicorp/cronexpr's Next: a local time skipped by a DST jump does not run that day, and
    one repeated when clocks go back runs at both instants.
    """
    zone = after.tzinfo
    start = (_utc(after) + timedelta(seconds=1)).replace(microsecond=0)
    local = start.replace(tzinfo=None) if zone is None else start.astimezone(zone).replace(
        tzinfo=None)
    earliest = local - timedelta(hours=2)  # a repeated hour may still lie ahead
    for year in cron.years:
        if year < earliest.year:
            continue
        for month in cron.months:
            if (year, month) < (earliest.year, earliest.month):
                continue
            for day in cron.days(year, month):
                if (year, month, day) < (earliest.year, earliest.month, earliest.day):
                    continue
                for hour in cron.hours:
                    for minute in cron.minutes:
                        for second in cron.seconds:
                            candidate = datetime(year, month, day, hour, minute, second)
                            if candidate < earliest:
                                continue
                            for instant in _instants(candidate, zone):
                                if _utc(instant) >= _utc(start):
                                    return instant
    return None


def _instants(local: datetime, zone: Any) -> list[datetime]:
    """The instants a local wall time names: none (skipped), one, or two (repeated)."""
    if zone is None:
        return [local]
    out: list[datetime] = []
    for fold in (0, 1):
        aware = local.replace(tzinfo=zone, fold=fold)
        back = aware.astimezone(_UTC).astimezone(zone).replace(tzinfo=None)
        if back == local and all(aware.utcoffset() != o.utcoffset() for o in out):
            out.append(aware)
    return sorted(out, key=_utc)


def _utc(moment: datetime) -> datetime:
    """An aware time in UTC: Python compares two times of one zone by wall clock, not instant."""
    return moment.astimezone(_UTC) if moment.tzinfo is not None else moment


def valid_time_zone(name: str) -> bool:
    """time.LoadLocation succeeds ("" and "UTC" and "Local" are always valid)."""
    if name in ("", "UTC", "Local"):
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(periodic: dict[str, Any]) -> ZoneInfo:
    """PeriodicConfig.GetLocation (UTC when empty)."""
    name = periodic["TimeZone"] or "UTC"
    return ZoneInfo("UTC" if name in ("UTC", "Local") else name)


def next_launch(job: dict[str, Any], after: datetime) -> datetime | None:
    """nomad/structs/structs.go:5985 PeriodicConfig.Next, in the job's time zone (periodic.go:217).

    None when the job is not periodic, periodic is disabled, or no instant matches.
    """
    p = job["Periodic"]
    if p is None or not p["Enabled"] or p["SpecType"] != "cron":
        return None
    local_after = after.astimezone(zone(p))
    specs = [p["Spec"]] if p["Spec"] else list(p["Specs"] or ())
    times = [t for t in (cron_next(parse_cron(s), local_after) for s in specs) if t is not None]
    return min(times, key=_utc) if times else None
