"""The content sync job after GitHub's rate limits: it waits what GitHub's docs say
(tests/contracts/github/FACTS.md), backs off exponentially while a secondary limit
lasts, and gives up after a set number of retries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from lens.content.models import ContentSnapshot
from lens.content.service import get_state
from lens.content.tasks import SECONDARY_RETRIES, SYNC_KIND, run_sync
from lens.jobs.models import Job
from lens.jobs.registry import JobContext
from tests.content.fake_github import OWNER_REPO, FakeGitHub, History


@pytest.fixture
async def sync_job(tmp_path: Path, db, make_settings):
    history = History(tmp_path / "repo")
    history.commit("1", write={"modules/a.md": "---\nslug: a\n---\n"})
    history.commit("2", write={"modules/a.md": "---\nslug: b\n---\n"})
    fake = FakeGitHub(history, head=history.commits[0])
    settings = make_settings(CONTENT_REPO=OWNER_REPO, GITHUB_TOKEN=fake.token)
    async with httpx.AsyncClient(transport=fake.transport()) as http:

        async def run(**payload) -> Job | None:
            """Run the job once; the sync job it queued for later, if any."""
            await db.execute(Job.__table__.delete().where(Job.kind == SYNC_KIND))
            ctx = JobContext(db, 1, SYNC_KIND, 1, settings, http)
            await run_sync(ctx, {"full": False, **payload})
            return await db.scalar(select(Job).where(Job.kind == SYNC_KIND))

        yield fake, run


def _wait(job: Job) -> float:
    run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=UTC)
    return (run_at - datetime.now(UTC)).total_seconds()


async def _commit(db) -> str | None:
    state = await get_state(db)
    snapshot = await db.get(ContentSnapshot, state.snapshot_id) if state.snapshot_id else None
    return snapshot.commit_sha if snapshot else None


async def test_a_secondary_limit_without_headers_is_retried_after_a_minute(db, sync_job) -> None:
    fake, run = sync_job
    assert await run() is None  # synced, nothing queued
    fake.requests.clear()
    fake.head = fake.history.commits[1]
    fake.rate_limit("secondary", on="/compare/")  # 403, no retry-after, remaining > 0

    job = await run()

    assert job is not None, "a secondary rate limit is not a permanent refusal"
    assert 55 <= _wait(job) <= 62
    assert job.payload == {"full": False, "rate_limited": 1}
    state = await get_state(db)
    assert state.last_error is not None and "secondary rate limit" in state.last_error
    assert await _commit(db) == fake.history.commits[0]  # the last snapshot stays
    assert not any("/tarball/" in r for r in fake.requests)

    assert await run(**job.payload) is None  # the limit has passed
    assert await _commit(db) == fake.history.commits[1]
    assert (await get_state(db)).last_error is None


@pytest.mark.parametrize(
    "limited_before,minutes", [(1, 2), (2, 4), (3, 8), (4, 16), (SECONDARY_RETRIES - 1, 32)]
)
async def test_a_secondary_limit_that_lasts_backs_off_exponentially(
    db, sync_job, limited_before, minutes
) -> None:
    fake, run = sync_job
    fake.rate_limit("secondary-retry-after", retry_after=30)  # on the head lookup
    job = await run(rate_limited=limited_before)
    assert job is not None and job.payload["rate_limited"] == limited_before + 1
    assert minutes * 60 - 5 <= _wait(job) <= minutes * 60 + 2


async def test_a_secondary_limit_gives_up_after_the_set_retries(db, sync_job) -> None:
    fake, run = sync_job
    fake.rate_limit("secondary")
    assert await run(rate_limited=SECONDARY_RETRIES) is None  # no job: an error instead
    error = (await get_state(db)).last_error or ""
    assert f"gave up after {SECONDARY_RETRIES} retries" in error
    assert "the next push" in error


@pytest.mark.parametrize(
    "kind,wait",
    [
        ("secondary-retry-after", 30),  # retry-after seconds
        ("secondary-429", 30),
        ("primary", 1801),  # x-ratelimit-reset (30 min ahead), and a second for rounding
        ("primary-429", 1801),
    ],
)
async def test_the_retry_waits_what_github_said(db, sync_job, kind, wait) -> None:
    fake, run = sync_job
    fake.rate_limit(kind, retry_after=30, reset=int(time.time()) + 1800)
    job = await run()
    assert job is not None
    assert wait - 3 <= _wait(job) <= wait + 1
    assert job.payload.get("rate_limited", 0) == (1 if kind.startswith("secondary") else 0)


async def test_a_reset_more_than_an_hour_away_is_capped_at_an_hour(db, sync_job) -> None:
    fake, run = sync_job
    fake.rate_limit("primary", reset=int(time.time()) + 5 * 3600)
    job = await run()
    assert job is not None
    assert timedelta(seconds=_wait(job)) <= timedelta(hours=1)
    assert _wait(job) >= 3590


async def test_github_down_is_retried_in_two_minutes(db, sync_job) -> None:
    fake, run = sync_job
    fake.fail_with = httpx.Response(503, json={"message": "Service Unavailable"})
    job = await run()
    assert job is not None and job.payload == {"full": False}
    assert 115 <= _wait(job) <= 121
