"""Small builders for grouping problems: people by slot ranges, problems with fast limits."""

from __future__ import annotations

from collections.abc import Iterable

from lens.scheduling.algorithm import SLOTS_PER_WEEK, Facilitator, Person, Problem

MON_18 = 36  # Monday 18:00 UTC
TUE_18 = MON_18 + 48
WED_18 = MON_18 + 2 * 48
SUN_2330 = SLOTS_PER_WEEK - 1


def span(start: int, count: int) -> frozenset[int]:
    """count half-hour slots from start, wrapping around the week."""
    return frozenset((start + k) % SLOTS_PER_WEEK for k in range(count))


def at(*starts: int) -> frozenset[int]:
    """Free for a one-hour meeting (two slots) at each start."""
    return frozenset().union(*(span(s, 2) for s in starts))


def people(
    first_id: int, count: int, available: Iterable[int] = (), if_needed: Iterable[int] = ()
) -> list[Person]:
    return [Person(first_id + i, frozenset(available), frozenset(if_needed)) for i in range(count)]


def facilitator(
    id: int, available: Iterable[int], max_groups: int = 1, if_needed: Iterable[int] = ()
) -> Facilitator:
    return Facilitator(id, frozenset(available), frozenset(if_needed), max_groups)


def problem(
    participants: Iterable[Person],
    facilitators: Iterable[Facilitator] = (),
    *,
    meeting_slots: int = 2,
    min_size: int = 4,
    max_size: int = 8,
    needs_facilitator: bool = True,
    seed: int = 0,
) -> Problem:
    return Problem(
        participants=tuple(participants),
        facilitators=tuple(facilitators),
        meeting_slots=meeting_slots,
        min_size=min_size,
        max_size=max_size,
        needs_facilitator=needs_facilitator,
        seed=seed,
        time_limit_seconds=2.0,
    )
