"""Asking for notifications: delivery rows written in the caller's transaction.

A cause (enrollment, approval, a moved meeting) calls `notify`; timed kinds get their
send time now and are checked again when it comes (sender.py). Each row is one message
to one person on one channel, and its dedupe key makes asking twice harmless.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.errors import Invalid
from lens.notifications.kinds import CHANNELS, DISCORD, EMAIL, KINDS, MEETING_TIMED, get_kind
from lens.notifications.models import Delivery, DeliveryStatus, NotificationOptOut
from lens.users.models import User


def dedupe_key(kind: str, user_id: int, subject: str, channel: str) -> str:
    return f"{kind}|{user_id}|{subject}|{channel}"


def meeting_subject(meeting_id: int, starts_at: datetime) -> str:
    """Timed kinds are about one meeting at one time: a move makes them new ones."""
    return f"meeting:{meeting_id}@{starts_at:%Y%m%dT%H%MZ}"


async def notify(
    session: AsyncSession,
    *,
    kind: str,
    user_ids: Iterable[int],
    subject: str,
    context: dict[str, Any],
    send_at: datetime | None = None,
    channels: Sequence[str] = CHANNELS,
) -> int:
    """Ask for `kind` to reach each person on each channel; returns rows added.

    Which channels actually carry it is decided at send time (the person's address,
    Discord account and preferences then), so a row exists per channel either way.
    """
    spec = get_kind(kind)
    now = utcnow()
    when = send_at or now
    late = int(spec.late_after.total_seconds()) if spec.late_after else None
    rows = [
        {
            "kind": kind,
            "user_id": user_id,
            "subject": subject,
            "channel": channel,
            "dedupe_key": dedupe_key(kind, user_id, subject, channel),
            "send_at": when,
            "late_after_seconds": late,
            # Lateness counts from here, however often a retry moves send_at.
            "context": {**context, "due_at": when.isoformat()},
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for user_id in dict.fromkeys(user_ids)
        for channel in channels
    ]
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(rows), 500):
        stmt = insert(Delivery).values(rows[start : start + 500])
        # Asked again for one that was dropped (a meeting moved away and back, a
        # member who left and returned): it is wanted again. Sent or waiting: no-op.
        stmt = stmt.on_conflict_do_update(
            index_elements=[Delivery.dedupe_key],
            set_={
                "status": DeliveryStatus.PENDING,
                "send_at": stmt.excluded.send_at,
                "context": stmt.excluded.context,
                "last_error": None,
                "updated_at": now,
            },
            where=Delivery.status == DeliveryStatus.DROPPED,
        )
        result = await session.execute(stmt.returning(Delivery.id))
        added += len(result.all())
    return added


def too_late(delivery: Delivery, *, now: datetime) -> timedelta | None:
    """How late a timed delivery would be if sent at `now`, when past its kind's limit
    (None: it may still go out). Lateness counts from when it was first due, however
    often a retry moves its send time."""
    if delivery.late_after_seconds is None:
        return None
    due = delivery.context.get("due_at")
    late = now - (datetime.fromisoformat(due) if due else delivery.send_at)
    return late if late > timedelta(seconds=delivery.late_after_seconds) else None


async def schedule_meeting_notifications(
    session: AsyncSession, *, meeting_id: int, starts_at: datetime, user_ids: Sequence[int]
) -> int:
    """Reminders (24 h, 1 h) and reading nudges (3 days, 1 day) for one meeting.

    Those whose time has passed are not asked for. A moved meeting gets new ones (the
    subject carries the start time); the old ones are dropped at their send time.
    """
    now = utcnow()
    added = 0
    for spec in MEETING_TIMED:
        assert spec.before_meeting is not None
        send_at = starts_at - spec.before_meeting
        if send_at < now:
            continue
        added += await notify(
            session,
            kind=spec.name,
            user_ids=user_ids,
            subject=meeting_subject(meeting_id, starts_at),
            context={"meeting_id": meeting_id, "starts_at": starts_at.isoformat()},
            send_at=send_at,
        )
    return added


async def drop_pending(
    session: AsyncSession,
    *,
    subject_prefix: str,
    reason: str,
    user_ids: Sequence[int] | None = None,
) -> int:
    """Drop waiting deliveries about something that changed (e.g. a moved meeting)."""
    query = update(Delivery).where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.subject.startswith(subject_prefix)
    )
    if user_ids is not None:
        query = query.where(Delivery.user_id.in_(list(user_ids)))
    result = await session.execute(
        query.values(status=DeliveryStatus.DROPPED, last_error=reason, updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- preferences and unsubscribe links ------------------------------------------------


def unsubscribe_token(secret: str, user_id: int, kind: str, channel: str) -> str:
    message = f"unsubscribe:{user_id}:{kind}:{channel}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def unsubscribe_url(base_url: str, secret: str, user_id: int, kind: str, channel: str) -> str:
    token = unsubscribe_token(secret, user_id, kind, channel)
    return f"{base_url}/notifications/unsubscribe?u={user_id}&k={kind}&c={channel}&t={token}"


def check_unsubscribe(secret: str, user_id: int, kind: str, channel: str, token: str) -> None:
    if kind not in KINDS or channel not in CHANNELS or not KINDS[kind].can_unsubscribe:
        raise Invalid("This unsubscribe link is not complete; copy the whole link.")
    expected = unsubscribe_token(secret, user_id, kind, channel)
    if not hmac.compare_digest(expected, token):
        raise Invalid("This unsubscribe link is not valid; copy the whole link from the e-mail.")


async def opted_out(session: AsyncSession, *, user_id: int) -> set[tuple[str, str]]:
    rows = await session.execute(
        select(NotificationOptOut.kind, NotificationOptOut.channel).where(
            NotificationOptOut.user_id == user_id
        )
    )
    return {(k, c) for k, c in rows.all()}


async def opted_out_many(
    session: AsyncSession, *, user_ids: list[int]
) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set[tuple[str, str]]] = {}
    if not user_ids:
        return out
    rows = await session.execute(
        select(
            NotificationOptOut.user_id, NotificationOptOut.kind, NotificationOptOut.channel
        ).where(NotificationOptOut.user_id.in_(user_ids))
    )
    for user_id, kind, channel in rows.all():
        out.setdefault(user_id, set()).add((kind, channel))
    return out


async def set_preference(
    session: AsyncSession, *, user_id: int, kind: str, channel: str, enabled: bool
) -> None:
    spec = get_kind(kind)
    if channel not in CHANNELS:
        raise Invalid(f"Unknown channel {channel!r}.")
    if not spec.can_unsubscribe:
        raise Invalid(f"{spec.label} cannot be turned off.")
    existing = await session.scalar(
        select(NotificationOptOut).where(
            NotificationOptOut.user_id == user_id,
            NotificationOptOut.kind == kind,
            NotificationOptOut.channel == channel,
        )
    )
    if enabled and existing is not None:
        await session.delete(existing)
        await session.flush()
    elif not enabled and existing is None:
        # Two clicks at once (a mail client's one-click and the person): one row.
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(NotificationOptOut)
            .values(user_id=user_id, kind=kind, channel=channel, created_at=utcnow())
            .on_conflict_do_nothing()
        )


def wanted(
    user: User, *, kind: str, channel: str, optouts: set[tuple[str, str]], discord_on: bool
) -> str | None:
    """None when `user` takes `kind` on `channel`, else why not."""
    if user.deleted_at is not None:
        return "account deleted"
    if (kind, channel) in optouts:
        return "unsubscribed from this kind"
    if channel == EMAIL:
        if not user.email:
            return "no e-mail address"
        if not user.email_notifications:
            return "e-mail notifications turned off"
    if channel == DISCORD:
        if not discord_on:
            return "Discord bot not configured"
        if not user.discord_id:
            return "no Discord account"
        if not user.dm_notifications:
            return "Discord messages turned off"
    return None
