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
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

from lens.integrations.llm.sockets import AsyncioBackend

KEEP_IDLE = 100  # idle connections kept per vendor
MOST_OPEN = 1000  # connections open at once, all vendors (more wait for one to end)
KEEPALIVE_SECONDS = 5.0  # as httpx's own pool


class ConnectionPool:
    """What httpx's transport asks of its pool: `handle_async_request` and `aclose`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        keep_idle: int = KEEP_IDLE,
        most_open: int = MOST_OPEN,
    ) -> None:
        self.ssl_context = ssl_context
        self.keep_idle = keep_idle
        self.idle: defaultdict[Any, list[httpcore.AsyncHTTPConnection]] = defaultdict(list)
        self.opened = 0  # connections made (tests and benches)
        self.closed = False
        self._in_use = asyncio.Semaphore(most_open)
        self.backend = AsyncioBackend()

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

    async def _take(self, key: Any, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self.idle[key]
        while idle and idle[0].has_expired():  # the oldest, left after a burst
            await idle.pop(0).aclose()
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        self.opened += 1
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self.ssl_context,
            keepalive_expiry=KEEPALIVE_SECONDS,
            network_backend=self.backend,
        )

    async def hand_back(self, key: Any, connection: httpcore.AsyncHTTPConnection) -> None:
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


class _HandsBack:
    """A response body that hands its connection back to the pool when it is closed."""

    def __init__(
        self,
        stream: Any,
        pool: ConnectionPool,
        key: Any,
        connection: httpcore.AsyncHTTPConnection,
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
    transport._pool = ConnectionPool(ssl_context)  # type: ignore[assignment]
    return httpx.AsyncClient(timeout=timeout, transport=transport)
