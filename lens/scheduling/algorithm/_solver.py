"""The exact model, solved with CP-SAT, for the whole problem or for a neighbourhood.

Variables are per start slot, not per group (see _plan.py): x[t, s] people of type t who meet
at slot s, where a type is the participants with the same slots and tiers (interchangeable,
so counting them is exact and removes symmetry); y[f, s] facilitator f (or how many of a
type of interchangeable single-group facilitators) leads a group at s; n[s] the groups at s.
Constraints: min_size * n[s] <= sum_t x[t, s] <= max_size * n[s]; each type is placed at
most its count; each facilitator leads at most their capacity, never two overlapping groups.

Objectives: `placed`; and `preferences` = W * placed_in_available - deviation, where
deviation = sum_s |2 * members[s] - (min_size + max_size) * n[s]| measures how far each
slot's groups are from the middle size, and W exceeds any deviation, so the tier wins.

A Scope says what the model decides. The whole problem is one scope; a neighbourhood is a
set of slots, the people meeting there (or unplaced and able to), restricted to those slots,
and the facilitators' remaining capacity, with everything else fixed.

Determinism: one worker and CP-SAT's deterministic clock. Multi-worker search is faster on
paper but not reproducible, and its "interleaved" deterministic mode overshot its limits by
half and was slower than one worker on these models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ortools.sat.python import cp_model

from lens.scheduling.algorithm._plan import Index, Plan
from lens.scheduling.algorithm.check import meetings_overlap
from lens.scheduling.algorithm.problem import SLOTS_PER_WEEK, Tier

_FOUND = (cp_model.OPTIMAL, cp_model.FEASIBLE)


@dataclass(frozen=True)
class Scope:
    slots: list[int]
    options: list[dict[int, Tier]]  # per participant; empty when not decided here
    facilitator_slots: list[list[int]]  # per facilitator
    facilitator_capacity: list[int]  # groups each may still lead here


def whole(index: Index) -> Scope:
    return Scope(
        slots=list(index.viable),
        options=index.options,
        facilitator_slots=index.facilitator_options,
        facilitator_capacity=[f.max_groups for f in index.problem.facilitators],
    )


def neighbourhood(index: Index, plan: Plan, slots: set[int]) -> Scope:
    """Everything at `slots` becomes free; the rest of plan stays as it is."""
    problem = index.problem
    placed = plan.placed()
    inside = {p for s in slots for p in plan.members.get(s, [])}
    options = [
        {s: t for s, t in opts.items() if s in slots}
        if p in inside or (p not in placed and opts)
        else {}
        for p, opts in enumerate(index.options)
    ]
    fixed: list[list[int]] = [[] for _ in problem.facilitators]
    for s, leaders in plan.leaders.items():
        if s not in slots:
            for f in leaders:
                fixed[f].append(s)
    capacity = [f.max_groups - len(fixed[i]) for i, f in enumerate(problem.facilitators)]
    facilitator_slots = [
        [
            s
            for s in own
            if s in slots and not any(meetings_overlap(s, t, problem.meeting_slots) for t in held)
        ]
        if cap > 0
        else []
        for own, held, cap in zip(index.facilitator_options, fixed, capacity, strict=True)
    ]
    return Scope(sorted(slots), options, facilitator_slots, capacity)


class Model:
    def __init__(self, index: Index, scope: Scope) -> None:
        problem = index.problem
        self.index = index
        self.scope = scope
        self.model = cp_model.CpModel()
        model = self.model
        lo, hi = problem.min_size, problem.max_size
        in_scope = set(scope.slots)

        # Participant types.
        by_key: dict[tuple[tuple[int, Tier], ...], list[int]] = {}
        for p, options in enumerate(scope.options):
            if options:
                by_key.setdefault(tuple(sorted(options.items())), []).append(p)
        self.types = [
            (key, sorted(people, key=lambda p: problem.participants[p].id))
            for key, people in sorted(by_key.items())
        ]
        self.x: list[dict[int, cp_model.IntVar]] = []
        at_slot: dict[int, list[cp_model.IntVar]] = {s: [] for s in scope.slots}
        attendance = dict.fromkeys(scope.slots, 0)
        available: list[cp_model.IntVar] = []
        for key, people in self.types:
            count = len(people)
            xs: dict[int, cp_model.IntVar] = {}
            for slot, tier in key:
                var = model.new_int_var(0, count, f"x{len(self.x)}_{slot}")
                xs[slot] = var
                at_slot[slot].append(var)
                attendance[slot] += count
                if tier is Tier.AVAILABLE:
                    available.append(var)
            if len(xs) > 1 or count > 1:
                model.add(_sum(xs.values()) <= count)
            self.x.append(xs)

        # Facilitators: interchangeable single-group ones are counted per type, others get
        # one variable per slot so that their overlap and capacity rules can be stated.
        # (facilitators, their variables per slot, whether it is one multi-group facilitator)
        self.y: list[tuple[list[int], dict[int, cp_model.IntVar], bool]] = []
        leads_at: dict[int, list[cp_model.IntVar]] = {s: [] for s in scope.slots}
        most_groups = dict.fromkeys(scope.slots, 0)
        if problem.needs_facilitator:
            single: dict[tuple[int, ...], list[int]] = {}
            for f, slots in enumerate(scope.facilitator_slots):
                slots = [s for s in slots if s in in_scope]
                capacity = scope.facilitator_capacity[f]
                if not slots or capacity <= 0:
                    continue
                if capacity == 1:
                    single.setdefault(tuple(slots), []).append(f)
                    continue
                ys = {s: model.new_bool_var(f"y{f}_{s}") for s in slots}
                if capacity < len(slots):
                    model.add(_sum(ys.values()) <= capacity)
                for window in _overlap_windows(slots, problem.meeting_slots):
                    model.add_at_most_one(ys[s] for s in window)
                self.y.append(([f], ys, True))
            for shared_slots, fs in sorted(single.items()):
                ys = {s: model.new_int_var(0, len(fs), f"t{fs[0]}_{s}") for s in shared_slots}
                if len(ys) > 1:
                    model.add(_sum(ys.values()) <= len(fs))
                self.y.append((sorted(fs, key=lambda f: problem.facilitators[f].id), ys, False))
            for fs, ys, _ in self.y:
                for slot, var in ys.items():
                    leads_at[slot].append(var)
                    most_groups[slot] += len(fs)

        # Groups per slot: as many as leaders there, or free when no facilitator is needed.
        self.n: dict[int, cp_model.IntVar] = {}
        self.deviation: dict[int, cp_model.IntVar] = {}
        deviation_cap = 0
        for slot in scope.slots:
            k = _sum(at_slot[slot])
            if problem.needs_facilitator:
                n = _sum(leads_at[slot])
            else:
                most_groups[slot] = attendance[slot] // lo
                self.n[slot] = model.new_int_var(0, most_groups[slot], f"n{slot}")
                n = _sum([self.n[slot]])
            model.add(k <= hi * n)
            model.add(k >= lo * n)
            cap = (hi - lo) * most_groups[slot]
            deviation = model.new_int_var(0, cap, f"d{slot}")
            model.add(deviation >= 2 * k - (lo + hi) * n)
            model.add(deviation >= (lo + hi) * n - 2 * k)
            self.deviation[slot] = deviation
            deviation_cap += cap

        self.placed = _sum([var for xs in self.x for var in xs.values()])
        self.preferences = (deviation_cap + 1) * _sum(available) - _sum(self.deviation.values())
        free = sum(len(people) for _, people in self.types)
        # Placement first: one more placed outweighs any change in preferences.
        self.everything = (deviation_cap + 1) * (free + 1) * self.placed + self.preferences

    def hint(self, plan: Plan) -> None:
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        slot_of = {p: slot for slot, people in plan.members.items() for p in people}
        for (_, people), xs in zip(self.types, self.x, strict=True):
            totals = dict.fromkeys(xs, 0)
            for p in people:
                if slot_of.get(p) in totals:
                    totals[slot_of[p]] += 1
            for slot, var in xs.items():
                self.model.add_hint(var, totals[slot])
        led: dict[int, list[int]] = {}
        for slot, leaders in plan.leaders.items():
            for f in leaders:
                led.setdefault(f, []).append(slot)
        for fs, ys, _ in self.y:
            totals = dict.fromkeys(ys, 0)
            for f in fs:
                for slot in led.get(f, []):
                    if slot in totals:
                        totals[slot] += 1
            for slot, var in ys.items():
                self.model.add_hint(var, totals[slot])
        for slot, n in self.n.items():
            self.model.add_hint(n, plan.groups.get(slot, 0))
        middle2 = self.index.problem.min_size + self.index.problem.max_size
        for slot, deviation in self.deviation.items():
            members, groups = len(plan.members.get(slot, [])), plan.groups.get(slot, 0)
            self.model.add_hint(deviation, abs(2 * members - middle2 * groups))

    def read(self, solver: cp_model.CpSolver) -> Plan:
        """The solution for the scope's slots (only)."""
        plan = Plan()
        for (_, people), xs in zip(self.types, self.x, strict=True):
            queue = iter(people)
            for slot, var in xs.items():
                for _ in range(solver.value(var)):
                    plan.members.setdefault(slot, []).append(next(queue))
        for fs, ys, individual in self.y:
            queue = iter(fs)
            for slot, var in ys.items():
                for _ in range(solver.value(var)):
                    # A multi-group facilitator appears at each slot they lead; a type of
                    # single-group facilitators hands out a different one each time.
                    f = fs[0] if individual else next(queue)
                    plan.leaders.setdefault(slot, []).append(f)
        for slot, leaders in plan.leaders.items():
            plan.groups[slot] = len(leaders)
        for slot, n in self.n.items():
            if solver.value(n):
                plan.groups[slot] = solver.value(n)
        return plan


