"""Lens's own vendor routes in detail: reading server-sent events however the network
cuts them, the requests each vendor is sent, and the prices the cost cap relies on.
(Whole exchanges in each vendor's recorded format: test_llm_recorded.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lens.integrations.llm import direct
from lens.integrations.llm.client import Delta, DirectModel, Usage
from lens.integrations.llm.connections import ConnectionPool
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.integrations.llm.prices import Price, price_of
from tests.contracts.chat_checks import checked
from tests.integrations.recorded_exchanges import recorded
from tests.integrations.test_llm_recorded import TEXT


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def response(chunks: list[bytes]) -> httpx.Response:
    return httpx.Response(200, stream=Chunks(chunks))


async def read_all(chunks: list[bytes]) -> list[list[tuple[str, Any]]]:
    reader = direct.SSEReader(response(chunks))
    batches = []
    while True:
        try:
            batches.append(await reader.next_events())
        except StopAsyncIteration:
            return batches


async def test_events_cut_anywhere_by_the_network_are_put_back_together() -> None:
    stream = (
        b': keep-alive comment\r\n\r\nevent: message_start\r\ndata: {"a": 1}\r\n\r\n'
        b'data: {"b":\ndata: 2}\n\ndata: not json\n\ndata: {"c": 3}\n\ndata: [DONE]\n\n'
        b'data: {"after": "done"}\n\n'
    )
    whole = [e for batch in await read_all([stream]) for e in batch]
    assert whole == [("message_start", {"a": 1}), ("message", {"b": 2}), ("message", {"c": 3})]
    # Byte by byte: the same events, one at a time.
    bytewise = await read_all([stream[i : i + 1] for i in range(len(stream))])
    assert [e for batch in bytewise for e in batch] == whole
    assert all(len(batch) == 1 for batch in bytewise)


async def test_what_arrived_together_comes_back_together() -> None:
    """Under load several tokens wait in one read: they are handled as one."""
    batches = await read_all([b'data: {"n": 1}\n\ndata: {"n": 2}\n\n', b'data: {"n": 3}\n\n'])
    assert [[d["n"] for _, d in batch] for batch in batches] == [[1, 2], [3]]


async def test_a_stream_without_a_final_blank_line_still_gives_its_last_event() -> None:
    batches = await read_all([b'data: {"n": 1}\n\ndata: {"n": 2}'])
    assert [d["n"] for batch in batches for _, d in batch] == [1, 2]


ASK = {
    "system": "Be kind.",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Again"},  # a reply that failed was left out
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Why?"},
    ],
    "max_tokens": 50,
}


def replaying(vendor: str, name: str, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """An httpx client whose every request gets the recorded exchange `name`, the whole
    body in one read (as a busy process finds it), both checked against the vendor's
    contract."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return recorded(vendor, name).response()

    return httpx.AsyncClient(transport=httpx.MockTransport(checked(vendor, handler)))


async def collect(model: DirectModel) -> list[Any]:
    return [e async for e in model.stream(**ASK)]


async def test_an_error_event_after_text_in_the_same_read_keeps_the_text() -> None:
    seen: list[httpx.Request] = []
    http = replaying("anthropic", "stream_error_mid", seen)
    model = DirectModel(model="anthropic/claude-sonnet-4-5", api_key="k", http=http, retries=0)
    got: list[Any] = []
    with pytest.raises(direct.ProviderUnavailable, match="overloaded_error"):
        async for event in model.stream(**ASK):
            got.append(event)
    # Everything said before the error arrived in one read: one piece, kept.
    assert got == [Delta("Alignment means getting an AI system")]
    assert len(seen) == 1  # never retried after words were given


