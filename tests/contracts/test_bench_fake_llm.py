"""bench/_fake_llm.py, the fake OpenAI provider bench/tutor.py measures Lens against, answers
as OpenAI does. It checks nothing itself (that would cost time inside the measurement), so
every kind of answer it gives is sent here through OpenAI's description
(tests/contracts/chat_checks.py `checked`, as the other chat fakes are)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from lens.integrations.llm.client import Delta, LiteLLMModel, Usage
from tests.contracts import chat_checks
from tests.contracts.validator import Contract

BENCH = Path(__file__).parents[2] / "bench" / "_fake_llm.py"
URL = "https://api.openai.com/v1/chat/completions"
TOKENS = 3


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fake_llm", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Running:
    base: str
    provider: Any


@pytest.fixture(scope="module")
def fake() -> Iterator[Running]:
    provider = load().FakeProvider(first_token_delay=0.0, token_delay=0.0, tokens=TOKENS)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(provider.handle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield Running(f"http://127.0.0.1:{port}", provider)

    async def stop() -> None:
        server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # connections kept alive
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def ask(fake: Running, body: dict[str, Any]) -> httpx.Response:
    """`body` sent to the bench's provider as if to OpenAI, request and answer checked."""

    def send(request: httpx.Request) -> httpx.Response:
        with httpx.Client(timeout=10) as http:
            answer = http.send(
                httpx.Request(
                    request.method,
                    fake.base + request.url.path,
                    headers=request.headers,
                    content=request.content,
                )
            )
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )

    request = httpx.Request("POST", URL, json=body, headers={"Authorization": "Bearer sk-x"})
    return chat_checks.checked("openai", send)(request)


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(data) for _, data in chat_checks.events(response.content) if data != "[DONE]"
    ]


BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_usage_comes_when_asked_on_a_last_chunk_without_choices(fake: Running) -> None:
    got = chunks(ask(fake, {**BODY, "stream_options": {"include_usage": True}}))
    *before, last = got
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == TOKENS
    assert all(chunk["choices"] and chunk["usage"] is None for chunk in before)


def test_no_usage_when_not_asked(fake: Running) -> None:
    got = chunks(ask(fake, BODY))
    assert got and all("usage" not in chunk and chunk["choices"] for chunk in got)


def test_an_answer_that_is_not_streamed_is_a_chat_completion(fake: Running) -> None:
    answer = ask(fake, {**BODY, "stream": False})
    assert answer.json()["choices"][0]["message"]["content"]


def test_an_unknown_path_answers_openais_error(fake: Running) -> None:
    answer = httpx.post(fake.base + "/v1/nothing", json={}, timeout=10)
    assert answer.status_code == 404
    Contract.load("openai").check_schema(answer.json(), "ErrorResponse", "404 answer")


async def test_lens_reads_the_text_and_the_usage_and_sends_what_openai_takes(
    fake: Running,
) -> None:
    model = LiteLLMModel(
        model="openai/gpt-4o-mini",
        api_key="sk-test",
        api_base=fake.base + "/v1",
        retries=0,
        first_token_timeout=5.0,
    )
    got = [
        event
        async for event in model.stream(
            system="s", messages=[{"role": "user", "content": "Hi"}], max_tokens=64
        )
    ]
    reply = httpx.get(fake.base + "/health", timeout=10).json()["reply"]
    assert "".join(e.text for e in got if isinstance(e, Delta)) == reply
    usage = got[-1]
    assert isinstance(usage, Usage) and usage.completion_tokens == TOKENS
    sent = httpx.get(fake.base + "/last-request", timeout=10).json()
    chat_checks.check_request("openai", httpx.Request("POST", URL, json=sent))
