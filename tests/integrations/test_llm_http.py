"""Lens's own HTTP/1.1 client for the vendors (lens.integrations.llm.connections) on real
sockets: requests written before any answer is read, bodies whole however they are framed
(length, chunks, the connection's end) or compressed, a broken answer an error worth
another try, an address Lens cannot send to a person's to fix; and a reply's request sent
ahead (`DirectModel.send_ahead`) carried on by `stream`."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lens.integrations.llm.client import Delta, DirectModel, Usage
from lens.integrations.llm.connections import (
    BadAddress,
    ConnectionPool,
    Response,
    VendorNetworkError,
    origin_of,
    vendor_client,
)
from lens.integrations.llm.direct import ProviderUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem
from tests.contracts.test_bench_fake_llm import TOKENS, Running, fake  # noqa: F401

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(ssl.create_default_context(), connect_timeout=5)
    yield pool
    await pool.aclose()


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


async def test_requests_are_written_before_any_answer_is_read(pool: ConnectionPool) -> None:
    """The server answers none until it has all three: a client that waited for each
    answer before sending the next request would never get there."""
    arrived: list[bytes] = []
    all_in = asyncio.Event()

    async def answer_when_all_arrived(reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter) -> None:  # fmt: skip
        arrived.append(await read_request(reader))
        if len(arrived) == 3:
            all_in.set()
        await all_in.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    server, base = await serve(answer_when_all_arrived)
    async with server:
        body = b'{"q": 1}'

        async def send_three() -> list[Response]:
            return [await pool.send("POST", base + "/v1/x?alt=sse", {}, body) for _ in range(3)]

        responses = await asyncio.wait_for(send_three(), 5)
        await asyncio.wait_for(all_in.wait(), 5)
        for response in responses:
            await response.head()
            assert (response.status_code, await response.aread()) == (200, b"ok")
    request = arrived[0].decode()
    assert request.startswith("POST /v1/x?alt=sse HTTP/1.1\r\n")
    assert f"host: {base.removeprefix('http://')}\r\n" in request.lower()
    assert "content-length: 8\r\n" in request.lower() and request.endswith('{"q": 1}')
    assert "accept-encoding: identity" in request.lower()


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"
TO_THE_END = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world"
ZIPPED = gzip.compress(b"hello world")
GZIP = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(ZIPPED), ZIPPED))  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "kept"),
    [(CHUNKED, True), (LENGTH, True), (TO_THE_END, False), (GZIP, True)],
    ids=["chunked", "length", "to-the-end", "gzip"],
)
async def test_a_body_arrives_whole_however_it_is_framed(
    pool: ConnectionPool, answer: bytes, kept: bool
) -> None:
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                writer.close()
                return

    server, base = await serve(answers)
    async with server:
        for _ in range(2):
            response = await pool.send("GET", base + "/", {}, b"")
            await response.head()
            assert await response.aread() == b"hello world"
    # Kept for the next request only when its end was known without closing it.
    assert pool.opened == (1 if kept else 2)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly part", "part-way"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP"),
        (b"", "without answering"),
    ],
    ids=["cut", "not-http", "nothing"],
)
async def test_a_broken_answer_is_worth_another_try(
    pool: ConnectionPool, answer: bytes, said: str
) -> None:
    async def breaks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    free = pool._in_use._value
    server, base = await serve(breaks)
    async with server:
        response = await pool.send("GET", base + "/", {}, b"")
        with pytest.raises(VendorNetworkError, match=said) as caught:
            await response.head()
            await response.aread()
        await response.aclose()
    assert isinstance(caught.value, ProviderUnavailable)  # the policy tries again
    assert pool._in_use._value == free and not any(pool.idle.values())  # not kept


@pytest.mark.parametrize(
    "url",
    ["localhost:8000/v1/chat", "ftp://example.org/v1", "http:///v1", "http://bücher.example/v1"],
)
def test_an_address_lens_cannot_send_to_says_what_to_fix(url: str) -> None:
    with pytest.raises(BadAddress, match=r"address|ASCII"):
        origin_of(url)


def test_an_address_gives_its_origin_and_target() -> None:
    assert origin_of("https://API.example.org/v1/m:stream?alt=sse") == (
        ("https", "api.example.org", 443),
        "/v1/m:stream?alt=sse",
    )
    assert origin_of("http://[::1]:8080") == (("http", "::1", 8080), "/")


async def test_a_wrong_api_base_is_an_account_problem_not_retried() -> None:
    model = DirectModel(model="openai/m", api_key="k", api_base="localhost:8000/v1", retries=2)
    await model.warm()
    try:
        with pytest.raises(ProviderAccountProblem, match="http:// or https://"):
            async for _ in model.stream(system="s", messages=[{"role": "user", "content": "Hi"}],
                                        max_tokens=5):  # fmt: skip
                pass
    finally:
        await model.aclose()


async def test_a_request_sent_ahead_is_carried_on_by_the_stream(fake: Running) -> None:  # noqa: F811
    model = DirectModel(model="openai/bench-tutor", api_key="sk-test", api_base=fake.base + "/v1")
    await model.warm()
    messages = [{"role": "user", "content": "Sent ahead?"}]
    try:
        before = fake.provider.requests
        ahead = await model.send_ahead(system="s", messages=messages, max_tokens=9)
        assert ahead is not None
        for _ in range(100):  # it reaches the vendor with no one reading yet
            if fake.provider.requests > before:
                break
            await asyncio.sleep(0.01)
        assert fake.provider.requests == before + 1
        events = [e async for e in model.stream(system="s", messages=messages, max_tokens=9,
                                                ahead=ahead)]  # fmt: skip
        assert fake.provider.requests == before + 1  # that request, not a second one
        assert fake.provider.last_request["messages"][-1]["content"] == "Sent ahead?"
        assert sum(1 for e in events if isinstance(e, Delta)) >= 1
        assert isinstance(events[-1], Usage) and events[-1].completion_tokens == TOKENS
    finally:
        await model.aclose()


async def test_a_request_sent_ahead_and_never_read_gives_its_connection_back(
    fake: Running,  # noqa: F811
) -> None:
    model = DirectModel(model="openai/bench-tutor", api_key="sk-test", api_base=fake.base + "/v1")
    await model.warm()
    pool = model.http
    free = pool._in_use._value
    try:
        ahead = await model.send_ahead(system="s", messages=[], max_tokens=9)
        assert ahead is not None and pool._in_use._value == free - 1
        await ahead.aclose()  # the learner left before the reply began
        await ahead.aclose()  # once is enough
        assert pool._in_use._value == free
    finally:
        await model.aclose()


async def test_sending_ahead_to_a_vendor_that_is_down_fails_the_stream_not_the_ask(
    unused_port: int,
) -> None:
    model = DirectModel(model="openai/m", api_key="k", retries=0,
                        api_base=f"http://127.0.0.1:{unused_port}/v1")  # fmt: skip
    await model.warm()
    try:
        ahead = await model.send_ahead(system="s", messages=[], max_tokens=9)  # no exception
        assert ahead is not None
        with pytest.raises(ProviderUnavailable):
            async for _ in model.stream(system="s", messages=[], max_tokens=9, ahead=ahead):
                pass
    finally:
        await model.aclose()


async def test_nothing_is_sent_ahead_before_the_model_is_warmed_or_for_litellm() -> None:
    cold = DirectModel(model="openai/m", api_key="k")
    assert await cold.send_ahead(system="s", messages=[], max_tokens=9) is None
    other = DirectModel(model="ollama/llama3", api_key="k")
    other._http = cold.http
    assert await other.send_ahead(system="s", messages=[], max_tokens=9) is None
    await cold.aclose()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_replies_one_after_another_reuse_one_connection_after_done(
    fake: Running,  # noqa: F811
) -> None:
    """OpenAI's stream ends with `[DONE]` before the body's last chunk: Lens reads on to the
    end, so the connection carries the next reply instead of being closed."""
    model = DirectModel(model="openai/bench-tutor", api_key="sk-test", api_base=fake.base + "/v1")
    await model.warm()
    pool = model.http
    messages = [{"role": "user", "content": "Again?"}]
    try:
        for _ in range(3):
            events = [e async for e in model.stream(system="s", messages=messages, max_tokens=9)]
            assert isinstance(events[-1], Usage)
        assert pool.opened == 1 and sum(len(idle) for idle in pool.idle.values()) == 1
    finally:
        await model.aclose()


async def test_a_key_http_cannot_carry_is_refused_without_quoting_it(
    fake: Running,  # noqa: F811
) -> None:
    key = "gsk_live_secret_value_123\n"  # pasted with its line break
    model = DirectModel(model="openai/m", api_key=key, api_base=fake.base + "/v1")
    await model.warm()
    try:
        with pytest.raises(ProviderAccountProblem) as caught:
            async for _ in model.stream(system="s", messages=[], max_tokens=5):
                pass
    finally:
        await model.aclose()
    assert "secret_value" not in str(caught.value) and "authorization" in str(caught.value)
    assert "API key" in str(caught.value)


def test_no_proxy_alone_keeps_lens_own_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert isinstance(vendor_client(connect_timeout=5), ConnectionPool)


async def test_nothing_is_sent_ahead_through_httpx() -> None:
    """httpx's send waits for the answer's head: sending ahead would hold the learner's
    response for the vendor's first byte."""
    import httpx

    model = DirectModel(model="openai/m", api_key="k", http=httpx.AsyncClient())  # never asked
    assert await model.send_ahead(system="s", messages=[], max_tokens=9) is None
    await model.aclose()
