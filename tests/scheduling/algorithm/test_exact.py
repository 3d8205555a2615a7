"""The exact placement step: where the greedy and the local search miss the optimum, the
mixed-integer program finds it and proves it, and the result says so."""

from __future__ import annotations

from lens.scheduling.algorithm import Facilitator, Person, Problem, form_groups
from lens.scheduling.algorithm._exact import dive, most_placed
from lens.scheduling.algorithm._flow import assign
from lens.scheduling.algorithm._plan import Plan, build_index, extend
from lens.scheduling.algorithm._search import improve
from lens.scheduling.algorithm.grouping import simple_bound


def at(*starts: int) -> frozenset[int]:
    """Free for a one-hour meeting (two slots) at each start."""
    return frozenset(s + k for s in starts for k in range(2))


# Four times: Monday 00:00, 05:00, 10:00 and 15:00 UTC. Groups of 2 or 3.
# The most that can be placed is 7: Eve leads at 15:00 (Ann, Cat, Dan), Fay at 00:00 (Eli
# and one of Hal and Ivy) and Gil at 05:00 (Bea and the other); Flo, who can only come at
# 10:00, is then left out. Filling the busiest time first opens 10:00 with Bea,
# Cat and Flo under Eve, which leaves Ann and Dan at 15:00 without a facilitator: 6 placed.
MISSED = Problem(
    participants=(
        Person(1, at(30), frozenset()),  # Ann
        Person(2, at(10, 20), frozenset()),  # Bea
        Person(3, at(20, 30), frozenset()),  # Cat
        Person(4, at(30), frozenset()),  # Dan
        Person(5, at(0), frozenset()),  # Eli
        Person(6, at(20), frozenset()),  # Flo
        Person(7, at(0, 10), frozenset()),  # Hal
        Person(8, at(0, 10), frozenset()),  # Ivy
    ),
    facilitators=(
        Facilitator(100, at(0, 10), frozenset()),  # Fay
        Facilitator(101, at(20, 30), frozenset()),  # Eve
        Facilitator(102, at(0, 10), frozenset()),  # Gil
    ),
    meeting_slots=2,
    min_size=2,
    max_size=3,
)


def _heuristic(problem: Problem) -> int:
    index = build_index(problem)
    middle = (problem.min_size + problem.max_size + 1) // 2
    return max(
        len(assign(index, improve(index, extend(index, Plan(), fill))).placed())
        for fill in (None, middle)
    )


def test_the_heuristics_miss_what_the_program_proves() -> None:
    assert _heuristic(MISSED) == 6
    index = build_index(MISSED)
    assert simple_bound(index) == 8  # everyone has a time with a facilitator
    exact = most_placed(index, Plan(), node_limit=1000, seed=0)
    assert (exact.placed, exact.bound, exact.proven) == (7, 7, True)


def test_the_relaxation_rounded_finds_it_and_bounds_it() -> None:
    index = build_index(MISSED)
    rounded = dive(index)
    assert rounded.bound == 7 and rounded.plan is not None
    assert len(assign(index, rounded.plan).placed()) == 7


def test_form_groups_places_the_optimum_and_says_it_is_proven() -> None:
    result = form_groups(MISSED)
    assert result.placed == 7
    assert result.status == "optimal"
    assert result.upper_bound == 7  # the proven bound, not the 8 of the simple count
    assert [u.person_id for u in result.unplaced] == [6]  # Flo


def test_when_seats_are_what_binds_the_seats_are_the_bound() -> None:
    # Twice the cohort above with the same three facilitators: 16 people, 9 seats (three
    # groups of three), and a grouping that fills them all.
    twice = Problem(
        participants=MISSED.participants
        + tuple(Person(p.id + 10, p.available, p.if_needed) for p in MISSED.participants),
        facilitators=MISSED.facilitators,
        meeting_slots=2,
        min_size=2,
        max_size=3,
    )
    result = form_groups(twice)
    assert result.status == "optimal"
    assert result.placed == result.upper_bound == 9
    assert simple_bound(build_index(twice)) == 9


def test_without_facilitators_the_program_opens_groups_itself() -> None:
    # Five people at one time, groups of 2 or 3: two groups place all five.
    people = tuple(Person(i, at(0), frozenset()) for i in range(5))
    problem = Problem(people, (), 2, min_size=2, max_size=3, needs_facilitator=False)
    exact = most_placed(build_index(problem), Plan(), node_limit=1000, seed=0)
    assert (exact.placed, exact.proven) == (5, True)
    assert exact.plan is not None and exact.plan.groups == {0: 2}
