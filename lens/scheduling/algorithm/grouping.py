"""form_groups: a fast heuristic, then CP-SAT to improve it and to prove what it can.

1. Greedy (_plan.extend), twice: filling new groups to max_size, and to the middle size.
2. Local search (_search.py): augmenting paths and opening groups. It usually places
   everyone who can be placed at all within a fraction of a second, even for thousands.
3. A min-cost flow (_flow.py) re-chooses the members for those groups: most placed, then
   most in their "available" tier, then sizes nearest the middle of min_size..max_size.
   The better of the two greedy starts is kept.
4. If fewer are placed than have any viable slot: the relaxation of a mixed-integer
   program (_exact.py, HiGHS), rounded a few decisions at a time (_exact.dive), gives
   groups and a proven bound; then the program itself finds the most that can be placed
   and proves it, within a node limit, and the flow chooses the members for its groups.
   On models too large for the whole program (above _EXACT_MAX_VARIABLES), and where it
   did not prove its answer, neighbourhoods of it (_exact.Neighbourhoods) re-decide a
   random share of the facilitators at a time, the rest fixed (from the heuristics' plan
   above _DIVE_MAX_VARIABLES). Above _NEIGHBOURHOODS_MAX_VARIABLES, CP-SAT maximises
   placement on the whole model (_solver.py) instead, hinted with the best so far, and
   proves what bound it can.
5. Large-neighbourhood search: CP-SAT re-solves one window of start slots at a time with
   everything else fixed, on the whole objective (placed, then tier, then evenness), and
   keeps any improvement; it stops after a pass without one.
6. With budget left and a model small enough, CP-SAT tries to prove the whole objective.

Every step only accepts a plan that is valid and scores at least as well as the last one.

Status: "optimal" once placement is proven (the placed count reaches a proven bound, from
whichever step); the later preferences are then the best found within the budget.

Determinism: all but the solvers is deterministic by construction (sorted iteration, ties
broken by ids and slots); HiGHS runs one thread and stops at a node limit, CP-SAT runs one
worker with the given seed and stops on its deterministic clock, so the same input and seed
give the same groups on any machine.

Time: time_limit_seconds buys CP-SAT _DETERMINISTIC_PER_SECOND deterministic seconds per
second, in total over all its runs, so that the whole call (heuristics included) takes about
time_limit_seconds or less on a 2-core machine; most cohorts finish sooner, when a pass of
neighbourhoods improves nothing; on a busy machine the call takes longer, never different
groups. Each CP-SAT run also has a wall-clock backstop against a runaway, at twenty times
its deterministic budget plus a second; only a machine slowed more than that can cut a
run short (the groups are then still valid, but not necessarily the same).
"""

from __future__ import annotations

import random

from lens.scheduling.algorithm._exact import Neighbourhoods, dive, most_placed
from lens.scheduling.algorithm._flow import assign
from lens.scheduling.algorithm._plan import Index, Plan, build_index, extend, reasons, to_groups
from lens.scheduling.algorithm._search import improve
from lens.scheduling.algorithm._solver import Model, neighbourhood, solve, whole
from lens.scheduling.algorithm.check import check_groups
from lens.scheduling.algorithm.problem import SLOTS_PER_WEEK, Group, Problem, Result, Tier

