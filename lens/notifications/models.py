"""Delivery rows (one per kind, recipient, subject and channel), their attempts, opt-outs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin, utcnow

BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class DeliveryStatus:
    PENDING = "pending"  # waiting for its send time (or its next try)
    SENDING = "sending"  # claimed by a sender until locked_until
    SENT = "sent"
    FAILED = "failed"  # permanent refusal, or out of attempts
    DROPPED = "dropped"  # no longer true or wanted at send time (reason in last_error)


class Delivery(TimestampMixin, Base):
    """One message to one person on one channel, sent once.

    The dedupe key (kind, recipient, subject, channel) makes a second request for the
    same message a no-op, so causes may be retried freely.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # What it is about, e.g. "meeting:42@2027-03-02T17:00Z" or "cohort:3".
    subject: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(16))  # email or discord
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    send_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Reminders must not arrive late; others may (None: no limit).
    late_after_seconds: Mapped[int | None]
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_deliveries_status_send_at", "status", "send_at"),)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # sent, temporary, permanent, dropped
    error: Mapped[str | None] = mapped_column(Text)


class NotificationOptOut(Base):
    """Someone turned off one kind on one channel (the unsubscribe link)."""

    __tablename__ = "notification_optouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "kind", "channel"),)
