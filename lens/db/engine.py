from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.util import greenlet_spawn

from lens.db.hot import HotReads

# Execution options for a connection that only reads: on SQLite it does not queue for
# the write lock (ignored elsewhere).
READ_ONLY = {"sqlite_begin": "DEFERRED"}


# A pooled connection idle longer than this is pinged before use (a database restart or
# a firewall may have dropped it); one in steady use is not: the ping is a round trip,
# and on the reader's page it was a quarter of the database's cost. A connection that
# died while in use fails its request (a 503 page), and the whole pool is replaced.
PING_AFTER_IDLE_SECONDS = 5.0

# The usual ports of connection poolers in transaction mode (PgBouncer, Supabase's).
POOLER_PORTS = (6432, 6543)


def create_engine(
    url: str, *, echo: bool = False, pgbouncer: bool | None = None, pool_size: int = 5
) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite` or `postgresql+asyncpg` URLs.

    `pgbouncer`: PostgreSQL is reached through a pooler in transaction mode, which hands
    each transaction to any server connection, so a statement prepared on one may be
    missing on the next: statements are then prepared afresh each time (slower: two
    round trips a query). None: assumed when the port is a pooler's (6432, 6543).
    Otherwise asyncpg keeps its prepared statements (LENS_DB_PGBOUNCER).

    `pool_size`: PostgreSQL connections kept (LENS_DB_POOL_SIZE for `lens serve` and
    `lens worker`; SQLite has one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    if parsed.get_backend_name() == "postgresql":
        ssl: dict[str, Any] = {}
        if "sslmode" in parsed.query:
            # Hosting providers hand out libpq URLs with ?sslmode=...; asyncpg takes
            # the same modes as its `ssl` argument instead.
            ssl["ssl"] = parsed.query["sslmode"]
            parsed = parsed.difference_update_query(["sslmode"])
        if pgbouncer is None:
            pgbouncer = parsed.port in POOLER_PORTS
        pooler: dict[str, Any] = {}
        if pgbouncer:
            # No statement cache, and unique names for the unnamed statements asyncpg
            # still prepares.
            pooler = {
                "statement_cache_size": 0,
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": lambda: f"__lens_{uuid4().hex}__",
            }
        engine = _create_async_engine(
            parsed,
            echo=echo,
            pool_size=pool_size,
            # No connections beyond it: under steady load they were opened and closed
            # again for each request over the pool's size (a new connection costs a
            # connect and type set-up), which put 1-4 s on the slowest requests of the
            # reader's bench. Past the pool, requests wait their turn (pool_timeout).
            max_overflow=0,
            pool_timeout=30,
            pool_recycle=1800,
            connect_args={
                **pooler,
                # A server that does not answer fails a request in 10 s (a 503 page),
                # not asyncpg's 60.
                "timeout": 10,
                **ssl,
            },
        )
        _ping_when_idle(engine)
        # What SQLAlchemy's own connections get from this URL, as asyncpg takes it.
        _, from_url = engine.dialect.create_connect_args(parsed)
        for only_sqlalchemy in _SQLALCHEMY_ONLY:  # its asyncpg adapter takes these
            from_url.pop(only_sqlalchemy, None)
        _HOT_CONNECT[engine] = {
            **from_url,
            "timeout": 10,
            **({"statement_cache_size": 0} if pgbouncer else {}),
            **ssl,
        }
        return engine
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}")


def _sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite runs one writer at a time, and every transaction here takes
    # the write lock at BEGIN (below). With several connections, the ones waiting for it
    # sleep in SQLite's busy handler (up to 100 ms a nap) while the lock is free; with
    # one, requests wait their turn in the pool's queue and go the moment it is free.
    engine = _create_async_engine(
        url, echo=echo, connect_args={"timeout": 30}, pool_size=1, max_overflow=0,
        pool_timeout=60,
    )  # fmt: skip

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin; otherwise
        # SAVEPOINT and rollback-per-test do not work (SQLAlchemy docs, "Serializable
        # isolation / Savepoints / Transactional DDL" for pysqlite and aiosqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout). With a
        # plain BEGIN, a transaction that reads and then writes fails at once with
        # "database is locked" when another connection committed in between (WAL
        # snapshot conflict), which the busy timeout cannot help. SQLite runs one
        # writer at a time either way; this makes transactions queue instead of fail.
        # Read-only work (health checks) opts out with READ_ONLY.
        conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping, for connections idle over PING_AFTER_IDLE_SECONDS."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(_: Any, record: Any) -> None:
        if record is not None:
            record.info["lens_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        since = record.info.get("lens_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool drops every connection made before now and retries on a new one.
            raise exc.InvalidatePoolError(f"idle connection dead: {error!r}") from error


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for statements that only read: on PostgreSQL each runs alone
    (autocommit: no BEGIN and ROLLBACK round trips around it); on SQLite the transaction
    does not take the write lock. Nothing written through it is rolled back."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**READ_ONLY)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                    "async_creator_fn")  # fmt: skip
# How to open a hot-read connection (lens.db.hot) like the engine's own, per engine.
_HOT_CONNECT: weakref.WeakKeyDictionary[AsyncEngine, dict[str, Any]] = weakref.WeakKeyDictionary()


def hot_reads(engine: AsyncEngine, *, size: int) -> HotReads | None:
    """Connections of their own for `read_rows` on this engine's database (PostgreSQL
    only: None on SQLite). The caller closes them (`HotReads.close`)."""
    connect = _HOT_CONNECT.get(engine)
    return None if connect is None else HotReads(connect, size=size)


# Hot reads compiled for asyncpg: statement -> (SQL with $n, the bind names in order).
_COMPILED: dict[Any, tuple[str, list[str]]] = {}


async def read_rows(
    engine: AsyncEngine, statement: Any, params: dict[str, Any], *, hot: HotReads | None = None
) -> list[Any]:
    """A read-only Core select on PostgreSQL through asyncpg itself, for a statement run
    on every page view: SQLAlchemy's session and result layers cost more than the query
    (the reader's progress query: 0.6 ms of a 1 ms page). Compiled once; run outside a
    transaction on a pooled connection; the rows are asyncpg Records (by name:
    `row["column"]`). `statement` names its parameters with `bindparam`. With `hot`
    (`hot_reads`), on its connections; otherwise on one from the engine's pool."""
    compiled = _COMPILED.get(statement)
    if compiled is None:
        done = statement.compile(dialect=engine.dialect)
        compiled = (str(done), list(done.positiontup or []))
        _COMPILED[statement] = compiled
    sql, names = compiled
    if hot is not None:
        return await hot.fetch(sql, [params[name] for name in names])
    pooled = await engine.raw_connection()
    try:
        driver = pooled.driver_connection
        assert driver is not None
        return list(await driver.fetch(sql, *(params[name] for name in names)))
    except BaseException:
        # SQLAlchemy did not see it fail: a connection that broke or was left mid-query
        # (a cancelled request) must not go back to the pool. Rare: thrown away.
        await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        # Back to the pool (its reset runs in SQLAlchemy's greenlet).
        await greenlet_spawn(pooled.close)


def create_sessionmaker(bind: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block ends normally, roll back otherwise.

    Services only flush; the edges of the system (a request, a job run, a command)
    open a unit of work and commit here.
    """
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
