"""The real litellm-based client against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.client import Delta, LiteLLMModel, Usage
from lens.integrations.llm.errors import ProviderAccountProblem
from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.openai_errors import INSUFFICIENT_QUOTA

ASK = {"system": "You are a tutor.", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.script.clear()
    server.requests.clear()
    server.closed_early = 0
    return server


def model(fake: FakeOpenAI, **kw) -> LiteLLMModel:
    kw.setdefault("retries", 1)
    kw.setdefault("first_token_timeout", 5.0)
    return LiteLLMModel(model="openai/fake-tutor", api_key="sk-test", api_base=fake.base, **kw)


async def collect(m: LiteLLMModel) -> list:
    return [e async for e in m.stream(**ASK, max_tokens=64)]


async def test_normal_stream(fake: FakeOpenAI) -> None:
    events = await collect(model(fake))
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]
    usage = events[-1]
    assert isinstance(usage, Usage) and (usage.prompt_tokens, usage.completion_tokens) == (42, 3)
    request = fake.requests[0]
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["stream"] is True and request["body"]["max_tokens"] == 64
    # Without this OpenAI sends no usage at all, and the reply would cost nothing.
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert request["body"]["messages"][0] == {"role": "system", "content": "You are a tutor."}


async def test_429_then_success(fake: FakeOpenAI) -> None:
    fake.script.append(("status", 429))
    events = await collect(model(fake))
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]
    assert len(fake.requests) == 2


async def test_provider_error_before_the_first_token(fake: FakeOpenAI) -> None:
    fake.script.extend([("status", 500), ("status", 500)])
    with pytest.raises(IntegrationUnavailable):
        await collect(model(fake))


async def test_a_refusal_is_not_retried(fake: FakeOpenAI) -> None:
    fake.script.append(("status", 400))
    with pytest.raises(IntegrationRejected):
        await collect(model(fake))
    assert len(fake.requests) == 1


async def test_provider_error_after_the_first_token(fake: FakeOpenAI) -> None:
    fake.script.append(("break_after", (["one", " two", " three"], 1)))
    got: list = []
    with pytest.raises(IntegrationUnavailable):
        async for event in model(fake, retries=0).stream(**ASK, max_tokens=64):
            got.append(event)
    assert [e.text for e in got if isinstance(e, Delta)] == ["one"]


async def test_first_token_timeout(fake: FakeOpenAI) -> None:
    fake.script.append(("stall", 2.0))
    with pytest.raises(IntegrationUnavailable, match="did not start answering"):
        await collect(model(fake, retries=0, first_token_timeout=0.5))


async def test_the_first_token_wait_holds_over_every_try(fake: FakeOpenAI) -> None:
    """A provider that takes the request and then says nothing: the learner waits the
    first-token time once, not once per retry (three tries of 1 s would be 3 s and more)."""
    fake.script.extend([("stall", 3.0)] * 3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(IntegrationUnavailable, match="did not start answering"):
        await collect(model(fake, retries=2, first_token_timeout=1.0))
    assert loop.time() - started < 1.8


async def test_a_provider_that_goes_quiet_mid_reply(fake: FakeOpenAI) -> None:
    fake.script.append(("pause_after", (["one", " two", " three"], 2, 3.0)))
    got: list = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(IntegrationUnavailable, match="stopped answering part-way"):
        async for event in model(fake, retries=0, stall_timeout=0.5).stream(**ASK, max_tokens=64):
            got.append(event)
    assert [e.text for e in got if isinstance(e, Delta)] == ["one", " two"]
    assert loop.time() - started < 2.5


async def test_a_reply_longer_than_allowed_ends(fake: FakeOpenAI) -> None:
    fake.script.append(("stream", [f"w{i} " for i in range(100)]))  # 10 ms apart
    with pytest.raises(IntegrationUnavailable, match="took longer than allowed"):
        await collect(model(fake, retries=0, reply_timeout=0.3))


async def test_a_local_server_without_a_key(fake: FakeOpenAI) -> None:
    """LENS_LLM_API_BASE and no key: the OpenAI SDK wants one, so a placeholder is sent
    (before, litellm failed with "Missing credentials" before any request)."""
    keyless = LiteLLMModel(model="openai/fake-tutor", api_base=fake.base, retries=0)
    fake.api_key = "no-key-needed"
    try:
        events = await collect(keyless)
    finally:
        fake.api_key = "sk-test"
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]


async def test_cancelling_stops_the_upstream_request(fake: FakeOpenAI) -> None:
    fake.script.append(("stream", [f"w{i} " for i in range(200)]))

    async def consume() -> None:
        async for _ in model(fake).stream(**ASK, max_tokens=64):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)
    assert fake.closed_early == 1  # the server saw its client go away


async def test_fallback_model_when_the_main_one_is_down(fake: FakeOpenAI) -> None:
    fake.script.extend([("status", 503), ("status", 503)])
    events = await collect(model(fake, fallback="openai/fake-fallback"))
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]
    assert [r["body"]["model"] for r in fake.requests] == [
        "fake-tutor",
        "fake-tutor",
        "fake-fallback",
    ]


async def test_spent_quota_is_an_account_problem_and_not_retried(fake: FakeOpenAI) -> None:
    """OpenAI's 429 `insufficient_quota` needs a person (plan, billing); a rate limit's
    429 (`rate_limit_exceeded`, test_429_then_success) is retried."""
    fake.script.append(("error", (429, INSUFFICIENT_QUOTA)))
    with pytest.raises(ProviderAccountProblem, match="insufficient_quota") as raised:
        await collect(model(fake, retries=2))
    assert len(fake.requests) == 1
    assert isinstance(raised.value, IntegrationRejected)  # never "try again later"


async def test_a_refused_key_is_an_account_problem(fake: FakeOpenAI) -> None:
    wrong = LiteLLMModel(
        model="openai/fake-tutor", api_key="sk-revoked-key", api_base=fake.base, retries=2
    )
    with pytest.raises(ProviderAccountProblem, match="HTTP 401") as raised:
        await collect(wrong)
    assert len(fake.requests) == 1
    assert "sk-revoked" not in str(raised.value)  # the vendor quotes the key; Lens does not


async def test_an_account_problem_goes_to_the_fallback_and_tells_the_admin(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="lens.integrations.llm")
    fake.script.append(("error", (429, INSUFFICIENT_QUOTA)))
    events = await collect(model(fake, fallback="openai/fake-fallback"))
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]
    assert [r["body"]["model"] for r in fake.requests] == ["fake-tutor", "fake-fallback"]
    (record,) = [r for r in caplog.records if "llm.account_problem" in r.getMessage()]
    assert record.levelno == logging.ERROR and "insufficient_quota" in record.getMessage()


async def test_a_fallback_reply_is_priced_as_the_fallback_model(fake: FakeOpenAI) -> None:
    fake.script.extend([("status", 503), ("status", 503)])
    cheap_down = LiteLLMModel(
        model="openai/gpt-4o-mini",
        api_key="sk-test",
        api_base=fake.base,
        retries=1,
        fallback="openai/gpt-4o",
    )
    usage = (await collect(cheap_down))[-1]
    assert isinstance(usage, Usage)
    # 42 prompt and 3 completion tokens at gpt-4o's price ($2.50 and $10 per million),
    # not gpt-4o-mini's ($0.15 and $0.60).
    assert usage.cost_usd == pytest.approx((42 * 2.50 + 3 * 10.00) / 1_000_000)
    assert usage.model == "openai/gpt-4o"  # stored with the reply
