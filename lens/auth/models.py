from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, utcnow


class OAuthState(Base):
    """A sign-in started at Discord: single use, expires, shared by every process."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    code_verifier: Mapped[str] = mapped_column(String(128))  # PKCE
    # The hash of a nonce kept in the starting browser's cookie: a callback arriving in
    # another browser (a link someone was sent) is refused.
    browser_hash: Mapped[str] = mapped_column(String(64), default="")
    # Set when a signed-in person links Discord to their account instead of signing in.
    link_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # The network (IPv4 address, IPv6 /64) it was started from: starts are limited per
    # network, each one being a row and a trip to Discord.
    client_net: Mapped[str | None] = mapped_column(String(64), index=True)


class SignInToken(Base):
    """A single-use sign-in secret: a Discord bot code or an e-mailed link.

    Only the SHA-256 of the secret is stored, so a database leak signs nobody in.
    """

    __tablename__ = "sign_in_tokens"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "bot" or "email"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    ip: Mapped[str | None] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_sign_in_tokens_email_created", "email", "created_at"),
        Index("ix_sign_in_tokens_ip_created", "ip", "created_at"),
    )


class RevokedSession(Base):
    """A signed-out session: its cookie's `sid` is refused until the session could have
    lasted no longer anyway (then `auth.purge` deletes the row)."""

    __tablename__ = "revoked_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
