"""httpcore's network layer on plain asyncio (lens.integrations.llm.sockets), on real
sockets: bytes both ways, time limits, the ends of a connection, TLS with a certificate
that is checked, flow control both ways, and the same under uvloop (what `lens serve`
runs on)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpcore
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lens.integrations.llm import sockets
from lens.integrations.llm.connections import ConnectionPool, OwnResponse, VendorNetworkError
from lens.integrations.llm.sockets import AsyncioBackend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_bytes_go_both_ways_and_the_end_reads_empty() -> None:
    server = await serve(echo)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
        await stream.write(b"hello", timeout=5)
        assert await stream.read(3, timeout=5) == b"hel"  # no more than asked
        assert await stream.read(100, timeout=5) == b"lo"
        assert stream.get_extra_info("server_addr")[1] == port_of(server)
        assert stream.get_extra_info("is_readable") is False  # idle, nothing unasked
        await stream.aclose()


async def test_a_read_past_its_time_limit_fails_as_httpcore_says() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await serve(silent)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(10, timeout=0.05)
        await stream.aclose()


async def test_a_closed_port_is_a_connect_error() -> None:
    server = await serve(echo)
    port = port_of(server)
    server.close()
    await server.wait_closed()
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)


async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def closed_by_the_server(server: asyncio.Server) -> httpcore.AsyncNetworkStream:
    """A connection to `server` (which closes it at once), once its end has arrived."""
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
    for _ in range(100):
        if stream.get_extra_info("is_readable"):
            break
        await asyncio.sleep(0.01)
    return stream


async def test_a_connection_the_server_closed_is_readable_then_reads_empty() -> None:
    server = await serve(closes)
    async with server:
        stream = await closed_by_the_server(server)
        assert stream.get_extra_info("is_readable") is True  # httpcore will not reuse it
        assert await stream.read(10, timeout=1) == b""
        with pytest.raises(httpcore.WriteError):
            for _ in range(100):  # the reset may take a write or two to show
                await stream.write(b"x" * 65536, timeout=1)
                await asyncio.sleep(0.01)


async def test_a_large_reply_arrives_whole_through_a_paused_reader() -> None:
    body = bytes(range(256)) * 8192  # 2 MB, far over the 256 KB the loop buffers

    async def sends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(body)
        await writer.drain()
        writer.close()

    server = await serve(sends)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
        await asyncio.sleep(0.2)  # let the loop fill the buffer and pause
        got = bytearray()
        while chunk := await stream.read(65536, timeout=5):
            got += chunk
        assert bytes(got) == body
        await stream.aclose()


async def test_a_write_the_other_side_never_reads_times_out() -> None:
    hold = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hold.wait()
        writer.close()

    server = await serve(never_reads)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
        with pytest.raises(httpcore.WriteTimeout):
            for _ in range(10_000):  # until the kernel's buffers are full
                await stream.write(b"x" * 65536, timeout=0.2)
        hold.set()
        await stream.aclose()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lens-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsecured")
        await writer.drain()

    server = await serve(answers, context)
    async with server:
        yield port_of(server)


async def test_tls_with_a_trusted_certificate_carries_a_request(
    tls_server: int, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    pool = ConnectionPool(trusted)
    try:
        response = await pool.send("GET", f"https://127.0.0.1:{tls_server}/", {}, b"")
        await response.head()
        assert isinstance(response, OwnResponse)
        assert response.connection.stream.get_extra_info("ssl_object") is not None
        assert (response.status_code, await response.aread()) == (200, b"secured")
    finally:
        await pool.aclose()


async def test_tls_with_an_unknown_certificate_is_refused(tls_server: int) -> None:
    pool = ConnectionPool(ssl.create_default_context())
    try:
        with pytest.raises(VendorNetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            await pool.send("GET", f"https://127.0.0.1:{tls_server}/", {}, b"")
    finally:
        await pool.aclose()


def test_under_uvloop_too() -> None:
    """`lens serve` runs on uvloop, whose transports are not asyncio's classes."""

    async def main() -> tuple[bytes, bool]:
        server = await serve(echo)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
            await stream.write(b"ping", timeout=5)
            got = await stream.read(10, timeout=5)
            readable = stream.get_extra_info("is_readable")
            await stream.aclose()
            return got, readable

    assert uvloop.run(main()) == (b"ping", False)


