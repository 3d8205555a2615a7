"""The database goes away and comes back (PostgreSQL, a real server, through a TCP proxy
the test can cut): pages and the API answer 503 with Retry-After meanwhile, /readyz says
not ready, and the same process serves again once the database is back."""

from __future__ import annotations

from pathlib import Path

import httpx

from lens.app import create_app
from lens.db.engine import create_engine
from lens.web.errors import database_unavailable
from tests.conftest import fresh_database
from tests.fixtures.db_proxy import migrated_database_behind_proxy


async def test_an_outage_is_a_503_and_the_process_recovers(tmp_path: Path, make_settings) -> None:
    async with migrated_database_behind_proxy(tmp_path) as (_, through, proxy):
        app = create_app(
            make_settings(DATABASE_URL=through, LENS_RUN_WORKER="false"), configure_logs=False
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                page, api = "/certificates/" + "a" * 22, "/api/content/status"
                assert (await c.get(page)).status_code == 404  # read from the database
                assert (await c.get("/readyz")).status_code == 200

                await proxy.cut()
                down = await c.get(page)
                assert down.status_code == 503, down.text
                assert down.headers["retry-after"] == "30"
                assert "cannot reach its database" in down.text
                assert (await c.get(api)).status_code in (401, 503)  # JSON, no 500
                ready = await c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"].startswith("unreachable")

                await proxy.restore()
                assert (await c.get(page)).status_code == 404  # no restart needed
                assert (await c.get("/readyz")).status_code == 200
        await proxy.cut()


def test_what_counts_as_the_database_being_away() -> None:
    import httpx as vendor
    from sqlalchemy.exc import OperationalError

    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert not database_unavailable(OperationalError("x", {}, Exception("no such table: users")))
    # asyncpg stuck waiting for a dead server (its notice read, the socket not yet
    # closed) is the database being away; one connection used twice at once is a bug.
    from asyncpg.exceptions import InternalClientError

    stuck = "cannot switch to state 12; another operation (2) is in progress"
    assert database_unavailable(InternalClientError(stuck))
    twice = "cannot switch to state 12; another operation (12) is in progress"
    assert not database_unavailable(InternalClientError(twice))
    # A vendor's connection refused is not the database's.
    try:
        raise vendor.ConnectError("refused") from ConnectionRefusedError(111, "refused")
    except vendor.ConnectError as exc:
        assert not database_unavailable(exc)


async def test_a_statement_kept_from_before_a_migration_is_tried_again(tmp_path: Path) -> None:
    """Lens keeps prepared statements on PostgreSQL. A migration that changes a table a
    connection has a kept statement for makes that statement fail once ("cached plan
    must not change result type"): that is told apart as a passing condition (a 503 and
    a retry, never a bug), and the next try works."""
    from sqlalchemy import text

    from lens.db.spool import save_or_spool

    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE things (id int)"))
            await conn.execute(text("INSERT INTO things VALUES (1)"))
        from lens.db.engine import create_sessionmaker

        maker = create_sessionmaker(engine)

        async def read(session, _record):  # type: ignore[no-untyped-def]
            return (await session.execute(text("SELECT * FROM things"))).all()

        async with maker() as session:
            assert len((await read(session, {}))[0]) == 1  # the statement is kept
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE things ADD COLUMN name text"))
        failed: BaseException | None = None
        try:
            async with maker() as session:
                await read(session, {})
        except Exception as exc:
            failed = exc
        assert failed is not None and database_unavailable(failed)
        # Through the retrying path it simply works.
        saved, rows = await save_or_spool(maker, read, {}, spool=None, tries=(0.01,))
        assert saved and len(rows[0]) == 2
        await engine.dispose()
