"""The HTTP client for the vendors' streams: HTTP/1.1 (h11) on plain asyncio connections,
kept for reuse.

Why not httpx here: a live session's burst is 200 requests sent at once and 200 streams
read a chunk at a time, and every layer of httpx and httpcore (the client, its transport,
the pool, the connection, the response's byte iterators) runs for each. Measured against
bench/_fake_llm.py on the 2-core machine (200 requests at once on kept connections, CPU of
the process from sending to having every response's head): httpx 0.30 ms a request,
httpcore's connection alone 0.20 ms, h11 on the connection directly 0.10-0.15 ms. The
time a cohort waits for its first token is those requests one after another on one core
(issue 20). So a request here is h11's bytes written to the connection, and a response is
h11's events read from it; nothing else runs per chunk.

`ConnectionPool.send` writes the request and returns at once; `Response.head` then waits for
the status line and headers. So a caller may write many requests before waiting for any
answer, and the vendor starts on them sooner.

Connections: the vendor's idle connections are kept in a list per origin: a request takes
the newest idle one that is still good or opens a new one, and a response read to its end
hands its connection back (httpcore 1.0's own pool was quadratic in its connections: a
burst's 100 kept-alive connections made the next burst cost 12 s of CPU instead of 2.8).
The sockets and TLS are lens.integrations.llm.sockets'.

Opened ahead: when a learner asks, the tutor tells the model a request is coming
(`ChatModel.prepare`) before checking their budget in the database; the pool opens a
connection for it then, unless an idle one or one already being opened will do, and the
request takes it (or waits for the one being opened) when it is sent. The TCP and TLS
handshakes (one or two round trips to the vendor, most of a cohort's burst being new
connections) so happen while the database answers instead of after. One prepared for
an ask that is then refused is closed after KEEPALIVE_SECONDS, and at most PREPARED_MOST
per vendor wait unused.

Behind an HTTP proxy from the environment (HTTPS_PROXY, ...), and when a test hands the
model an httpx client, `HttpxVendor` speaks the same interface through httpx, which
honours the proxy.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
import httpcore
import httpx

from lens.integrations.llm.direct import ProviderUnavailable
from lens.integrations.llm.sockets import AsyncioBackend, AsyncioStream
from lens.logging import get_logger

log = get_logger("lens.integrations.llm")

KEEP_IDLE = 100  # idle connections kept per vendor
MOST_OPEN = 1000  # connections open at once, all vendors (more wait for one to end)
KEEPALIVE_SECONDS = 5.0  # as httpx's own pool
# Connections opened ahead and not yet used, per vendor, at most: asks refused by their
# budget check (a flood of them, say) never open more than this.
PREPARED_MOST = 300
READ_SIZE = 65536
MAX_HEAD = 100 * 1024
USER_AGENT = "lens"

Origin = tuple[str, str, int]  # scheme, host, port


class VendorNetworkError(ProviderUnavailable):
    """The connection to the vendor failed (refused, reset, closed part-way, not HTTP):
    asking again may help."""


class VendorConnectTimeout(VendorNetworkError):
    """No connection to the vendor within the connect time limit."""


class BadAddress(ValueError):
    """A vendor address Lens cannot send to (no http:// or https://, no host)."""


def origin_of(url: str) -> tuple[Origin, str]:
    """(scheme, host, port) and the request target (path and query) of `url`."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise BadAddress(f"not a web address: {url!r} ({exc})") from exc
    if scheme not in ("http", "https") or not host:
        raise BadAddress(f"not an http:// or https:// address with a host: {url!r}")
    try:
        host.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BadAddress(f"write the host of {url!r} in its ASCII (xn--) form") from exc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (scheme, host, port), target


class Response(Protocol):
    """A vendor's answer: `head` waits for its status and headers, then the body is read
    with `aiter_bytes` (decoded when compressed) or `aread`; `aclose` ends it, whatever
    was read."""

    status_code: int

    async def head(self) -> None: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Vendor(Protocol):
    """What the model asks of its HTTP client."""

    sends_ahead: bool  # whether `send` returns before the answer's head (then worth it)

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Response:
        """Write the request; the answer's head is read by `Response.head`."""
        ...

    def prepare(self, url: str) -> None:
        """A request to `url` is coming: open a connection for it now (if that helps)."""
        ...

    async def aclose(self) -> None: ...


class Connection:
    """One HTTP/1.1 connection: h11's state on one of lens.integrations.llm.sockets'
    streams."""

    def __init__(self, origin: Origin, stream: AsyncioStream) -> None:
        self.origin = origin
        self.stream = stream
        # Response heads up to 100 KB, as httpcore took them (h11's own limit is 16 KB).
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.idle_since = time.monotonic()
        self.ended = False  # the vendor closed its side

    def reusable(self) -> bool:
        """Idle between requests, recent, and not closed (nor sent anything unasked) by
        the vendor."""
        return (
            self.h11.our_state is h11.IDLE
            and self.h11.their_state is h11.IDLE
            and time.monotonic() - self.idle_since < KEEPALIVE_SECONDS
            and not self.stream.get_extra_info("is_readable")
            and not self.stream.transport.is_closing()
        )

    async def write(self, method: str, target: str, headers: list[tuple[str, str]],
                    body: bytes) -> None:  # fmt: skip
        try:
            data = self.h11.send(h11.Request(method=method, target=target, headers=headers))
            data = (data or b"") + (self.h11.send(h11.Data(data=body)) or b"") if body else data
            data = (data or b"") + (self.h11.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:  # a header Lens made that HTTP cannot carry
            # Not h11's words: they quote the header's value, which may be an API key.
            names = ", ".join(name for name, _ in headers)
            raise BadAddress(
                "the request cannot be sent: a header has a character HTTP does not allow "
                f"(one of {names}; check the API key and LENS_LLM_API_BASE for spaces or "
                "line breaks)"
            ) from exc
        try:
            await self.stream.write(data)
        except httpcore.NetworkError as exc:
            raise VendorNetworkError(f"the vendor connection failed ({exc})") from exc

    async def next_event(self) -> Any:
        """The next of h11's events of the response (reading as needed)."""
        while True:
            state = self.h11.their_state
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not self.ended:
                    raise VendorNetworkError(f"the vendor's answer is not HTTP ({exc})") from exc
                if state is h11.SEND_RESPONSE:
                    raise VendorNetworkError(
                        "the vendor closed the connection without answering"
                    ) from exc
                raise VendorNetworkError(
                    f"the vendor closed the connection part-way ({exc})"
                ) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.read(READ_SIZE)
            except httpcore.NetworkError as exc:
                raise VendorNetworkError(f"the vendor connection failed ({exc})") from exc
            self.ended = not data
            self.h11.receive_data(data)  # b"": the vendor closed it

    def next_cycle(self) -> None:
        """The exchange is over: ready for the next request, when both sides keep it."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.idle_since = time.monotonic()

    async def aclose(self) -> None:
        await self.stream.aclose()


class _Decoder:
    """The body's Content-Encoding undone (gzip, deflate); Lens asks for none, but a
    server may send one anyway."""

    def __init__(self, encoding: str) -> None:
        if encoding in ("gzip", "x-gzip"):
            self.zlib: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()
        else:
            raise VendorNetworkError(f"the vendor sent a body encoded as {encoding!r}")

    def __call__(self, data: bytes) -> bytes:
        try:
            return bytes(self.zlib.decompress(data))
        except zlib.error as exc:
            raise VendorNetworkError(f"the vendor's compressed body is broken ({exc})") from exc


class OwnResponse:
    """A response on one of the pool's connections; handed back when read to its end,
    closed when ended before (`aclose`)."""

    def __init__(self, pool: ConnectionPool, connection: Connection) -> None:
        self.pool = pool
        self.connection = connection
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._decode: _Decoder | None = None
        self._ended = False  # the body was read to its end
        self._handed_back = False

    async def head(self) -> None:
        if self.status_code:
            return
        while True:
            event = await self.connection.next_event()
            if isinstance(event, h11.Response):
                break
            if isinstance(event, h11.ConnectionClosed):
                raise VendorNetworkError("the vendor closed the connection without answering")
            # h11.InformationalResponse (100 Continue and the like): the answer follows
        self.status_code = event.status_code
        self.headers = list(event.headers)
        encoding = b",".join(v for k, v in self.headers if k == b"content-encoding")
        encoding_name = encoding.decode("latin-1").strip().lower()
        if encoding_name and encoding_name != "identity":
            self._decode = _Decoder(encoding_name)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        await self.head()
        while not self._ended:
            event = await self.connection.next_event()
            if isinstance(event, h11.Data):
                data = bytes(event.data)
                if self._decode is not None:
                    data = self._decode(data)
                if data:
                    yield data
            elif isinstance(event, h11.EndOfMessage):
                self._ended = True
                self.connection.next_cycle()
            else:  # h11.ConnectionClosed before the end h11 expected
                raise VendorNetworkError("the vendor closed the connection part-way")
        await self.aclose()

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        if self._handed_back:  # once, however often it is closed
            return
        self._handed_back = True
        await self.pool.hand_back(self.connection, reuse=self._ended)


Opening = asyncio.Task[Connection]


class ConnectionPool:
    """Lens's own `Vendor`, and the vendors' connections (see the module's description):
    `send` a request on one, `prepare` one ahead."""

    sends_ahead = True  # `send` returns once the request is written

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
        self.idle: defaultdict[Origin, list[Connection]] = defaultdict(list)
        self.opened = 0  # connections made (tests and benches)
        self.closed = False
        self._in_use = asyncio.Semaphore(most_open)
        self.backend = AsyncioBackend()
        self.connect_timeout = connect_timeout
        # Connections opened ahead (`prepare`): being opened, and opened but not yet used.
        self.opening: defaultdict[Origin, list[Opening]] = defaultdict(list)
        self.fresh: defaultdict[Origin, list[Connection]] = defaultdict(list)
        # When each request prepared for and not yet sent was announced (for KEEPALIVE_SECONDS:
        # one refused by its budget check never comes).
        self.wanted: defaultdict[Origin, collections.deque[float]] = defaultdict(collections.deque)

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Response:
        origin, target = origin_of(url)
        scheme, host, port = origin
        default_port = 443 if scheme == "https" else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 address
        lines = [("host", name if port == default_port else f"{name}:{port}"),
                 ("user-agent", USER_AGENT), ("accept-encoding", "identity")]  # fmt: skip
        names = {name.lower() for name in headers}
        lines = [line for line in lines if line[0] not in names]
        lines += list(headers.items())
        if "content-length" not in names:
            lines.append(("content-length", str(len(body))))
        await self._in_use.acquire()
        try:
            connection = await self._take(origin)
            try:
                await connection.write(method, target, lines, body)
            except BaseException:
                await connection.aclose()
                raise
        except BaseException:
            self._in_use.release()
            raise
        return OwnResponse(self, connection)

    def prepare(self, url: str) -> None:
        """A request to `url` is coming (a learner has just asked; their budget is being
        checked): open a connection for it now, unless one is idle or being opened for it
        already, so that the TCP and TLS handshakes happen while the database answers
        rather than after. A connection not used within KEEPALIVE_SECONDS is closed."""
        if self.closed:
            return
        try:
            origin, _ = origin_of(url)
        except BadAddress as exc:  # the request itself will say
            log.debug("llm.prepare.bad_url", url=url, error=str(exc))
            return
        now = time.monotonic()
        wanted = self.wanted[origin]
        while wanted and wanted[0] < now - KEEPALIVE_SECONDS:
            wanted.popleft()
        wanted.append(now)
        self._sweep(origin)  # the ones prepared for asks that never came do not count
        ahead = len(self.fresh[origin]) + len(self.opening[origin])
        if len(self.idle[origin]) + ahead >= len(wanted) or ahead >= PREPARED_MOST:
            return
        task = asyncio.get_running_loop().create_task(self._open(origin))
        self.opening[origin].append(task)
        task.add_done_callback(lambda done: self._opened(origin, done))

    async def _open(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        self.opened += 1
        try:
            stream: Any = await self.backend.connect_tcp(host, port, timeout=self.connect_timeout)
            if scheme == "https":
                try:
                    stream = await stream.start_tls(
                        self.ssl_context, server_hostname=host, timeout=self.connect_timeout
                    )
                except BaseException:
                    await stream.aclose()
                    raise
        except httpcore.ConnectTimeout as exc:
            raise VendorConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except httpcore.NetworkError as exc:
            raise VendorNetworkError(f"no connection to {host}:{port} ({exc})") from exc
        return Connection(origin, stream)

    def _opened(self, origin: Origin, task: Opening) -> None:
        """An opening ended that no request waited for: keep the connection for one."""
        if task not in self.opening[origin]:
            return  # a request took it
        self.opening[origin].remove(task)
        if task.cancelled() or task.exception() is not None:
            return  # the request it was for opens its own, and meets the error itself
        if self.closed:
            asyncio.get_running_loop().create_task(task.result().aclose())
        else:
            self.fresh[origin].append(task.result())
            # Closed when unused in time even if nothing else comes for this vendor.
            asyncio.get_running_loop().call_later(KEEPALIVE_SECONDS, self._sweep, origin)

    def _sweep(self, origin: Origin) -> None:
        """Close the connections opened ahead for `origin` and unused for KEEPALIVE_SECONDS."""
        fresh = self.fresh[origin]
        now = time.monotonic()
        while fresh and fresh[0].idle_since <= now - KEEPALIVE_SECONDS:
            asyncio.get_running_loop().create_task(fresh.pop(0).aclose())

    async def _take(self, origin: Origin) -> Connection:
        if self.wanted[origin]:
            self.wanted[origin].popleft()
        idle = self.idle[origin]
        while idle:
            connection = idle.pop()  # the newest: the least likely to be closed by now
            if connection.reusable():
                return connection
            await connection.aclose()
        fresh = self.fresh[origin]
        while fresh:
            connection = fresh.pop(0)
            if connection.reusable():
                return connection
            await connection.aclose()
        if self.opening[origin]:  # one being opened ahead: wait for it rather than open another
            task = self.opening[origin].pop(0)
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                task.add_done_callback(_close_unused)
                raise
            except VendorConnectTimeout:
                raise  # the vendor does not answer: a second wait would double the try's time
            except Exception:  # noqa: S110 - refused or reset at once: try once more below
                pass
        return await self._open(origin)

    async def hand_back(self, connection: Connection, *, reuse: bool) -> None:
        self._in_use.release()
        idle = self.idle[connection.origin]
        # The oldest left from a burst go first: they expire first.
        while idle and time.monotonic() - idle[0].idle_since >= KEEPALIVE_SECONDS:
            await idle.pop(0).aclose()
        if reuse and connection.reusable() and len(idle) < self.keep_idle and not self.closed:
            idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed when its response ends."""
        self.closed = True
        for idle in self.idle.values():
            while idle:
                await idle.pop().aclose()
        for fresh in self.fresh.values():
            while fresh:
                await fresh.pop().aclose()
        for opening in self.opening.values():
            for task in opening:  # `_opened` closes what one of them opened after all
                task.cancel()


def _close_unused(task: Opening) -> None:
    if not task.cancelled() and task.exception() is None:
        asyncio.get_running_loop().create_task(task.result().aclose())


class HttpxResponse:
    """An httpx streamed response as a `Response`."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code

    async def head(self) -> None:
        """httpx has read it already."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes()

    async def aread(self) -> bytes:
        return await self.response.aread()

    async def aclose(self) -> None:
        await self.response.aclose()


class HttpxVendor:
    """httpx's client as a `Vendor`: behind a proxy, and for tests' transports."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    sends_ahead = False  # `send` waits for the answer's head: not before a response starts

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Response:
        request = self.client.build_request(method, url, headers=headers, content=body)
        return HttpxResponse(await self.client.send(request, stream=True))

    def prepare(self, url: str) -> None:
        """httpx opens its connections itself."""

    async def aclose(self) -> None:
        await self.client.aclose()


def pool_of(vendor: Vendor) -> ConnectionPool | None:
    """The ConnectionPool `vendor_client` made (None for httpx's)."""
    return vendor if isinstance(vendor, ConnectionPool) else None


def vendor_client(*, connect_timeout: float) -> Vendor:
    """The HTTP client for the vendors' streams: one connection per stream (a live
    session's 200 all reach the vendor at once), kept for the next. Time limits are the
    caller's, but for connecting. Behind an HTTP proxy from the environment (HTTPS_PROXY,
    ...), httpx's own client, which honours it. Making it loads the system's certificates
    (tens of milliseconds): call it off the event loop."""
    if any(scheme != "no" for scheme in urllib.request.getproxies()):  # NO_PROXY alone: none
        return HttpxVendor(
            httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=connect_timeout),
                limits=httpx.Limits(max_connections=MOST_OPEN, max_keepalive_connections=KEEP_IDLE),
            )
        )
    ssl_context = httpx.create_ssl_context()
    return ConnectionPool(ssl_context, connect_timeout=connect_timeout)
