"""2,000 due reminders on two channels, two `lens worker` processes on PostgreSQL, one
of them stopped mid-run and replaced: nothing is lost, and nothing is sent twice.

Discord deduplicates by the nonce each message carries (as Discord does with
`enforce_nonce`), so it gets every reminder exactly once even when a worker is killed.
SendGrid cannot deduplicate: an e-mail the provider accepted in the instant before a
SIGKILL, before its outcome was written, is sent again when the lease runs out. The
test shows those are only ever the killed worker's messages in flight; a normal stop
(SIGTERM: deploys, restarts) finishes them and sends every e-mail exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lens.db.engine import create_engine
from lens.notifications.models import Delivery, DeliveryStatus
from lens.users.models import User
from tests.conftest import fresh_database
from tests.fixtures.reminders import seed_reminders
from tests.notifications.fake_providers import ProviderServer

ROOT = Path(__file__).resolve().parents[2]
PEOPLE, GROUP_SIZE = 2000, 50


def start_worker(url: str, providers: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "JWT_SECRET": "exactly-once-" + "x" * 40,
        "SENDGRID_API_KEY": "SG.test",
        "LENS_SENDGRID_API_BASE": providers,
        "DISCORD_BOT_TOKEN": "bot-test",
        "LENS_DISCORD_API_BASE": providers + "/api/v10",
        "LENS_DELIVERY_LEASE_SECONDS": "3",
        "LENS_DELIVERY_POLL_SECONDS": "0.2",
        "LENS_LOG_LEVEL": "WARNING",
        "CONTENT_DIR": str(ROOT / "examples" / "course"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "lens", "worker"],
        env=env,
        cwd=log.parent,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


class Stall:
    """True once the count has not grown for STALL_SECONDS (the workers are stuck), or after
    MOST_SECONDS in all (a trickle, deliveries moving only as leases run out). A slow or busy
    machine only makes progress slower, so the test waits while it goes on (each stage
    takes under a minute with both cores busy)."""

    STALL_SECONDS = 60.0
    MOST_SECONDS = 300.0

    def __init__(self) -> None:
        self.best = -1
        self.started = self.since = time.monotonic()

    def __call__(self, count: int) -> bool:
        now = time.monotonic()
        if count > self.best:
            self.best, self.since = count, now
        return now - self.since > self.STALL_SECONDS or now - self.started > self.MOST_SECONDS


async def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        out = {str(s): int(n) for s, n in rows.all()}
    await engine.dispose()
    return out


@pytest.mark.timeout(2 * Stall.MOST_SECONDS + 180)  # two waits, and the workers stopping
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
async def test_each_reminder_is_sent_once_per_channel(tmp_path: Path, stop: int) -> None:
    async with fresh_database("postgresql", tmp_path) as url:
        await seed_reminders(url, people=PEOPLE, group_size=GROUP_SIZE)
        assert (await counts(url)) == {DeliveryStatus.PENDING: 2 * PEOPLE}
        log = tmp_path / "workers.log"
        workers: list[subprocess.Popen[bytes]] = []
        with ProviderServer() as server:
            fake = server.providers
            try:
                workers = [start_worker(url, server.url, log) for _ in range(2)]
                stalled = Stall()
                while fake.received < PEOPLE // 2:  # a quarter of the 4,000 messages
                    assert not stalled(fake.received), log.read_text()[-3000:]
                    assert all(w.poll() is None for w in workers), log.read_text()[-3000:]
                    await asyncio.sleep(0.02)
                workers[0].send_signal(stop)
                workers[0].wait(timeout=60)
                at_stop = fake.received
                workers.append(start_worker(url, server.url, log))
                stalled = Stall()
                while (sent := (await counts(url)).get(DeliveryStatus.SENT, 0)) < 2 * PEOPLE:
                    assert not stalled(sent), (await counts(url), log.read_text()[-3000:])
                    await asyncio.sleep(0.3)
            finally:
                for worker in workers:
                    if worker.poll() is None:
                        worker.send_signal(signal.SIGTERM)
                for worker in workers:
                    try:
                        worker.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        worker.kill()
        assert at_stop < 2 * PEOPLE, "the worker was stopped after everything was sent"
        assert (await counts(url)) == {DeliveryStatus.SENT: 2 * PEOPLE}

        messages = fake.message_counts()
        assert len(messages) == PEOPLE and set(messages.values()) == {1}
        emails = fake.email_counts()
        assert len(emails) == PEOPLE  # nobody lost
        repeated = {to for to, n in emails.items() if n > 1}
        if stop == signal.SIGTERM:
            assert repeated == set()
        else:
            # Only what the killed worker had in flight (at most its concurrency),
            # each at most twice, and each one a delivery that was taken over.
            assert len(repeated) <= 8 and max(emails.values()) <= 2
            engine = create_engine(url)
            async with engine.connect() as conn:
                retaken = set(
                    await conn.scalars(
                        select(User.email)
                        .join(Delivery, Delivery.user_id == User.id)
                        .where(Delivery.channel == "email", Delivery.attempts > 1)
                    )
                )
            await engine.dispose()
            assert repeated <= retaken