async def test_the_requests_each_vendor_is_sent() -> None:
    import json

    seen: list[httpx.Request] = []
    anthropic = DirectModel(
        model="anthropic/claude-sonnet-4-20250514",
        api_key="sk-ant-1",
        http=replaying("anthropic", "stream_ok", seen),
    )
    got = await collect(anthropic)
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    assert got[-1] == Usage(
        412, 15, (412 * 3 + 15 * 15) / 1e6, model="anthropic/claude-sonnet-4-20250514"
    )
    request = seen[-1]
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-1"
    assert request.headers["anthropic-version"] == "2023-06-01"
    body = json.loads(request.content)
    assert body["system"] == "Be kind." and body["max_tokens"] == 50 and body["stream"] is True
    # Turns alternate, starting with the learner: two in a row are joined.
    assert body["messages"] == [
        {"role": "user", "content": "Hi\n\nAgain"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Why?"},
    ]

    openai = DirectModel(
        model="openai/gpt-4o-mini", api_key="sk-1", http=replaying("openai", "chat_stream_ok", seen)
    )
    got = await collect(openai)
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    assert (got[-1].prompt_tokens, got[-1].completion_tokens) == (412, 15)
    request = seen[-1]
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-1"
    body = json.loads(request.content)
    assert body["messages"][0] == {"role": "system", "content": "Be kind."}
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}

    gemini = DirectModel(
        model="gemini/gemini-2.5-flash",
        api_key="AIza-test-key-1",
        http=replaying("gemini", "stream_ok", seen),
    )
    got = await collect(gemini)
    assert "".join(e.text for e in got if isinstance(e, Delta)) == TEXT
    assert (got[-1].prompt_tokens, got[-1].completion_tokens) == (412, 15 + 37)  # thinking
    request = seen[-1]
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert request.headers["x-goog-api-key"] == "AIza-test-key-1"
    body = json.loads(request.content)
    assert body["systemInstruction"] == {"parts": [{"text": "Be kind."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"maxOutputTokens": 50}


async def test_a_local_server_gets_no_key_and_max_tokens() -> None:
    import json

    seen: list[httpx.Request] = []
    model = DirectModel(
        model="openai/llama-3-8b",
        api_base="http://127.0.0.1:9/v1",
        http=replaying("openai", "chat_stream_ok", seen),
    )
    got = await collect(model)
    assert got[-1].cost_usd == 0.0  # a local model nobody prices costs nothing
    assert str(seen[0].url) == "http://127.0.0.1:9/v1/chat/completions"
    assert "authorization" not in seen[0].headers
    assert json.loads(seen[0].content)["max_tokens"] == 50


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, b'{"type":"error","error":{"type":"authentication_error","message":"bad"}}',
         ProviderAccountProblem),
        (404, b'{"type":"error","error":{"type":"not_found_error","message":"model: x"}}',
         ProviderAccountProblem),
        (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
         direct.ProviderUnavailable),
        (429, b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}',
         direct.ProviderUnavailable),
        (429, b'{"error":{"message":"quota","type":"insufficient_quota",'
              b'"code":"insufficient_quota"}}',
         ProviderAccountProblem),
        (400, b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}',
         direct.ProviderRefused),
        (403, b'[{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}]',
         ProviderAccountProblem),
        (502, b"<html>Bad gateway</html>", direct.ProviderUnavailable),
    ],
)  # fmt: skip
def test_vendor_errors_are_told_apart(status: int, body: bytes, kind: type) -> None:
    assert type(direct.http_error("v", status, body)) is kind


def test_prices_never_count_a_vendor_model_as_free() -> None:
    assert price_of("anthropic/claude-sonnet-4-20250514") == Price(3.0, 15.0)
    assert price_of("anthropic/claude-sonnet-4-5-20250929") == Price(3.0, 15.0)
    assert price_of("openai/gpt-4o-mini-2024-07-18") == Price(0.15, 0.6)
    assert price_of("openai/gpt-4o") == Price(2.5, 10.0)
    assert price_of("gemini/gemini-2.5-flash-lite") == Price(0.1, 0.4)
    # A model Lens has never heard of, at a vendor: that vendor's dearest price.
    assert price_of("anthropic/claude-future-9") == Price(15.0, 75.0)
    # At a local server, an unknown model is free; the site's own prices win over all.
    assert price_of("openai/my-llama", local=True) == Price(0.0, 0.0)
    assert price_of("openai/gpt-4o", overrides={"openai/gpt-4o": [1, 2]}) == Price(1.0, 2.0)


async def test_warming_up_sets_the_client_up_before_the_first_request() -> None:
    model = DirectModel(model="openai/gpt-4o-mini", api_key="sk-1")
    assert model._http is None
    await model.warm()
    assert isinstance(model._http, ConnectionPool)
    await model.aclose()


def paced_events(words: list[str]) -> list[bytes]:
    """An OpenAI stream of `words`, an event each."""
    import json

    events = []
    for word in words:
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            "usage": None,
        }
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    usage = {  # asked for with stream_options.include_usage: a last chunk, no choices
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": len(words),
            "total_tokens": 9 + len(words),
        },
    }
    return [*events, f"data: {json.dumps(usage)}\n\n".encode(), b"data: [DONE]\n\n"]


class Paced(httpx.AsyncByteStream):
    """Events `gap` seconds apart, as a vendor sends its tokens."""

    def __init__(self, events: list[bytes], gap: float) -> None:
        self.events, self.gap = events, gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import asyncio

        for event in self.events:
            yield event
            await asyncio.sleep(self.gap)


@pytest.mark.parametrize("pace", [0.0, 0.05])
async def test_text_is_handed_on_at_the_pace_in_pieces_of_what_arrived(pace: float) -> None:
    """Tokens 10 ms apart: with no pace every token is a piece of its own; with a 50 ms
    pace the first goes on at once and the rest in a few pieces, none lost or reordered."""
    from tests.contracts.chat_checks import check_answer, check_request

    words = [f"w{n} " for n in range(20)]
    events = paced_events(words)
    headers = {"content-type": "text/event-stream"}

    def handler(request: httpx.Request) -> httpx.Response:
        # The whole answer checked against OpenAI's description, then sent slowly.
        operation = check_request("openai", request)
        check_answer("openai", request, operation,
                     httpx.Response(200, content=b"".join(events), headers=headers))  # fmt: skip
        return httpx.Response(200, stream=Paced(events, 0.01), headers=headers)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    model = DirectModel(model="openai/gpt-4o-mini", api_key="sk-1", http=http, pace=pace)
    pieces = [e.text for e in await collect(model) if isinstance(e, Delta)]
    assert "".join(pieces) == "".join(words)
    assert pieces[0] == "w0 "
    if pace:
        assert len(pieces) <= 8, pieces  # 200 ms of tokens at most every 50 ms, and the first
    else:
        assert len(pieces) == len(words)
