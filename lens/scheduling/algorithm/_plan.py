"""What both the greedy and the solver work on: candidate slots, and a plan per start slot.

People who meet at the same start slot are interchangeable, so a plan only says who meets
at which slot and how many groups (with which facilitators) run there. Any count k of
members with min_size * n <= k <= max_size * n splits into n groups of near-even sizes
(sizes k // n and k // n + 1), so a plan that keeps those bounds is always valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lens.scheduling.algorithm.check import meetings_overlap
from lens.scheduling.algorithm.problem import (
    Change,
    ChangeKind,
    Group,
    Problem,
    Tier,
    Unplaced,
    UnplacedReason,
    attendable_starts,
)


@dataclass
class Index:
    """The problem seen from its start slots. People are referred to by position."""

    problem: Problem
    # Every start slot each person can attend, with its tier.
    starts: list[dict[int, Tier]]
    facilitator_starts: list[dict[int, Tier]]
    # How many participants can attend each start slot at all.
    attendance: dict[int, int]
    # Start slots where a group could run: enough participants, and a facilitator if needed.
    viable: list[int]
    # The viable part of starts, and the viable slots of facilitators who may lead at all.
    options: list[dict[int, Tier]]
    facilitator_options: list[list[int]]


def build_index(problem: Problem) -> Index:
    m = problem.meeting_slots
    starts = [attendable_starts(p, m) for p in problem.participants]
    facilitator_starts = [attendable_starts(f, m) for f in problem.facilitators]
    attendance: dict[int, int] = {}
    for person_starts in starts:
        for slot in person_starts:
            attendance[slot] = attendance.get(slot, 0) + 1
    led_slots: set[int] = set()
    for facilitator, slots in zip(problem.facilitators, facilitator_starts, strict=True):
        if facilitator.max_groups > 0:
            led_slots.update(slots)
    viable = sorted(
        slot
        for slot, count in attendance.items()
        if count >= problem.min_size and (slot in led_slots or not problem.needs_facilitator)
    )
    viable_set = set(viable)
    options = [{s: t for s, t in person.items() if s in viable_set} for person in starts]
    facilitator_options = [
        sorted(s for s in slots if s in viable_set) if f.max_groups > 0 else []
        for f, slots in zip(problem.facilitators, facilitator_starts, strict=True)
    ]
    if not problem.needs_facilitator:
        facilitator_options = [[] for _ in problem.facilitators]
    return Index(
        problem, starts, facilitator_starts, attendance, viable, options, facilitator_options
    )


@dataclass
class Plan:
    """Who meets at which start slot. groups[s] counts the groups at s; with facilitators,
    leaders[s] names them (by position), one per group."""

    members: dict[int, list[int]] = field(default_factory=dict)
    groups: dict[int, int] = field(default_factory=dict)
    leaders: dict[int, list[int]] = field(default_factory=dict)

    def placed(self) -> set[int]:
        return {p for people in self.members.values() for p in people}


class _Facilitators:
    """Which facilitator could still lead a group at a slot, given the plan so far."""

    def __init__(self, index: Index, plan: Plan) -> None:
        self.index = index
        self.led: list[list[int]] = [[] for _ in index.problem.facilitators]
        for slot, leaders in plan.leaders.items():
            for f in leaders:
                self.led[f].append(slot)
        self.at: dict[int, list[int]] = {}
        for f, slots in enumerate(index.facilitator_options):
            for slot in slots:
                self.at.setdefault(slot, []).append(f)

    def is_free(self, f: int, slot: int) -> bool:
        facilitator = self.index.problem.facilitators[f]
        led = self.led[f]
        m = self.index.problem.meeting_slots
        return len(led) < facilitator.max_groups and not any(
            meetings_overlap(slot, other, m) for other in led
        )

    def pick(self, slot: int) -> int | None:
        """The free facilitator at slot with the fewest viable slots (keeps flexible ones)."""
        free = [f for f in self.at.get(slot, []) if self.is_free(f, slot)]
        if not free:
            return None
        return min(free, key=lambda f: (len(self.index.facilitator_options[f]), f))


def extend(index: Index, plan: Plan, fill_to: int | None = None) -> Plan:
    """Place whoever a simple greedy can still place, keeping every placed person in place.

    First unplaced people join groups with room at one of their slots; then, while some slot
    can open one more group (enough unplaced people there and a free facilitator), the slot
    that places the most people opens one. The most constrained people are taken first.
    With an empty plan this is the whole greedy; after the solver it is a safety net.
    New groups are filled up to fill_to members (default max_size): a smaller number
    spreads people over more groups, which the local search can still fill up.
    """
    problem = index.problem
    lo, hi = problem.min_size, problem.max_size
    fill_to = hi if fill_to is None else max(lo, min(hi, fill_to))
    members = {s: list(people) for s, people in plan.members.items()}
    groups = dict(plan.groups)
    leaders = {s: list(fs) for s, fs in plan.leaders.items()}
    placed = {p for people in members.values() for p in people}
    unplaced = [p for p in range(len(problem.participants)) if p not in placed and index.options[p]]

    def constrained_first(p: int, slot: int) -> tuple[int, int, int]:
        tier_rank = 0 if index.options[p][slot] is Tier.AVAILABLE else 1
        return (len(index.options[p]), tier_rank, problem.participants[p].id)

    # 1. Room in existing groups.
    unplaced.sort(key=lambda p: (len(index.options[p]), problem.participants[p].id))
    still: list[int] = []
    for p in unplaced:
        room = [
            s
            for s in index.options[p]
            if groups.get(s, 0) and len(members.get(s, [])) < hi * groups[s]
        ]
        if room:
            best = max(room, key=lambda s: (index.options[p][s], -s))
            members.setdefault(best, []).append(p)
        else:
            still.append(p)

    # 2. Open new groups.
    waiting: dict[int, set[int]] = {}
    for p in still:
        for slot in index.options[p]:
            waiting.setdefault(slot, set()).add(p)
    facilitators = _Facilitators(index, Plan(members, groups, leaders))
    no_leader: set[int] = set()
    while True:
        best_slot, best_gain = -1, 0
        for slot, people in waiting.items():
            k, n = len(members.get(slot, [])), groups.get(slot, 0)
            if slot in no_leader or k + len(people) < lo * (n + 1):
                continue
            gain = min(len(people), fill_to * (n + 1) - k)
            if gain > best_gain or (gain == best_gain and slot < best_slot):
                if problem.needs_facilitator and facilitators.pick(slot) is None:
                    no_leader.add(slot)  # facilitators only ever get busier
                    continue
                best_slot, best_gain = slot, gain
        if best_gain <= 0:
            break
        slot = best_slot
        if problem.needs_facilitator:
            f = facilitators.pick(slot)
            assert f is not None
            leaders.setdefault(slot, []).append(f)
            facilitators.led[f].append(slot)
        groups[slot] = groups.get(slot, 0) + 1
        chosen = sorted(waiting[slot], key=lambda p: constrained_first(p, slot))[:best_gain]
        members.setdefault(slot, []).extend(chosen)
        for p in chosen:
            for other in index.options[p]:
                waiting[other].discard(p)
    return Plan(members, groups, leaders)


def to_groups(index: Index, plan: Plan) -> list[Group]:
    """Split each slot's members into its groups, sizes as even as possible, ids ascending."""
    problem = index.problem
    out: list[Group] = []
    for slot in sorted(plan.groups):
        n = plan.groups[slot]
        if n == 0:
            continue
        ids = sorted(problem.participants[p].id for p in plan.members.get(slot, []))
        leaders = sorted(problem.facilitators[f].id for f in plan.leaders.get(slot, []))
        size, extra = divmod(len(ids), n)
        start = 0
        for g in range(n):
            end = start + size + (1 if g < extra else 0)
            leader = leaders[g] if problem.needs_facilitator else None
            out.append(Group(slot, tuple(ids[start:end]), leader))
            start = end
    return out


