"""Job runner throughput: enqueue N no-op jobs, drain them with R runners, report rates.

The database given by --url is migrated, and its jobs table is emptied before and after.
Default: a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from sqlalchemy import delete, func, insert, select

from lens.db import migrate
from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import JobContext, JobRegistry
from lens.jobs.runner import JobRunner
from lens.settings import Settings


async def main(url: str, jobs: int, runners: int, concurrency: int) -> None:
    setup = create_engine(url)
    await migrate.upgrade(setup)
    maker = create_sessionmaker(setup)
    now = utcnow()
    async with maker() as s:
        await s.execute(delete(Job))
        started = time.perf_counter()
        rows = [
            {
                "kind": "bench.noop",
                "payload": {"n": n},
                "run_at": now,
                "status": JobStatus.QUEUED,
                "attempts": 0,
                "max_attempts": 5,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(jobs)
        ]
        await s.execute(insert(Job), rows)
        await s.commit()
    enqueue_s = time.perf_counter() - started

    registry = JobRegistry()

    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    registry.register("bench.noop", noop)
    engines = [create_engine(url) for _ in range(runners)]
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    pool = [
        JobRunner(create_sessionmaker(e), settings=settings, registry=registry,
                  concurrency=concurrency, poll_seconds=0.05)
        for e in engines
    ]  # fmt: skip
    started = time.perf_counter()
    await asyncio.gather(*(r.run_until_idle(limit_seconds=3600) for r in pool))
    run_s = time.perf_counter() - started
    async with maker() as s:
        done = await s.scalar(
            select(func.count()).select_from(Job).where(Job.status == JobStatus.SUCCEEDED)
        )
        await s.execute(delete(Job))
        await s.commit()
    for e in [*engines, setup]:
        await e.dispose()
    dialect = url.split(":", 1)[0]
    print(
        f"{dialect}: {jobs} jobs, {runners} runner(s) x concurrency {concurrency}: "
        f"enqueue {jobs / enqueue_s:,.0f} jobs/s, run {done / run_s:,.0f} jobs/s "
        f"({run_s:.2f} s, {done} succeeded)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=None, help="database URL (default: temp SQLite)")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    url = args.url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    asyncio.run(main(url, args.jobs, args.runners, args.concurrency))
