"""The course team's view of deliveries: counts, filtered lists, a person's messages,
and sending failed ones again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.errors import Invalid
from lens.logging import get_logger
from lens.notifications.kinds import KINDS
from lens.notifications.models import Delivery, DeliveryStatus
from lens.notifications.service import too_late
from lens.users.models import User

log = get_logger("lens.notifications")

STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.DROPPED,
)
LIST_LIMIT = 100  # rows on the deliveries page, and so at most in one "retry all"
PERSON_LIMIT = 50  # a person's latest, on their admin page


@dataclass(frozen=True)
class DeliveryRow:
    delivery: Delivery
    user: User
    # Past its kind's time limit: a retry would be dropped by the sender, not sent.
    late: timedelta | None


@dataclass(frozen=True)
class Retried:
    retried: int  # back to waiting
    late: int  # of those, past their time limit: the sender will drop them
    skipped: int  # not failed (any more): left as they were


def check_filters(*, status: str, kind: str) -> tuple[str, str]:
    status, kind = status.strip(), kind.strip()
    if status and status not in STATUSES:
        raise Invalid(f"{status!r} is not a delivery status; choose one from the list.")
    if kind and kind not in KINDS:
        raise Invalid(f"{kind!r} is not a kind of notification; choose one from the list.")
    return status, kind


async def status_counts(session: AsyncSession, *, kind: str = "") -> dict[str, int]:
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    if kind:
        query = query.where(Delivery.kind == kind)
    return {status: n for status, n in (await session.execute(query)).all()}


async def list_deliveries(
    session: AsyncSession, *, status: str = "", kind: str = "", now: datetime | None = None
) -> list[DeliveryRow]:
    """The latest changed deliveries with their recipients; without a status, the ones
    that need a look (failed) or are still to go (pending)."""
    now = now or utcnow()
    query = (
        select(Delivery, User)
        .join(User, User.id == Delivery.user_id)
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
        .limit(LIST_LIMIT)
    )
    if status:
        query = query.where(Delivery.status == status)
    else:
        query = query.where(Delivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.PENDING]))
    if kind:
        query = query.where(Delivery.kind == kind)
    return [DeliveryRow(d, u, too_late(d, now=now)) for d, u in (await session.execute(query))]


async def list_person_deliveries(session: AsyncSession, *, user_id: int) -> list[Delivery]:
    """The messages meant for one person, latest due first (upcoming reminders too)."""
    rows = await session.scalars(
        select(Delivery)
        .where(Delivery.user_id == user_id)
        .order_by(Delivery.send_at.desc(), Delivery.id.desc())
        .limit(PERSON_LIMIT)
    )
    return list(rows)


async def retry_deliveries(
    session: AsyncSession, *, delivery_ids: list[int], by: User, now: datetime | None = None
) -> Retried:
    """Put failed deliveries back to waiting, due now, with a fresh set of attempts.

    Only failed rows change (in one statement, so a second retry, or one racing the
    first, finds them waiting and leaves them be). The attempt count starts again, or
    the sender would give up after one more temporary failure; the attempts already
    made stay in delivery_attempts. Timed kinds keep their first due time, so one past
    its limit is dropped by the sender instead of arriving late.
    """
    now = now or utcnow()
    ids = sorted(set(delivery_ids))
    if not ids:
        return Retried(0, 0, 0)
    rows = await session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.FAILED)
        .values(
            status=DeliveryStatus.PENDING,
            send_at=now,
            attempts=0,
            last_error=None,
            locked_by=None,
            locked_until=None,
            updated_at=now,
        )
        .returning(Delivery)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    retried = list(rows)
    late = sum(1 for d in retried if too_late(d, now=now) is not None)
    if retried:
        log.info(
            "notifications.delivery.retried",
            deliveries=[d.id for d in retried],
            late=late,
            by=by.id,
        )
    return Retried(len(retried), late, len(ids) - len(retried))
