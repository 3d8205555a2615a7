"""Alembic, driven from code so `lens db ...`, `lens serve` and the tests share it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from lens.db.engine import READ_ONLY

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(
    connection: Connection | None = None, metadata: MetaData | None = None
) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    cfg.attributes["metadata"] = metadata
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


async def revision(engine: AsyncEngine, *, message: str, metadata: MetaData) -> str:
    """Write a new migration that takes the database (at head) to `metadata`; its path.

    Alembic compares the tables it sees with `metadata` (every feature's models); read
    and edit what it wrote before committing it: it misses renames and data moves.
    """
    paths: list[str] = []

    def write(connection: Connection) -> None:
        # Revisions are numbered 0001, 0002, ...: the file names sort in order.
        number = max((int(head) for head in head_revisions() if head.isdigit()), default=0) + 1
        script = command.revision(
            alembic_config(connection, metadata),
            message=message,
            autogenerate=True,
            rev_id=f"{number:04d}",
        )
        scripts = script if isinstance(script, list) else [script]
        paths.extend(s.path for s in scripts if s is not None)

    async with engine.begin() as conn:
        await conn.run_sync(write)
    _heads.cache_clear()  # the new file is a head now
    return ", ".join(paths)


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        heads = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
    return set(heads)


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revisions(engine) == head_revisions()