# CP-SAT's deterministic seconds per second of time_limit_seconds. On these models one
# deterministic second took 2 to 2.5 wall seconds (with model building) on a 2-core machine,
# and the heuristics need their share too.
_DETERMINISTIC_PER_SECOND = 0.25
# Share of the budget for maximising placement on the whole model, when needed.
_PLACEMENT_SHARE = 0.5
# Budget of one neighbourhood: improvements come early or not at all, so many short runs
# beat a few long ones.
_NEIGHBOURHOOD_SECONDS = 0.05
_NEIGHBOURHOOD_PASSES = 2
# The exact placement program (_exact.py): a branch-and-bound node limit (deterministic, unlike
# a time limit), and the largest model it is tried on. Where facilitators bind, it proved
# 200 participants (about 700 variables) in under 5 s and 300-350 (1,300-2,000) in 3-12 s;
# at 400-500 (2,300-3,300) its root alone took up to a minute and its 1,000 nodes up to
# four, so larger models go to the dive and the program's neighbourhoods, and above
# _NEIGHBOURHOODS_MAX_VARIABLES to CP-SAT's placement step.
_EXACT_NODES = 1000
_EXACT_MAX_VARIABLES = 2_000
# The relaxation rounded (_exact.dive) gives the program, or the neighbourhoods above its
# size, a far better start where facilitators bind: on a 2-core machine it took about 1 s
# at 2,300 variables (400 participants), 4-5 s at 6,100 (800) and 5-9 s at 8,000 (1,000),
# where the heuristics already came within 0.1 % of the bound.
_DIVE_MAX_VARIABLES = 7_000
# Then, up to the same size, neighbourhoods of the program (_exact.Neighbourhoods): a random
# share of the facilitators re-decided at a time, within a node limit, until this many in a
# row place nobody more (or the budget is spent). Where facilitators bind, at 400-800
# participants, they placed 1-7 more than the dive and reached 353, 358 and 369 of the
# proven optima 354, 358 and 370 (a walk that only took better plans stayed at 352 of 354
# for any share or node limit tried).
_EXACT_NEIGHBOURHOOD_NODES = 200
_EXACT_NEIGHBOURHOOD_SHARE = 0.4
_EXACT_NEIGHBOURHOOD_TRIES = 40
# Their share of the budget left: placement comes first (each person left out does not take
# the course). With half of it they reached 368 of 370 on one of those cohorts, with 0.8 369.
_EXACT_NEIGHBOURHOODS_SHARE = 0.8
# Without the dive, from the heuristics' plan, they placed all 1,000 of a cohort where the
# heuristics and CP-SAT placed 999 (8,100 variables; 4.5 s of neighbourhoods, 7.8 s in all).
_NEIGHBOURHOODS_MAX_VARIABLES = 10_000
# HiGHS's work is charged to the budget by simplex iterations (deterministic), at the cost
# one took on a 2-core machine: about 1/12,000 s up to a few thousand columns and rows, and
# (columns + rows) / 50 million s above (0.27 ms at 13,000, 0.34 ms at 17,000).
_EXACT_ITERATIONS_PER_SECOND = 12_000
_EXACT_SIZE_PER_SECOND = 50e6
# Shares of the budget the steps after placement may use: the neighbourhoods, then the
# preferences on the whole model once placement is proven. Their gains come early, and a
# cohort of 200 should not wait seconds more for them (issue 21: under 5 s at 200). On these
# models the whole-model step took up to 4 wall seconds per deterministic second.
_NEIGHBOURHOODS_SHARE = 0.3
_PREFERENCES_SHARE = 0.15
# Whole models above this many variables take CP-SAT seconds just to load and presolve;
# they are left to the heuristic and the neighbourhoods.
_WHOLE_MODEL_MAX_VARIABLES = 30_000

Score = tuple[int, int, int]


