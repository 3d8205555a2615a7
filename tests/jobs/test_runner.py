from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import JobContext, JobRegistry
from lens.jobs.runner import JobRunner
from lens.jobs.service import backoff, enqueue, retry_failed

HERE = Path(__file__).parent


def make_runner(sessionmaker: Any, registry: JobRegistry, settings: Any, **kw: Any) -> JobRunner:
    kw.setdefault("poll_seconds", 0.05)
    kw.setdefault("backoff_base_seconds", 0.0)
    return JobRunner(sessionmaker, settings=settings, registry=registry, **kw)


async def get_job(sessionmaker: async_sessionmaker[AsyncSession], job_id: int) -> Job:
    async with sessionmaker() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        return job


async def test_enqueue_with_same_dedupe_key_adds_one_job(db: AsyncSession) -> None:
    first = await enqueue(db, kind="x", payload={"a": 1}, dedupe_key="k1")
    second = await enqueue(db, kind="x", payload={"a": 2}, dedupe_key="k1")
    other = await enqueue(db, kind="x", dedupe_key="k2")
    assert first is not None and other is not None
    assert second is None
    assert await db.scalar(select(func.count()).select_from(Job)) == 2


async def test_enqueue_refuses_naive_run_at(db: AsyncSession) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await enqueue(db, kind="x", run_at=utcnow().replace(tzinfo=None))


async def test_job_runs_in_its_own_transaction_and_succeeds(sessionmaker, db, make_settings):
    registry = JobRegistry()
    seen: list[tuple[dict[str, Any], int]] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((payload, ctx.attempt))

    registry.register("demo.hello", handler)
    job_id = await enqueue(db, kind="demo.hello", payload={"name": "Ada"})
    await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings())
    await runner.run_until_idle()

    assert seen == [({"name": "Ada"}, 1)]
    job = await get_job(sessionmaker, job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 1 and job.finished_at is not None and job.locked_by is None


async def test_job_enqueued_in_a_rolled_back_transaction_never_runs(sessionmaker, make_settings):
    registry = JobRegistry()
    ran: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(1)

    registry.register("demo.outbox", handler)
    async with sessionmaker() as s:
        await enqueue(s, kind="demo.outbox")
        await s.rollback()  # the business change failed, so its job must vanish too
    await make_runner(sessionmaker, registry, make_settings()).run_until_idle()
    assert ran == []


async def test_future_job_waits_for_its_time(sessionmaker, db, make_settings):
    registry = JobRegistry()
    ran: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(1)

    registry.register("demo.later", handler)
    await enqueue(db, kind="demo.later", run_at=utcnow() + timedelta(hours=1))
    await db.commit()
    await make_runner(sessionmaker, registry, make_settings()).run_until_idle()
    assert ran == []


async def test_failing_job_is_retried_then_fails_with_its_error(sessionmaker, db, make_settings):
    registry = JobRegistry()
    attempts: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError(f"vendor said no on attempt {ctx.attempt}")

    registry.register("demo.flaky", handler, max_attempts=3)
    job_id = await enqueue(db, kind="demo.flaky", max_attempts=3)
    await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings())
    await runner.run_until_idle()

    assert attempts == [1, 2, 3]
    job = await get_job(sessionmaker, job_id)
    assert job.status is JobStatus.FAILED
    assert job.attempts == 3
    assert "RuntimeError: vendor said no on attempt 3" in (job.last_error or "")
    assert job.finished_at is not None


async def test_work_of_a_failed_attempt_is_rolled_back(sessionmaker, db, make_settings):
    from tests.fixtures.users import make_user

    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        user = await make_user(ctx.session, nickname=f"attempt {ctx.attempt}")
        if ctx.attempt == 1:
            raise RuntimeError("half-way")
        assert user.id

    registry.register("demo.partial", handler, max_attempts=2)
    await enqueue(db, kind="demo.partial", max_attempts=2)
    await db.commit()
    await make_runner(sessionmaker, registry, make_settings()).run_until_idle()
    from lens.users.models import User

    async with sessionmaker() as s:
        names = list(await s.scalars(select(User.nickname)))
    assert names == ["attempt 2"]


