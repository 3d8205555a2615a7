"""A worker for the kill test: starts `test.slow`, marks that it started, then hangs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from lens.db.engine import create_engine, create_sessionmaker
from lens.jobs.registry import JobContext, JobRegistry
from lens.jobs.runner import JobRunner
from lens.settings import Settings


async def main(url: str) -> None:
    registry = JobRegistry()

    async def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        Path(payload["marker"]).touch()
        await asyncio.sleep(3600)

    registry.register("test.slow", slow)
    engine = create_engine(url)
    runner = JobRunner(
        create_sessionmaker(engine),
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        registry=registry,
        poll_seconds=0.05,
        lease_seconds=1.5,  # short, so the test need not wait a minute after the kill
    )
    await runner.start()
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
