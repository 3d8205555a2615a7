"""A few PostgreSQL connections of their own for the reads run on every page view
(`lens.db.engine.read_rows`): the statement goes straight to asyncpg, without
SQLAlchemy's pool around it. Taking a connection from that pool and giving it back runs
each in a greenlet of its own and queues behind the pool's locks; under 50 readers at
once that cost more than the query (bench/reader: 536 -> 417 us of CPU a module page).

Only reads that are safe to run twice come here: no transaction, nothing written. A
connection that fails is closed, never reused. One idle longer than
PING_AFTER_IDLE_SECONDS that fails is tried once more on a new connection (the server
restarted while nobody read); one in steady use that fails, fails that request (a 503,
lens.db.outage), as on SQLAlchemy's pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout

from lens.db.outage import database_unavailable

PING_AFTER_IDLE_SECONDS = 5.0
# How long a read waits for a connection when all are busy (SQLAlchemy's pool_timeout).
WAIT_SECONDS = 30.0


class HotReads:
    """At most `size` connections, opened when first needed; a read waits its turn when
    all are busy."""

    def __init__(self, connect_args: dict[str, Any], *, size: int) -> None:
        self.connect_args = connect_args
        self.size = size
        self.opened = 0
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was last given back)
        # Reads waiting for a connection, oldest first: (future, when it gives up).
        self._waiters: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        conn, idle_since = await self._take(time.monotonic() + WAIT_SECONDS)
        stale = time.monotonic() - idle_since >= PING_AFTER_IDLE_SECONDS
        try:
            rows = await conn.fetch(sql, *args)
        except BaseException as error:
            self._drop(conn)
            if not isinstance(error, Exception) or not database_unavailable(error):
                raise
            # The server went away: the idle connections are as likely dead (as
            # SQLAlchemy's pool, which starts afresh on a disconnect).
            self._drop_idle()
            if not stale:
                raise
            # Idle a while and found dead (the server restarted while nobody read):
            # once more, on a connection opened now.
            conn, _ = await self._take(time.monotonic() + WAIT_SECONDS)
            try:
                rows = await conn.fetch(sql, *args)
            except BaseException:
                self._drop(conn)
                raise
        self._give_back(conn)
        return list(rows)

    async def _take(self, deadline: float) -> tuple[Any, float]:
        if self._closed:
            raise RuntimeError("the database engine was disposed")
        while self._idle:
            conn, since = self._idle.pop()
            if not conn.is_closed():
                return conn, since
            self.opened -= 1  # closed while idle (the server went away)
        if self.opened < self.size:
            self.opened += 1
            try:
                return await self._open(), time.monotonic()
            except BaseException:
                self.opened -= 1
                self._wake_one()
                raise
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        entry = (waiter, deadline)
        self._waiters.append(entry)
        if self._reaper is None:
            # One timer for all the waiting reads (not one each: under a burst most reads
            # wait a moment), set for the oldest one's limit.
            self._reaper = loop.call_later(deadline - time.monotonic(), self._give_up_late)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection (or a free slot) just as this read was cancelled:
                # pass it on.
                handed = waiter.result()
                if handed is None:
                    self._wake_one()
                else:
                    self._give_back(handed[0])
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
            raise
        if handed is None:  # a slot freed (a connection dropped): open one for it
            return await self._take(deadline)
        conn_and_since: tuple[Any, float] = handed
        return conn_and_since

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.terminate()
            self.opened -= 1
            self._wake_one()

    async def _open(self) -> Any:
        import asyncpg

        return await asyncpg.connect(**self.connect_args)

    def _give_back(self, conn: Any) -> None:
        if self._closed or conn.is_closed():
            self._drop(conn)
            return
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result((conn, time.monotonic()))
                return
        self._idle.append((conn, time.monotonic()))

    def _drop(self, conn: Any) -> None:
        conn.terminate()
        self.opened -= 1
        self._wake_one()

    def _give_up_late(self) -> None:
        """Fail the reads that have waited WAIT_SECONDS for a connection: a 503 (as
        SQLAlchemy's pool says it: lens.db.outage), not a page that never comes."""
        self._reaper = None
        now = time.monotonic()
        while self._waiters and self._waiters[0][1] <= now:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(
                    PoolTimeout(
                        f"no database connection for the page's read came free in "
                        f"{WAIT_SECONDS:.0f} s ({self.size} in use)"
                    )
                )
        if self._waiters:
            self._reaper = asyncio.get_running_loop().call_later(
                self._waiters[0][1] - now, self._give_up_late
            )

    def _wake_one(self) -> None:
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self.opened -= 1
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the database engine was disposed"))
