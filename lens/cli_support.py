"""What every feature's `lens` sub-commands share: the settings, one unit of work per
command, and failures that end the command with one clear line.

A feature's commands live in its own `cli.py` as `register(app)`; lens/cli.py assembles
them into the `lens` command and sets `prepare`, which runs before a command's work
touches the database (it loads every feature's jobs and reactions, lens/features.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from lens.settings import ConfigError, Settings

# Set by lens/cli.py: what must happen before any command's work (load the features).
prepare: Callable[[], None] = lambda: None  # noqa: E731


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"lens: {message}", err=True)
    return typer.Exit(code)


def one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_settings(*, production_check: bool = True) -> Settings:
    try:
        settings = Settings()
        if production_check:
            settings.check_production()
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}") from None
    except Exception as exc:  # pydantic validation of a malformed value
        raise fail(f"configuration error: {exc}") from None
    return settings


def run_with_session(settings: Settings, work: Any) -> Any:
    """Run `work(session)` in one unit of work; expected errors end the command cleanly."""
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker, unit_of_work
    from lens.errors import LensError

    prepare()

    async def run() -> Any:
        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
        try:
            if not settings.is_production:
                await migrate.upgrade(engine)
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except LensError as exc:
        raise fail(exc.message, 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None
