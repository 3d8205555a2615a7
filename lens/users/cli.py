"""`lens user`: user accounts."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from lens.cli_support import fail, load_settings, one_line


def user_make_admin(
    identifier: Annotated[str, typer.Argument(help="E-mail address or Discord user id.")],
    create: Annotated[
        bool, typer.Option("--create", help="Create the account if it does not exist.")
    ] = False,
) -> None:
    """Give a user admin rights."""
    settings = load_settings(production_check=False)
    from lens.db.engine import create_engine, create_sessionmaker, unit_of_work
    from lens.errors import LensError
    from lens.users.service import make_admin

    async def run() -> str:
        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await make_admin(session, identifier=identifier, create=create)
                return f"user {user.id} ({user.display_name}) is now an admin"
        finally:
            await engine.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except LensError as exc:
        raise fail(exc.message, 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


def register(app: typer.Typer) -> None:
    """Add `lens user ...`."""
    user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
    user_app.command("make-admin")(user_make_admin)
    app.add_typer(user_app, name="user")
