"""The most participants that can be placed, proven: a mixed-integer program solved by HiGHS.

The model is per start slot (see _plan.py), with the same types as _solver.py: x[t, s]
participants of type t (same viable slots) meeting at slot s; y[f, s] facilitator f (or how
many of a type of interchangeable single-group facilitators) leading a group at s; n[s] the
groups at s (the sum of y at s, or a free integer when no facilitator is needed).

    maximise    sum x
    subject to  sum_s x[t, s] <= count(t)                 each type placed at most once
                min_size n[s] <= sum_t x[t, s] <= max_size n[s]
                sum_s y[f, s] <= max_groups(f)            (and <= count for a type)
                sum of y[f, s] over starts s whose meetings pairwise overlap <= 1

Only y (and n) are integer. Once the groups per slot are fixed, who meets where is a
transportation problem with integer bounds, whose optimal vertices are integer (its matrix
is a network matrix): so the optimum of this program with x continuous is the most that can
be placed, and _flow.assign turns its groups into integer members placing exactly that many.
Leaving x continuous makes the program small enough to prove optimal in seconds where
CP-SAT on the same model stalls far from its bound.

Determinism: one thread, a fixed random seed, and a node limit rather than a time limit,
so the same input gives the same answer on a slow or busy machine. A wall-clock limit far
above what the node limit takes stands only against a runaway.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import highspy

from lens.scheduling.algorithm._plan import Index, Plan
from lens.scheduling.algorithm._solver import _overlap_windows

_INF = highspy.kHighsInf


def _without_banner() -> None:
    """HiGHS prints a copyright banner to the process's standard output (file descriptor 1,
    below Python) when the first instance is made; `lens cohort group` prints its result
    there. Make that first instance with descriptor 1 pointing at /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_without_banner()


@dataclass(frozen=True)
class Exact:
    plan: Plan | None  # groups and leaders (members left to _flow.assign); None: none found
    placed: int  # what plan places (0 when plan is None)
    bound: int | None  # proven: no grouping places more
    proven: bool  # placed == bound
    nodes: int  # branch-and-bound nodes explored
    iterations: int  # simplex iterations: the work done, the same on any machine
    size: int  # columns and rows of the program: with iterations, a measure of the work


