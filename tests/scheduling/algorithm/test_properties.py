"""Properties of form_groups on random small cohorts (Hypothesis).

The rules are re-checked here from the input, without check_groups, so that a bug shared by
form_groups and check_groups cannot hide; tiny cohorts are compared with brute force.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace
from functools import cache
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lens.scheduling.algorithm import (
    SLOTS_PER_WEEK,
    ChangeKind,
    Facilitator,
    Group,
    Person,
    Problem,
    Result,
    Tier,
    UnplacedReason,
    _exact,
    can_attend,
    check_groups,
    form_groups,
)
from lens.scheduling.algorithm._exact import Neighbourhoods, dive, most_placed
from lens.scheduling.algorithm._flow import assign
from lens.scheduling.algorithm._plan import Plan, build_index, to_groups
from lens.scheduling.algorithm.problem import attendable_starts

# Blocks of availability start near these: the end of the week and Monday evening, so that
# people overlap often enough to form groups, across the week's end too.
ANCHORS = (SLOTS_PER_WEEK - 2, 36)
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def availability(
    draw: st.DrawFn, anchors: tuple[int, ...], max_blocks: int, shortest: int
) -> tuple[frozenset[int], frozenset[int]]:
    available: set[int] = set()
    if_needed: set[int] = set()
    # Mostly one block; sometimes none (nothing to place) or more.
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, *range(1, max_blocks + 1)]))):
        start = draw(st.sampled_from(anchors)) + draw(st.integers(0, 2))
        length = draw(st.integers(shortest, 6))
        block = {(start + k) % SLOTS_PER_WEEK for k in range(length)}
        (if_needed if draw(st.booleans()) else available).update(block)
    return frozenset(available), frozenset(if_needed - available)


@st.composite
def problems(
    draw: st.DrawFn,
    max_participants: int = 12,
    max_facilitators: int = 3,
    max_blocks: int = 2,
    largest_min_size: int = 3,
    crowded: bool = False,
) -> Problem:
    """Random cohorts; crowded ones have many people at long blocks near one time, so
    groups compete for people and facilitators."""
    # One cluster of times (many groups possible) or two (fewer, and more choice).
    anchors = draw(st.sampled_from([ANCHORS[:1], ANCHORS[1:], ANCHORS]))
    shortest = 1
    fewest = 0
    if crowded:
        anchors, shortest, fewest = ANCHORS[1:], 3, max_participants // 2
    participants = []
    for i in range(draw(st.integers(fewest, max_participants))):
        available, if_needed = draw(availability(anchors, max_blocks, shortest))
        participants.append(Person(i + 1, available, if_needed))
    facilitators = []
    for i in range(draw(st.integers(0, max_facilitators))):
        available, if_needed = draw(availability(anchors, max_blocks, shortest))
        max_groups = draw(st.sampled_from([0, 1, 1, 2, 2]))
        facilitators.append(Facilitator(100 + i, available, if_needed, max_groups))
    min_size = draw(st.integers(1, largest_min_size))
    return Problem(
        participants=tuple(participants),
        facilitators=tuple(facilitators),
        meeting_slots=draw(st.sampled_from([1, 2, 2, 3])),
        min_size=min_size,
        max_size=draw(st.integers(min_size, 4)),
        needs_facilitator=draw(st.booleans()),
        seed=draw(st.integers(0, 3)),
        time_limit_seconds=1.0,
    )


def _overlap(a: int, b: int, meeting_slots: int) -> bool:
    distance = (a - b) % SLOTS_PER_WEEK
    return min(distance, SLOTS_PER_WEEK - distance) < meeting_slots


def _assert_rules_hold(problem: Problem, result: Result) -> None:
    m = problem.meeting_slots
    participants = {p.id: p for p in problem.participants}
    facilitators = {f.id: f for f in problem.facilitators}
    seen: list[int] = []
    led: dict[int, list[int]] = {}
    for group in result.groups:
        assert problem.min_size <= len(group.participant_ids) <= problem.max_size
        for person_id in group.participant_ids:
            assert can_attend(participants[person_id], group.start_slot, m) is not None
        seen.extend(group.participant_ids)
        if problem.needs_facilitator:
            assert group.facilitator_id is not None
            lead = facilitators[group.facilitator_id]
            assert can_attend(lead, group.start_slot, m) is not None
            led.setdefault(lead.id, []).append(group.start_slot)
        else:
            assert group.facilitator_id is None
    assert len(seen) == len(set(seen)), "someone is in two groups"
    for lead_id, starts in led.items():
        assert len(starts) <= facilitators[lead_id].max_groups
        for a, b in itertools.combinations(starts, 2):
            assert not _overlap(a, b, m)

    unplaced = [u.person_id for u in result.unplaced]
    assert sorted(seen + unplaced) == sorted(participants)
    assert result.placed == len(seen)
    assert result.placed_in_available == sum(
        1
        for g in result.groups
        for pid in g.participant_ids
        if can_attend(participants[pid], g.start_slot, m) is Tier.AVAILABLE
    )
    assert result.upper_bound is not None and result.placed <= result.upper_bound
    if result.status == "optimal":
        assert result.placed == result.upper_bound
    assert check_groups(problem, result.groups) == []


def _assert_reasons_are_true(problem: Problem, result: Result) -> None:
    m = problem.meeting_slots
    attendance = Counter(s for p in problem.participants for s in attendable_starts(p, m))
    led: dict[int, list[int]] = {}
    size_at: dict[int, list[int]] = {}
    for g in result.groups:
        size_at.setdefault(g.start_slot, []).append(len(g.participant_ids))
        if g.facilitator_id is not None:
            led.setdefault(g.facilitator_id, []).append(g.start_slot)
    unplaced_ids = {u.person_id for u in result.unplaced}
    people = {p.id: p for p in problem.participants}

    def leaders(s: int) -> list[Facilitator]:
        return [
            f for f in problem.facilitators if f.max_groups > 0 and can_attend(f, s, m) is not None
        ]

    def free(f: Facilitator, s: int) -> bool:
        mine = led.get(f.id, [])
        return len(mine) < f.max_groups and not any(_overlap(s, t, m) for t in mine)

    for u in result.unplaced:
        person = people[u.person_id]
        can = [s for s in range(SLOTS_PER_WEEK) if can_attend(person, s, m) is not None]
        shared = [s for s in can if attendance[s] >= problem.min_size]
        # Whatever the reason, every group at a time they can make is full.
        for s in can:
            assert all(size == problem.max_size for size in size_at.get(s, []))
        if u.reason is UnplacedReason.NO_AVAILABILITY:
            assert not can
            continue
        assert can
        if u.reason is UnplacedReason.NO_SHARED_SLOT:
            assert not shared
            continue
        assert shared
        with_leader = [s for s in shared if leaders(s)] if problem.needs_facilitator else shared
        if u.reason is UnplacedReason.NO_FACILITATOR:
            assert problem.needs_facilitator and not with_leader
            continue
        assert with_leader
        open_slots = [
            s
            for s in with_leader
            if not problem.needs_facilitator or any(free(f, s) for f in leaders(s))
        ]
        if u.reason is UnplacedReason.FACILITATOR_CAPACITY:
            assert problem.needs_facilitator and not open_slots
            continue
        assert u.reason is UnplacedReason.GROUPS_FULL
        assert open_slots
        for s in open_slots:  # too few left there to open another group
            waiting = sum(1 for pid in unplaced_ids if can_attend(people[pid], s, m))
            members = sum(size_at.get(s, []))
            assert members + waiting < problem.min_size * (len(size_at.get(s, [])) + 1)


def _assert_changes_place_them(problem: Problem, result: Result) -> None:
    """Each suggested change, made, lets the person in with every group as it is: a new
    facilitator free only then leads a new group of that size (them and others left out),
    or a maximum one larger lets them join the group there. And `placeable` is true exactly
    when some grouping places them: a group at one of their viable times."""
    m = problem.meeting_slots
    people = {p.id: p for p in problem.participants}
    out = {u.person_id for u in result.unplaced}
    index = build_index(problem)
    position = {p.id: i for i, p in enumerate(problem.participants)}
    for u in result.unplaced:
        assert u.placeable == bool(index.options[position[u.person_id]])
        change = u.change
        if change is None:
            continue
        s = change.start_slot
        assert can_attend(people[u.person_id], s, m) is not None
        if change.kind is ChangeKind.FACILITATOR:
            assert problem.needs_facilitator
            others = sorted(
                pid for pid in out - {u.person_id} if can_attend(people[pid], s, m) is not None
            )
            members = (u.person_id, *others[: change.group_size - 1])
            assert len(members) == change.group_size >= problem.min_size
            new = Facilitator(10**9, frozenset((s + k) % SLOTS_PER_WEEK for k in range(m)),
                              frozenset())  # fmt: skip
            changed = replace(problem, facilitators=(*problem.facilitators, new))
            groups = (*result.groups, Group(s, members, new.id))
        else:
            assert change.kind is ChangeKind.LARGER_GROUPS
            assert change.group_size == problem.max_size + 1
            changed = replace(problem, max_size=change.group_size)
            joined = next(g for g in result.groups if g.start_slot == s)
            groups = tuple(
                replace(g, participant_ids=(*g.participant_ids, u.person_id)) if g is joined else g
                for g in result.groups
            )
        assert check_groups(changed, groups) == []


@settings(FAST, max_examples=60)
@given(st.one_of(problems(), problems(max_participants=16, crowded=True)))
def test_groups_keep_every_rule_and_reasons_are_true(problem: Problem) -> None:
    result = form_groups(problem)
    _assert_rules_hold(problem, result)
    _assert_reasons_are_true(problem, result)
    _assert_changes_place_them(problem, result)


@settings(FAST, max_examples=10)
@given(problems(max_participants=30, max_facilitators=6, max_blocks=3, crowded=True))
def test_same_input_and_seed_give_the_same_groups(problem: Problem) -> None:
    assert form_groups(problem) == form_groups(problem)


def test_a_run_stopped_by_its_budget_is_repeatable() -> None:
    # 150 people in evening blocks across a few days, with "if needed" evenings: placement
    # is proven, and the steps after it (neighbourhoods, then preferences on the whole
    # model) stop at their budget, which is where a wall-clock limit would make runs differ.
    rng = random.Random(7)

    def evenings(count: int) -> frozenset[int]:
        days = rng.sample(range(5), count)
        starts = [34, 35, 36, 38]
        return frozenset(d * 48 + rng.choice(starts) + k for d in days for k in range(5))

    def slots(count: int) -> tuple[frozenset[int], frozenset[int]]:
        available = evenings(count)
        return available, evenings(1) - available

    cohort = Problem(
        participants=tuple(Person(i, *slots(3)) for i in range(150)),
        facilitators=tuple(Facilitator(1000 + i, *slots(3), 2) for i in range(25)),
        meeting_slots=3,
        seed=3,
        time_limit_seconds=1.0,
    )
    first = form_groups(cohort)
    assert form_groups(cohort) == first


def _brute_force(problem: Problem) -> tuple[int, int]:
    """Best (placed, placed in available time) by trying every assignment."""
    m, lo, hi = problem.meeting_slots, problem.min_size, problem.max_size
    choices = [[None, *sorted(attendable_starts(p, m).items())] for p in problem.participants]

    @cache
    def feasible(counts: tuple[tuple[int, int], ...]) -> bool:
        need: dict[int, int] = {}
        for s, k in counts:
            groups = -(-k // hi)  # the fewest groups that fit k; more only raise the minimum
            if groups * lo > k:
                return False
            need[s] = groups
        if not problem.needs_facilitator:
            return True
        return _cover(tuple(sorted(need.items())), problem.facilitators, m)

    best = (0, 0)
    for picks in itertools.product(*choices):
        placed = [c for c in picks if c is not None]
        counts = tuple(sorted(Counter(s for s, _ in placed).items()))
        score = (len(placed), sum(1 for _, tier in placed if tier is Tier.AVAILABLE))
        if score > best and feasible(counts):
            best = score
    return best


def _cover(
    need: tuple[tuple[int, int], ...], facilitators: tuple[Facilitator, ...], m: int
) -> bool:
    """Can the facilitators lead need[s] groups at each slot s?"""
    if all(n == 0 for _, n in need):
        return True
    if not facilitators:
        return False
    first, rest = facilitators[0], facilitators[1:]
    slots = [s for s, n in need if n > 0 and can_attend(first, s, m) is not None]
    for size in range(min(first.max_groups, len(slots)), -1, -1):
        for chosen in itertools.combinations(slots, size):
            if any(_overlap(a, b, m) for a, b in itertools.combinations(chosen, 2)):
                continue
            left = tuple((s, n - (s in chosen)) for s, n in need)
            if _cover(left, rest, m):
                return True
    return False


@settings(FAST, max_examples=60)
@given(problems(max_participants=5, max_facilitators=2, max_blocks=1, largest_min_size=2))
def test_tiny_cohorts_match_brute_force(problem: Problem) -> None:
    result = form_groups(problem)
    assert result.status == "optimal"
    best = _brute_force(problem)
    assert (result.placed, result.placed_in_available) == best
    assert result.upper_bound == best[0]
    # The exact program's optimum and bound, and the relaxation's bound, against the truth.
    index = build_index(problem)
    exact = most_placed(index, Plan(), node_limit=1000, seed=0)
    assert (exact.placed, exact.bound, exact.proven) == (best[0], best[0], True)
    rounded = dive(index)
    if index.viable:
        assert rounded.bound is not None and rounded.bound >= best[0]
        assert rounded.plan is not None
        placed = assign(index, rounded.plan)
        assert check_groups(problem, to_groups(index, placed)) == []
        # Every fractional count raised at once: when that has no solution, the dive falls
        # back to one, then to a floor, and still ends with whole, valid groups.
        with patch.object(_exact, "_DIVE_BATCH", 1.0):
            batched = dive(index)
        assert batched.bound == rounded.bound and batched.plan is not None
        placed = assign(index, batched.plan)
        assert check_groups(problem, to_groups(index, placed)) == []
        # A neighbourhood that frees every unit is the whole program.
        search = Neighbourhoods(index, node_limit=1000, seed=0)
        free = set(range(len(search.units)))
        assert search.search(Plan(), free, from_plan=False).placed == best[0]
