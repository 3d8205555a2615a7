"""The job runner: claims due jobs, runs them, retries with backoff, never loses one.

See lens/jobs/README.md for the protocol (claiming, leases, retries, shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from lens.db.base import UTCDateTime, utcnow
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import JobContext, JobRegistry
from lens.jobs.registry import registry as default_registry
from lens.jobs.service import COALESCE_PREFIX, backoff
from lens.logging import get_logger

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from lens.settings import Settings

log = get_logger("lens.jobs")

_MAX_ERROR_CHARS = 4000
_STOP_CLAIM_SECONDS = 5.0


class LeaseLost(Exception):
    """Another claim took this job over (our lease expired); our work is rolled back."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    token: str  # `locked_by` of this claim; every later update of the row checks it


class JobRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        settings: Settings,
        registry: JobRegistry | None = None,
        http: httpx.AsyncClient | None = None,
        concurrency: int | None = None,
        poll_seconds: float | None = None,
        lease_seconds: float | None = None,
        backoff_base_seconds: float = 10.0,
        worker_id: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.registry = registry or default_registry
        self.http = http
        self.concurrency = concurrency or settings.job_concurrency
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.job_poll_seconds
        self.lease = timedelta(
            seconds=lease_seconds if lease_seconds is not None else settings.job_lease_seconds
        )
        self.backoff_base_seconds = backoff_base_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        bind = sessionmaker.kw.get("bind")
        # PostgreSQL: leases and due times use the database's clock, so workers on hosts
        # whose clocks disagree still agree on when a lease has run out. SQLite is one
        # file on one host; its clock is the process's.
        self._db_clock = bind is not None and bind.dialect.name == "postgresql"
        self._inflight: dict[int, tuple[str, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.last_tick: float | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._loop(), name="lens-job-runner")
        self._lease_task = asyncio.create_task(self._renew_leases(), name="lens-job-leases")
        log.info("jobs.runner.started", worker=self.worker_id, concurrency=self.concurrency)

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming; let running jobs finish within the grace period, then release.

        A released job goes back to the queue untouched (its attempt is not counted),
        so the next runner picks it up at once.
        """
        grace = self.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            # A claim stuck on an unreachable database must not hold up shutdown;
            # whatever it claimed is released below (or its lease runs out).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._loop_task, timeout=_STOP_CLAIM_SECONDS)
            self._loop_task = None
        pending = [task for _, task in self._inflight.values()]
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=grace)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            self._lease_task = None
        released = await self._release_mine()
        log.info("jobs.runner.stopped", worker=self.worker_id, released=released)

    @property
    def alive(self) -> bool:
        """Running, and its loop has come round recently (for /readyz)."""
        if self._loop_task is None or self._loop_task.done() or self.last_tick is None:
            return False
        return time.monotonic() - self.last_tick < max(30.0, self.poll_seconds * 5)

    def wake(self) -> None:
        """Look for work now rather than at the next poll (after an in-process enqueue)."""
        self._wake.set()

    # -- the loop -----------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self.last_tick = time.monotonic()
            claimed: list[ClaimedJob] = []
            free = self.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self.claim(free)
                except Exception as exc:  # database down: keep trying, do not die
                    log.warning("jobs.claim.failed", error=f"{type(exc).__name__}: {exc}")
            for item in claimed:
                self._spawn(item)
            if claimed and len(claimed) == free:
                continue  # there may be more due work; go round at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    def _spawn(self, item: ClaimedJob) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(item), name=f"lens-job-{item.id}")
        self._inflight[item.id] = (item.token, task)
        task.add_done_callback(functools.partial(self._done, item.id))
        return task

    def _done(self, job_id: int, task: asyncio.Task[None]) -> None:
        entry = self._inflight.get(job_id)
        if entry is not None and entry[1] is task:
            del self._inflight[job_id]
        self._wake.set()

    async def run_until_idle(self, *, limit_seconds: float = 30.0) -> None:
        """Claim and run due jobs until none is left (for tests and one-off commands).

        Leases are renewed only while the runner is started; use `start()` for work
        that may outlast a lease.
        """
        async with asyncio.timeout(limit_seconds):
            while claimed := await self.claim(self.concurrency):
                await asyncio.gather(*(self._spawn(item) for item in claimed))

    # -- claiming -----------------------------------------------------------------

    def _now(self, plus: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        if self._db_clock:
            # statement_timestamp(), not now(): now() stands still for a whole
            # transaction.
            now = func.statement_timestamp()
            return now + plus if plus else now
        return literal(utcnow() + plus, UTCDateTime())

    async def claim(self, limit: int) -> list[ClaimedJob]:
        now = self._now()
        # Each claim has its own token, so a runner that takes back one of its own
        # expired jobs cannot confuse the old attempt with the new one.
        token = f"{self.worker_id}/{uuid.uuid4().hex[:12]}"
        conditions = [
            or_(
                and_(Job.status == JobStatus.QUEUED, Job.run_at <= now),
                # Its runner died mid-job: the lease ran out without renewal.
                and_(Job.status == JobStatus.RUNNING, Job.locked_until < now),
            )
        ]
        if self._inflight:
            conditions.append(Job.id.not_in(list(self._inflight)))
        # PostgreSQL: rows another runner is claiming right now are skipped, not
        # waited for, so concurrent runners never take the same job. SQLite has a
        # single writer (BEGIN IMMEDIATE), which gives the same guarantee.
        # A CTE (materialised) rather than `IN (subquery)`, which the planner may
        # re-run and so claim more rows than the limit.
        due = (
            select(Job.id)
            .where(*conditions)
            .order_by(Job.run_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        stmt = (
            update(Job)
            .where(Job.id == due.c.id)
            .values(
                status=JobStatus.RUNNING,
                locked_by=token,
                locked_until=self._now(self.lease),
                attempts=Job.attempts + 1,
                updated_at=now,
                # A coalescing key only holds while the job waits: once it runs, the
                # next enqueue (say, another push) must queue a fresh job.
                dedupe_key=case(
                    (Job.dedupe_key.startswith(COALESCE_PREFIX), None), else_=Job.dedupe_key
                ),
            )
            .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
            .execution_options(synchronize_session=False)
        )
        async with self.sessionmaker() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [
            ClaimedJob(r.id, r.kind, r.payload or {}, r.attempts, r.max_attempts, token)
            for r in rows
        ]

    # -- running ------------------------------------------------------------------

    async def _run(self, item: ClaimedJob) -> None:
        started = time.monotonic()
        log_fields = {"job_id": item.id, "kind": item.kind, "attempt": item.attempts}
        kind = self.registry.get(item.kind)
        try:
            if item.attempts > item.max_attempts:
                # Only reachable when runners died holding it, again and again.
                raise RuntimeError(f"gave up after {item.max_attempts} attempts (runner lost)")
            if kind is None:
                raise LookupError(f"no handler for job kind {item.kind!r} in this process")
            async with self.sessionmaker() as session, session.begin():
                ctx = JobContext(
                    session=session,
                    job_id=item.id,
                    kind=item.kind,
                    attempt=item.attempts,
                    settings=self.settings,
                    http=self.http,
                )
                await kind.handler(ctx, item.payload)
                # Marked done in the same transaction as the work: both or neither.
                done = await session.execute(
                    update(Job)
                    .where(
                        Job.id == item.id,
                        Job.locked_by == item.token,
                        Job.status == JobStatus.RUNNING,
                    )
                    .values(
                        status=JobStatus.SUCCEEDED,
                        finished_at=utcnow(),
                        updated_at=utcnow(),
                        locked_by=None,
                        locked_until=None,
                        last_error=None,
                    )
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    raise LeaseLost(f"job {item.id} was taken over by another claim")
        except asyncio.CancelledError:
            raise  # shutdown: stop() releases the job
        except LeaseLost:
            log.warning("jobs.job.lease_lost", **log_fields)
        except Exception as exc:
            await self._record_failure(item, exc)
        else:
            log.info("jobs.job.done", seconds=round(time.monotonic() - started, 3), **log_fields)

    async def _record_failure(self, item: ClaimedJob, exc: BaseException) -> None:
        text = _error_text(exc)
        final = item.attempts >= item.max_attempts
        values: dict[str, Any] = {
            "last_error": text,
            "locked_by": None,
            "locked_until": None,
            "updated_at": utcnow(),
        }
        if final:
            values |= {"status": JobStatus.FAILED, "finished_at": utcnow()}
        else:
            delay = backoff(item.attempts, base=self.backoff_base_seconds)
            values |= {"status": JobStatus.QUEUED, "run_at": self._now(delay)}
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(Job)
                    .where(Job.id == item.id, Job.locked_by == item.token)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
        except Exception as db_exc:
            # The lease runs out and another runner retries it; nothing is lost.
            log.error("jobs.job.record_failed", job_id=item.id, error=repr(db_exc))
            return
        event = "jobs.job.failed" if final else "jobs.job.retry"
        log.warning(
            event,
            job_id=item.id,
            kind=item.kind,
            attempt=item.attempts,
            max_attempts=item.max_attempts,
            error=text.splitlines()[-1] if text else "",
        )

    async def _renew_leases(self) -> None:
        interval = max(0.05, self.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            by_token: dict[str, list[int]] = {}
            for job_id, (token, _) in list(self._inflight.items()):
                by_token.setdefault(token, []).append(job_id)
            if not by_token:
                continue
            try:
                async with self.sessionmaker() as session, session.begin():
                    for token, ids in by_token.items():
                        renewed = await session.scalars(
                            update(Job)
                            .where(
                                Job.id.in_(ids),
                                Job.locked_by == token,
                                Job.status == JobStatus.RUNNING,
                            )
                            .values(locked_until=self._now(self.lease))
                            .returning(Job.id)
                            .execution_options(synchronize_session=False)
                        )
                        lost = set(ids) - set(renewed)
                        for job_id in lost:
                            # Someone else holds it now: stop our copy rather than
                            # run it twice.
                            entry = self._inflight.get(job_id)
                            if entry is not None and entry[0] == token:
                                log.warning("jobs.lease.lost", job_id=job_id)
                                entry[1].cancel()
            except Exception as exc:
                log.warning("jobs.lease.renew_failed", error=repr(exc))

    async def _release_mine(self) -> int:
        try:
            async with self.sessionmaker() as session, session.begin():
                result = await session.execute(
                    update(Job)
                    .where(
                        Job.locked_by.startswith(f"{self.worker_id}/", autoescape=True),
                        Job.status == JobStatus.RUNNING,
                    )
                    .values(
                        status=JobStatus.QUEUED,
                        attempts=Job.attempts - 1,
                        run_at=self._now(),
                        locked_by=None,
                        locked_until=None,
                        updated_at=utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
                return int(result.rowcount)  # type: ignore[attr-defined]
        except Exception as exc:
            # Their leases expire and another runner takes them; still nothing lost.
            log.error("jobs.release.failed", error=repr(exc))
            return 0


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc)).strip()
    if len(text) > _MAX_ERROR_CHARS:
        text = "…" + text[-_MAX_ERROR_CHARS:]
    return text
