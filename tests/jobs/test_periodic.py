from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from lens.jobs.models import Job
from lens.jobs.periodic import (
    Periodic,
    PeriodicTriggers,
    dedupe_key,
    enqueue_periodic,
    period_start,
)


def test_periods_are_aligned_to_the_epoch() -> None:
    six_hours = timedelta(hours=6)
    assert period_start(six_hours, datetime(2026, 11, 26, 5, 59, tzinfo=UTC)) == datetime(
        2026, 11, 26, 0, 0, tzinfo=UTC
    )
    assert period_start(six_hours, datetime(2026, 11, 26, 6, 0, tzinfo=UTC)) == datetime(
        2026, 11, 26, 6, 0, tzinfo=UTC
    )
    assert (
        dedupe_key("meetings.rsvp_sync", datetime(2026, 11, 26, 6, tzinfo=UTC))
        == "periodic:meetings.rsvp_sync:2026-11-26T06:00:00Z"
    )


async def test_one_job_per_period_however_often_it_fires(db) -> None:
    item = Periodic("demo.sweep", timedelta(hours=6))
    t = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    first = await enqueue_periodic(db, item, now=t)
    again = await enqueue_periodic(db, item, now=t + timedelta(hours=4))
    next_period = await enqueue_periodic(db, item, now=t + timedelta(hours=5))
    assert first is not None and again is None and next_period is not None
    jobs = list(await db.scalars(select(Job).where(Job.kind == "demo.sweep").order_by(Job.id)))
    assert [j.run_at for j in jobs] == [
        datetime(2026, 11, 26, 6, tzinfo=UTC),
        datetime(2026, 11, 26, 12, tzinfo=UTC),
    ]


async def test_several_processes_firing_together_enqueue_once(committing_sessionmaker) -> None:
    item = Periodic("demo.everyone", timedelta(hours=1))
    # Five schedulers (as five processes would run) fire at the same moment.
    triggers = [PeriodicTriggers(committing_sessionmaker, [item]) for _ in range(5)]
    await asyncio.gather(*(t.fire(item) for t in triggers))
    async with committing_sessionmaker() as s:
        keys = list(await s.scalars(select(Job.dedupe_key).where(Job.kind == "demo.everyone")))
    assert len(keys) == 1 and keys[0].startswith("periodic:demo.everyone:")


async def test_scheduler_fires_on_start(committing_sessionmaker) -> None:
    item = Periodic("demo.started", timedelta(minutes=10))
    triggers = PeriodicTriggers(committing_sessionmaker, [item])
    triggers.start()
    try:
        for _ in range(100):
            async with committing_sessionmaker() as s:
                if await s.scalar(select(Job.id).where(Job.kind == "demo.started")):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the scheduler did not enqueue on start")
    finally:
        triggers.stop()
