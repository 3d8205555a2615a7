"""What grouping decides that features above care about (the group message, Discord)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupsApproved:
    """An admin approved the cohort's groups: they are active, with their meetings made."""

    cohort_id: int
    group_ids: tuple[int, ...]


@dataclass(frozen=True)
class MemberJoined:
    """Someone joined an active group late (the group's meetings exist already)."""

    cohort_id: int
    group_id: int
    user_id: int
