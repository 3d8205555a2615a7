"""Weekly availability: local 30-minute slots in a person's zone, and their UTC meaning.

A person paints a week in their own time zone: slot 0 is Monday 00:00 local, slot 335
Sunday 23:30 local. Grouping works on UTC slots of a week (0 = Monday 00:00 UTC). The
same local choice means different UTC times in different weeks when a DST change falls
inside the cohort, so a UTC slot counts only if the person can make it in *every*
meeting week: the local choice is converted for each week's real dates and the results
are intersected. Zones with 15- or 45-minute offsets (Nepal, Chatham) work too: time is
converted in 15-minute cells, and a UTC slot counts when both of its cells are covered.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

SLOTS = 336  # 7 days x 48 half hours
_CELLS = SLOTS * 2  # 15-minute cells
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def check_slots(values: Iterable[object], *, field: str) -> frozenset[int]:
    """Slot numbers from a form or JSON, or ValueError saying what is wrong."""
    out = set()
    for value in values:
        try:
            slot = int(str(value))
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a slot number") from None
        if not 0 <= slot < SLOTS:
            raise ValueError(f"{field}: slot {slot} is outside the week (0-{SLOTS - 1})")
        out.add(slot)
    return frozenset(out)


def longest_run(slots: frozenset[int]) -> int:
    """The longest stretch of consecutive slots, wrapping from Sunday into Monday."""
    if len(slots) == SLOTS:
        return SLOTS
    best = 0
    for slot in slots:
        if (slot - 1) % SLOTS in slots:
            continue  # not the start of a stretch
        length = 0
        while (slot + length) % SLOTS in slots:
            length += 1
        best = max(best, length)
    return best


def meeting_weeks(start_date: date, meetings: int) -> list[date]:
    """The Monday of each week in which the cohort meets."""
    first_monday = start_date - timedelta(days=start_date.weekday())
    return [first_monday + timedelta(weeks=k) for k in range(max(meetings, 1))]


@cache
def _utc_cells(timezone: str, monday: date) -> tuple[int, ...]:
    """For each local slot of the week starting `monday`, the UTC 15-minute cell it starts in."""
    zone = zoneinfo.ZoneInfo(timezone)
    cells = []
    for slot in range(SLOTS):
        minutes = (slot % 48) * 30
        local = datetime.combine(
            monday + timedelta(days=slot // 48), time(minutes // 60, minutes % 60), zone
        )
        moment = local.astimezone(UTC)
        minute_of_week = moment.weekday() * 1440 + moment.hour * 60 + moment.minute
        cells.append(minute_of_week // 15)
    return tuple(cells)


def _utc_slots(cells_of: Sequence[int], local: frozenset[int]) -> set[int]:
    covered = bytearray(_CELLS)
    for slot in local:
        cell = cells_of[slot]
        covered[cell] = covered[(cell + 1) % _CELLS] = 1
    return {j for j in range(SLOTS) if covered[2 * j] and covered[2 * j + 1]}


def to_utc(
    timezone: str, available: frozenset[int], if_needed: frozenset[int], weeks: Sequence[date]
) -> tuple[frozenset[int], frozenset[int]]:
    """UTC slots (available, if needed) the person can make in every one of `weeks`."""
    sure: set[int] | None = None
    possible: set[int] | None = None
    for monday in weeks:
        cells = _utc_cells(timezone, monday)
        week_sure = _utc_slots(cells, available)
        week_possible = _utc_slots(cells, available | if_needed)
        sure = week_sure if sure is None else sure & week_sure
        possible = week_possible if possible is None else possible & week_possible
    sure, possible = sure or set(), possible or set()
    return frozenset(sure), frozenset(possible - sure)


def local_time(start_slot: int, monday: date, timezone: str) -> datetime:
    """When UTC weekly slot `start_slot` of the week starting `monday` is, in `timezone`."""
    moment = datetime.combine(monday, time(), UTC) + timedelta(minutes=30 * start_slot)
    return moment.astimezone(zoneinfo.ZoneInfo(timezone))
