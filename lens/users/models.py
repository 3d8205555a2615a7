from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin


class User(TimestampMixin, Base):
    """A person: signs in with Discord or an e-mail link, takes or runs courses."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Discord snowflakes exceed 2**53, so they are kept as text, never as floats.
    discord_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    discord_username: Mapped[str | None] = mapped_column(String(100))
    discord_global_name: Mapped[str | None] = mapped_column(String(100))
    avatar: Mapped[str | None] = mapped_column(String(255))
    nickname: Mapped[str | None] = mapped_column(String(100))
    # Stored lower-cased; the unique index below makes one account per address.
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified_at: Mapped[datetime | None]
    timezone: Mapped[str | None] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    dm_notifications: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    terms_accepted_at: Mapped[datetime | None]
    # Raised by "sign out everywhere": session cookies carry the version they were
    # issued under, and an older one no longer counts.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    deleted_at: Mapped[datetime | None]

    __table_args__ = (Index("uq_users_email", "email", unique=True),)

    @property
    def display_name(self) -> str:
        return (
            self.nickname
            or self.discord_global_name
            or self.discord_username
            or (self.email.split("@", 1)[0] if self.email else f"user {self.id}")
        )