async def test_an_address_that_does_not_answer_gives_way_to_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A vendor's IPv6 address on a network that drops IPv6: the next address is tried
    after a quarter second instead of after the whole connect timeout."""
    server = await serve(echo)
    port = port_of(server)
    tried: list[str] = []
    real_attempt = sockets._attempt

    async def attempt(family: int, address: Any, local: Any) -> Any:
        tried.append(address[0])
        if address[0] == "192.0.2.1":  # TEST-NET-1: nothing answers
            await asyncio.sleep(60)
        return await real_attempt(family, ("127.0.0.1", port), local)

    async def resolve(host: str, port_: int, **_: Any) -> list[Any]:
        stream = socket.SOCK_STREAM
        return [(socket.AF_INET6, stream, 6, "", ("192.0.2.1", port_, 0, 0)),
                (socket.AF_INET, stream, 6, "", ("127.0.0.2", port_))]  # fmt: skip

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(sockets, "_attempt", attempt)
    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    async with server:
        started = loop.time()
        stream = await AsyncioBackend().connect_tcp("vendor.example", port, timeout=10)
        took = loop.time() - started
        await stream.write(b"hi", timeout=5)
        assert await stream.read(10, timeout=5) == b"hi"
        await stream.aclose()
    assert tried == ["192.0.2.1", "127.0.0.2"]
    assert 0.2 < took < 2


async def test_a_refused_address_gives_way_at_once_and_all_refused_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await serve(echo)
    port = port_of(server)
    closed = await serve(echo)
    closed_port = port_of(closed)
    closed.close()
    await closed.wait_closed()

    async def resolve(host: str, port_: int, **_: Any) -> list[Any]:
        stream = socket.SOCK_STREAM
        return [(socket.AF_INET, stream, 6, "", ("127.0.0.1", closed_port)),
                (socket.AF_INET, stream, 6, "", ("127.0.0.1", port))]  # fmt: skip

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    async with server:
        started = loop.time()
        stream = await AsyncioBackend().connect_tcp("vendor.example", 1, timeout=10)
        assert loop.time() - started < 0.2  # no quarter-second wait after a refusal
        await stream.aclose()

    async def refused(host: str, port_: int, **_: Any) -> list[Any]:
        stream = socket.SOCK_STREAM
        return [(socket.AF_INET, stream, 6, "", ("127.0.0.1", closed_port)),
                (socket.AF_INET, stream, 6, "", ("127.0.0.1", closed_port))]  # fmt: skip

    monkeypatch.setattr(loop, "getaddrinfo", refused)
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("vendor.example", 1, timeout=10)


async def test_tls_on_a_connection_the_server_closed_fails_at_once(
    certificate: tuple[Path, Path],
) -> None:
    server = await serve(closes)
    async with server:
        stream = await closed_by_the_server(server)
        trusted = ssl.create_default_context(cafile=str(certificate[0]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpcore.ConnectError):
            await stream.start_tls(trusted, server_hostname="127.0.0.1", timeout=5)
        assert loop.time() - started < 1


async def test_a_connection_lost_with_an_error_reads_as_one() -> None:
    server = await serve(echo)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port_of(server), timeout=5)
        assert isinstance(stream, sockets.AsyncioStream)
        stream.wire.connection_lost(RuntimeError("the TLS layer broke"))
        with pytest.raises(httpcore.ReadError):
            await stream.read(10, timeout=1)
        await stream.aclose()