def form_groups(problem: Problem) -> Result:
    """Groups that place as many participants as possible, then prefer "available" time,
    then group sizes near the middle of min_size..max_size; and why the others are not placed.
    """
    index = build_index(problem)
    middle = (problem.min_size + problem.max_size + 1) // 2
    starts = [assign(index, improve(index, extend(index, Plan(), fill))) for fill in (None, middle)]
    plan = max(starts, key=lambda p: _score(index, p))
    upper_bound = simple_bound(index)
    placement_proven = len(plan.placed()) == upper_bound
    solver_helped = False
    budget = initial_budget = problem.time_limit_seconds * _DETERMINISTIC_PER_SECOND
    variables = sum(map(len, index.options)) + sum(map(len, index.facilitator_options))
    small = bool(index.viable) and variables <= _WHOLE_MODEL_MAX_VARIABLES
    whole_model = Model(index, whole(index)) if small else None

    if not placement_proven and index.viable and variables <= _DIVE_MAX_VARIABLES:
        rounded = dive(index)
        budget -= _exact_cost(rounded.iterations, rounded.size)
        if rounded.bound is not None:
            upper_bound = min(upper_bound, rounded.bound)
        if rounded.plan is not None:
            candidate = assign(index, improve(index, assign(index, rounded.plan)))
            if _better(index, candidate, plan):
                plan, solver_helped = candidate, True
        placement_proven = len(plan.placed()) == upper_bound
        solver_helped = solver_helped or placement_proven

    exact_ran = False
    if not placement_proven and index.viable and variables <= _EXACT_MAX_VARIABLES:
        exact = most_placed(index, plan, _EXACT_NODES, problem.seed)
        exact_ran = True
        budget -= _exact_cost(exact.iterations, exact.size)
        if exact.bound is not None:
            upper_bound = min(upper_bound, exact.bound)
        if exact.plan is not None:
            candidate = assign(index, exact.plan)
            if _better(index, candidate, plan):
                plan, solver_helped = candidate, True
        placement_proven = len(plan.placed()) == upper_bound
        solver_helped = solver_helped or placement_proven

    if not placement_proven and index.viable and variables <= _NEIGHBOURHOODS_MAX_VARIABLES:
        seconds = _EXACT_NEIGHBOURHOODS_SHARE * budget
        plan, spent, improved = _exact_neighbourhoods(
            index, plan, upper_bound, seconds, problem.seed
        )
        budget -= spent
        exact_ran = True
        placement_proven = len(plan.placed()) == upper_bound
        solver_helped = solver_helped or improved or placement_proven

    if whole_model is not None and not placement_proven and not exact_ran:
        model = whole_model
        outcome = solve(model, model.placed, plan, _PLACEMENT_SHARE * budget, problem.seed)
        budget -= outcome.deterministic_seconds
        if outcome.bound is not None:
            upper_bound = min(upper_bound, outcome.bound)
        placement_proven = outcome.proven
        solver_helped = solver_helped or outcome.proven
        if outcome.plan is not None:
            candidate = assign(index, improve(index, outcome.plan))
            if _better(index, candidate, plan):
                plan, solver_helped = candidate, True

    if index.viable:
        seconds = min(budget, _NEIGHBOURHOODS_SHARE * initial_budget)
        plan, spent, improved = _large_neighbourhood_search(index, plan, seconds)
        budget -= spent
        solver_helped = solver_helped or improved

    placement_proven = placement_proven or len(plan.placed()) == upper_bound
    if placement_proven and budget > 0 and whole_model is not None:
        model = whole_model
        floor = (model.placed, len(plan.placed()))
        seconds = min(budget, _PREFERENCES_SHARE * initial_budget)
        outcome = solve(model, model.preferences, plan, seconds, problem.seed, floor)
        solver_helped = solver_helped or outcome.proven
        if outcome.plan is not None:
            candidate = assign(index, outcome.plan)
            if _better(index, candidate, plan):
                plan, solver_helped = candidate, True

    plan = extend(index, plan)  # a safety net: adds anyone still placeable, moves nobody
    groups = to_groups(index, plan)
    if check_groups(problem, groups):  # never expected: a bug must not reach the admin
        raise AssertionError(f"invalid groups formed: {check_groups(problem, groups)[:3]}")
    if not index.viable or placement_proven:
        status = "optimal"
    elif solver_helped:
        status = "feasible"
    else:
        status = "greedy"
    return Result(
        groups=tuple(groups),
        unplaced=tuple(reasons(index, plan)),
        placed=sum(len(g.participant_ids) for g in groups),
        placed_in_available=_in_available(index, groups),
        status=status,
        upper_bound=upper_bound,
    )


def simple_bound(index: Index) -> int:
    """At most everyone with a viable slot (often reached), and at most max_size times the
    groups the facilitators may lead."""
    problem = index.problem
    bound = sum(1 for options in index.options if options)
    if problem.needs_facilitator:
        groups = sum(
            min(f.max_groups, len(slots))
            for f, slots in zip(problem.facilitators, index.facilitator_options, strict=True)
        )
        bound = min(bound, problem.max_size * groups)
    return bound


def _exact_cost(iterations: int, size: int) -> float:
    """HiGHS's simplex iterations on a program of `size` columns and rows, in deterministic
    seconds of the budget."""
    per_iteration = max(1 / _EXACT_ITERATIONS_PER_SECOND, size / _EXACT_SIZE_PER_SECOND)
    return iterations * per_iteration * _DETERMINISTIC_PER_SECOND


def _exact_neighbourhoods(
    index: Index, plan: Plan, bound: int, budget: float, seed: int
) -> tuple[Plan, float, bool]:
    """Re-decide random shares of the units (facilitators, or slots' groups when none are
    needed) with the program, walking from plan to plan with at least as many placed, until
    placement reaches the bound, the budget is spent, or _EXACT_NEIGHBOURHOOD_TRIES in a row
    place nobody more; the best plan seen."""
    if budget <= 0 or len(plan.placed()) >= bound:
        return plan, 0.0, False
    search = Neighbourhoods(index, _EXACT_NEIGHBOURHOOD_NODES, seed)
    units = range(len(search.units))
    size = max(1, round(_EXACT_NEIGHBOURHOOD_SHARE * len(units)))
    rng = random.Random(seed)
    spent = 0.0
    best = current = plan
    tries = fruitless = 0
    while units and spent < budget and fruitless < _EXACT_NEIGHBOURHOOD_TRIES:
        if len(best.placed()) >= bound:
            break
        tries += 1
        # Every other neighbourhood starts from nothing, which lets the walk step sideways.
        found = search.search(current, set(rng.sample(units, size)), from_plan=tries % 2 == 1)
        spent += _exact_cost(found.iterations, search.size)
        fruitless += 1
        if found.plan is None or found.placed < len(current.placed()):
            continue
        candidate = assign(index, improve(index, assign(index, found.plan)))
        if len(candidate.placed()) < len(current.placed()) or check_groups(
            index.problem, to_groups(index, candidate)
        ):
            continue
        if len(candidate.placed()) > len(current.placed()):
            fruitless = 0
        current = candidate
        if _score(index, candidate) > _score(index, best):
            best = candidate
    return best, spent, best is not plan