def _sum(terms: Iterable[cp_model.IntVar]) -> cp_model.LinearExpr:
    return cp_model.LinearExpr.sum(list(terms))


def _overlap_windows(slots: list[int], meeting_slots: int) -> list[list[int]]:
    """Maximal sets of slots whose meetings pairwise overlap, each of at least two slots.

    Two meetings overlap when their starts are less than meeting_slots apart (across the
    week's end), so each such set lies within meeting_slots consecutive starts.
    """
    windows = {
        frozenset(s for s in slots if (s - first) % SLOTS_PER_WEEK < meeting_slots)
        for first in slots
    }
    return sorted(
        sorted(w) for w in windows if len(w) > 1 and not any(w < other for other in windows)
    )


@dataclass(frozen=True)
class Outcome:
    plan: Plan | None  # for the scope's slots; None when no solution was found
    proven: bool  # optimal for this objective
    value: int  # objective value of plan (of the hint when plan is None)
    bound: int | None  # proven bound on the objective
    deterministic_seconds: float  # spent


def solve(
    model: Model,
    objective: cp_model.LinearExpr,
    hint: Plan,
    deterministic_seconds: float,
    seed: int,
    at_least: tuple[cp_model.LinearExpr, int] | None = None,
) -> Outcome:
    """Maximise objective from hint within the deterministic budget (wall backstop: 20x + 1 s)."""
    model.hint(hint)
    model.model.maximize(objective)
    if at_least is not None:
        expr, floor = at_least
        model.model.add(expr >= floor)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = 1
    params.random_seed = seed
    params.max_deterministic_time = deterministic_seconds
    # Only against a runaway: a deterministic second takes 2-2.5 wall seconds on an idle
    # 2-core machine and several times that on a loaded one, and a run cut by the wall clock
    # is no longer repeatable.
    params.max_time_in_seconds = 20 * deterministic_seconds + 1
    status = solver.solve(model.model)
    if status not in _FOUND:
        return Outcome(None, False, 0, None, solver.deterministic_time)
    return Outcome(
        model.read(solver),
        status == cp_model.OPTIMAL,
        round(solver.objective_value),
        int(solver.best_objective_bound + 1e-6),
        solver.deterministic_time,
    )
