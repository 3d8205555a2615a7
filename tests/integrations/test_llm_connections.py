"""Connections to the vendors (lens.integrations.llm.connections): kept and reused one per
stream, never one that the server closed; httpx's own client behind a proxy; requests
written before their answers are read; answers whole whatever their framing. Against the
bench's fake OpenAI provider on a real socket (its answers are checked against OpenAI's
description in tests/contracts/test_bench_fake_llm.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import Any

import pytest

from lens.integrations.llm import connections, sockets
from lens.integrations.llm.client import Delta, DirectModel, Usage
from lens.integrations.llm.connections import (
    ConnectionPool,
    HttpxVendor,
    Vendor,
    VendorConnectTimeout,
    VendorNetworkError,
    vendor_client,
)
from tests.contracts.test_bench_fake_llm import TOKENS, Running, fake  # noqa: F401


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BODY = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


def pool_of(client: Vendor) -> ConnectionPool:
    pool = connections.pool_of(client)
    assert pool is not None
    return pool


async def stream(client: Vendor, base: str, **headers: str) -> str:
    response = await client.send("POST", base + "/v1/chat/completions",
                                 {"content-type": "application/json", **headers},
                                 json.dumps(BODY).encode())  # fmt: skip
    await response.head()
    assert response.status_code == 200
    return (await response.aread()).decode()


async def test_one_after_another_reuse_one_connection(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    try:
        bodies = [await stream(client, fake.base) for _ in range(5)]
        assert all("[DONE]" in body for body in bodies)
        assert pool_of(client).opened == 1
    finally:
        await client.aclose()


async def test_streams_at_once_each_get_a_connection_and_some_are_kept(
    fake: Running,  # noqa: F811
) -> None:
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    pool.keep_idle = 5
    try:
        await asyncio.gather(*(stream(client, fake.base) for _ in range(20)))
        assert pool.opened == 20
        assert sum(len(idle) for idle in pool.idle.values()) == 5
        # The next burst takes the five kept and opens fifteen.
        await asyncio.gather(*(stream(client, fake.base) for _ in range(20)))
        assert pool.opened == 35
    finally:
        await client.aclose()


async def test_a_connection_the_server_closed_is_not_used_again(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    try:
        await stream(client, fake.base, connection="close")
        assert sum(len(idle) for idle in pool.idle.values()) == 0
        await stream(client, fake.base)
        assert pool.opened == 2
    finally:
        await client.aclose()


async def test_a_reply_streams_through_lens_own_route(fake: Running) -> None:  # noqa: F811
    model = DirectModel(model="openai/bench-tutor", api_key="sk-test", api_base=fake.base + "/v1")
    try:
        events: list[Any] = [
            e
            async for e in model.stream(system="Be kind.", messages=BODY["messages"], max_tokens=50)
        ]
    finally:
        await model.aclose()
    assert sum(1 for e in events if isinstance(e, Delta)) >= 1
    assert isinstance(events[-1], Usage) and events[-1].completion_tokens == TOKENS


def test_behind_a_proxy_httpx_own_client_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    client = vendor_client(connect_timeout=5)
    assert isinstance(client, HttpxVendor) and connections.pool_of(client) is None
    monkeypatch.delenv("HTTPS_PROXY")


async def test_at_most_so_many_open_and_none_kept_after_closing(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    pool._in_use = asyncio.Semaphore(3)  # three at once: the rest wait for one to end
    try:
        await asyncio.gather(*(stream(client, fake.base) for _ in range(9)))
        assert pool.opened == 3
        assert pool._in_use._value == 3  # every one handed back once
    finally:
        await client.aclose()
    assert pool.closed and sum(len(idle) for idle in pool.idle.values()) == 0


async def test_a_connection_prepared_ahead_carries_the_request(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    url = fake.base + "/v1/chat/completions"
    try:
        pool.prepare(url)
        await asyncio.sleep(0.2)  # the budget check, meanwhile
        assert pool.opened == 1 and sum(len(f) for f in pool.fresh.values()) == 1
        assert "[DONE]" in await stream(client, fake.base)
        assert pool.opened == 1  # the prepared one, no other
        assert sum(len(f) for f in pool.fresh.values()) == 0
    finally:
        await client.aclose()


async def test_a_request_waits_for_the_connection_being_prepared(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    try:
        pool.prepare(fake.base + "/v1/chat/completions")
        assert "[DONE]" in await stream(client, fake.base)  # at once, while it opens
        assert pool.opened == 1
    finally:
        await client.aclose()


async def test_only_what_is_wanted_is_prepared(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    url = fake.base + "/v1/chat/completions"
    try:
        await stream(client, fake.base)  # leaves one idle
        pool.prepare(url)  # the idle one will do
        assert pool.opened == 1
        pool.prepare(url)  # a second request: one more
        pool.prepare(url)  # and a third
        await asyncio.sleep(0.2)
        assert pool.opened == 3
        await asyncio.gather(*(stream(client, fake.base) for _ in range(3)))
        assert pool.opened == 3
    finally:
        await client.aclose()
    assert not any(pool.fresh.values()) and not any(pool.opening.values())


async def test_a_prepared_connection_the_server_closed_is_not_used(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    try:
        pool.prepare(fake.base + "/v1/chat/completions")
        await asyncio.sleep(0.2)
        [prepared] = [f for fresh in pool.fresh.values() for f in fresh]
        prepared.stream.transport.close()  # as a server's close arrives: the stream reads EOF
        await asyncio.sleep(0.05)
        assert "[DONE]" in await stream(client, fake.base)
        assert pool.opened == 2
    finally:
        await client.aclose()


async def test_a_prepared_connection_unused_in_time_is_dropped(
    fake: Running,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections, "KEEPALIVE_SECONDS", 1.0)
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    url = fake.base + "/v1/chat/completions"
    try:
        pool.prepare(url)  # for an ask the budget then refused: no request comes
        await asyncio.sleep(1.2)
        pool.prepare(url)  # the refused one no longer counts: one more, not two
        await asyncio.sleep(0.05)
        assert pool.opened == 2
        assert "[DONE]" in await stream(client, fake.base)
        assert pool.opened == 2  # the second one; the first, too old, was closed
    finally:
        await client.aclose()


async def test_a_vendor_down_when_prepared_fails_only_the_request(unused_port: int) -> None:
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    base = f"http://127.0.0.1:{unused_port}"
    try:
        pool.prepare(base + "/v1/chat/completions")
        with pytest.raises(VendorNetworkError, match="no connection"):
            await stream(client, base)
    finally:
        await client.aclose()


async def test_the_model_prepares_its_vendor_connection(fake: Running) -> None:  # noqa: F811
    model = DirectModel(model="openai/bench-tutor", api_key="sk-test", api_base=fake.base + "/v1")
    try:
        model.prepare()  # before the first request: no client yet, nothing to do
        await model.warm()
        model.prepare()
        await asyncio.sleep(0.2)
        pool = pool_of(model.http)
        assert pool.opened == 1
        events = [
            e async for e in model.stream(system="s", messages=BODY["messages"], max_tokens=9)
        ]
        assert isinstance(events[-1], Usage) and pool.opened == 1
    finally:
        await model.aclose()


async def test_a_flood_of_asks_opens_at_most_so_many_ahead(
    fake: Running,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections, "PREPARED_MOST", 4)
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    try:
        for _ in range(20):  # asks the budget check will refuse: no request follows
            pool.prepare(fake.base + "/v1/chat/completions")
        await asyncio.sleep(0.2)
        assert pool.opened == 4
    finally:
        await client.aclose()


async def test_an_unused_prepared_connection_is_closed_without_more_traffic(
    fake: Running,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections, "KEEPALIVE_SECONDS", 0.2)
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    try:
        pool.prepare(fake.base + "/v1/chat/completions")
        [opening] = [t for opening in pool.opening.values() for t in opening]
        prepared = await opening  # opened (however long that takes on a busy machine)
        await asyncio.sleep(0)  # its callback keeps it for a request
        assert [f for fresh in pool.fresh.values() for f in fresh] == [prepared]
        await asyncio.sleep(0.4)  # nothing else comes for this vendor
        assert not any(pool.fresh.values())
        assert prepared.stream.transport.is_closing()
    finally:
        await client.aclose()


async def test_a_vendor_that_does_not_answer_is_waited_for_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0

    async def silent(*_: Any, **__: Any) -> Any:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(60)

    client = vendor_client(connect_timeout=0.3)
    pool = pool_of(client)
    monkeypatch.setattr(sockets, "_attempt", silent)
    loop = asyncio.get_running_loop()
    try:
        pool.prepare("http://127.0.0.9:9/v1/chat/completions")
        started = loop.time()
        with pytest.raises(VendorConnectTimeout):
            await stream(client, "http://127.0.0.9:9")
        assert loop.time() - started < 0.55  # the prepared one's timeout, not two of them
        assert attempts == 1
    finally:
        await client.aclose()


async def test_closing_the_pool_while_one_is_opened_leaves_nothing_open(fake: Running) -> None:  # noqa: F811
    client = vendor_client(connect_timeout=5)
    pool = pool_of(client)
    pool.prepare(fake.base + "/v1/chat/completions")
    [task] = [t for opening in pool.opening.values() for t in opening]
    while not task.done():  # opened, its callback not yet run
        await asyncio.sleep(0)
    await client.aclose()
    await asyncio.sleep(0.05)
    assert not any(pool.fresh.values())
    assert task.result().stream.transport.is_closing()


def test_a_base_url_without_a_scheme_is_left_to_the_request() -> None:
    pool = ConnectionPool(ssl.create_default_context())
    pool.prepare("localhost:8000/v1/chat/completions")  # no exception: the request says
    pool.prepare("http://bücher.example/v1")
    assert pool.opened == 0
