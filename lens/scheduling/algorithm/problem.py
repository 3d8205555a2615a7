"""The grouping problem and its answer, as plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

SLOT_MINUTES = 30
SLOTS_PER_WEEK = 336  # slot 0 = Monday 00:00 UTC; time wraps around the week
_WEEK_MASK = (1 << SLOTS_PER_WEEK) - 1


class Tier(IntEnum):
    IF_NEEDED = 1
    AVAILABLE = 2


@dataclass(frozen=True)
class Person:
    id: int
    available: frozenset[int]  # UTC slot indexes, "available" tier
    if_needed: frozenset[int]  # UTC slot indexes, "if needed" tier (disjoint from available)

    def __post_init__(self) -> None:
        for slot in self.available | self.if_needed:
            if not 0 <= slot < SLOTS_PER_WEEK:
                raise ValueError(
                    f"person {self.id}: slot {slot} is outside 0..{SLOTS_PER_WEEK - 1}"
                )
        both = self.available & self.if_needed
        if both:
            raise ValueError(
                f"person {self.id}: slots {sorted(both)} are both 'available' and 'if needed'"
            )


@dataclass(frozen=True)
class Facilitator(Person):
    max_groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_groups < 0:
            raise ValueError(f"facilitator {self.id}: max_groups must not be negative")


@dataclass(frozen=True)
class Problem:
    participants: tuple[Person, ...]
    facilitators: tuple[Facilitator, ...]
    meeting_slots: int  # meeting length in 30-minute slots
    min_size: int = 4  # participants per group; the facilitator is not counted
    max_size: int = 8
    needs_facilitator: bool = True
    seed: int = 0
    # Budget for the whole call, in wall seconds on a 2-core machine (slower machines take
    # longer, not different groups): CP-SAT is stopped by its deterministic clock, so the same
    # input and seed give the same groups. 10 s keeps 5,000 participants around 10 s; most
    # cohorts finish well before. See grouping.py.
    time_limit_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.meeting_slots < SLOTS_PER_WEEK:
            raise ValueError(f"meeting_slots must be 1..{SLOTS_PER_WEEK - 1}")
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError("group sizes need 1 <= min_size <= max_size")
        if self.time_limit_seconds <= 0:
            raise ValueError("time_limit_seconds must be positive")
        participant_ids = [p.id for p in self.participants]
        facilitator_ids = [f.id for f in self.facilitators]
        for label, ids in (("participant", participant_ids), ("facilitator", facilitator_ids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{label} ids must be unique")
        both = set(participant_ids) & set(facilitator_ids)
        if both:
            raise ValueError(f"ids {sorted(both)[:10]} are both participant and facilitator")


@dataclass(frozen=True)
class Group:
    start_slot: int  # UTC weekly start slot
    participant_ids: tuple[int, ...]
    facilitator_id: int | None


class UnplacedReason(StrEnum):
    # They gave no stretch of time long enough for one meeting.
    NO_AVAILABILITY = "no_availability"
    # At none of their start slots can at least min_size participants (them included) meet.
    NO_SHARED_SLOT = "no_shared_slot"
    # At none of the start slots where enough participants could meet can any facilitator.
    NO_FACILITATOR = "no_facilitator"
    # Facilitators can meet at such slots, but every one of them is already leading as many
    # groups as they may, or a group that overlaps that time.
    FACILITATOR_CAPACITY = "facilitator_capacity"
    # A facilitator (or none needed) is free at one of their slots, but the groups there are
    # full and too few unplaced participants share the slot to open another group.
    GROUPS_FULL = "groups_full"


class ChangeKind(StrEnum):
    # A facilitator free at start_slot would lead a new group of group_size with them.
    FACILITATOR = "facilitator"
    # A maximum group size of group_size would let them join the full group at start_slot.
    LARGER_GROUPS = "larger_groups"


@dataclass(frozen=True)
class Change:
    """One change to the cohort that would place someone without moving anyone placed."""

    kind: ChangeKind
    start_slot: int
    group_size: int


# Reasons where no grouping at all could place the person; with the others (facilitators
# busy, groups full) another grouping could, but when placement is proven optimal only by
# leaving out someone placed now.
UNPLACEABLE: frozenset[str] = frozenset(
    {
        UnplacedReason.NO_AVAILABILITY,
        UnplacedReason.NO_SHARED_SLOT,
        UnplacedReason.NO_FACILITATOR,
    }
)


@dataclass(frozen=True)
class Unplaced:
    person_id: int
    reason: UnplacedReason
    change: Change | None = None  # None: no single simple change found

    @property
    def placeable(self) -> bool:
        """Whether some grouping (not necessarily one placing as many) places them."""
        return self.reason not in UNPLACEABLE


@dataclass(frozen=True)
class Result:
    groups: tuple[Group, ...]
    unplaced: tuple[Unplaced, ...]
    placed: int
    placed_in_available: int  # members whose whole meeting lies in their "available" tier
    # "optimal": no grouping places more participants (proven; upper_bound == placed); the
    # preferences after placement (available time, even sizes) are the best found.
    # "feasible": a solver improved the groups but stopped at its limit before proving
    # placement (upper_bound says how far it could still be off). "greedy": the heuristic's
    # groups, which no solver improved or proved.
    status: str
    upper_bound: int | None  # proven bound on placed participants, when known


def slot_mask(slots: frozenset[int]) -> int:
    """The slots as a 336-bit integer, bit s set when slot s is in the set."""
    mask = 0
    for slot in slots:
        mask |= 1 << slot
    return mask


def start_mask(mask: int, meeting_slots: int) -> int:
    """Bit s set when every slot s, s+1, ..., s+meeting_slots-1 (mod the week) is in mask."""
    starts = mask
    for k in range(1, meeting_slots):
        # Bit s of the rotation is bit (s + k) mod 336 of mask.
        rotated = ((mask >> k) | (mask << (SLOTS_PER_WEEK - k))) & _WEEK_MASK
        starts &= rotated
    return starts


def bits(mask: int) -> list[int]:
    """The set bit positions of mask, ascending."""
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def can_attend(person: Person, start_slot: int, meeting_slots: int) -> Tier | None:
    """Tier at which person can attend the whole meeting starting at start_slot, or None."""
    tier = Tier.AVAILABLE
    for k in range(meeting_slots):
        slot = (start_slot + k) % SLOTS_PER_WEEK
        if slot in person.available:
            continue
        if slot in person.if_needed:
            tier = Tier.IF_NEEDED
            continue
        return None
    return tier


def attendable_starts(person: Person, meeting_slots: int) -> dict[int, Tier]:
    """Every start slot person can attend, with its tier (fast: bit masks, not 336 loops)."""
    available = slot_mask(person.available)
    either = available | slot_mask(person.if_needed)
    any_tier = start_mask(either, meeting_slots)
    if not any_tier:
        return {}
    good = start_mask(available, meeting_slots)
    return {s: Tier.AVAILABLE if good >> s & 1 else Tier.IF_NEEDED for s in bits(any_tier)}
