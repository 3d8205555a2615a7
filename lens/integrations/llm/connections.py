"""Connections to the model vendors, kept for reuse without httpcore's pool.

httpcore 1.0's connection pool, on every request it starts and every response it ends,
walks its connections and, for each idle one, lists all of them again: quadratic in the
connections it holds. A cohort's burst of 200 streams leaves 100 kept-alive connections
behind, and the next burst through the same client then cost 12 s of CPU instead of
2.8 s (measured with 200 streams against bench/_fake_llm.py on the 2-core machine;
bench/README.md, issue 20). `ConnectionPool` keeps each vendor's idle connections in a
list: a request takes the newest idle one that is still good or opens a new one, and a
response that ends hands its connection back. The connections are httpcore's (HTTP/1.1,
the exceptions, as httpx expects them) on plain asyncio sockets and TLS
(lens.integrations.llm.sockets) rather than anyio's.

Opened ahead: when a learner asks, the tutor tells the model a request is coming
(`ChatModel.prepare`) before checking their budget in the database; the pool opens a
connection for it then, unless an idle one or one already being opened will do, and the
request takes it (or waits for the one being opened) when it is sent. The TCP and TLS
handshakes (one or two round trips to the vendor, most of a cohort's burst being new
connections) so happen while the database answers instead of after. One prepared for
an ask that is then refused is closed after KEEPALIVE_SECONDS, and at most PREPARED_MOST
per vendor wait unused.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

from lens.integrations.llm.sockets import AsyncioBackend
from lens.logging import get_logger

# A connection: made by the pool when a request finds none (it connects on that request),
# or opened ahead by `prepare`.
Connection = httpcore.AsyncHTTPConnection | httpcore.AsyncHTTP11Connection
Opened = tuple[httpcore.AsyncHTTP11Connection, httpcore.AsyncNetworkStream]

log = get_logger("lens.integrations.llm")

KEEP_IDLE = 100  # idle connections kept per vendor
MOST_OPEN = 1000  # connections open at once, all vendors (more wait for one to end)
KEEPALIVE_SECONDS = 5.0  # as httpx's own pool
# Connections opened ahead and not yet used, per vendor, at most: asks refused by their
# budget check (a flood of them, say) never open more than this.
PREPARED_MOST = 300


class ConnectionPool:
    """What httpx's transport asks of its pool: `handle_async_request` and `aclose`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        keep_idle: int = KEEP_IDLE,
        most_open: int = MOST_OPEN,
        connect_timeout: float = 10.0,
    ) -> None:
        self.ssl_context = ssl_context
        self.keep_idle = keep_idle
        self.idle: defaultdict[Any, list[Connection]] = defaultdict(list)
        self.opened = 0  # connections made (tests and benches)
        self.closed = False
        self._in_use = asyncio.Semaphore(most_open)
        self.backend = AsyncioBackend()
        self.connect_timeout = connect_timeout
        # Connections opened ahead (`prepare`): being opened, and opened but not yet used.
        self.opening: defaultdict[Any, list[asyncio.Task[Opened]]] = defaultdict(list)
        self.fresh: defaultdict[Any, list[tuple[float, Opened]]] = defaultdict(list)
        # When each request prepared for and not yet sent was announced (for KEEPALIVE_SECONDS:
        # one refused by its budget check never comes).
        self.wanted: defaultdict[Any, collections.deque[float]] = defaultdict(collections.deque)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)  # an Origin is not hashable
        await self._in_use.acquire()
        try:
            connection = await self._take(key, origin)
            try:
                response = await connection.handle_async_request(request)
            except BaseException:
                await connection.aclose()
                raise
        except BaseException:
            self._in_use.release()
            raise
        response.stream = _HandsBack(response.stream, self, key, connection)
        return response

    def prepare(self, url: str) -> None:
        """A request to `url` is coming (a learner has just asked; their budget is being
        checked): open a connection for it now, unless one is idle or being opened for it
        already, so that the TCP and TLS handshakes happen while the database answers
        rather than after. A connection not used within KEEPALIVE_SECONDS is closed."""
        if self.closed:
            return
        try:
            origin = httpcore.URL(url).origin
        except (KeyError, TypeError, ValueError) as exc:  # the request itself will say
            log.debug("llm.prepare.bad_url", url=url, error=repr(exc))
            return
        key = (origin.scheme, origin.host, origin.port)
        now = time.monotonic()
        wanted = self.wanted[key]
        while wanted and wanted[0] < now - KEEPALIVE_SECONDS:
            wanted.popleft()
        wanted.append(now)
        self._sweep(key)  # the ones prepared for asks that never came do not count
        ahead = len(self.fresh[key]) + len(self.opening[key])
        if len(self.idle[key]) + ahead >= len(wanted) or ahead >= PREPARED_MOST:
            return
        task = asyncio.get_running_loop().create_task(self._open(origin))
        self.opening[key].append(task)
        task.add_done_callback(lambda done: self._opened(key, done))

    async def _open(self, origin: httpcore.Origin) -> Opened:
        host = origin.host.decode("ascii")
        self.opened += 1
        stream = await self.backend.connect_tcp(host, origin.port, timeout=self.connect_timeout)
        if origin.scheme == b"https":
            try:
                stream = await stream.start_tls(
                    self.ssl_context, server_hostname=host, timeout=self.connect_timeout
                )
            except BaseException:
                await stream.aclose()
                raise
        connection = httpcore.AsyncHTTP11Connection(
            origin, stream, keepalive_expiry=KEEPALIVE_SECONDS
        )
        return connection, stream

    def _opened(self, key: Any, task: asyncio.Task[Opened]) -> None:
        """An opening ended that no request waited for: keep the connection for one."""
        if task not in self.opening[key]:
            return  # a request took it
        self.opening[key].remove(task)
        if task.cancelled() or task.exception() is not None:
            return  # the request it was for opens its own, and meets the error itself
        if self.closed:
            asyncio.get_running_loop().create_task(task.result()[0].aclose())
        else:
            self.fresh[key].append((time.monotonic(), task.result()))
            # Closed when unused in time even if nothing else comes for this vendor.
            asyncio.get_running_loop().call_later(KEEPALIVE_SECONDS, self._sweep, key)

    def _sweep(self, key: Any) -> None:
        """Close the connections opened ahead for `key` and unused for KEEPALIVE_SECONDS."""
        fresh = self.fresh[key]
        now = time.monotonic()
        while fresh and fresh[0][0] <= now - KEEPALIVE_SECONDS:
            asyncio.get_running_loop().create_task(fresh.pop(0)[1][0].aclose())

    async def _take(self, key: Any, origin: httpcore.Origin) -> Connection:
        if self.wanted[key]:
            self.wanted[key].popleft()
        idle = self.idle[key]
        while idle and idle[0].has_expired():  # the oldest, left after a burst
            await idle.pop(0).aclose()
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        fresh = self.fresh[key]
        while fresh:
            opened_at, (connection, stream) = fresh.pop(0)
            recent = time.monotonic() - opened_at < KEEPALIVE_SECONDS
            if recent and not stream.get_extra_info("is_readable"):  # not closed by the server
                return connection
            await connection.aclose()
        if self.opening[key]:  # one being opened ahead: wait for it rather than open another
            task = self.opening[key].pop(0)
            try:
                return (await asyncio.shield(task))[0]
            except asyncio.CancelledError:
                task.add_done_callback(_close_unused)
                raise
            except httpcore.ConnectTimeout:
                raise  # the vendor does not answer: a second wait would double the try's time
            except Exception:  # noqa: S110 - refused or reset at once: try once more below
                pass
        self.opened += 1
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self.ssl_context,
            keepalive_expiry=KEEPALIVE_SECONDS,
            network_backend=self.backend,
        )

    async def hand_back(self, key: Any, connection: Connection) -> None:
        self._in_use.release()
        idle = self.idle[key]
        if connection.is_idle() and len(idle) < self.keep_idle and not self.closed:
            idle.append(connection)
        else:
            await connection.aclose()

    async def __aenter__(self) -> ConnectionPool:  # httpx's transport enters its pool
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed when its response ends."""
        self.closed = True
        for idle in self.idle.values():
            while idle:
                await idle.pop().aclose()
        for fresh in self.fresh.values():
            while fresh:
                await fresh.pop()[1][0].aclose()
        for opening in self.opening.values():
            for task in opening:  # `_opened` closes what one of them opened after all
                task.cancel()


class _HandsBack:
    """A response body that hands its connection back to the pool when it is closed."""

    def __init__(
        self,
        stream: Any,
        pool: ConnectionPool,
        key: Any,
        connection: Connection,
    ) -> None:
        self.stream, self.pool = stream, pool
        self.key, self.connection = key, connection
        self.handed_back = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if hasattr(self.stream, "aclose"):
                await self.stream.aclose()
        finally:
            if not self.handed_back:  # once, however often it is closed
                self.handed_back = True
                await self.pool.hand_back(self.key, self.connection)


def _close_unused(task: asyncio.Task[Opened]) -> None:
    if not task.cancelled() and task.exception() is None:
        asyncio.get_running_loop().create_task(task.result()[0].aclose())


def pool_of(client: httpx.AsyncClient) -> ConnectionPool | None:
    """The ConnectionPool under a client `vendor_client` made (None for any other)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    return pool if isinstance(pool, ConnectionPool) else None


def vendor_client(*, connect_timeout: float) -> httpx.AsyncClient:
    """The HTTP client for the vendors' streams: one connection per stream (a live
    session's 200 all reach the vendor at once), kept for the next, through
    `ConnectionPool`. Time limits are the caller's (read=None). Behind an HTTP proxy
    from the environment (HTTPS_PROXY, ...), httpx's own client, which honours it.
    Making it loads the system's certificates (tens of milliseconds): call it off the
    event loop."""
    timeout = httpx.Timeout(None, connect=connect_timeout)
    if urllib.request.getproxies():
        return httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=KEEP_IDLE),
        )
    ssl_context = httpx.create_ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    transport._pool = ConnectionPool(ssl_context, connect_timeout=connect_timeout)  # type: ignore[assignment]
    return httpx.AsyncClient(timeout=timeout, transport=transport)
