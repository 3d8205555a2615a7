"""The reader's hot reads on connections of their own (lens/db/hot.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Float, Text, bindparam, cast, func, literal_column, select

from tests.db.test_engine import _kill_backends, _postgres

SLEEP = select(cast(func.pg_sleep(bindparam("seconds", type_=Float)), Text).label("slept"))
ECHO = select(bindparam("value").label("value"))


async def test_reads_share_a_few_connections_and_wait_their_turn(tmp_path: Path) -> None:
    from lens.db.engine import hot_reads, read_rows

    async with _postgres(tmp_path) as (_url, engine):
        hot = hot_reads(engine, size=2)
        assert hot is not None
        try:
            got = await asyncio.gather(
                *(read_rows(engine, ECHO, {"value": str(i)}, hot=hot) for i in range(30))
            )
            assert [rows[0]["value"] for rows in got] == [str(i) for i in range(30)]
            assert hot.opened == 2  # never more than its size
        finally:
            await hot.close()
        with pytest.raises(RuntimeError, match="disposed"):
            await read_rows(engine, ECHO, {"value": "x"}, hot=hot)
        assert hot.opened == 0


async def test_a_read_cancelled_while_waiting_frees_nothing_it_did_not_hold(
    tmp_path: Path,
) -> None:
    from lens.db.engine import hot_reads, read_rows

    async with _postgres(tmp_path) as (_url, engine):
        hot = hot_reads(engine, size=1)
        assert hot is not None
        try:
            slow = asyncio.create_task(read_rows(engine, SLEEP, {"seconds": 0.3}, hot=hot))
            await asyncio.sleep(0.05)
            waiting = [
                asyncio.create_task(read_rows(engine, ECHO, {"value": str(i)}, hot=hot))
                for i in range(3)
            ]
            await asyncio.sleep(0.05)
            waiting[1].cancel()  # a reader who left while waiting for a connection
            await slow
            assert (await waiting[0])[0]["value"] == "0"
            assert (await waiting[2])[0]["value"] == "2"
            with pytest.raises(asyncio.CancelledError):
                await waiting[1]
            assert hot.opened == 1
            again = await read_rows(engine, ECHO, {"value": "again"}, hot=hot)
            assert again[0]["value"] == "again"
        finally:
            await hot.close()


async def test_a_dead_connection_idle_a_while_is_read_again_on_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.db import hot as hot_module
    from lens.db.engine import hot_reads, read_rows

    async with _postgres(tmp_path) as (url, engine):
        hot = hot_reads(engine, size=2)
        assert hot is not None
        try:
            assert (await read_rows(engine, ECHO, {"value": "a"}, hot=hot))[0]["value"] == "a"
            assert await _kill_backends(url) >= 1  # the server restarted while nobody read
            monkeypatch.setattr(hot_module, "PING_AFTER_IDLE_SECONDS", 0.0)
            assert (await read_rows(engine, ECHO, {"value": "b"}, hot=hot))[0]["value"] == "b"
            assert hot.opened == 1
        finally:
            await hot.close()


async def test_a_connection_that_died_is_never_used_again(tmp_path: Path) -> None:
    from lens.db.engine import hot_reads, read_rows
    from lens.db.outage import database_unavailable

    async with _postgres(tmp_path) as (url, engine):
        hot = hot_reads(engine, size=2)
        assert hot is not None
        try:
            assert (await read_rows(engine, ECHO, {"value": "a"}, hot=hot))[0]["value"] == "a"
            await _kill_backends(url)  # used a moment ago: not tried again
            try:  # skipped if the driver saw the socket close; else it fails, as an outage
                await read_rows(engine, ECHO, {"value": "b"}, hot=hot)
            except Exception as failed:
                assert database_unavailable(failed)  # a 503 page, not a bug
            assert (await read_rows(engine, ECHO, {"value": "c"}, hot=hot))[0]["value"] == "c"
            assert hot.opened == 1
        finally:
            await hot.close()


async def test_a_statement_the_server_refuses_is_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.db import hot as hot_module
    from lens.db.engine import hot_reads, read_rows
    from lens.db.outage import database_unavailable

    bad = select(literal_column("1/0").label("x"))
    async with _postgres(tmp_path) as (_url, engine):
        hot = hot_reads(engine, size=1)
        assert hot is not None
        try:
            monkeypatch.setattr(hot_module, "PING_AFTER_IDLE_SECONDS", 0.0)
            with pytest.raises(Exception, match="division by zero") as failed:
                await read_rows(engine, bad, {}, hot=hot)
            assert not database_unavailable(failed.value)
            assert (await read_rows(engine, ECHO, {"value": "ok"}, hot=hot))[0]["value"] == "ok"
        finally:
            await hot.close()


async def test_sqlite_has_no_hot_reads(tmp_path: Path) -> None:
    from lens.db.engine import create_engine, hot_reads

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        assert hot_reads(engine, size=4) is None
    finally:
        await engine.dispose()


async def test_hot_reads_connect_as_the_engine_does(tmp_path: Path) -> None:
    # The same URL settings as SQLAlchemy's own connections (the local server has SSL
    # off: `require` fails on both, `disable` works on both).
    from lens.db.engine import create_engine, hot_reads, read_rows
    from tests.conftest import fresh_database

    async with fresh_database("postgresql", tmp_path) as url:
        for mode, works in (("disable", True), ("require", False)):
            engine = create_engine(f"{url}?sslmode={mode}")
            hot = hot_reads(engine, size=1)
            assert hot is not None
            try:
                if works:
                    rows = await read_rows(engine, ECHO, {"value": mode}, hot=hot)
                    assert rows[0]["value"] == mode
                else:
                    with pytest.raises(Exception, match=r"rejected SSL upgrade"):
                        await read_rows(engine, ECHO, {"value": mode}, hot=hot)
                    assert hot.opened == 0
            finally:
                await hot.close()
                await engine.dispose()


async def test_a_read_that_waits_too_long_is_an_outage_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.db import hot as hot_module
    from lens.db.engine import hot_reads, read_rows
    from lens.db.outage import database_unavailable

    async with _postgres(tmp_path) as (_url, engine):
        hot = hot_reads(engine, size=1)
        assert hot is not None
        try:
            monkeypatch.setattr(hot_module, "WAIT_SECONDS", 0.1)
            slow = asyncio.create_task(read_rows(engine, SLEEP, {"seconds": 0.5}, hot=hot))
            await asyncio.sleep(0.05)
            with pytest.raises(Exception, match="came free") as waited:
                await read_rows(engine, ECHO, {"value": "x"}, hot=hot)
            assert database_unavailable(waited.value)  # a 503 with a retry hint
            await slow
            assert (await read_rows(engine, ECHO, {"value": "y"}, hot=hot))[0]["value"] == "y"
            assert hot.opened == 1
        finally:
            await hot.close()


async def test_after_a_disconnect_the_idle_connections_are_not_trusted(tmp_path: Path) -> None:
    # Killed backends whose sockets the driver has not seen close yet (the proxy sends
    # the terminate notice and keeps them open): the first read to find out fails, and
    # the other idle connections go with it, not one failed read each.
    from lens.db.engine import create_engine, hot_reads, read_rows
    from lens.db.outage import database_unavailable
    from tests.fixtures.db_proxy import migrated_database_behind_proxy

    async with migrated_database_behind_proxy(tmp_path) as (_url, through, proxy):
        engine = create_engine(through)
        hot = hot_reads(engine, size=3)
        assert hot is not None
        try:
            await asyncio.gather(
                *(read_rows(engine, SLEEP, {"seconds": 0.05}, hot=hot) for _ in range(3))
            )
            assert hot.opened == 3
            await proxy.notice_without_close()
            with pytest.raises(Exception) as failed:
                await read_rows(engine, ECHO, {"value": "a"}, hot=hot)
            assert database_unavailable(failed.value)
            assert hot.opened == 0  # the other two were dropped with it
            assert (await read_rows(engine, ECHO, {"value": "b"}, hot=hot))[0]["value"] == "b"
        finally:
            await hot.close()
            await engine.dispose()
