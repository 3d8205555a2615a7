"""`lens bot`: the Discord bot alone, in a process of its own."""

from __future__ import annotations

import asyncio
import signal

import typer

from lens.cli_support import fail, load_settings
from lens.settings import Settings


def bot() -> None:
    """Run the Discord bot only (exactly one per server: it holds the gateway connection)."""
    settings = load_settings()
    if not settings.discord_bot_token or not settings.discord_server_id:
        raise fail("the bot needs DISCORD_BOT_TOKEN and DISCORD_SERVER_ID (see docs/discord.md)")
    from lens.logging import configure_logging

    configure_logging(
        level=settings.log_level,
        json=settings.log_format == "json"
        or (settings.log_format == "auto" and settings.is_production),
    )
    if not asyncio.run(_run_bot(settings)):
        raise typer.Exit(1)


async def _run_bot(settings: Settings) -> bool:
    """Run the bot until SIGINT/SIGTERM (True) or until it cannot go on (False)."""
    import httpx

    from lens import __version__, features
    from lens.bot.client import LensBot, running
    from lens.content.store import ContentStore
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.integrations.sentry import init_sentry

    assert settings.discord_bot_token is not None
    init_sentry(settings)
    features.load()  # commands enqueue jobs (grouping runs)
    engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
    if not settings.is_production:
        await migrate.upgrade(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with httpx.AsyncClient(
            headers={"User-Agent": f"Lens/{__version__}"}, timeout=httpx.Timeout(20.0, connect=5.0)
        ) as http:
            maker = create_sessionmaker(engine)
            # /course names modules: this process keeps the content too.
            store = await ContentStore(maker).open()
            bot = LensBot(
                settings=settings,
                sessionmaker=maker,
                http=http,
                content=lambda: store.loaded,
            )
            try:
                async with running(bot, settings.discord_bot_token) as task:
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    # The bot ending by itself (a bad token, say) is a failure; why is logged.
                    ok = stop.is_set()
            finally:
                await store.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await engine.dispose()
    return ok


def register(app: typer.Typer) -> None:
    """Add `lens bot`."""
    app.command("bot")(bot)
