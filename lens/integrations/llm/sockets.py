"""The network layer of the vendors' streams, on plain asyncio (its interface is httpcore's
network backend's; lens.integrations.llm.connections reads and writes through it).

httpcore reaches the network through a backend; on asyncio it picks anyio's, which puts
every read and write in a cancel scope (`fail_after`) and every connection through
anyio's socket streams. Measured with cProfile while 200 tutor streams started together
(bench/tutor.py, issue 20), that was the largest single share of Lens's CPU before the
requests reached the vendor: 17 % of it, most of it anyio's scopes around httpcore's reads,
writes and connects.

`AsyncioBackend` does the same with an asyncio protocol: bytes arrive in a buffer as the
loop reads them; a read takes what is there or waits on one future, with its time limit a
`call_later` that fails that future. TLS is asyncio's (`loop.start_tls`). The exceptions
are httpcore's (ConnectError, ConnectTimeout, ReadError, ReadTimeout, WriteError,
WriteTimeout); lens.integrations.llm.connections turns them into its own.

Since the loop reads a connection's bytes as they come, "is it readable" (httpcore asks
it of an idle connection it is about to reuse: readable there means the server closed it
or sent something unasked) is answered from what the protocol has seen, not by polling
the socket.
"""

# The `timeout` parameters are httpcore's interface (AsyncNetworkStream, AsyncNetworkBackend).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

# The loop stops reading a connection whose unread bytes pass this, until they are read.
_HIGH_WATER = 256 * 1024


