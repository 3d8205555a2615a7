"""The best assignment of participants for fixed groups per slot, as a min-cost flow.

With the number of groups at each slot fixed, who meets where is a flow: source ->
participant (1 each) -> slot they can attend -> sink, where slot s must take between
min_size * n[s] and max_size * n[s] people. Costs encode the objective in order: each placed
participant is worth more than all tier and evenness terms together; each member meeting in
their "available" tier is worth more than all evenness terms; and each slot pays
|2 * members - (min_size + max_size) * n[s]| (convex, so parallel arcs with rising unit
costs express it). The flow is exact for the given groups and runs in C++ in well under a
second for thousands of participants.
"""

from __future__ import annotations

# OR-Tools ships .pyi stubs for its graph module but no py.typed marker.
from ortools.graph.python import min_cost_flow  # type: ignore[import-untyped]

from lens.scheduling.algorithm._plan import Index, Plan
from lens.scheduling.algorithm.problem import Tier


def assign(index: Index, plan: Plan) -> Plan:
    """plan's groups and leaders, with members re-chosen to be best for them.

    Never places fewer people than plan does: plan itself is one of the flows considered.
    Returns plan unchanged if the flow solver reports anything but an optimum.
    """
    problem = index.problem
    lo, hi = problem.min_size, problem.max_size
    slots = sorted(s for s, n in plan.groups.items() if n > 0)
    if not slots:
        return plan
    people = [p for p, options in enumerate(index.options) if any(s in options for s in slots)]
    total_groups = sum(plan.groups[s] for s in slots)
    # Evenness costs vary by at most 2 per unit of seat across all groups.
    tier_weight = 2 * (hi - lo) * total_groups + 1
    place_weight = tier_weight * (len(people) + 1)

    flow = min_cost_flow.SimpleMinCostFlow()
    source, sink = 0, 1
    slot_node = {s: 2 + i for i, s in enumerate(slots)}
    first_person = 2 + len(slots)
    supply = dict.fromkeys(range(first_person), 0)
    supply[source], supply[sink] = len(people), -len(people)
    flow.add_arc_with_capacity_and_unit_cost(source, sink, len(people), 0)
    choice_arcs: list[tuple[int, int, int]] = []  # (arc, person, slot)
    for i, p in enumerate(people):
        node = first_person + i
        flow.add_arc_with_capacity_and_unit_cost(source, node, 1, -place_weight)
        for s in slots:
            tier = index.options[p].get(s)
            if tier is None:
                continue
            cost = -tier_weight if tier is Tier.AVAILABLE else 0
            arc = flow.add_arc_with_capacity_and_unit_cost(node, slot_node[s], 1, cost)
            choice_arcs.append((arc, p, s))
    for s in slots:
        n = plan.groups[s]
        least = lo * n
        twice_middle = (lo + hi) * n
        below = max(0, twice_middle // 2 - least)  # each such member brings size toward middle
        at = twice_middle % 2  # the one member crossing an odd middle changes nothing
        above = hi * n - least - below - at
        # The first `least` members are forced: moved out of the arcs into the supplies.
        supply[slot_node[s]] -= least
        supply[sink] += least
        for capacity, cost in ((below, -2), (at, 0), (above, 2)):
            if capacity > 0:
                flow.add_arc_with_capacity_and_unit_cost(slot_node[s], sink, capacity, cost)
    for node, amount in supply.items():
        flow.set_node_supply(node, amount)

    status = flow.solve()
    if status != flow.OPTIMAL:
        return plan
    out = Plan(groups={s: plan.groups[s] for s in slots}, leaders=dict(plan.leaders))
    for arc, p, s in choice_arcs:
        if flow.flow(arc):
            out.members.setdefault(s, []).append(p)
    if len(out.placed()) < len(plan.placed()):
        return plan
    return out
