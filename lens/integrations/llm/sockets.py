"""httpcore's network layer on plain asyncio, for the vendors' streams.

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
WriteTimeout), which httpx turns into its own, so nothing above changes.

Since the loop reads a connection's bytes as they come, "is it readable" (httpcore asks
it of an idle connection it is about to reuse: readable there means the server closed it
or sent something unasked) is answered from what the protocol has seen, not by polling
the socket.
"""

# The `timeout` parameters are httpcore's interface (AsyncNetworkStream, AsyncNetworkBackend).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
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


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, wire: _Wire) -> None:
        self.transport = transport
        self.wire = wire
        wire.transport = transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wire = self.wire
        if not wire.buffer and not wire.eof:
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
        if isinstance(wire.lost, OSError):
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
        self.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self.transport, self.wire, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self.transport.close()
            raise httpcore.ConnectTimeout("the TLS handshake took too long") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self.transport.close()
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
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, wire = await loop.create_connection(_Wire, host, port, local_addr=local)
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


def _configured(
    transport: asyncio.BaseTransport, wire: _Wire, socket_options: Iterable[Any] | None
) -> AsyncioStream:
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        for option in socket_options or ():
            sock.setsockopt(*option)
    return AsyncioStream(cast(asyncio.Transport, transport), wire)