def _large_neighbourhood_search(
    index: Index, plan: Plan, budget: float
) -> tuple[Plan, float, bool]:
    """Re-solve windows of slots with the rest fixed until a pass improves nothing."""
    problem = index.problem
    spent = 0.0
    improved_any = False
    round_number = 0
    for _ in range(_NEIGHBOURHOOD_PASSES):
        improved = False
        for slots in _windows(index, plan):
            if spent >= budget:
                break
            round_number += 1
            scope = neighbourhood(index, plan, slots)
            model = Model(index, scope)
            seconds = min(_NEIGHBOURHOOD_SECONDS, budget - spent)
            outcome = solve(model, model.everything, plan, seconds, problem.seed + round_number)
            spent += outcome.deterministic_seconds
            if outcome.plan is None:
                continue
            candidate = _merge(plan, outcome.plan, slots)
            if _better(index, candidate, plan):
                plan, improved = candidate, True
        improved_any = improved_any or improved
        if not improved:
            break
    if improved_any:
        plan = assign(index, plan)
    return plan, spent, improved_any


def _windows(index: Index, plan: Plan) -> list[set[int]]:
    """Neighbourhoods: 6-hour windows of start slots, and 2-hour bands of the day across all
    seven days; those with the most to gain first (people in "if needed" time, sizes off the
    middle, unplaced people who could come)."""
    problem = index.problem
    viable = set(index.viable)
    candidates: list[set[int]] = []
    for first in range(0, SLOTS_PER_WEEK, 6):
        candidates.append({(first + k) % SLOTS_PER_WEEK for k in range(12)} & viable)
    for first in range(0, 48, 2):
        candidates.append(
            {day * 48 + (first + k) % 48 for day in range(7) for k in range(4)} & viable
        )
    placed = plan.placed()
    wanting: dict[int, int] = {}
    for p, options in enumerate(index.options):
        if p not in placed:
            for s in options:
                wanting[s] = wanting.get(s, 0) + 1
    middle2 = problem.min_size + problem.max_size
    badness: dict[int, int] = {}
    for s in viable:
        members = plan.members.get(s, [])
        if_needed = sum(1 for p in members if index.options[p][s] is Tier.IF_NEEDED)
        off_middle = abs(2 * len(members) - middle2 * plan.groups.get(s, 0))
        badness[s] = 4 * wanting.get(s, 0) + 2 * if_needed + off_middle
    scored = [
        (-sum(badness[s] for s in slots), i, slots)
        for i, slots in enumerate(candidates)
        if slots and any(badness[s] for s in slots)
    ]
    return [slots for _, _, slots in sorted(scored, key=lambda t: (t[0], t[1]))]


def _merge(plan: Plan, part: Plan, slots: set[int]) -> Plan:
    out = Plan()
    for s, n in plan.groups.items():
        if s not in slots:
            out.groups[s] = n
            out.members[s] = list(plan.members.get(s, []))
            if s in plan.leaders:
                out.leaders[s] = list(plan.leaders[s])
    for s, n in part.groups.items():
        if n:
            out.groups[s] = n
            out.members[s] = list(part.members.get(s, []))
            if s in part.leaders:
                out.leaders[s] = list(part.leaders[s])
    return out


def _score(index: Index, plan: Plan) -> Score:
    """(placed, placed in "available" time, -distance from the middle size), as the models
    count them: per slot, |2 * members - (min_size + max_size) * groups|."""
    problem = index.problem
    middle2 = problem.min_size + problem.max_size
    in_available = 0
    distance = 0
    for s, n in plan.groups.items():
        members = plan.members.get(s, [])
        in_available += sum(1 for p in members if index.options[p].get(s) is Tier.AVAILABLE)
        distance += abs(2 * len(members) - middle2 * n)
    return (len(plan.placed()), in_available, -distance)


def _better(index: Index, candidate: Plan, incumbent: Plan) -> bool:
    return _score(index, candidate) > _score(index, incumbent) and not check_groups(
        index.problem, to_groups(index, candidate)
    )


def _in_available(index: Index, groups: list[Group]) -> int:
    position = {p.id: i for i, p in enumerate(index.problem.participants)}
    return sum(
        1
        for group in groups
        for person_id in group.participant_ids
        if index.starts[position[person_id]].get(group.start_slot) is Tier.AVAILABLE
    )
