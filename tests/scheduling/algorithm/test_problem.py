"""Availability arithmetic and input validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lens.scheduling.algorithm import SLOTS_PER_WEEK, Facilitator, Person, Problem, can_attend
from lens.scheduling.algorithm.problem import attendable_starts
from tests.scheduling.algorithm.builders import MON_18, people, span

week_slots = st.frozensets(st.integers(0, SLOTS_PER_WEEK - 1), max_size=60)


@settings(max_examples=80, deadline=None)
@given(week_slots, week_slots, st.integers(1, 6))
def test_fast_start_slots_agree_with_can_attend(
    available: frozenset[int], if_needed: frozenset[int], meeting_slots: int
) -> None:
    person = Person(1, available, if_needed - available)
    expected = {
        s: tier
        for s in range(SLOTS_PER_WEEK)
        if (tier := can_attend(person, s, meeting_slots)) is not None
    }
    assert attendable_starts(person, meeting_slots) == expected


def test_a_meeting_can_run_over_the_end_of_the_week() -> None:
    person = Person(1, span(SLOTS_PER_WEEK - 2, 4), frozenset())
    assert can_attend(person, SLOTS_PER_WEEK - 2, 4) is not None
    assert can_attend(person, SLOTS_PER_WEEK - 3, 4) is None


def test_invalid_people_are_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        Person(1, frozenset({1, 2}), frozenset({2}))
    with pytest.raises(ValueError, match="outside"):
        Person(1, frozenset({SLOTS_PER_WEEK}), frozenset())
    with pytest.raises(ValueError, match="max_groups"):
        Facilitator(1, frozenset(), frozenset(), max_groups=-1)


def test_invalid_problems_are_refused() -> None:
    group = people(1, 4, span(MON_18, 2))
    with pytest.raises(ValueError, match="unique"):
        Problem((*group, group[0]), (), meeting_slots=2)
    with pytest.raises(ValueError, match="both participant and facilitator"):
        Problem(tuple(group), (Facilitator(1, frozenset(), frozenset()),), meeting_slots=2)
    with pytest.raises(ValueError, match="min_size"):
        Problem(tuple(group), (), meeting_slots=2, min_size=5, max_size=4)
    with pytest.raises(ValueError, match="meeting_slots"):
        Problem(tuple(group), (), meeting_slots=0)