def reasons(index: Index, plan: Plan) -> list[Unplaced]:
    """Why each unplaced participant is unplaced: the first of these that is true.

    no_availability: no start slot they can attend. no_shared_slot: at none of those slots can
    min_size participants (them included) attend. no_facilitator: no facilitator can attend
    any slot that passes that test. facilitator_capacity: each facilitator who can is at
    max_groups or leads an overlapping group. groups_full: otherwise (some slot has a free
    facilitator, but the groups there are full and too few are left to open another).
    """
    problem = index.problem
    placed = plan.placed()
    facilitators = _Facilitators(index, plan)
    waiting: dict[int, int] = {}  # start slot -> unplaced participants who can come
    for p, starts in enumerate(index.starts):
        if p not in placed:
            for slot in starts:
                waiting[slot] = waiting.get(slot, 0) + 1
    out: list[Unplaced] = []
    for p, person in enumerate(problem.participants):
        if p in placed:
            continue
        reason = UnplacedReason.GROUPS_FULL
        shared = [s for s in index.starts[p] if index.attendance[s] >= problem.min_size]
        if not index.starts[p]:
            reason = UnplacedReason.NO_AVAILABILITY
        elif not shared:
            reason = UnplacedReason.NO_SHARED_SLOT
        elif problem.needs_facilitator:
            led = [s for s in shared if facilitators.at.get(s)]
            if not led:
                reason = UnplacedReason.NO_FACILITATOR
            elif all(facilitators.pick(s) is None for s in led):
                reason = UnplacedReason.FACILITATOR_CAPACITY
        out.append(Unplaced(person.id, reason, _change(index, plan, p, waiting)))
    return out


def _change(index: Index, plan: Plan, p: int, waiting: dict[int, int]) -> Change | None:
    """A change that would place participant p and keep everyone placed where they are:
    a facilitator (or, without facilitators, nothing more) at the time the most unplaced
    people share with them, if at least min_size do; else one more seat in a full group at
    one of their times. None when neither would."""
    problem = index.problem
    lo, hi = problem.min_size, problem.max_size
    starts = index.starts[p]
    if problem.needs_facilitator:
        together = [(min(waiting[s], hi), -s) for s in starts if waiting[s] >= lo]
        if together:
            size, slot = max(together)
            return Change(ChangeKind.FACILITATOR, -slot, size)
    full = sorted(s for s in starts if plan.groups.get(s, 0))
    if full:
        return Change(ChangeKind.LARGER_GROUPS, full[0], hi + 1)
    return None
