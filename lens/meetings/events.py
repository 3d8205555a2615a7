"""What happens to meetings that features above care about (reminders, Discord events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MeetingMove:
    meeting_id: int
    old_start: datetime
    new_start: datetime
    sequence: int  # the meeting's calendar SEQUENCE after the move


@dataclass(frozen=True)
class MeetingsMoved:
    """A facilitator moved a meeting, or it and every later one. `moves[0]` is the one
    they moved; the others moved with it."""

    cohort_id: int
    group_id: int
    moves: tuple[MeetingMove, ...]


@dataclass(frozen=True)
class MeetingCancelled:
    cohort_id: int
    group_id: int
    meeting_id: int
    starts_at: datetime
    sequence: int  # the meeting's calendar SEQUENCE after the cancellation


@dataclass(frozen=True)
class MeetingPlaceChanged:
    """A group's facilitator or an admin changed where it meets: its call link, its
    place, or both (None: not set; both None: cleared)."""

    cohort_id: int
    group_id: int
    change_id: int  # the cohort audit entry of this change: one per change
    call_url: str | None
    location: str | None
    by_user_id: int | None  # who changed it (they need no message about it)


@dataclass(frozen=True)
class AttendanceRecorded:
    """A facilitator or an admin took (or changed) a meeting's attendance."""

    cohort_id: int
    group_id: int
    meeting_id: int
    absent_signup_ids: tuple[int, ...]  # marked absent in this save
