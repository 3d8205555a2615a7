from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, inspect, select
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


# -- lens db revision -----------------------------------------------------------------------


@pytest.fixture
def migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the migrations folder in place of the source tree's: new revisions are
    written there. The cached heads are read again from it, and again after the test."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
    migrate._heads.cache_clear()
    yield folder
    migrate._heads.cache_clear()


def _assigned(path: Path, name: str) -> object:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name:
            return ast.literal_eval(node.value) if node.value else None
    raise AssertionError(f"{path.name} does not set {name}")


def _operations(path: Path, function: str) -> list[tuple[str, object]]:
    """The `op.<name>(first argument, ...)` calls in the migration's function, in order;
    anything else it does (other than `pass` and comments) is an operation too."""
    (body,) = [
        node.body
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    found: list[tuple[str, object]] = []
    for statement in body:
        if isinstance(statement, ast.Pass):
            continue
        call = getattr(statement, "value", None)
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and getattr(call.func.value, "id", None) == "op"
        ):
            first = call.args[0] if call.args else None
            found.append((call.func.attr, first.value if isinstance(first, ast.Constant) else None))
        else:
            found.append((type(statement).__name__, ast.unparse(statement)))
    return found


def _next_number(folder: Path) -> str:
    numbers = [int(p.name[:4]) for p in (folder / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return f"{max(numbers) + 1:04d}"


async def test_a_revision_when_models_and_migrations_agree_does_nothing(
    tmp_path: Path, migrations: Path
) -> None:
    number = _next_number(migrations)
    head = f"{int(number) - 1:04d}"
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lens.db'}")
    try:
        await migrate.upgrade(engine)
        written = await migrate.revision(engine, message="Nothing to do", metadata=metadata)
    finally:
        await engine.dispose()
    path = Path(written)
    assert path.parent == migrations / "versions"
    assert path.name == f"{number}_nothing_to_do.py"
    assert (_assigned(path, "revision"), _assigned(path, "down_revision")) == (number, head)
    assert _operations(path, "upgrade") == []
    assert _operations(path, "downgrade") == []


async def test_a_revision_creates_a_table_the_models_add(tmp_path: Path, migrations: Path) -> None:
    models = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(models)
    Table(
        "reading_circles",
        models,
        Column("id", Integer, primary_key=True),
        Column("cohort_id", ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=False),
        Column("name", String(80), nullable=False),
    )
    number = _next_number(migrations)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lens.db'}")
    try:
        await migrate.upgrade(engine)
        path = Path(await migrate.revision(engine, message="Reading circles", metadata=models))
        assert path.name == f"{number}_reading_circles.py"
        assert _operations(path, "upgrade") == [("create_table", "reading_circles")]
        assert _operations(path, "downgrade") == [("drop_table", "reading_circles")]

        # What an operator does next: `lens db upgrade` makes the table.
        migrate._heads.cache_clear()
        await migrate.upgrade(engine)
        assert "reading_circles" in await _tables(engine)
        assert await migrate.is_current(engine)
    finally:
        await engine.dispose()
