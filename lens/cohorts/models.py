"""Cohorts, signups (with weekly availability), groups and their members."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin, utcnow


class CohortStatus(StrEnum):
    OPEN = "open"  # taking signups
    CLOSED = "closed"  # signups closed, grouping under way
    RUNNING = "running"  # groups approved, meetings happening
    FINISHED = "finished"


class Role(StrEnum):
    PARTICIPANT = "participant"
    FACILITATOR = "facilitator"


class SignupStatus(StrEnum):
    DRAFT = "draft"  # the enrollment wizard is not finished
    ENROLLED = "enrolled"  # waiting for grouping
    GROUPED = "grouped"  # in an active group
    UNPLACED = "unplaced"  # grouping could not place them (see unplaced_reason)
    WITHDRAWN = "withdrawn"
    DEFERRED = "deferred"  # moved to a later cohort of the same course (deferred_to)


class GroupStatus(StrEnum):
    DRAFT = "draft"  # part of a grouping preview
    ACTIVE = "active"  # approved
    DISBANDED = "disbanded"


class Cohort(TimestampMixin, Base):
    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date]
    meetings: Mapped[int]  # weekly meetings
    meeting_minutes: Mapped[int]  # 60, 90 or 120
    min_group_size: Mapped[int] = mapped_column(default=4)  # participants, facilitator apart
    max_group_size: Mapped[int] = mapped_column(default=8)
    needs_facilitator: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    enrollment_deadline: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=CohortStatus.OPEN)
    # A participant's switch to another group waits for the facilitator or an admin.
    switch_needs_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # What completing takes here, over the course's own rule (None: the course's).
    completion_meetings: Mapped[int | None]
    completion_modules: Mapped[str | None] = mapped_column(String(16))


class Signup(TimestampMixin, Base):
    """One person in one cohort, with their role and weekly availability.

    Availability is kept as the person gave it: 30-minute slots of a local week (0 =
    Monday 00:00 in `timezone`), so a 19:00 choice in Berlin stays 19:00 Berlin; it is
    converted to UTC for the cohort's actual dates when grouping (cohorts/availability.py).
    """

    __tablename__ = "signups"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.PARTICIPANT)
    status: Mapped[str] = mapped_column(String(16), default=SignupStatus.DRAFT)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # {"available": [local slots], "if_needed": [local slots]}
    availability: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_groups: Mapped[int] = mapped_column(default=1)  # facilitators
    # New facilitators lead groups only once an admin approves them.
    approved_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    unplaced_reason: Mapped[str | None] = mapped_column(String(40))
    deferred_to: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="SET NULL"))

    __table_args__ = (UniqueConstraint("cohort_id", "user_id"),)


class GroupingRun(TimestampMixin, Base):
    """One run of the grouping algorithm: its draft groups are the admin's preview."""

    __tablename__ = "grouping_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(
        String(16), default="queued"
    )  # queued running done failed approved
    seed: Mapped[int] = mapped_column(default=0)
    # Solver status, counts, bound, seconds; the unplaced with their reasons.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None]


class Group(TimestampMixin, Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("grouping_runs.id", ondelete="CASCADE"))
    number: Mapped[int]  # "Group 3" within the cohort
    start_slot: Mapped[int]  # UTC weekly slot: 0 = Monday 00:00 UTC, 30-minute steps
    status: Mapped[str] = mapped_column(String(16), default=GroupStatus.DRAFT)
    # Where it meets: a call link (http(s)) and/or a place, set by its facilitator or an admin.
    call_url: Mapped[str | None] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (Index("ix_groups_cohort_status", "cohort_id", "status"),)

    @property
    def name(self) -> str:
        return f"Group {self.number}"


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    signup_id: Mapped[int] = mapped_column(
        ForeignKey("signups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # participant or facilitator
    # When they joined the group (empty: with the grouping, before its first meeting).
    joined_at: Mapped[datetime | None] = mapped_column(default=utcnow)


class SwitchRequest(TimestampMixin, Base):
    """A participant asking to move to another group, where the cohort wants a yes first."""

    __tablename__ = "switch_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    signup_id: Mapped[int] = mapped_column(ForeignKey("signups.id", ondelete="CASCADE"), index=True)
    from_group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    to_group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # approved refused withdrawn
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]


class CohortChange(Base):
    """The audit trail of a running cohort: who changed what, when and why."""

    __tablename__ = "cohort_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))  # member.add, member.move, ...
    # Whom it concerns (kept as ids, so the entry outlives a deleted group or person).
    subject_user_id: Mapped[int | None] = mapped_column(index=True)
    group_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
