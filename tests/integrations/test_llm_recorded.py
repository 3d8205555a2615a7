"""Lens's real model clients (its own httpx routes, and litellm, each speaking the vendor's
protocol over HTTP) against
recorded exchanges in the vendors' own wire formats (tests/contracts/<vendor>/recorded:
see exchanges.json there for where each shape comes from), and what the tutor makes of
them: the text, the usage and its cost, and what the student sees when it goes wrong.

The recordings are themselves checked against the vendors' descriptions first, so a
replay proves something about the real formats, not about a convenient one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from lens.errors import IntegrationUnavailable
from lens.integrations.llm.client import Delta, DirectModel, LiteLLMModel, PolicyModel, Usage
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.tutor.models import Message
from tests.contracts.gemini import check as gemini
from tests.contracts.validator import VIOLATIONS, Contract, ContractViolation
from tests.integrations.recorded_exchanges import Exchange, ReplayServer, all_recorded, recorded
from tests.tutor.test_tutor_api import ask, events

WORDS = [
    "Alignment",
    " means getting",
    " an AI system",
    " to pursue",
    " the goals",
    " its designers",
    " intended.",
]
TEXT = "".join(WORDS)
# vendor -> (litellm model, path under the fake server's root the client is pointed at,
#            the normal stream, the mid-stream error, the overloaded answer)
VENDORS = {
    "anthropic": ("anthropic/claude-sonnet-4-5", "", "stream_ok", "stream_error_mid", "overloaded"),
    "openai": (
        "openai/gpt-4o-mini",
        "/v1",
        "chat_stream_ok",
        "chat_stream_error_mid",
        "overloaded",
    ),
    "gemini": ("gemini/gemini-2.5-flash", "/v1beta", "stream_ok", "stream_error_mid", "overloaded"),
}
# What each normal stream reports, and what it costs at litellm's bundled prices (USD per
# token): Anthropic's cumulative message_delta usage; OpenAI's last, choice-less chunk;
# Gemini's usageMetadata, whose thinking tokens are billed as output.
USAGE = {
    "anthropic": (412, 15, 412 * 3e-6 + 15 * 15e-6),
    "openai": (412, 15, 412 * 0.15e-6 + 15 * 0.6e-6),
    "gemini": (412, 15 + 37, 412 * 0.3e-6 + (15 + 37) * 2.5e-6),
}


# -- the recordings are in the vendors' formats -------------------------------------------


def _data(event: bytes) -> tuple[str | None, str]:
    name, data = None, []
    for line in event.decode().replace("\r\n", "\n").split("\n"):
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
    return name, "\n".join(data)


def check_recording(exchange: Exchange) -> None:
    what = f"{exchange.vendor} recording {exchange.name}"
    if not exchange.is_stream:
        body = json.loads(exchange.body)
        if exchange.vendor == "gemini":
            gemini.check_error(body, what)
            assert body["error"]["code"] == exchange.status
        elif exchange.name.startswith("transcription"):
            Contract.load("openai").check_schema(body, "CreateTranscriptionResponseJson", what)
        else:
            Contract.load(exchange.vendor).check_schema(body, "ErrorResponse", what)
        return
    for event in exchange.events():
        name, data = _data(event)
        if exchange.vendor == "openai":
            if data == "[DONE]":
                continue
            value = json.loads(data)
            schema = "ErrorResponse" if "error" in value else "CreateChatCompletionStreamResponse"
            Contract.load("openai").check_schema(value, schema, what)
        elif exchange.vendor == "anthropic":
            value = json.loads(data)
            assert name == value["type"], (name, value)
            if name == "ping":
                assert value == {"type": "ping"}
            else:
                schema = "ErrorResponse" if name == "error" else "MessageStreamEvent"
                Contract.load("anthropic").check_schema(value, schema, what)
        else:
            value = json.loads(data)
            if "error" in value:
                gemini.check_error(value, what)
            else:
                gemini.check_chunk(value, what)


@pytest.mark.parametrize(
    "exchange",
    [e for vendor in VENDORS for e in all_recorded(vendor)],
    ids=lambda e: f"{e.vendor}-{e.name}",
)
def test_each_recording_fits_the_vendors_description(exchange: Exchange) -> None:
    assert exchange.source  # where its shape comes from
    check_recording(exchange)


def test_the_checks_refuse_what_the_vendors_never_send() -> None:
    openai, anthropic = Contract.load("openai"), Contract.load("anthropic")
    refused = [
        # usage on its own, without the chunk's required keys
        lambda: openai.check_schema(
            {"usage": {"prompt_tokens": 1}}, "CreateChatCompletionStreamResponse", "x"
        ),
        # Anthropic's message_delta always carries the cumulative usage
        lambda: anthropic.check_schema(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
            "MessageStreamEvent",
            "x",
        ),
        # Gemini says usageMetadata, and the request says maxOutputTokens inside
        # generationConfig, not max_tokens at the top
        lambda: gemini.check_chunk({"candidates": [], "usage": {"promptTokenCount": 1}}),
        lambda: gemini.check_request({"contents": [], "max_tokens": 64}),
        lambda: gemini.check_error({"error": {"code": "UNAVAILABLE", "message": "x"}}),
    ]
    for attempt in refused:
        with pytest.raises(ContractViolation):
            attempt()
    assert len(VIOLATIONS) == len(refused)
    VIOLATIONS.clear()  # seen: the autouse check need not fail this test


def test_openai_sends_usage_on_a_last_chunk_without_choices() -> None:
    chunks = [
        json.loads(data)
        for data in (_data(e)[1] for e in recorded("openai", "chat_stream_ok").events())
        if data != "[DONE]"
    ]
    *before, last = chunks
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 15
    assert all(chunk["usage"] is None and chunk["choices"] for chunk in before)


# -- replayed through Lens's client -------------------------------------------------------


@pytest.fixture(params=["direct", "litellm"])
def server(request: pytest.FixtureRequest) -> Iterator[ReplayServer]:
    """The replay server, and which of Lens's two routes speaks to it (`impl`): the
    direct httpx client Lens uses for the vendors it names, or litellm, which serves any
    other model string (and these too, when asked)."""
    replay = ReplayServer()
    replay.impl = request.param  # type: ignore[attr-defined]
    yield replay
    replay.close()


def client_for(
    vendor: str, server: ReplayServer, *names: str, fallback: str | None = None, retries: int = 1
) -> PolicyModel:
    model, root, *_ = VENDORS[vendor]
    server.script = [recorded(vendor, name) for name in names]
    implementation = DirectModel if server.impl == "direct" else LiteLLMModel  # type: ignore[attr-defined]
    return implementation(
        model=model,
        api_key="test-key-0000",
        api_base=server.url + root,
        retries=retries,
        first_token_timeout=5.0,
        fallback=fallback,
    )


async def collect(model: PolicyModel) -> list[Any]:
    got: list[Any] = []
    async for event in model.stream(
        system="You are a tutor.", messages=[{"role": "user", "content": "Hi"}], max_tokens=64
    ):
        got.append(event)
    return got


def check_requests(vendor: str, server: ReplayServer) -> None:
    """What Lens (through litellm) sent is what the vendor takes."""
    for request in server.received:
        if vendor == "anthropic":
            assert request.path == "/v1/messages"
            assert request.headers["x-api-key"] == "test-key-0000"
            assert request.headers["anthropic-version"] == "2023-06-01"
            assert request.body["stream"] is True and request.body["max_tokens"] == 64
        elif vendor == "openai":
            assert request.path == "/v1/chat/completions"
            assert request.headers["authorization"] == "Bearer test-key-0000"
            assert request.body["stream_options"] == {"include_usage": True}
        else:
            assert request.path.startswith("/v1beta/models/gemini-")
            assert request.path.endswith(":streamGenerateContent?alt=sse")
            assert request.headers["x-goog-api-key"] == "test-key-0000"
            gemini.check_request(request.body)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_normal_stream_gives_the_text_and_its_cost(
    vendor: str, server: ReplayServer
) -> None:
    got = await collect(client_for(vendor, server, VENDORS[vendor][2]))
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    usage = got[-1]
    prompt, completion, cost = USAGE[vendor]
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
    assert usage.cost_usd == pytest.approx(cost)
    assert usage.model == VENDORS[vendor][0]
    check_requests(vendor, server)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_an_error_mid_stream_ends_the_reply_as_unavailable(
    vendor: str, server: ReplayServer
) -> None:
    got: list[Any] = []
    with pytest.raises(IntegrationUnavailable):
        async for event in client_for(vendor, server, VENDORS[vendor][3]).stream(
            system="s", messages=[{"role": "user", "content": "Hi"}], max_tokens=64
        ):
            got.append(event)
    text = "".join(e.text for e in got if isinstance(e, Delta))
    assert text and TEXT.startswith(text) and text != TEXT
    assert not any(isinstance(e, Usage) for e in got)
    assert len(server.received) == 1  # never retried once the student saw words


@pytest.mark.parametrize("vendor", VENDORS)
async def test_overloaded_is_retried_before_the_first_token(
    vendor: str, server: ReplayServer
) -> None:
    got = await collect(client_for(vendor, server, VENDORS[vendor][4], VENDORS[vendor][2]))
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    assert len(server.received) == 2
    check_requests(vendor, server)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_rate_limit_is_retried(vendor: str, server: ReplayServer) -> None:
    got = await collect(client_for(vendor, server, "rate_limit", VENDORS[vendor][2]))
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    assert len(server.received) == 2


async def test_still_overloaded_goes_to_the_fallback_model(server: ReplayServer) -> None:
    model = client_for(
        "anthropic",
        server,
        "overloaded",
        "overloaded",
        "stream_ok",
        fallback="anthropic/claude-haiku-4-5",
    )
    got = await collect(model)
    assert [r.body["model"] for r in server.received] == [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    ]
    usage = got[-1]
    assert isinstance(usage, Usage)
    assert usage.cost_usd == pytest.approx(412 * 1e-6 + 15 * 5e-6)  # haiku's price
    assert usage.model == "anthropic/claude-haiku-4-5"


@pytest.mark.parametrize(
    ("vendor", "name", "said"),
    [
        ("anthropic", "billing", "credit balance is too low"),
        ("anthropic", "authentication", "invalid x-api-key"),
        ("openai", "insufficient_quota", "insufficient_quota"),
        ("openai", "invalid_api_key", "Incorrect API key"),
        ("gemini", "api_key_invalid", "API key not valid"),
    ],
)
async def test_account_problems_are_not_retried(
    vendor: str, name: str, said: str, server: ReplayServer
) -> None:
    with pytest.raises(ProviderAccountProblem, match=said):
        await collect(client_for(vendor, server, name, VENDORS[vendor][2], retries=2))
    assert len(server.received) == 1


# -- what the student sees ----------------------------------------------------------------


async def test_the_student_keeps_what_was_said_before_a_mid_stream_error(
    client_factory, db, server: ReplayServer
) -> None:
    model = client_for("anthropic", server, "stream_error_mid", retries=0)
    async with client_factory(chat_model=model) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        got = events((await ask(client, "What is alignment?")).text)
    # What came before the error (in as many pieces as the pace gathered it into).
    kinds = [e for e, _ in got]
    assert kinds[-1] == "error" and set(kinds[:-1]) == {"delta"}
    assert "".join(d["text"] for e, d in got[:-1]) == "Alignment means getting an AI system"
    assert got[-1][1] == {
        "message": "The tutor stopped answering part-way. Try again.",
        "retry": True,
    }
    reply = await db.scalar(select(Message).where(Message.role == "assistant"))
    assert (reply.content, reply.status) == ("Alignment means getting an AI system", "partial")


async def test_an_overloaded_vendor_is_retried_and_the_reply_is_costed(
    client_factory, db, server: ReplayServer
) -> None:
    model = client_for("anthropic", server, "overloaded", "stream_ok")
    async with client_factory(chat_model=model) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        got = events((await ask(client, "What is alignment?")).text)
    assert got[-1][0] == "done"
    assert "".join(d["text"] for e, d in got if e == "delta") == TEXT
    reply = await db.scalar(select(Message).where(Message.role == "assistant"))
    assert (reply.prompt_tokens, reply.completion_tokens) == (412, 15)
    assert reply.cost_usd == pytest.approx(USAGE["anthropic"][2])
    assert reply.model == "anthropic/claude-sonnet-4-5"


async def test_a_spent_quota_tells_the_student_it_is_the_sites_problem(
    client_factory, db, server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="lens.tutor")
    model = client_for("openai", server, "insufficient_quota", "chat_stream_ok", retries=2)
    async with client_factory(chat_model=model) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        got = events((await ask(client, "What is alignment?")).text)
    assert got == [
        (
            "error",
            {
                "message": "The tutor is not available on this site at the moment. The "
                "site's team has been told; your message is kept.",
                "retry": False,
            },
        )
    ]
    assert len(server.received) == 1
    (record,) = [r for r in caplog.records if "tutor.reply.account_problem" in r.getMessage()]
    assert record.levelno == logging.ERROR and "insufficient_quota" in record.getMessage()
    roles = [m.role for m in await db.scalars(select(Message))]
    assert roles == ["user"]  # the question is kept
