from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db import migrate
from lens.db.engine import create_engine
from lens.jobs.models import Job
from lens.schema import metadata
from tests.conftest import fresh_database
from tests.fixtures.users import make_user


async def _tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_upgrade_round_trip(dialect: str, tmp_path) -> None:
    async with fresh_database(dialect, tmp_path) as url:
        engine = create_engine(url)
        try:
            assert await migrate.current_revisions(engine) == set()
            await migrate.upgrade(engine)
            assert {"users", "jobs"} <= await _tables(engine)
            assert await migrate.is_current(engine)

            await migrate.downgrade(engine, "base")
            assert await _tables(engine) <= {"alembic_version"}
            assert await migrate.current_revisions(engine) == set()

            await migrate.upgrade(engine)
            assert {"users", "jobs"} <= await _tables(engine)
            assert await migrate.is_current(engine)
        finally:
            await engine.dispose()


async def test_migrations_match_the_models(engine) -> None:
    # A model changed without a migration would make production differ from the code.
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata
            )
        )
    assert diff == []


async def test_times_come_back_aware_in_utc(db: AsyncSession) -> None:
    berlin = timezone(timedelta(hours=1))
    user = await make_user(db, terms_accepted_at=datetime(2026, 3, 1, 19, 0, tzinfo=berlin))
    db.expunge_all()
    stored = await db.scalar(select(type(user).terms_accepted_at).where(type(user).id == user.id))
    assert stored == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(db: AsyncSession) -> None:
    db.add(Job(kind="x", payload={}, run_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        await db.flush()


async def test_foreign_keys_and_uniques_are_enforced(db: AsyncSession) -> None:
    from sqlalchemy.exc import IntegrityError

    await make_user(db, email="same@example.org")
    with pytest.raises(IntegrityError):
        async with db.begin_nested():
            await make_user(db, email="same@example.org")
