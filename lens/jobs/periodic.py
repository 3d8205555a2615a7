"""Periodic work: APScheduler fires often, the dedupe key makes it once per period.

Every process that runs jobs also runs this scheduler. Each firing enqueues the job with
the key `periodic:<kind>:<period start>`; whichever process fires first in a period
inserts the row and the others' inserts do nothing. Firing several times per period
means a period is never skipped, even when a process starts late or pauses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.jobs.service import enqueue
from lens.logging import get_logger

log = get_logger("lens.jobs.periodic")


@dataclass(frozen=True)
class Periodic:
    kind: str
    every: timedelta
    payload: dict[str, Any] | None = None


PERIODIC: list[Periodic] = []


def every(kind: str, period: timedelta, payload: dict[str, Any] | None = None) -> None:
    """Declare that `kind` runs once per `period` (periods are aligned to the epoch)."""
    if period < timedelta(seconds=1):
        raise ValueError("a periodic job needs a period of at least a second")
    if any(p.kind == kind for p in PERIODIC):
        return
    PERIODIC.append(Periodic(kind, period, payload))


def period_start(period: timedelta, now: datetime) -> datetime:
    seconds = int(period.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def dedupe_key(kind: str, start: datetime) -> str:
    return f"periodic:{kind}:{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def enqueue_periodic(
    session: AsyncSession, item: Periodic, *, now: datetime | None = None
) -> int | None:
    start = period_start(item.every, now or utcnow())
    return await enqueue(
        session,
        kind=item.kind,
        payload=item.payload,
        run_at=start,
        dedupe_key=dedupe_key(item.kind, start),
    )


class PeriodicTriggers:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        items: list[Periodic] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.items = PERIODIC if items is None else items
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        for item in self.items:
            # Fire four times a period (at most once a minute) so no period is missed.
            seconds = max(1.0, min(60.0, item.every.total_seconds() / 4))
            self.scheduler.add_job(
                self.fire,
                IntervalTrigger(seconds=seconds, timezone=UTC),
                args=[item],
                id=f"periodic:{item.kind}",
                next_run_time=utcnow(),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
        self.scheduler.start()

    async def fire(self, item: Periodic) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                job_id = await enqueue_periodic(session, item)
            if job_id is not None:
                log.info("jobs.periodic.enqueued", kind=item.kind, job_id=job_id)
        except Exception as exc:
            log.warning("jobs.periodic.failed", kind=item.kind, error=repr(exc))

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
