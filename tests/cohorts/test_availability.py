from __future__ import annotations

from datetime import date

import pytest

from lens.cohorts.availability import (
    check_slots,
    local_time,
    longest_run,
    meeting_weeks,
    to_utc,
)

MONDAY = 0


def at(day: int, hour: int, minute: int = 0) -> int:
    return day * 48 + hour * 2 + minute // 30


def span(day: int, start: float, end: float) -> frozenset[int]:
    return frozenset(range(at(day, 0) + int(start * 2), at(day, 0) + int(end * 2)))


def test_a_berlin_evening_across_the_dst_change() -> None:
    # Europe switches to summer time on 2027-03-28: Monday 19:00 Berlin is 18:00 UTC
    # before and 17:00 UTC after. Only what is true in every week counts.
    weeks = meeting_weeks(date(2027, 3, 17), 4)
    assert weeks[0] == date(2027, 3, 15)
    sure, maybe = to_utc("Europe/Berlin", span(MONDAY, 19, 21), frozenset(), weeks)
    assert sure == {at(MONDAY, 18), at(MONDAY, 18, 30)} and maybe == frozenset()
    # Before the change alone, the whole two hours line up.
    before, _ = to_utc("Europe/Berlin", span(MONDAY, 19, 21), frozenset(), weeks[:2])
    assert before == span(MONDAY, 18, 20)


def test_a_meeting_at_a_utc_slot_is_the_same_local_time_in_summer_and_winter() -> None:
    assert f"{local_time(at(MONDAY, 18), date(2027, 3, 15), 'Europe/Berlin'):%H:%M}" == "19:00"
    assert f"{local_time(at(MONDAY, 18), date(2027, 3, 29), 'Europe/Berlin'):%H:%M}" == "20:00"


def test_quarter_hour_zones_keep_only_whole_utc_slots() -> None:
    # Kathmandu is UTC+5:45: 19:00-21:00 there is 13:15-15:15 UTC.
    sure, _ = to_utc("Asia/Kathmandu", span(MONDAY, 19, 21), frozenset(), [date(2027, 1, 4)])
    assert sure == span(MONDAY, 13.5, 15)


def test_times_wrap_across_the_end_of_the_week() -> None:
    # Monday 07:00-09:00 in Auckland (UTC+13 in January) is Sunday 18:00-20:00 UTC.
    sure, _ = to_utc("Pacific/Auckland", span(MONDAY, 7, 9), frozenset(), [date(2027, 1, 4)])
    assert sure == span(6, 18, 20)


def test_if_needed_is_what_is_possible_but_not_sure() -> None:
    sure, maybe = to_utc(
        "UTC", span(2, 18, 19), span(2, 19, 20), meeting_weeks(date(2027, 1, 6), 2)
    )
    assert sure == span(2, 18, 19) and maybe == span(2, 19, 20)


def test_slot_helpers() -> None:
    assert longest_run(span(1, 10, 12) | span(1, 13, 14)) == 4
    assert longest_run(span(6, 23, 24) | span(0, 0, 1)) == 4  # Sunday night into Monday
    assert check_slots(["3", 4], field="x") == {3, 4}
    with pytest.raises(ValueError, match="outside the week"):
        check_slots([336], field="available")
    with pytest.raises(ValueError, match="not a slot number"):
        check_slots(["evening"], field="available")
