"""The exact placement step: where the greedy and the local search miss the optimum, the
mixed-integer program finds it and proves it, and the result says so."""

from __future__ import annotations

import random

import highspy
import pytest

from lens.scheduling.algorithm import (
    Facilitator,
    Person,
    Problem,
    _exact,
    check_groups,
    form_groups,
    grouping,
)
from lens.scheduling.algorithm._exact import Dive, Neighbourhoods, dive, most_placed
from lens.scheduling.algorithm._flow import assign
from lens.scheduling.algorithm._plan import Plan, build_index, extend, to_groups
from lens.scheduling.algorithm._search import improve
from lens.scheduling.algorithm.grouping import _exact_neighbourhoods, simple_bound
from tests.scheduling.algorithm.builders import at

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


def _heuristic_plan(problem: Problem) -> Plan:
    index = build_index(problem)
    middle = (problem.min_size + problem.max_size + 1) // 2
    return max(
        (assign(index, improve(index, extend(index, Plan(), fill))) for fill in (None, middle)),
        key=lambda plan: len(plan.placed()),
    )


def _heuristic(problem: Problem) -> int:
    return len(_heuristic_plan(problem).placed())


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


def test_a_neighbourhood_keeps_what_it_fixes_and_frees_what_it_frees() -> None:
    index = build_index(MISSED)
    plan = _heuristic_plan(MISSED)
    search = Neighbourhoods(index, node_limit=1000, seed=0)
    assert len(search.units) == 2  # Eve; Fay and Gil (the same times, one group each)
    kept = search.search(plan, set(), from_plan=True)
    assert kept.placed == 6 and kept.plan is not None
    assert len(assign(index, kept.plan).placed()) == 6
    # Neither unit alone places a seventh: Eve at 15:00 (Ann, Cat, Dan) needs Gil at
    # 05:00 for Bea.
    for unit in (0, 1):
        assert search.search(plan, {unit}, from_plan=unit == 0).placed == 6
    freed = search.search(plan, {0, 1}, from_plan=False)
    assert freed.placed == 7 and freed.plan is not None
    assert freed.plan.groups == {0: 1, 10: 1, 30: 1}
    assert len(assign(index, freed.plan).placed()) == 7


def test_the_walk_through_neighbourhoods_reaches_the_optimum_from_the_heuristics(
    monkeypatch,
) -> None:
    monkeypatch.setattr(grouping, "_EXACT_NEIGHBOURHOOD_SHARE", 1.0)  # two units: free both
    index = build_index(MISSED)
    plan = _heuristic_plan(MISSED)
    best, spent, improved = _exact_neighbourhoods(index, plan, 8, budget=10.0, seed=3)
    assert len(best.placed()) == 7 and improved and spent > 0
    again, _, _ = _exact_neighbourhoods(index, plan, 8, budget=10.0, seed=3)
    assert (again.groups, again.leaders, again.members) == (best.groups, best.leaders, best.members)


def test_the_walk_stops_at_the_bound_and_within_its_budget() -> None:
    index = build_index(MISSED)
    plan = _heuristic_plan(MISSED)
    same, spent, improved = _exact_neighbourhoods(index, plan, 6, budget=10.0, seed=0)
    assert same is plan and spent == 0 and not improved  # 6 placed is the bound given
    same, spent, improved = _exact_neighbourhoods(index, plan, 8, budget=0.0, seed=0)
    assert same is plan and spent == 0 and not improved


@pytest.mark.parametrize("dive_max", [0, 10**6])
def test_above_the_program_size_form_groups_walks_the_neighbourhoods(
    monkeypatch, dive_max: int
) -> None:
    # As on a cohort too large for the whole program: above the dive's size too, or with a
    # dive that found nothing.
    monkeypatch.setattr(grouping, "_EXACT_MAX_VARIABLES", 0)
    monkeypatch.setattr(grouping, "_DIVE_MAX_VARIABLES", dive_max)
    monkeypatch.setattr(grouping, "_EXACT_NEIGHBOURHOOD_SHARE", 1.0)
    monkeypatch.setattr(grouping, "dive", lambda index: Dive(None, None, 0, 0))
    walked: list[int] = []

    def spy(index, plan, bound, budget, seed):  # type: ignore[no-untyped-def]
        result = _exact_neighbourhoods(index, plan, bound, budget, seed)
        walked.append(len(result[0].placed()))
        return result

    monkeypatch.setattr(grouping, "_exact_neighbourhoods", spy)
    monkeypatch.setattr(grouping, "_large_neighbourhood_search", _no_search)
    result = form_groups(MISSED)
    assert walked == [7]
    assert result.placed == 7 and result.upper_bound == 8 and result.status == "feasible"


def _no_search(index, plan, budget):  # type: ignore[no-untyped-def]
    return plan, 0.0, False


def test_the_batched_dive_still_rounds_to_whole_groups() -> None:
    index = build_index(MISSED)
    rounded = dive(index)
    assert rounded.iterations > 0 and rounded.size > 0
    assert rounded.plan is not None
    assert all(n == len(rounded.plan.leaders.get(s, [])) for s, n in rounded.plan.groups.items())


def _scattered(seed: int, people: int, facilitators: int) -> Problem:
    """People and facilitators free in two or three scattered blocks of 2-3 hours."""
    rng = random.Random(seed)

    def blocks() -> frozenset[int]:
        free: set[int] = set()
        for _ in range(rng.choice([2, 3])):
            start = rng.randrange(0, 336 - 6)
            free |= set(range(start, start + rng.choice([4, 5, 6])))
        return frozenset(free)

    return Problem(
        participants=tuple(Person(i, blocks(), frozenset()) for i in range(people)),
        facilitators=tuple(
            Facilitator(1000 + i, blocks(), frozenset(), rng.choice([1, 1, 2]))
            for i in range(facilitators)
        ),
        meeting_slots=3,
        min_size=3,
        max_size=6,
    )


def test_a_dive_that_raises_everything_at_once_falls_back_and_ends_whole(monkeypatch) -> None:
    # Raising every fractional count at once breaks a facilitator's limit or a clash of
    # times here: the dive must undo that raise, try one count, or cap it, and go on.
    index = build_index(_scattered(8, 120, 12))
    one_at_a_time = dive(index)
    monkeypatch.setattr(_exact, "_DIVE_BATCH", 1.0)
    failed: list[int] = []
    solve = highspy.Highs.run

    def run(highs: highspy.Highs) -> highspy.HighsStatus:
        status = solve(highs)
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            failed.append(1)
        return status

    monkeypatch.setattr(highspy.Highs, "run", run)
    batched = dive(index)
    assert failed  # the fallback ran
    assert batched.bound == one_at_a_time.bound and batched.plan is not None
    assert all(n == len(batched.plan.leaders.get(s, [])) for s, n in batched.plan.groups.items())
    groups = to_groups(index, assign(index, batched.plan))
    assert check_groups(index.problem, groups) == []
