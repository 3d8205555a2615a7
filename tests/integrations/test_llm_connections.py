"""Connections to the vendors (lens.integrations.llm.connections): kept and reused one per
stream, never one that the server closed; httpx's own client behind a proxy. Against the
bench's fake OpenAI provider on a real socket (its answers are checked against OpenAI's
description in tests/contracts/test_bench_fake_llm.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from lens.integrations.llm.client import Delta, DirectModel, Usage
from lens.integrations.llm.connections import ConnectionPool, vendor_client
from tests.contracts.test_bench_fake_llm import TOKENS, Running, fake  # noqa: F401

BODY = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


def pool_of(client: httpx.AsyncClient) -> ConnectionPool:
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, ConnectionPool)
    return pool


async def stream(client: httpx.AsyncClient, base: str, **headers: str) -> str:
    async with client.stream("POST", base + "/v1/chat/completions", json=BODY,
                             headers=headers) as response:  # fmt: skip
        assert response.status_code == 200
        return "".join([chunk async for chunk in response.aiter_text()])


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
    assert not isinstance(getattr(client._transport, "_pool", None), ConnectionPool)
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
