"""Alembic, driven from code so `lens db ...`, `lens serve` and the tests share it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from lens.db.engine import READ_ONLY

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revisions() -> set[str]:
    return set(_heads())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def downgrade(engine: AsyncEngine, revision: str = "-1") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        heads = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
    return set(heads)


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revisions(engine) == head_revisions()
