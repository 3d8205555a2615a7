"""Re-check groups against every rule; the admin's preview runs this after a manual move."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lens.scheduling.algorithm.problem import (
    SLOT_MINUTES,
    SLOTS_PER_WEEK,
    Group,
    Person,
    Problem,
    can_attend,
)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Violation:
    # not_available, too_small, too_large, no_facilitator, unexpected_facilitator,
    # facilitator_over_capacity, facilitator_overlap, in_two_groups, unknown_person, invalid_slot
    kind: str
    message: str  # names the group (numbered from 1) and the person, says what to fix
    group_index: int | None
    person_id: int | None


def slot_label(slot: int) -> str:
    """'Tue 18:30 UTC' for a weekly slot index."""
    minutes = slot % SLOTS_PER_WEEK * SLOT_MINUTES
    day, rest = divmod(minutes, 24 * 60)
    return f"{_DAYS[day]} {rest // 60:02d}:{rest % 60:02d} UTC"


def meetings_overlap(start_a: int, start_b: int, meeting_slots: int) -> bool:
    """True when two weekly meetings of the same length share any time, across the week's end."""
    distance = (start_a - start_b) % SLOTS_PER_WEEK
    return min(distance, SLOTS_PER_WEEK - distance) < meeting_slots


def check_groups(problem: Problem, groups: Sequence[Group]) -> list[Violation]:
    """Every broken rule in groups, in group order; an empty list means the groups are valid."""
    participants = {p.id: p for p in problem.participants}
    facilitators = {f.id: f for f in problem.facilitators}
    violations: list[Violation] = []
    first_group_of: dict[int, int] = {}
    led_by: dict[int, list[int]] = {}

    def add(kind: str, message: str, index: int | None, person_id: int | None) -> None:
        violations.append(Violation(kind, message, index, person_id))

    for index, group in enumerate(groups):
        where = f"group #{index + 1}"
        if not 0 <= group.start_slot < SLOTS_PER_WEEK:
            add(
                "invalid_slot",
                f"{where} starts at slot {group.start_slot}, outside 0..{SLOTS_PER_WEEK - 1};"
                " pick a time in the week",
                index,
                None,
            )
            continue
        where = f"group #{index + 1} ({slot_label(group.start_slot)})"

        size = len(group.participant_ids)
        if size < problem.min_size:
            add(
                "too_small",
                f"{where} has {size} participants, fewer than the minimum {problem.min_size};"
                " add participants or merge it into another group",
                index,
                None,
            )
        if size > problem.max_size:
            add(
                "too_large",
                f"{where} has {size} participants, more than the maximum {problem.max_size};"
                " move some to another group",
                index,
                None,
            )

        seen_here: set[int] = set()
        for person_id in group.participant_ids:
            if person_id in seen_here:
                add(
                    "in_two_groups",
                    f"participant {person_id} is listed twice in {where}; list them once",
                    index,
                    person_id,
                )
                continue
            seen_here.add(person_id)
            person = participants.get(person_id)
            if person is None:
                what = "a facilitator" if person_id in facilitators else "not in this cohort"
                add(
                    "unknown_person",
                    f"{where} lists participant {person_id}, who is {what}; remove them",
                    index,
                    person_id,
                )
                continue
            earlier = first_group_of.setdefault(person_id, index)
            if earlier != index:
                add(
                    "in_two_groups",
                    f"participant {person_id} in {where} is also in group #{earlier + 1};"
                    " keep them in one group",
                    index,
                    person_id,
                )
            missing = _check_attendance(problem, person, "participant", group, where, index)
            if missing is not None:
                violations.append(missing)

        facilitator_id = group.facilitator_id
        if facilitator_id is None:
            if problem.needs_facilitator:
                add(
                    "no_facilitator",
                    f"{where} has no facilitator; assign one who is free at that time",
                    index,
                    None,
                )
            continue
        if not problem.needs_facilitator:
            add(
                "unexpected_facilitator",
                f"{where} has facilitator {facilitator_id}, but this cohort runs groups without"
                " facilitators; remove them",
                index,
                facilitator_id,
            )
            continue
        facilitator = facilitators.get(facilitator_id)
        if facilitator is None:
            what = "a participant" if facilitator_id in participants else "not in this cohort"
            add(
                "unknown_person",
                f"{where} is led by {facilitator_id}, who is {what} and not a facilitator;"
                " assign a facilitator",
                index,
                facilitator_id,
            )
            continue
        missing = _check_attendance(problem, facilitator, "facilitator", group, where, index)
        if missing is not None:
            violations.append(missing)
        led_by.setdefault(facilitator_id, []).append(index)

    for facilitator_id, indexes in led_by.items():
        facilitator = facilitators[facilitator_id]
        if len(indexes) > facilitator.max_groups:
            numbers = ", ".join(f"#{i + 1}" for i in indexes)
            add(
                "facilitator_over_capacity",
                f"facilitator {facilitator_id} leads {len(indexes)} groups ({numbers}) but may"
                f" lead at most {facilitator.max_groups}; give a group to another facilitator",
                indexes[-1],
                facilitator_id,
            )
        for position, later in enumerate(indexes):
            for earlier in indexes[:position]:
                start_a, start_b = groups[earlier].start_slot, groups[later].start_slot
                if meetings_overlap(start_a, start_b, problem.meeting_slots):
                    add(
                        "facilitator_overlap",
                        f"facilitator {facilitator_id} leads group #{earlier + 1}"
                        f" ({slot_label(start_a)}) and group #{later + 1}"
                        f" ({slot_label(start_b)}), whose meetings overlap; move one of them",
                        later,
                        facilitator_id,
                    )
    return violations


def _check_attendance(
    problem: Problem, person: Person, role: str, group: Group, where: str, index: int
) -> Violation | None:
    if can_attend(person, group.start_slot, problem.meeting_slots) is not None:
        return None
    end = slot_label(group.start_slot + problem.meeting_slots)
    return Violation(
        "not_available",
        f"{role} {person.id} in {where} is not available for the whole meeting (until"
        f" {end}); move them to a group at a time they gave",
        index,
        person.id,
    )
