"""The `lens` command, assembled from each feature's own sub-commands.

Each feature keeps its commands in its `cli.py` with a `register(app)` (the shared
helpers are in lens/cli_support.py); this module puts them together. The database's own
commands (`lens db ...`) are here: they belong to no feature, and `lens db revision`
needs every feature's tables (lens/schema).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from lens import cli_support, features, worker
from lens.app import cli as app_cli
from lens.bot import cli as bot_cli
from lens.cli_support import fail, load_settings, one_line
from lens.cohorts import cli as cohort_cli
from lens.content import cli as content_cli
from lens.scheduling import cli as scheduling_cli
from lens.users import cli as user_cli

app = typer.Typer(help="Lens: cohort-based courses with an AI tutor.", no_args_is_help=True)
# Commands that change data load every feature's jobs and reactions first.
cli_support.prepare = features.load

app_cli.register(app)
worker.register(app)
bot_cli.register(app)
user_cli.register(app)
content_cli.register(app)
cohort_app = cohort_cli.register(app)
scheduling_cli.register(cohort_app)

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _run_db(command: str, revision: str | None = None) -> None:
    settings = load_settings(production_check=False)
    from lens.db import migrate
    from lens.db.engine import create_engine

    async def run() -> None:
        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
        try:
            if command == "upgrade":
                await migrate.upgrade(engine, revision or "head")
            elif command == "downgrade":
                await migrate.downgrade(engine, revision or "-1")
            current = await migrate.current_revisions(engine)
            heads = migrate.head_revisions()
            state = "current" if current == heads else f"head is {', '.join(sorted(heads))}"
            typer.echo(f"database at {', '.join(sorted(current)) or '(empty)'} ({state})")
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    _run_db("upgrade", revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Undo migrations down to REVISION (default: one step)."""
    if revision == "base" and sys.stdin.isatty():
        typer.confirm("This drops every Lens table and its data. Continue?", abort=True)
    _run_db("downgrade", revision)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    _run_db("current")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the migration does.")],
) -> None:
    """Write a new migration from the difference between the models and the database.

    Run against a database at the latest revision (`lens db upgrade` first); read and
    edit the file it writes before committing it: renames and data moves need a hand.
    """
    settings = load_settings(production_check=False)
    from lens.db import migrate
    from lens.db.engine import create_engine
    from lens.schema import metadata

    async def run() -> str:
        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
        try:
            if not await migrate.is_current(engine):
                raise fail("the database is not at the latest revision; run `lens db upgrade`")
            return await migrate.revision(engine, message=message, metadata=metadata)
        finally:
            await engine.dispose()

    try:
        typer.echo(f"wrote {asyncio.run(run())}")
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


def main() -> None:
    app()