class _Builder:
    """Columns and rows in HiGHS's compressed form."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []
        self.rows: list[tuple[float, float, list[int], list[float]]] = []

    def column(self, lower: float, upper: float, cost: float, integer: bool) -> int:
        self.cost.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        if integer:
            self.integer.append(len(self.cost) - 1)
        return len(self.cost) - 1

    def row(self, lower: float, upper: float, terms: list[tuple[int, float]]) -> None:
        self.rows.append((lower, upper, [c for c, _ in terms], [v for _, v in terms]))

    def load(self, highs: highspy.Highs, integer: bool = True) -> None:
        """Into highs; with integer=False, its relaxation (every column continuous)."""
        n = len(self.cost)
        highs.addVars(n, self.lower, self.upper)
        highs.changeColsCost(n, list(range(n)), self.cost)
        if integer and self.integer:
            kinds = [highspy.HighsVarType.kInteger] * len(self.integer)
            highs.changeColsIntegrality(len(self.integer), self.integer, kinds)  # type: ignore[arg-type]
        starts: list[int] = []
        index: list[int] = []
        value: list[float] = []
        for _, _, columns, values in self.rows:
            starts.append(len(index))
            index.extend(columns)
            value.extend(values)
        highs.addRows(
            len(self.rows),
            [r[0] for r in self.rows],
            [r[1] for r in self.rows],
            len(index),
            starts,
            index,
            value,
        )
        highs.changeObjectiveSense(highspy.ObjSense.kMaximize)


def most_placed(
    index: Index, hint: Plan, node_limit: int, seed: int, time_limit: float = 600.0
) -> Exact:
    """Groups (by slot, with leaders) placing the most participants, and a proven bound."""
    if not index.viable:  # nobody can be placed: nothing to solve
        return Exact(Plan(), 0, 0, True, 0, 0, 0)
    return _solve(_model(index), hint, node_limit, seed, time_limit)


@dataclass
class _Model:
    build: _Builder
    types: list[tuple[list[int], dict[int, int]]]  # participants of a type, column per slot
    leaders: list[tuple[list[int], dict[int, int], bool]]  # facilitators, columns, individual
    free_groups: dict[int, int]  # slot -> column of its groups, without facilitators

    @property
    def size(self) -> int:
        return len(self.build.cost) + len(self.build.rows)

    def values(self, plan: Plan) -> list[float]:
        """A plan as a solution of the program: members per type and slot, leaders per slot."""
        value = [0.0] * len(self.build.cost)
        slot_of = {p: s for s, people in plan.members.items() for p in people}
        for people, xs in self.types:
            for p in people:
                s = slot_of.get(p)
                if s in xs:
                    value[xs[s]] += 1
        led: dict[int, list[int]] = {}
        for s, leaders in plan.leaders.items():
            for f in leaders:
                led.setdefault(f, []).append(s)
        for fs, ys, _ in self.leaders:
            for f in fs:
                for s in led.get(f, []):
                    if s in ys:
                        value[ys[s]] += 1
        for s, c in self.free_groups.items():
            value[c] = plan.groups.get(s, 0)
        return value

    def groups(self, values: list[float]) -> Plan:
        """The groups and leaders a solution gives (members are left to _flow.assign)."""
        plan = Plan()
        for people, ys, individual in self.leaders:
            queue = iter(people)
            for s, c in ys.items():
                for _ in range(round(values[c])):
                    # A multi-group facilitator appears at each slot they lead; a type of
                    # single-group facilitators hands out a different one each time.
                    f = people[0] if individual else next(queue)
                    plan.leaders.setdefault(s, []).append(f)
        for s, leaders in plan.leaders.items():
            plan.groups[s] = len(leaders)
        for s, c in self.free_groups.items():
            if round(values[c]):
                plan.groups[s] = round(values[c])
        return plan


def _highs(seed: int, *options: tuple[str, bool | float | str]) -> highspy.Highs:
    """A silent, single-threaded HiGHS instance with these options."""
    highs = highspy.Highs()  # type: ignore[no-untyped-call]
    for option, value in (
        ("output_flag", False),
        ("threads", 1),
        ("random_seed", seed % 2_147_483_647),
        *options,
    ):
        highs.setOptionValue(option, value)
    return highs


def _model(index: Index) -> _Model:
    problem = index.problem
    lo, hi = problem.min_size, problem.max_size
    build = _Builder()

    # Participant types: those with the same viable slots are interchangeable here.
    types: dict[tuple[int, ...], list[int]] = {}
    for p, options in enumerate(index.options):
        if options:
            types.setdefault(tuple(sorted(options)), []).append(p)
    at_slot: dict[int, list[int]] = {s: [] for s in index.viable}
    at_slot_counts: dict[int, list[tuple[int, int]]] = {s: [] for s in index.viable}
    attendance = dict.fromkeys(index.viable, 0)
    type_columns: list[tuple[list[int], dict[int, int]]] = []
    for slots, people in sorted(types.items()):
        count = len(people)
        columns = {s: build.column(0, count, 1.0, integer=False) for s in slots}
        for s, c in columns.items():
            at_slot[s].append(c)
            at_slot_counts[s].append((c, count))
            attendance[s] += count
        if len(columns) > 1:
            build.row(-_INF, count, [(c, 1.0) for c in columns.values()])
        type_columns.append((people, columns))

    # Leaders: a column per slot for each multi-group facilitator, and per slot for each
    # type of single-group facilitators with the same viable slots.
    leads_at: dict[int, list[int]] = {s: [] for s in index.viable}
    leader_columns: list[tuple[list[int], dict[int, int], bool]] = []
    if problem.needs_facilitator:
        single: dict[tuple[int, ...], list[int]] = {}
        for f, own in enumerate(index.facilitator_options):
            capacity = problem.facilitators[f].max_groups
            if not own or capacity <= 0:
                continue
            if capacity == 1:
                single.setdefault(tuple(own), []).append(f)
                continue
            ys = {s: build.column(0, 1, 0.0, integer=True) for s in own}
            if capacity < len(own):
                build.row(-_INF, capacity, [(c, 1.0) for c in ys.values()])
            for window in _overlap_windows(own, problem.meeting_slots):
                build.row(-_INF, 1, [(ys[s], 1.0) for s in window])
            leader_columns.append(([f], ys, True))
        for shared, fs in sorted(single.items()):
            ys = {s: build.column(0, len(fs), 0.0, integer=True) for s in shared}
            if len(ys) > 1:
                build.row(-_INF, len(fs), [(c, 1.0) for c in ys.values()])
            people = sorted(fs, key=lambda f: problem.facilitators[f].id)
            leader_columns.append((people, ys, False))
        for _, ys, _ in leader_columns:
            for s, c in ys.items():
                leads_at[s].append(c)

    free_groups: dict[int, int] = {}
    for s in index.viable:
        members = [(c, 1.0) for c in at_slot[s]]
        if problem.needs_facilitator:
            groups = [(c, 1.0) for c in leads_at[s]]
        else:
            free_groups[s] = build.column(0, attendance[s] // lo, 0.0, integer=True)
            groups = [(free_groups[s], 1.0)]
        build.row(-_INF, 0, members + [(c, -v * hi) for c, v in groups])  # <= hi * n
        build.row(0, _INF, members + [(c, -v * lo) for c, v in groups])  # >= lo * n
        # Nobody meets where no group runs: x[t, s] <= min(count, max_size) * n[s]. Implied
        # at integer points, these make the relaxation far tighter (a half-open group no
        # longer seats half of everyone who could come).
        for c, count in at_slot_counts[s]:
            most = min(count, hi)
            build.row(-_INF, 0, [(c, 1.0)] + [(g, -v * most) for g, v in groups])
    return _Model(build, type_columns, leader_columns, free_groups)


def _mip(seed: int, node_limit: int, time_limit: float) -> highspy.Highs:
    return _highs(
        seed,
        ("mip_rel_gap", 0.0),
        # The objective is an integer at every integer point: a gap below 1 is closed.
        ("mip_abs_gap", 1 - 1e-6),
        ("mip_max_nodes", node_limit),
        # Less strong branching than the default 8: on these models it cost more than half
        # of all LP iterations and saved few nodes.
        ("mip_pscost_minreliable", 2),
        ("mip_allow_restart", False),
        # Against a runaway only (see the module docstring).
        ("time_limit", time_limit),
    )


def _solve(model: _Model, hint: Plan, node_limit: int, seed: int, time_limit: float) -> Exact:
    highs = _mip(seed, node_limit, time_limit)
    model.build.load(highs)
    _give_hint(highs, model, hint)
    highs.run()
    info = highs.getInfo()
    bound = info.mip_dual_bound
    nodes = int(info.mip_node_count)
    iterations = int(info.simplex_iteration_count)
    bound_int = math.floor(bound + 1e-6) if math.isfinite(bound) else None
    if info.primal_solution_status != highspy.kSolutionStatusFeasible:
        return Exact(None, 0, bound_int, False, nodes, iterations, model.size)
    plan = model.groups(list(highs.getSolution().col_value))
    placed = round(info.objective_function_value)
    if bound_int is not None:
        bound_int = max(bound_int, placed)
    return Exact(plan, placed, bound_int, bound_int == placed, nodes, iterations, model.size)


def _give_hint(highs: highspy.Highs, model: _Model, hint: Plan) -> None:
    """A plan as HiGHS's first incumbent."""
    solution = highspy.HighsSolution()
    solution.col_value = model.values(hint)
    solution.value_valid = True
    highs.setSolution(solution)


