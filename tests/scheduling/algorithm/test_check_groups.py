"""check_groups finds every kind of broken rule, and names who and what to fix."""

from __future__ import annotations

from typing import Any

from lens.scheduling.algorithm import Group, Problem, check_groups
from tests.scheduling.algorithm.builders import (
    MON_18,
    SUN_2330,
    TUE_18,
    facilitator,
    people,
    problem,
    span,
)

MONDAY = span(MON_18, 2)


def _cohort(**kwargs: Any) -> Problem:
    return problem(
        [*people(1, 10, MONDAY), *people(20, 1, span(TUE_18, 2))],
        [
            facilitator(100, MONDAY | span(TUE_18, 2), max_groups=1),
            facilitator(101, MONDAY | span(MON_18 + 2, 2), max_groups=2),
        ],
        **kwargs,
    )


def _kinds(cohort: Problem, groups: list[Group]) -> list[str]:
    return [v.kind for v in check_groups(cohort, groups)]


def test_valid_groups_have_no_violations() -> None:
    groups = [Group(MON_18, (1, 2, 3, 4, 5), 100), Group(MON_18, (6, 7, 8, 9, 10), 101)]
    assert check_groups(_cohort(), groups) == []


def test_member_not_available_for_the_whole_meeting() -> None:
    # Participant 20 gave Tuesday only.
    [violation] = check_groups(_cohort(), [Group(MON_18, (1, 2, 3, 20), 100)])
    assert (violation.kind, violation.person_id, violation.group_index) == (
        "not_available",
        20,
        0,
    )
    assert "participant 20" in violation.message and "Mon 18:00 UTC" in violation.message


def test_half_a_meeting_is_not_enough() -> None:
    # Monday 18:30 start: the second half hour (19:00) is outside everyone's time.
    kinds = _kinds(_cohort(), [Group(MON_18 + 1, (1, 2, 3, 4), 101)])
    assert kinds == ["not_available"] * 4


def test_facilitator_not_available() -> None:
    [violation] = check_groups(_cohort(), [Group(TUE_18, (20, 1, 2, 3), 101)])[-1:]
    assert (violation.kind, violation.person_id) == ("not_available", 101)
    assert "facilitator 101" in violation.message


def test_too_small_and_too_large() -> None:
    cohort = _cohort(max_size=5)
    assert _kinds(cohort, [Group(MON_18, (1, 2, 3), 100)]) == ["too_small"]
    assert _kinds(cohort, [Group(MON_18, (1, 2, 3, 4, 5, 6), 100)]) == ["too_large"]


def test_missing_and_unexpected_facilitator() -> None:
    assert _kinds(_cohort(), [Group(MON_18, (1, 2, 3, 4), None)]) == ["no_facilitator"]
    no_facilitators = _cohort(needs_facilitator=False)
    assert _kinds(no_facilitators, [Group(MON_18, (1, 2, 3, 4), 100)]) == ["unexpected_facilitator"]
    assert check_groups(no_facilitators, [Group(MON_18, (1, 2, 3, 4), None)]) == []


def test_facilitator_over_capacity() -> None:
    groups = [Group(MON_18, (1, 2, 3, 4), 100), Group(TUE_18, (5, 6, 7, 8), 100)]
    violations = check_groups(_cohort(), groups)
    assert [v.kind for v in violations if v.kind != "not_available"] == [
        "facilitator_over_capacity"
    ]
    over = next(v for v in violations if v.kind == "facilitator_over_capacity")
    assert over.person_id == 100 and "at most 1" in over.message


def test_facilitator_overlap_but_back_to_back_is_fine() -> None:
    overlapping = [Group(MON_18, (1, 2, 3, 4), 101), Group(MON_18, (5, 6, 7, 8), 101)]
    assert _kinds(_cohort(), overlapping) == ["facilitator_overlap"]
    cohort = problem(
        [*people(1, 4, MONDAY), *people(5, 4, span(MON_18 + 2, 2))],
        [facilitator(101, span(MON_18, 4), max_groups=2)],
    )
    back_to_back = [Group(MON_18, (1, 2, 3, 4), 101), Group(MON_18 + 2, (5, 6, 7, 8), 101)]
    assert check_groups(cohort, back_to_back) == []


def test_overlap_across_the_end_of_the_week() -> None:
    around = span(SUN_2330 - 1, 4)  # Sunday 23:00 to Monday 01:00
    cohort = problem(
        [*people(1, 4, around), *people(5, 4, around)],
        [facilitator(101, around, max_groups=2)],
    )
    groups = [Group(SUN_2330, (1, 2, 3, 4), 101), Group(0, (5, 6, 7, 8), 101)]
    assert _kinds(cohort, groups) == ["facilitator_overlap"]


def test_participant_in_two_groups_or_twice_in_one() -> None:
    groups = [Group(MON_18, (1, 2, 3, 4), 100), Group(MON_18, (4, 5, 6, 7), 101)]
    [violation] = check_groups(_cohort(), groups)
    assert (violation.kind, violation.person_id, violation.group_index) == ("in_two_groups", 4, 1)
    assert "group #1" in violation.message
    assert _kinds(_cohort(), [Group(MON_18, (1, 2, 3, 3), 100)]) == ["in_two_groups"]


def test_unknown_people() -> None:
    kinds = _kinds(_cohort(), [Group(MON_18, (1, 2, 3, 999), 100)])
    assert kinds == ["unknown_person"]
    # A facilitator listed as a participant, and a participant as the facilitator.
    assert _kinds(_cohort(), [Group(MON_18, (1, 2, 3, 101), 100)]) == ["unknown_person"]
    assert _kinds(_cohort(), [Group(MON_18, (1, 2, 3, 4), 5)]) == ["unknown_person"]


def test_start_slot_outside_the_week() -> None:
    assert _kinds(_cohort(), [Group(400, (1, 2, 3, 4), 100)]) == ["invalid_slot"]