async def test_retry_waits_with_exponential_backoff(sessionmaker, db, make_settings):
    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ConnectionError("down")

    registry.register("demo.down", handler, max_attempts=5)
    job_id = await enqueue(db, kind="demo.down")
    await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings(), backoff_base_seconds=10)
    before = utcnow()
    await runner.run_until_idle()  # one attempt; the retry is 10 s away
    job = await get_job(sessionmaker, job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 1
    assert timedelta(seconds=9) < job.run_at - before < timedelta(seconds=12)
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(30).total_seconds() == 3600


async def test_admin_can_requeue_a_failed_job(sessionmaker, db, make_settings):
    registry = JobRegistry()
    calls: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        if len(calls) == 1:
            raise RuntimeError("bad config")

    registry.register("demo.fixable", handler, max_attempts=1)
    job_id = await enqueue(db, kind="demo.fixable", max_attempts=1)
    await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings())
    await runner.run_until_idle()
    assert (await get_job(sessionmaker, job_id)).status is JobStatus.FAILED
    async with sessionmaker() as s:
        assert await retry_failed(s, job_id=job_id)
        await s.commit()
    await runner.run_until_idle()
    assert (await get_job(sessionmaker, job_id)).status is JobStatus.SUCCEEDED


async def test_unknown_kind_fails_visibly(sessionmaker, db, make_settings):
    job_id = await enqueue(db, kind="nobody.handles.this", max_attempts=1)
    await db.commit()
    await make_runner(sessionmaker, JobRegistry(), make_settings()).run_until_idle()
    job = await get_job(sessionmaker, job_id)
    assert job.status is JobStatus.FAILED
    assert "no handler for job kind 'nobody.handles.this'" in (job.last_error or "")


async def test_two_runners_run_each_of_1000_jobs_exactly_once(
    database_url, committing_sessionmaker, make_settings
):
    runs: list[int] = []
    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(payload["n"])
        await asyncio.sleep(0)  # let the other runner interleave

    registry.register("demo.count", handler)
    now = utcnow()
    async with committing_sessionmaker() as s:
        await s.execute(
            insert(Job),
            [
                {
                    "kind": "demo.count",
                    "payload": {"n": n},
                    "run_at": now,
                    "status": JobStatus.QUEUED,
                    "attempts": 0,
                    "max_attempts": 5,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(1000)
            ],
        )
        await s.commit()

    # Two started runners (their real loops, leases and bookkeeping), each with its own
    # engine and so its own connection pool, as two processes have.
    engines = [create_engine(database_url) for _ in range(2)]
    runners = [
        make_runner(create_sessionmaker(e), registry, make_settings(), concurrency=4)
        for e in engines
    ]
    try:
        for runner in runners:
            await runner.start()
        deadline = time.monotonic() + 300
        while len(runs) < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # would any job run a second time?
    finally:
        for runner in runners:
            await runner.stop(grace_seconds=10)
        for e in engines:
            await e.dispose()

    assert sorted(runs) == list(range(1000)), f"{len(runs)} runs for 1000 jobs"
    async with committing_sessionmaker() as s:
        statuses = dict(
            (await s.execute(select(Job.status, func.count()).group_by(Job.status))).all()
        )
        max_attempts = await s.scalar(select(func.max(Job.attempts)))
    assert statuses == {JobStatus.SUCCEEDED: 1000}
    assert max_attempts == 1


async def test_handlers_that_read_then_write_run_side_by_side(
    committing_sessionmaker, make_settings
):
    # On SQLite a read-then-write transaction used to fail with "database is locked"
    # when another one committed in between.
    from lens.users.models import User
    from tests.fixtures.users import make_user

    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        await ctx.session.scalar(select(func.count()).select_from(User))
        await asyncio.sleep(0.05)
        await make_user(ctx.session, nickname=f"job {payload['n']}")

    registry.register("demo.read_write", handler)
    async with committing_sessionmaker() as s:
        ids = [await enqueue(s, kind="demo.read_write", payload={"n": n}) for n in range(12)]
        await s.commit()
    runner = make_runner(committing_sessionmaker, registry, make_settings(), concurrency=4)
    await runner.start()
    try:
        for job_id in ids:
            await _wait_for_status(committing_sessionmaker, job_id, JobStatus.SUCCEEDED)
    finally:
        await runner.stop(grace_seconds=5)
    async with committing_sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 12


async def test_a_renewed_lease_keeps_a_long_job_from_a_second_runner(
    committing_sessionmaker, make_settings
):
    registry = JobRegistry()
    calls: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        await asyncio.sleep(2.4)  # three leases long

    registry.register("demo.long_leased", handler)
    async with committing_sessionmaker() as s:
        job_id = await enqueue(s, kind="demo.long_leased")
        await s.commit()
    runners = [
        # Renewed every 0.27 s: a busy CI machine may delay one renewal, not two in a row.
        make_runner(committing_sessionmaker, registry, make_settings(), lease_seconds=0.8)
        for _ in range(2)
    ]
    for runner in runners:
        await runner.start()
    try:
        await _wait_for_status(committing_sessionmaker, job_id, JobStatus.SUCCEEDED)
    finally:
        for runner in runners:
            await runner.stop(grace_seconds=5)
    assert calls == [1]


async def test_work_of_an_attempt_whose_lease_was_taken_over_is_rolled_back(
    committing_sessionmaker, make_settings
):
    from lens.users.models import User
    from tests.fixtures.users import make_user

    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        if ctx.attempt == 1:
            await asyncio.sleep(1.0)  # a stall: the lease runs out meanwhile
        await make_user(ctx.session, nickname=f"attempt {ctx.attempt}")

    registry.register("demo.stalled", handler)
    async with committing_sessionmaker() as s:
        job_id = await enqueue(s, kind="demo.stalled")
        await s.commit()
    stalled = make_runner(committing_sessionmaker, registry, make_settings(), lease_seconds=0.3)

    async def no_renewal() -> None:  # as if every renewal failed (database trouble)
        await asyncio.sleep(3600)

    stalled._renew_leases = no_renewal  # type: ignore[method-assign]
    await stalled.start()
    await _wait_for_status(committing_sessionmaker, job_id, JobStatus.RUNNING)
    await asyncio.sleep(0.4)  # the lease has run out
    rescuer = make_runner(committing_sessionmaker, registry, make_settings())
    await rescuer.run_until_idle()
    await asyncio.sleep(1.0)  # the stalled attempt wakes up and tries to finish
    await stalled.stop(grace_seconds=5)
    async with committing_sessionmaker() as s:
        names = list(await s.scalars(select(User.nickname)))
    job = await get_job(committing_sessionmaker, job_id)
    assert names == ["attempt 2"]
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2


async def test_shutdown_lets_a_running_job_finish(committing_sessionmaker, make_settings):
    # A started runner works concurrently, so it needs real connections, not the
    # test's single rolled-back one.
    sessionmaker = committing_sessionmaker
    registry = JobRegistry()
    finished: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)
        finished.append(1)

    registry.register("demo.short", handler)
    async with sessionmaker() as db:
        job_id = await enqueue(db, kind="demo.short")
        await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings())
    await runner.start()
    await _wait_for_status(sessionmaker, job_id, JobStatus.RUNNING)
    await runner.stop(grace_seconds=5)
    assert finished == [1]
    assert (await get_job(sessionmaker, job_id)).status is JobStatus.SUCCEEDED