@dataclass(frozen=True)
class Dive:
    plan: Plan | None  # groups and leaders (members left to _flow.assign); None: none found
    bound: int | None  # proven by the relaxation: no grouping places more
    iterations: int  # simplex iterations over all the solves
    size: int  # columns and rows of the program


# Share of the fractional counts the dive raises at once (the most fractional first).
_DIVE_BATCH = 0.1


def dive(index: Index) -> Dive:
    """Groups from the program's relaxation, rounded a few decisions at a time.

    Solve the relaxation (every variable continuous); while some counts of leaders (or of
    groups) are fractional, raise the tenth with the largest fractional parts (at least
    one) to their ceilings and solve again; when that leaves no solution, raise only the
    first of them, and when even that fails, cap it at its floor. Each step fixes a bound,
    so it ends; the last solution has whole groups, which the flow then fills. Where
    facilitators bind, at 400-800 participants, it placed 98.5-100 % of the optimum in
    13-35 solves, where raising one count per solve took 70-175 solves and three times
    as long for the same quality. The first relaxation's value, rounded down, is a proven
    bound. Deterministic: simplex only, one thread.
    """
    if not index.viable:
        return Dive(Plan(), 0, 0, 0)
    model = _model(index)
    highs = _highs(0)
    model.build.load(highs, integer=False)
    columns = [c for _, ys, _ in model.leaders for c in ys.values()]
    columns += list(model.free_groups.values())
    lower = dict.fromkeys(columns, 0.0)
    upper = {c: model.build.upper[c] for c in columns}
    iterations = 0

    def solved() -> bool:
        nonlocal iterations
        highs.run()
        iterations += max(0, int(highs.getInfo().simplex_iteration_count))
        return bool(highs.getModelStatus() == highspy.HighsModelStatus.kOptimal)

    def raised(chosen: list[tuple[int, float]]) -> bool:
        for c, ceiling in chosen:
            highs.changeColBounds(c, ceiling, upper[c])
        if solved():
            for c, ceiling in chosen:
                lower[c] = ceiling
            return True
        for c, _ in chosen:
            highs.changeColBounds(c, lower[c], upper[c])
        return False

    bound: int | None = None
    while True:
        if not solved():
            return Dive(None, bound, iterations, model.size)
        values = list(highs.getSolution().col_value)
        if bound is None:
            bound = math.floor(highs.getInfo().objective_function_value + 1e-6)
        fractional = sorted(
            (
                (values[c] - math.floor(values[c] + 1e-6), -c)
                for c in columns
                if values[c] - math.floor(values[c] + 1e-6) > 1e-6
            ),
            reverse=True,
        )
        if not fractional:
            return Dive(model.groups(values), bound, iterations, model.size)
        chosen = [
            (-c, float(math.ceil(values[-c] - 1e-6)))
            for _, c in fractional[: max(1, int(_DIVE_BATCH * len(fractional)))]
        ]
        if raised(chosen) or (len(chosen) > 1 and raised(chosen[:1])):
            continue  # the turn's solve then starts from the optimal basis: no iterations
        c, ceiling = chosen[0]
        upper[c] = ceiling - 1
        highs.changeColBounds(c, lower[c], upper[c])


