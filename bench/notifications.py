"""Due reminders through `lens worker` processes to fake SendGrid and Discord servers.

Seeds a fresh PostgreSQL database with N people in groups whose meeting is 23.5 hours
away (every 24-hour reminder due, on e-mail and on Discord), starts `lens worker`
processes pointed at fake providers on localhost (each answer delayed 10-30 ms, like a
nearby API), and times until every delivery is recorded as sent.

    .venv/bin/python bench/notifications.py [--people 5000] [--workers 2]

Target (issue 8): 10,000 due reminders sent in under 60 s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lens.db.engine import create_engine  # noqa: E402
from lens.notifications.models import Delivery, DeliveryStatus  # noqa: E402
from tests.fixtures.reminders import seed_reminders  # noqa: E402
from tests.notifications.fake_providers import ProviderServer  # noqa: E402

ADMIN = os.environ.get("LENS_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")


def start_worker(env: dict[str, str], cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lens", "worker"], env=env, cwd=cwd, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


async def sent(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        n = await conn.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.SENT))
    await engine.dispose()
    return int(n or 0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=5000, help="reminders per channel")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="LENS_DELIVERY_CONCURRENCY")
    args = parser.parse_args()
    name = f"lens_bench_notify_{os.getpid()}"
    admin = create_engine(ADMIN + "/postgres").execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{ADMIN}/{name}"
    work = Path(tempfile.mkdtemp())
    try:
        t0 = time.monotonic()
        await seed_reminders(url, people=args.people)
        total = 2 * args.people
        print(f"seeded {total} due deliveries ({args.people} people x e-mail + Discord) "
              f"in {time.monotonic() - t0:.1f} s")  # fmt: skip
        with ProviderServer() as server:
            server.providers.latency = (0.010, 0.030)
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "JWT_SECRET": "bench-" + "x" * 40,
                "SENDGRID_API_KEY": "SG.bench",
                "LENS_SENDGRID_API_BASE": server.url,
                "DISCORD_BOT_TOKEN": "bench",
                "LENS_DISCORD_API_BASE": server.url + "/api/v10",
                "LENS_DELIVERY_POLL_SECONDS": "0.2",
                "LENS_DELIVERY_CONCURRENCY": str(args.concurrency),
                "LENS_LOG_LEVEL": "WARNING",
                "CONTENT_DIR": str(ROOT / "examples" / "course"),
            }
            log = (work / "workers.log").open("wb")
            start = time.monotonic()
            workers = [start_worker(env, work, log) for _ in range(args.workers)]
            try:
                done = 0
                while done < total:
                    if any(w.poll() is not None for w in workers):
                        sys.exit("a worker exited:\n" + (work / "workers.log").read_text()[-3000:])
                    if time.monotonic() - start > 600:
                        sys.exit(f"gave up after 600 s with {done} of {total} sent")
                    await asyncio.sleep(0.5)
                    done = await sent(url)
                elapsed = time.monotonic() - start
            finally:
                for w in workers:
                    w.send_signal(signal.SIGTERM)
                for w in workers:
                    w.wait(timeout=60)
            fake = server.providers
            print(
                f"{args.workers} worker(s), concurrency {args.concurrency} each, provider "
                f"latency 10-30 ms: {total} sent in {elapsed:.1f} s "
                f"({total / elapsed:.0f}/s, includes worker start-up); provider received "
                f"{len(fake.emails)} e-mails, {len(fake.messages)} Discord messages"
            )
            reminders = args.people
            print(f"target (10,000 reminders < 60 s): {reminders} reminders x 2 channels "
                  f"{'met' if elapsed < 60 and total >= 10000 else 'see numbers'}")  # fmt: skip
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
