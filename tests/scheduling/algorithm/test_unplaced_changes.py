"""For each person left out: whether any grouping could place them, and one change to the
cohort that would place them with everyone else kept where they are."""

from __future__ import annotations

from lens.scheduling.algorithm import (
    Change,
    ChangeKind,
    Facilitator,
    Person,
    Problem,
    UnplacedReason,
    form_groups,
)
from tests.scheduling.algorithm.builders import at


def test_a_facilitator_at_their_time_would_start_a_group() -> None:
    # Three people can only come at Monday 00:00, where no facilitator can; the one
    # facilitator leads the four at 10:00.
    problem = Problem(
        participants=(
            *(Person(i, at(0), frozenset()) for i in range(3)),
            *(Person(10 + i, at(20), frozenset()) for i in range(4)),
        ),
        facilitators=(Facilitator(100, at(20), frozenset()),),
        meeting_slots=2,
        min_size=3,
        max_size=5,
    )
    result = form_groups(problem)
    assert result.placed == 4 and result.status == "optimal"
    for u in result.unplaced:
        assert u.reason is UnplacedReason.NO_FACILITATOR
        assert not u.placeable  # no grouping at all places them
        assert u.change == Change(ChangeKind.FACILITATOR, 0, 3)


def test_one_more_seat_would_let_them_join_the_full_group() -> None:
    # Six people and one facilitator at the same time, groups of at most five.
    problem = Problem(
        participants=tuple(Person(i, at(0), frozenset()) for i in range(6)),
        facilitators=(Facilitator(100, at(0), frozenset()),),
        meeting_slots=2,
        min_size=2,
        max_size=5,
    )
    result = form_groups(problem)
    ((u,),) = [result.unplaced]
    assert u.reason is UnplacedReason.FACILITATOR_CAPACITY
    assert u.placeable  # another grouping could: in place of one of the five
    assert u.change == Change(ChangeKind.LARGER_GROUPS, 0, 6)


def test_no_change_is_offered_when_too_few_would_meet() -> None:
    # Two people at a time where groups need three: no facilitator would help them, and
    # no group runs there to join.
    problem = Problem(
        participants=(
            *(Person(i, at(0), frozenset()) for i in range(2)),
            *(Person(10 + i, at(20), frozenset()) for i in range(3)),
        ),
        facilitators=(Facilitator(100, at(0, 20), frozenset()),),
        meeting_slots=2,
        min_size=3,
        max_size=5,
    )
    result = form_groups(problem)
    assert sorted(u.person_id for u in result.unplaced) == [0, 1]
    for u in result.unplaced:
        assert u.reason is UnplacedReason.NO_SHARED_SLOT
        assert not u.placeable and u.change is None
