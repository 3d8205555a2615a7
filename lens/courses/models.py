"""Reading progress, keyed by content ids so it survives edits to the course text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin


class Progress(TimestampMixin, Base):
    """One person's progress on one section of a module (or, with content_id "", the module).

    `actor` is "u:<user id>" for an account or "a:<anonymous id>" for a visitor; a visitor's
    rows move to their account when they sign in.
    """

    __tablename__ = "progress"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    module_key: Mapped[str] = mapped_column(String(100))  # module id, or "slug:<slug>" (v1)
    content_id: Mapped[str] = mapped_column(String(100), default="")
    completed_at: Mapped[datetime | None]
    seconds: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("actor", "module_key", "content_id", name="uq_progress_key"),
    )


class ReaderActivity(Base):
    """When each reader last sent a heartbeat: one clock per person, so two open tabs
    do not count the same half-minute twice."""

    __tablename__ = "reader_activity"

    actor: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_heartbeat_at: Mapped[datetime]
