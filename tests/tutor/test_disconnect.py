"""A student closes the page mid-reply: Lens, served over real HTTP, stops the provider's
stream (Lens's own client, and litellm, against a fake OpenAI-compatible server) and keeps what
was said as a partial reply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from lens.integrations.llm.client import DirectModel, LiteLLMModel
from tests.fixtures.browser import LiveServer, serve_lens
from tests.integrations.fake_openai import FakeOpenAI
from tests.tutor.test_tutor_api import AT

MODULE = "/course/intro-to-ai-safety/welcome"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture(scope="module", params=["direct", "litellm"])
def server(
    request: pytest.FixtureRequest, provider: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Lens with either route to the provider: its own httpx client, or litellm."""
    implementation = DirectModel if request.param == "direct" else LiteLLMModel
    model = implementation(
        model="openai/fake-tutor", api_key="sk-test", api_base=provider.base, retries=0
    )
    with serve_lens(tmp_path_factory.mktemp("disconnect"), chat_model=model) as live:
        yield live


async def test_closing_the_page_cancels_the_provider_stream(
    server: LiveServer, provider: FakeOpenAI
) -> None:
    provider.closed_early = 0
    provider.script.append(("stream", [f"word{i} " for i in range(400)]))  # ~4 s of reply
    origin = {"Origin": server.url("").rstrip("/")}
    async with httpx.AsyncClient(base_url=server.url(""), timeout=30) as client:
        await client.get(MODULE)  # the visitor cookie
        async with client.stream(
            "POST", "/api/tutor/messages", json={**AT, "message": "Tell me a lot"}, headers=origin
        ) as response:
            assert response.status_code == 200
            seen = 0
            async for line in response.aiter_lines():
                seen += line.startswith("event: delta")
                if seen == 5:
                    break  # the student closes the tab
        for _ in range(100):
            if provider.closed_early:
                break
            await asyncio.sleep(0.05)
        assert provider.closed_early == 1  # the provider saw Lens go away
        for _ in range(100):
            history = (await client.get("/api/tutor/history", params=AT)).json()["messages"]
            if len(history) == 2:
                break
            await asyncio.sleep(0.05)
    assert [(m["role"], m["status"]) for m in history] == [
        ("user", "complete"),
        ("assistant", "partial"),
    ]
    assert "word4" in history[1]["html"] and "word399" not in history[1]["html"]
