"""The pure grouping algorithm: participants and facilitators with weekly availability in,
groups with one facilitator and one weekly start slot out. No database, clock or I/O."""

from lens.scheduling.algorithm.check import Violation, check_groups
from lens.scheduling.algorithm.problem import (
    SLOT_MINUTES,
    SLOTS_PER_WEEK,
    UNPLACEABLE,
    Change,
    ChangeKind,
    Facilitator,
    Group,
    Person,
    Problem,
    Result,
    Tier,
    Unplaced,
    UnplacedReason,
    can_attend,
)


def form_groups(problem: Problem) -> Result:
    """See grouping.form_groups. OR-Tools (with numpy and pandas) is imported on first
    use: about 65 MB that a web process which never forms groups does not carry."""
    from lens.scheduling.algorithm.grouping import form_groups as solve

    return solve(problem)


__all__ = [
    "SLOTS_PER_WEEK",
    "SLOT_MINUTES",
    "UNPLACEABLE",
    "Change",
    "ChangeKind",
    "Facilitator",
    "Group",
    "Person",
    "Problem",
    "Result",
    "Tier",
    "Unplaced",
    "UnplacedReason",
    "Violation",
    "can_attend",
    "check_groups",
    "form_groups",
]