@dataclass(frozen=True)
class Neighbour:
    plan: Plan | None  # groups and leaders (members left to _flow.assign); None: none found
    placed: int  # what plan places
    iterations: int


class Neighbourhoods:
    """The program loaded once, and re-solved around a plan with most decisions fixed.

    A neighbourhood frees some units (a unit: the leader columns of one facilitator or of
    one type of interchangeable facilitators, or the groups of one slot when no facilitator
    is needed) and fixes every other unit at the plan's values; who meets where stays free.
    The program is then small after presolve, and solved within a node limit, from the
    plan as its first solution or from nothing (then it may settle elsewhere with as many
    placed: a step sideways, out of a plan no neighbourhood improves).
    """

    def __init__(self, index: Index, node_limit: int, seed: int) -> None:
        self.model = _model(index)
        self.highs = _mip(seed, node_limit, 600.0)
        self.model.build.load(self.highs)
        self.units = [list(ys.values()) for _, ys, _ in self.model.leaders]
        self.units += [[c] for c in self.model.free_groups.values()]

    @property
    def size(self) -> int:
        return self.model.size

    def search(self, plan: Plan, free: set[int], from_plan: bool) -> Neighbour:
        """The most placed with the units in `free` (indices into self.units) re-decided."""
        value = self.model.values(plan)
        upper = self.model.build.upper
        for unit, columns in enumerate(self.units):
            for c in columns:
                if unit in free:
                    self.highs.changeColBounds(c, 0, upper[c])
                else:
                    self.highs.changeColBounds(c, value[c], value[c])
        self.highs.clearSolver()
        if from_plan:
            _give_hint(self.highs, self.model, plan)
        self.highs.run()
        info = self.highs.getInfo()
        iterations = max(0, int(info.simplex_iteration_count))
        if info.primal_solution_status != highspy.kSolutionStatusFeasible:
            return Neighbour(None, 0, iterations)
        values = list(self.highs.getSolution().col_value)
        return Neighbour(
            self.model.groups(values), round(info.objective_function_value), iterations
        )
