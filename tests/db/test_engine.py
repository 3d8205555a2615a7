"""Engines for the database URLs operators are given (lens/db/engine.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_database


async def test_postgres_urls_with_sslmode_reach_the_driver(tmp_path: Path) -> None:
    # The local test server has SSL off: `require` must then fail, `disable` connect.
    from sqlalchemy import text

    from lens.db.engine import create_engine

    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(f"{url}?sslmode=disable")
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()
        engine = create_engine(f"{url}?sslmode=require")
        try:
            with pytest.raises(Exception, match=r"rejected SSL upgrade"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()


async def _kill_backends(url: str) -> int:
    """Ends, from outside, every other session on this test database (as a restart or a
    firewall would): how many."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(
        user=parsed.username, host=parsed.host, port=parsed.port, database=parsed.database
    )
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


@asynccontextmanager
async def _postgres(tmp_path: Path, *, migrated: bool = False) -> AsyncIterator[tuple[str, Any]]:
    """A fresh PostgreSQL database and Lens's engine on it (migrated if asked)."""
    from lens.db import migrate
    from lens.db.engine import create_engine

    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        try:
            if migrated:
                await migrate.upgrade(engine)
            yield url, engine
        finally:
            await engine.dispose()


async def test_a_dead_idle_connection_is_replaced_before_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from lens.db import engine as engines

    async with _postgres(tmp_path) as (url, engine):
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert await _kill_backends(url) == 1
        # Idle longer than the threshold: pinged, found dead, replaced.
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first


async def test_a_connection_in_steady_use_is_not_pinged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other side of the trade: no round trip per request for a connection in use, so
    # one that died under load fails its request (a 503 page), and the pool is replaced.
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from lens.db import engine as engines

    async with _postgres(tmp_path) as (url, engine):
        dialect = engine.sync_engine.dialect
        pings: list[object] = []
        real_ping = dialect.do_ping

        def counted_ping(dbapi_connection: object) -> bool:
            pings.append(dbapi_connection)
            return real_ping(dbapi_connection)

        monkeypatch.setattr(dialect, "do_ping", counted_ping)
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)
        for _ in range(2):
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 1"))
        assert len(pings) == 1  # idle: the second checkout was pinged
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 3600.0)
        for _ in range(3):
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 1"))
        assert len(pings) == 1  # in steady use: none
        await _kill_backends(url)
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 1"))
        assert failed.value.connection_invalidated
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1


async def test_reads_run_without_a_transaction_on_postgresql(tmp_path: Path) -> None:
    # No BEGIN and ROLLBACK round trips around the reader's queries: each statement is
    # its own transaction, so now() is its own start, not the first statement's.
    import asyncio

    from sqlalchemy import text

    from lens.db.engine import create_sessionmaker, read_only

    async with _postgres(tmp_path) as (_url, engine):
        for maker, alone in (
            (create_sessionmaker(read_only(engine)), True),
            (create_sessionmaker(engine), False),
        ):
            async with maker() as session:
                await session.execute(text("SELECT 1"))
                await asyncio.sleep(0.05)
                fresh = await session.scalar(
                    text("SELECT clock_timestamp() - now() < interval '40 milliseconds'")
                )
            assert fresh is alone


async def test_a_hot_read_through_the_driver_matches_the_session(tmp_path: Path) -> None:
    # The module page's progress query, run by asyncpg itself (lens.db.engine.read_rows),
    # gives what the same statement gives through a session, and hands its connection back.
    from datetime import UTC, datetime

    from lens.courses.models import Progress
    from lens.courses.service import MODULE_PROGRESS
    from lens.db.engine import create_sessionmaker, read_rows

    async with _postgres(tmp_path, migrated=True) as (_url, engine):
        done = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
        async with create_sessionmaker(engine)() as session:
            session.add_all(
                [
                    Progress(actor="a:x", module_key="m1", content_id="c1", completed_at=done),
                    Progress(actor="a:x", module_key="m1", content_id="c2"),
                    Progress(actor="a:x", module_key="m2", content_id="c1", completed_at=done),
                    Progress(actor="a:y", module_key="m1", content_id="c1", completed_at=done),
                ]
            )
            await session.commit()
            expected = sorted(
                tuple(r)
                for r in await session.execute(
                    MODULE_PROGRESS, {"actor": "a:x", "module_key": "m1"}
                )
            )
        for _ in range(2):  # compiled once, then reused
            rows = await read_rows(engine, MODULE_PROGRESS, {"actor": "a:x", "module_key": "m1"})
            got = sorted((r["module_key"], r["content_id"], r["completed_at"]) for r in rows)
            assert got == expected == [("m1", "c1", done), ("m1", "c2", None)]
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_hot_read_on_a_dead_connection_fails_once_and_the_pool_recovers(
    tmp_path: Path,
) -> None:
    from lens.courses.service import MODULE_PROGRESS
    from lens.db.engine import read_rows
    from lens.db.outage import database_unavailable

    async with _postgres(tmp_path, migrated=True) as (url, engine):
        args = {"actor": "a:x", "module_key": "m1"}
        assert await read_rows(engine, MODULE_PROGRESS, args) == []
        await _kill_backends(url)  # used a moment ago: no ping before the next use
        with pytest.raises(Exception) as failed:
            await read_rows(engine, MODULE_PROGRESS, args)
        assert database_unavailable(failed.value)  # a 503 page, not a bug
        assert await read_rows(engine, MODULE_PROGRESS, args) == []  # a new connection


async def test_a_connection_left_with_a_terminate_notice_is_an_outage_and_replaced(
    tmp_path: Path,
) -> None:
    # A killed backend's notice read, its closed socket not yet: asyncpg's protocol is
    # stuck waiting for the dead server. Both read paths fail once as an outage (a 503,
    # not a 500), throw that connection away, and work on the next try.
    from sqlalchemy import text

    from lens.courses.service import MODULE_PROGRESS
    from lens.db.engine import create_engine, read_only, read_rows
    from lens.db.outage import database_unavailable
    from tests.fixtures.db_proxy import migrated_database_behind_proxy

    async with migrated_database_behind_proxy(tmp_path) as (_url, through, proxy):
        engine = create_engine(through)
        try:
            args = {"actor": "a:x", "module_key": "m1"}
            assert await read_rows(engine, MODULE_PROGRESS, args) == []
            await proxy.notice_without_close()
            with pytest.raises(Exception) as failed:
                await read_rows(engine, MODULE_PROGRESS, args)
            assert database_unavailable(failed.value), repr(failed.value)
            assert await read_rows(engine, MODULE_PROGRESS, args) == []

            for through_sessions in (engine, read_only(engine)):  # in a transaction, or not
                async with through_sessions.connect() as conn:
                    assert await conn.scalar(text("SELECT 1")) == 1
                await proxy.notice_without_close()
                with pytest.raises(Exception) as failed:
                    async with through_sessions.connect() as conn:
                        await conn.scalar(text("SELECT 1"))
                assert database_unavailable(failed.value), repr(failed.value)
                assert getattr(failed.value, "connection_invalidated", False)
                async with through_sessions.connect() as conn:
                    assert await conn.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()