class _Wire(asyncio.Protocol):
    """One connection's state: unread bytes, end of stream, loss, and who waits for what."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: BaseException | None = None  # set (to an error, or an EOFError) when lost
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[None] | None = None  # a read waiting for bytes
        self.drained: asyncio.Future[None] | None = None  # a write waiting for room

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc if exc is not None else EOFError("connection closed")
        self.eof = True
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)


def _expire(future: asyncio.Future[None], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


async def _wait(future: asyncio.Future[None], seconds: float | None, error: Exception) -> None:
    """Wait for future, failing with error after so many seconds (None: no limit)."""
    if seconds is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(seconds, _expire, future, error)
    try:
        await future
    finally:
        timer.cancel()
        if future.done() and not future.cancelled():
            future.exception()  # retrieved, even when a cancellation came in the same turn


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, wire: _Wire) -> None:
        self.transport = transport
        self.wire = wire
        wire.transport = transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wire = self.wire
        if not wire.buffer and not wire.eof:
            if wire.waiter is not None:
                raise RuntimeError("two reads at once on one connection")
            wire.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(wire.waiter, timeout, httpcore.ReadTimeout("the vendor sent nothing"))
            finally:
                wire.waiter = None
        if wire.buffer:
            data = bytes(wire.buffer[:max_bytes])
            del wire.buffer[:max_bytes]
            if wire.reading_paused and len(wire.buffer) <= _HIGH_WATER // 4:
                wire.reading_paused = False
                self.transport.resume_reading()
            return data
        if wire.lost is not None and not isinstance(wire.lost, EOFError):
            raise httpcore.ReadError(str(wire.lost) or type(wire.lost).__name__)
        return b""  # the end of the stream, as a socket read gives it

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        wire = self.wire
        if wire.lost is not None or self.transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self.transport.write(buffer)
        if wire.writing_paused:
            wire.drained = asyncio.get_running_loop().create_future()
            try:
                late = httpcore.WriteTimeout("the vendor reads nothing")
                await _wait(wire.drained, timeout, late)
            finally:
                wire.drained = None
            if wire.lost is not None:
                raise httpcore.WriteError(str(wire.lost) or "the connection was closed")

    async def aclose(self) -> None:
        # At once, as anyio's streams did: close() on a TLS transport would wait up to 30 s
        # for the vendor's close_notify (and a plain one for unsent bytes), holding the
        # socket all that time when the vendor has stopped answering.
        self.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.wire.eof or self.transport.is_closing():  # start_tls would wait forever
            self.transport.abort()
            raise httpcore.ConnectError("the server closed the connection before TLS")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self.transport, self.wire, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self.transport.abort()
            raise httpcore.ConnectTimeout("the TLS handshake took too long") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self.transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        return AsyncioStream(transport, self.wire)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self.transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self.transport.get_extra_info("sockname")
        if info == "server_addr":
            return self.transport.get_extra_info("peername")
        if info == "socket":
            return self.transport.get_extra_info("socket")
        if info == "is_readable":
            return bool(self.wire.buffer) or self.wire.eof
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, wire = await _connect(host, port, local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _configured(transport, wire, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, wire = await loop.create_unix_connection(_Wire, path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {path} in time") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _configured(transport, wire, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


Connected = tuple[asyncio.Transport, _Wire]

HAPPY_EYEBALLS_SECONDS = 0.25


async def _connect(host: str, port: int, local: tuple[str, int] | None) -> Connected:
    """A TCP connection to the first of host's addresses that answers, the next one tried
    when the last has not answered in HAPPY_EYEBALLS_SECONDS (RFC 8305, as anyio and
    asyncio's own `happy_eyeballs_delay` do; uvloop has no such option): a vendor's IPv6
    address on a network that drops IPv6 must not cost the whole connect timeout."""
    loop = asyncio.get_running_loop()
    try:
        numeric = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # nothing to look up (the resolver would take a thread)
        kind = socket.AF_INET6 if numeric.version == 6 else socket.AF_INET
        return await _attempt(kind, (host, port), local)
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = _interleaved([(family, address) for family, _, _, _, address in infos])
    if not addresses:
        raise OSError(f"no address for {host}")
    if len(addresses) == 1:
        return await _attempt(*addresses[0], local)
    attempts: list[asyncio.Task[Connected]] = []
    winner: asyncio.Task[Connected] | None = None
    try:
        for family, address in addresses:
            attempts.append(loop.create_task(_attempt(family, address, local)))
            winner = await _first_success(attempts, HAPPY_EYEBALLS_SECONDS)
            if winner is not None:
                return winner.result()
        winner = await _first_success(attempts, None)
        if winner is not None:
            return winner.result()
        errors = [e for a in attempts if not a.cancelled() and (e := a.exception())]
        raise errors[-1] if errors else OSError(f"no connection to {host}")
    finally:
        for attempt in attempts:
            if attempt is not winner:
                attempt.cancel()
                attempt.add_done_callback(_abort_late)  # at once when it is done already


async def _attempt(family: int, address: Any, local: tuple[str, int] | None) -> Connected:
    transport, wire = await asyncio.get_running_loop().create_connection(
        _Wire, address[0], address[1], family=family, local_addr=local
    )
    return transport, wire


def _interleaved(addresses: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """One address of each family in turn, the resolver's first family first (RFC 8305)."""
    unique: list[tuple[int, Any]] = []
    for item in addresses:  # getaddrinfo can repeat an address
        if item not in unique:
            unique.append(item)
    if not unique:
        return []
    one = [a for a in unique if a[0] == unique[0][0]]
    other = [a for a in unique if a[0] != unique[0][0]]
    out: list[tuple[int, Any]] = []
    for i in range(max(len(one), len(other))):
        out.extend(family[i] for family in (one, other) if i < len(family))
    return out


async def _first_success(
    attempts: list[asyncio.Task[Connected]], seconds: float | None
) -> asyncio.Task[Connected] | None:
    """The first attempt that connected, waiting up to `seconds` for one (None: until every
    one has ended); None when none has."""
    loop = asyncio.get_running_loop()
    until = None if seconds is None else loop.time() + seconds
    while True:
        for attempt in attempts:
            if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
                return attempt
        pending = {a for a in attempts if not a.done()}
        left = None if until is None else until - loop.time()
        if not pending or (left is not None and left <= 0):
            return None
        await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)


def _abort_late(attempt: asyncio.Task[Connected]) -> None:
    """Close a connection that lost the race, once its attempt is over."""
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result()[0].abort()


def _configured(
    transport: asyncio.BaseTransport, wire: _Wire, socket_options: Iterable[Any] | None
) -> AsyncioStream:
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        for option in socket_options or ():
            sock.setsockopt(*option)
    return AsyncioStream(cast(asyncio.Transport, transport), wire)
