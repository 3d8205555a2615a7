"""Local search that places more people without unplacing anyone for good.

With the groups per slot fixed, placing participants is a flow problem: an unplaced person
can be placed when an augmenting path exists (they take a seat at one of their slots, whose
occupant moves to another of their slots, ... until a slot with room). So the search:

1. augments for every unplaced person (exact for the current groups: afterwards nobody can
   be placed without more or other groups);
2. tries to open one more group at a slot unplaced people can attend, with a free
   facilitator (or one freed by handing one of their groups to a colleague); the new group
   is filled by pulling people along paths from the unplaced or from groups above min_size;
3. else tries to move a group, facilitator and all, to such a slot (its members beyond the
   remaining seats then look for places like everyone else);
4. keeps a change only when more people end up placed, and repeats until nothing helps.

Every step keeps each slot within min_size * groups..max_size * groups, so the plan stays
valid throughout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial

from lens.scheduling.algorithm._plan import Index, Plan
from lens.scheduling.algorithm.check import meetings_overlap

_UNPLACED = -1


class _State:
    def __init__(self, index: Index, plan: Plan) -> None:
        problem = index.problem
        self.index = index
        self.lo, self.hi = problem.min_size, problem.max_size
        self.options = [sorted(o) for o in index.options]
        self.attendees: dict[int, list[int]] = {s: [] for s in index.viable}
        for p, slots in enumerate(self.options):
            for s in slots:
                self.attendees[s].append(p)
        self.slot_of = [_UNPLACED] * len(problem.participants)
        self.members: dict[int, set[int]] = {s: set() for s in index.viable}
        for s, people in plan.members.items():
            for p in people:
                self.slot_of[p] = s
                self.members[s].add(p)
        self.groups = {s: plan.groups.get(s, 0) for s in index.viable}
        self.leaders = {s: list(plan.leaders.get(s, [])) for s in index.viable}
        self.led: list[list[int]] = [[] for _ in problem.facilitators]
        for s, fs in self.leaders.items():
            for f in fs:
                self.led[f].append(s)
        self.can_lead: dict[int, list[int]] = {s: [] for s in index.viable}
        for f, slots in enumerate(index.facilitator_options):
            for s in slots:
                self.can_lead[s].append(f)

    # -- bookkeeping --------------------------------------------------------------------

    def room(self, s: int) -> int:
        return self.hi * self.groups[s] - len(self.members[s])

    def surplus(self, s: int) -> int:
        return len(self.members[s]) - self.lo * self.groups[s]

    def move(self, p: int, to: int) -> None:
        here = self.slot_of[p]
        if here != _UNPLACED:
            self.members[here].discard(p)
        self.slot_of[p] = to
        if to != _UNPLACED:
            self.members[to].add(p)

    def unplaced(self) -> list[int]:
        return [p for p, s in enumerate(self.slot_of) if s == _UNPLACED and self.options[p]]

    def placed_count(self) -> int:
        return sum(1 for s in self.slot_of if s != _UNPLACED)

    def snapshot(self) -> tuple[list[int], dict[int, int], dict[int, list[int]]]:
        return (
            list(self.slot_of),
            dict(self.groups),
            {s: list(fs) for s, fs in self.leaders.items()},
        )

    def restore(self, saved: tuple[list[int], dict[int, int], dict[int, list[int]]]) -> None:
        slot_of, groups, leaders = saved
        for p, s in enumerate(slot_of):
            if self.slot_of[p] != s:
                self.move(p, s)
        self.groups = groups
        self.leaders = leaders
        self.led = [[] for _ in self.led]
        for s, fs in leaders.items():
            for f in fs:
                self.led[f].append(s)

    def plan(self) -> Plan:
        plan = Plan()
        for s in self.index.viable:
            if self.groups[s]:
                plan.groups[s] = self.groups[s]
                plan.members[s] = sorted(self.members[s])
                if self.leaders[s]:
                    plan.leaders[s] = list(self.leaders[s])
        return plan

    # -- facilitators -------------------------------------------------------------------

    def is_free(self, f: int, s: int, ignoring: int | None = None) -> bool:
        problem = self.index.problem
        led = [t for t in self.led[f] if t != ignoring]
        if ignoring is not None and len(led) == len(self.led[f]):
            return False
        return len(led) < problem.facilitators[f].max_groups and not any(
            meetings_overlap(s, t, problem.meeting_slots) for t in led
        )

    def free_leader(self, s: int) -> tuple[int, tuple[int, int, int] | None] | None:
        """A facilitator who can lead one more group at s: (f, None) when one is free, or
        (f, (t, f, g)) when f leads at t and colleague g could take that group over."""
        candidates = self.can_lead[s]
        free = [f for f in candidates if self.is_free(f, s)]
        if free:
            return min(free, key=lambda f: (len(self.index.facilitator_options[f]), f)), None
        for f in candidates:
            for t in self.led[f]:
                if not self.is_free(f, s, ignoring=t):
                    continue
                for g in self.can_lead[t]:
                    if g != f and self.is_free(g, t):
                        return f, (t, f, g)
        return None

    def add_group(self, s: int, leader: tuple[int, tuple[int, int, int] | None] | None) -> None:
        self.groups[s] += 1
        if leader is None:
            return
        f, swap = leader
        if swap is not None:
            t, old, new = swap
            self.leaders[t][self.leaders[t].index(old)] = new
            self.led[old].remove(t)
            self.led[new].append(t)
        self.leaders[s].append(f)
        self.led[f].append(s)

    # -- paths --------------------------------------------------------------------------

    def augment_all(self) -> None:
        """Augment for every unplaced person; afterwards none can be placed without more
        groups. A slot from which no slot with room can be reached stays so while people
        only move along augmenting paths (as in any max-flow), so failed searches are
        remembered and not repeated."""
        dead: set[int] = set()
        for p in self.unplaced():
            self.augment(p, dead)

    def augment(self, p: int, dead: set[int]) -> bool:
        """Place p along a path that ends at a slot with room; False if there is none."""
        parent: dict[int, tuple[int, int]] = {}  # slot -> (slot the mover came from, mover)
        queue: deque[int] = deque()
        for s in self.options[p]:
            if s not in dead:
                parent[s] = (_UNPLACED, p)
                queue.append(s)
        while queue:
            s = queue.popleft()
            if self.room(s) > 0:
                while True:
                    came_from, mover = parent[s]
                    self.move(mover, s)
                    if came_from == _UNPLACED:
                        return True
                    s = came_from
            for q in self.members[s]:
                for t in self.options[q]:
                    if t not in parent and t not in dead:
                        parent[t] = (s, q)
                        queue.append(t)
        dead.update(parent)
        return False

    def remove_group(self, s: int, f: int | None) -> None:
        """Close one group at s (led by f); members beyond the remaining seats are unplaced,
        those with the most other slots first (they are the likeliest to find a seat)."""
        self.groups[s] -= 1
        if f is not None:
            self.leaders[s].remove(f)
            self.led[f].remove(s)
        extra = len(self.members[s]) - self.hi * self.groups[s]
        if extra > 0:
            leaving = sorted(self.members[s], key=lambda p: (-len(self.options[p]), p))[:extra]
            for p in leaving:
                self.move(p, _UNPLACED)

    def pull(self, target: int) -> bool:
        """Bring one more person to target, from the unplaced if possible, else from a
        slot above its minimum; people in between shift along a path. False if impossible."""
        parent: dict[int, tuple[int, int]] = {target: (_UNPLACED, _UNPLACED)}
        queue = deque([target])
        spare: tuple[int, int] | None = None  # (slot needing one, person from a surplus slot)
        while queue:
            s = queue.popleft()
            for q in self.attendees[s]:
                here = self.slot_of[q]
                if here == _UNPLACED:
                    self._shift(parent, s, q)
                    return True
                if here in parent:
                    continue
                if spare is None and self.surplus(here) > 0:
                    spare = (s, q)
                parent[here] = (s, q)
                queue.append(here)
        if spare is None:
            return False
        self._shift(parent, *spare)
        return True

    def _shift(self, parent: dict[int, tuple[int, int]], s: int, newcomer: int) -> None:
        # newcomer moves into s; whoever was recorded as moving on from s does so, and so on.
        self.move(newcomer, s)
        while True:
            onward, mover = parent[s]
            if onward == _UNPLACED:
                return
            self.move(mover, onward)
            s = onward


def improve(index: Index, plan: Plan, max_rounds: int = 50) -> Plan:
    """A plan placing at least as many people as plan, usually more (see module doc)."""
    state = _State(index, plan)
    for _ in range(max_rounds):
        state.augment_all()
        waiting = state.unplaced()
        if not waiting:
            break
        # Slots an unplaced person could attend, most wanted first.
        demand: dict[int, int] = {}
        for p in waiting:
            for s in state.options[p]:
                demand[s] = demand.get(s, 0) + 1
        wanted = sorted(demand, key=lambda s: (-demand[s], s))
        if not _open_group(state, wanted) and not _move_group(state, wanted):
            break
    return state.plan()


def _open_group(state: _State, wanted: list[int]) -> bool:
    """Open one more group at the first wanted slot where that places more people."""
    for s in wanted:
        leader = None
        if state.index.problem.needs_facilitator:
            leader = state.free_leader(s)
            if leader is None:
                continue
        if _try(state, partial(state.add_group, s, leader), s):
            return True
    return False


# Group moves tried per round: each costs a copy of the plan and a round of augmenting.
_MOVES_PER_ROUND = 200


def _move_group(state: _State, wanted: list[int]) -> bool:
    """Move one group (its facilitator with it) to a wanted slot, when that places more.

    This is what helps when facilitators are scarce: their groups should sit where most
    people can come. The emptiest groups are tried first, the most wanted slots first.
    """
    if not state.index.problem.needs_facilitator:
        return False  # groups are not limited, so opening one more is always possible
    groups = sorted(
        (
            (len(state.members[t]) / state.groups[t], t, f)
            for t, fs in state.leaders.items()
            for f in fs
        ),
    )
    tries = 0
    for _, t, f in groups:
        for s in wanted:
            if s == t or f not in state.can_lead[s] or not state.is_free(f, s, ignoring=t):
                continue
            tries += 1
            if tries > _MOVES_PER_ROUND:
                return False

            def relocate(t: int = t, f: int = f, s: int = s) -> None:
                state.remove_group(t, f)
                state.add_group(s, (f, None))

            if _try(state, relocate, s):
                return True
    return False


def _try(state: _State, change: Callable[[], None], s: int) -> bool:
    """Apply change (which adds a group at s), fill the group to its minimum and place
    whoever can be placed; keep it if more people are placed, else undo it."""
    before = state.placed_count()
    saved = state.snapshot()
    change()
    if all(state.pull(s) for _ in range(max(0, -state.surplus(s)))):
        state.augment_all()
        if state.placed_count() > before:
            return True
    state.restore(saved)
    return False
