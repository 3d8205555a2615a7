"""`lens worker`: a process that runs the jobs, the periodic triggers and the notification
sender, and no web app."""

from __future__ import annotations

import asyncio
import signal

import typer

from lens.cli_support import load_settings
from lens.settings import Settings


def worker() -> None:
    """Run jobs and periodic triggers only (no web)."""
    settings = load_settings()
    from lens.logging import configure_logging

    configure_logging(
        level=settings.log_level,
        json=settings.log_format == "json"
        or (settings.log_format == "auto" and settings.is_production),
    )
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    import httpx

    from lens import __version__, features
    from lens.content.store import ContentStore
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.integrations.email.factory import email_sender_from_settings
    from lens.integrations.sentry import init_sentry
    from lens.jobs.periodic import PeriodicTriggers
    from lens.jobs.runner import JobRunner
    from lens.notifications.sender import sender_from_settings

    init_sentry(settings)
    features.load()
    engine = create_engine(
        settings.sqlalchemy_url,
        pgbouncer=settings.db_pgbouncer,
        pool_size=settings.db_pool_size,
    )
    if not settings.is_production:
        await migrate.upgrade(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(
        headers={"User-Agent": f"Lens/{__version__}"}, timeout=httpx.Timeout(20.0, connect=5.0)
    ) as http:
        maker = create_sessionmaker(engine)
        runner = JobRunner(maker, settings=settings, http=http)
        triggers = PeriodicTriggers(maker)
        # Notifications name courses and modules: this process keeps the content too.
        store = await ContentStore(maker).open()
        sender = sender_from_settings(
            settings,
            maker,
            http,
            email=email_sender_from_settings(settings, http),
            secret=settings.resolved_jwt_secret(),
            content=lambda: store.loaded,
        )
        await runner.start()
        triggers.start()
        sender.start()
        await stop.wait()
        await sender.stop()
        triggers.stop()
        await runner.stop()
        await store.stop()
    await engine.dispose()


def register(app: typer.Typer) -> None:
    """Add `lens worker`."""
    app.command("worker")(worker)
