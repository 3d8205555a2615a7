"""What Lens has made in Discord for a cohort, and the last realization's report.

A `DiscordSpace` maps one thing Lens owns in Discord (a cohort's category, a group's
text and voice channels, its welcome message, a meeting's scheduled event) to its
Discord id. Its `key` names the thing ("text:group:12"): unique, and the same whatever
happened to the group or meeting row since, which is why the group and meeting
references are SET NULL rather than CASCADE: when a group or meeting row is deleted,
its mapping stays, so the next realization still knows which channel or event to delete.
(A unique constraint over (kind, group_id, meeting_id) would not do: NULLs are never
equal in a unique constraint, so it would allow two category rows per cohort.)
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin, utcnow


class SpaceKind(StrEnum):
    CATEGORY = "category"
    TEXT = "text"
    VOICE = "voice"
    WELCOME = "welcome"  # the welcome message in the group's text channel
    EVENT = "event"  # a meeting's scheduled event


class DiscordSpace(TimestampMixin, Base):
    __tablename__ = "discord_spaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meetings.id", ondelete="SET NULL"), index=True
    )
    # Snowflakes exceed 2**53: text, never numbers.
    discord_id: Mapped[str] = mapped_column(String(32))
    # sha256 of the desired state last applied (what decides whether a message changed).
    fingerprint: Mapped[str] = mapped_column(String(64), default="")


class DiscordRealization(Base):
    """The last realization of a cohort in Discord: when, and what it did or could not."""

    __tablename__ = "discord_realizations"

    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True
    )
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")
    # RealizeReport.to_json(): counts per kind, skipped people, failed steps.
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failed_steps: Mapped[int] = mapped_column(default=0)