async def test_shutdown_releases_a_job_that_outlasts_the_grace_period(
    committing_sessionmaker, make_settings
):
    sessionmaker = committing_sessionmaker
    registry = JobRegistry()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    registry.register("demo.long", handler)
    async with sessionmaker() as db:
        job_id = await enqueue(db, kind="demo.long")
        await db.commit()
    runner = make_runner(sessionmaker, registry, make_settings())
    await runner.start()
    await _wait_for_status(sessionmaker, job_id, JobStatus.RUNNING)
    await runner.stop(grace_seconds=0.1)
    job = await get_job(sessionmaker, job_id)
    # Back in the queue, due now, its interrupted attempt not counted against it.
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 0 and job.locked_by is None
    assert job.run_at <= utcnow()


async def test_runner_killed_mid_job_the_job_runs_again_and_completes(
    database_url, committing_sessionmaker, make_settings, tmp_path
):
    async with committing_sessionmaker() as s:
        job_id = await enqueue(s, kind="test.slow", payload={"marker": str(tmp_path / "started")})
        await s.commit()

    # A real worker process that starts the job, then is killed without any chance to
    # clean up (SIGKILL), as an out-of-memory kill or a lost machine would.
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "worker_process.py"), database_url],
        cwd=HERE.parent.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent.parent)},
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, "worker process exited early"
            assert time.monotonic() < deadline, "worker never started the job"
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    job = await get_job(committing_sessionmaker, job_id)
    assert job.status is JobStatus.RUNNING and job.attempts == 1

    registry = JobRegistry()
    completed: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        completed.append(ctx.attempt)

    registry.register("test.slow", handler)
    runner = make_runner(committing_sessionmaker, registry, make_settings())
    deadline = time.monotonic() + 30
    while not completed and time.monotonic() < deadline:
        await runner.run_until_idle()  # takes it once the dead worker's lease runs out
        await asyncio.sleep(0.2)
    assert completed == [2]
    job = await get_job(committing_sessionmaker, job_id)
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2


async def _wait_for_status(sessionmaker, job_id: int, status: JobStatus) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await get_job(sessionmaker, job_id)).status is status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {status}")
