"""Meetings of a group and the private calendar feeds people subscribe to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin, utcnow


class Meeting(TimestampMixin, Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    number: Mapped[int]  # 1 = the first meeting of the group
    starts_at: Mapped[datetime]  # UTC
    ends_at: Mapped[datetime]
    # The zone whose wall-clock time the series keeps across DST changes ("UTC": fixed).
    anchor_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # or cancelled
    # Raised on every change, so calendars replace their copy (iCalendar SEQUENCE).
    sequence: Mapped[int] = mapped_column(default=0)
    calendar_event_id: Mapped[str | None] = mapped_column(String(200))
    # A facilitator standing in for this one meeting (the group's own one is told).
    substitute_signup_id: Mapped[int | None] = mapped_column(
        ForeignKey("signups.id", ondelete="SET NULL")
    )

    __table_args__ = (
        UniqueConstraint("group_id", "number"),
        Index("ix_meetings_starts_at", "starts_at"),
    )


class CalendarFeed(TimestampMixin, Base):
    """A person's private iCal feed address; the token is stored hashed, revocable."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None]


class RsvpStatus:
    PENDING = "pending"
    ATTENDING = "attending"
    NOT_ATTENDING = "not_attending"
    TENTATIVE = "tentative"
    ALL = (PENDING, ATTENDING, NOT_ATTENDING, TENTATIVE)


class Rsvp(Base):
    """A member's answer for one meeting, from the site or their Google Calendar."""

    __tablename__ = "meeting_rsvps"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=RsvpStatus.PENDING)
    source: Mapped[str] = mapped_column(String(16), default="site")  # site or google
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("meeting_id", "user_id"),)


class MeetingGuest(Base):
    """A participant of another group (same cohort) visiting this meeting once."""

    __tablename__ = "meeting_guests"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    signup_id: Mapped[int] = mapped_column(ForeignKey("signups.id", ondelete="CASCADE"), index=True)
    # The meeting of their own group they miss that week (None: they had none).
    instead_of: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("meeting_id", "signup_id"),)


class AttendanceStatus:
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    ALL = (PRESENT, LATE, ABSENT, EXCUSED)
    ATTENDED = (PRESENT, LATE)  # what counts as having come


class Attendance(Base):
    """Whether one person came to one meeting: a member of the group, or a guest from
    another group (recorded with the host). Set by the facilitator (or an admin), after
    a suggestion from the group's voice channel; every change is in the cohort's log."""

    __tablename__ = "meeting_attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    signup_id: Mapped[int] = mapped_column(ForeignKey("signups.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("meeting_id", "signup_id"),)


class PresenceSpan(Base):
    """One stretch of one person in a group's call, as a call service saw it (the Discord
    bot: a join of the group's voice channel or one of its breakout rooms, then a leave).
    `left_at` is empty while they are there. Attendance suggestions are made from these."""

    __tablename__ = "meeting_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), default="discord")

    __table_args__ = (
        Index("ix_meeting_presence_group_joined", "group_id", "joined_at"),
        Index("ix_meeting_presence_user_open", "user_id", "left_at"),
    )
