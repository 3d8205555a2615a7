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


@dataclass(frozen=True)
class MembershipChanged:
    """After approval, a person was added to a group, moved between groups or removed
    from one (by an admin, or by themselves: a switch, a withdrawal, a deferral)."""

    cohort_id: int
    user_id: int
    left_group_id: int | None
    joined_group_id: int | None
    action: str  # member.add, member.move, member.remove, member.switch, member.withdraw ...
    change_id: int  # the audit entry: one message per change


@dataclass(frozen=True)
class FacilitatorChanged:
    """A group's facilitator changed: for good (`meeting_id` None), or a substitute for
    one meeting (`new_user_id` None: the substitute was taken back). `dropped_user_id`:
    the stand-in a new stand-in replaces at that meeting."""

    cohort_id: int
    group_id: int
    old_user_id: int | None
    new_user_id: int | None
    meeting_id: int | None
    change_id: int
    dropped_user_id: int | None = None


@dataclass(frozen=True)
class SwitchRequested:
    """A participant asked to switch to `group_id`; its facilitator or an admin decides."""

    cohort_id: int
    group_id: int
    request_id: int
    user_id: int


@dataclass(frozen=True)
class SwitchRefused:
    """The facilitator or an admin said no to a participant's switch request."""

    cohort_id: int
    group_id: int  # the group they asked to join
    request_id: int
    user_id: int  # who asked


@dataclass(frozen=True)
class GuestVisit:
    """A participant visits another group's meeting once (or took that back)."""

    cohort_id: int
    group_id: int  # the host group
    meeting_id: int
    user_id: int
    change_id: int
    cancelled: bool
