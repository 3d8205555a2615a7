"""The OpenAI transcription client against the fake endpoint, which holds requests and
answers to OpenAI's description (tests/integrations/fake_transcription.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.integrations.llm.transcription import OpenAITranscriber
from tests.contracts.validator import VIOLATIONS, ContractViolation
from tests.integrations.fake_transcription import (
    CONTRACT,
    FakeTranscriptionAPI,
    check_answer,
    check_fields,
    multipart_fields,
)
from tests.integrations.openai_errors import INSUFFICIENT_QUOTA
from tests.integrations.recorded_exchanges import recorded

FIELDS = set(CONTRACT.spec["components"]["schemas"]["CreateTranscriptionRequest"]["properties"])


def client(fake: FakeTranscriptionAPI, **options) -> tuple[httpx.AsyncClient, OpenAITranscriber]:
    http = httpx.AsyncClient(transport=fake.transport())
    return http, OpenAITranscriber(http, api_key="sk-test", **options)


async def test_sends_the_audio_as_openai_expects_and_reads_the_text() -> None:
    fake = FakeTranscriptionAPI(text="  Hello tutor.  ", seconds=29.5)
    http, transcriber = client(fake)
    async with http:
        result = await transcriber.transcribe(
            audio=b"OggS-audio", filename="speech.ogg", content_type="audio/ogg"
        )
    (request,) = fake.requests
    assert str(request.url) == "https://api.openai.com/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer sk-test"
    fields = multipart_fields(request)
    # Only fields the description has, and the ones it requires.
    assert {name for name in fields if "." not in name} == {"model", "response_format", "file"}
    assert {"model", "response_format", "file"} <= FIELDS
    assert fields["model"] == b"whisper-1"
    assert fields["response_format"] == b"verbose_json"
    assert fields["file"] == b"OggS-audio" and fields["file.filename"] == b"speech.ogg"
    assert fields["file.content_type"] == b"audio/ogg"
    assert result.text == "Hello tutor."
    # The audio's length from `duration`; the cost from what OpenAI bills: 30 whole seconds.
    assert result.seconds == 29.5 and result.cost_usd == pytest.approx(0.003)


async def test_newer_models_ask_for_plain_json_and_are_priced_by_their_tokens() -> None:
    fake = FakeTranscriptionAPI(text="Why is this hard?", seconds=6.0)
    http, transcriber = client(fake, model="gpt-4o-mini-transcribe")
    async with http:
        result = await transcriber.transcribe(
            audio=b"x", filename="a.webm", content_type="audio/webm"
        )
    assert multipart_fields(fake.requests[0])["response_format"] == b"json"
    # 60 audio tokens at $3/M and 5 output tokens at $5/M; a json answer has no duration.
    assert result.seconds is None
    assert result.cost_usd == pytest.approx((60 * 3.00 + 5 * 5.00) / 1_000_000)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # The description's own example: 10 text + 4 audio input tokens, 101 output tokens.
        ("gpt-4o-transcribe", (4 * 6.00 + 10 * 2.50 + 101 * 10.00) / 1_000_000),
        ("gpt-4o-mini-transcribe", (4 * 3.00 + 10 * 1.25 + 101 * 5.00) / 1_000_000),
        # A model Lens has no price for is charged the dearest known price, never nothing.
        ("gpt-5-transcribe", (4 * 6.00 + 10 * 2.50 + 101 * 10.00) / 1_000_000),
    ],
)
async def test_token_usage_is_what_speech_costs(model: str, expected: float) -> None:
    answer = recorded("openai", "transcription_json")
    check_answer(json.loads(answer.body), "json")

    def openai(request: httpx.Request) -> httpx.Response:
        check_fields(request)  # the multipart fields, which the description's check skips
        return httpx.Response(200, content=answer.body, headers=answer.headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(CONTRACT.checked(openai))) as http:
        transcriber = OpenAITranscriber(http, api_key="sk-test", model=model)
        result = await transcriber.transcribe(
            audio=b"x", filename="a.webm", content_type="audio/webm"
        )
    assert result.text.startswith("Imagine the wildest idea")
    assert result.cost_usd == pytest.approx(expected) and result.cost_usd > 0


async def test_a_rate_limit_is_retried_once() -> None:
    fake = FakeTranscriptionAPI(statuses=[429])
    http, transcriber = client(fake)
    async with http:
        result = await transcriber.transcribe(
            audio=b"x", filename="a.webm", content_type="audio/webm"
        )
    assert len(fake.requests) == 2 and result.text == "What does alignment mean?"


async def test_spent_quota_is_an_account_problem_not_a_rate_limit() -> None:
    fake = FakeTranscriptionAPI(statuses=[(429, INSUFFICIENT_QUOTA)])
    http, transcriber = client(fake)
    async with http:
        with pytest.raises(ProviderAccountProblem, match="insufficient_quota") as raised:
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
    assert len(fake.requests) == 1  # asking again cannot help
    assert "check your plan and billing" in str(raised.value)


async def test_a_wrong_key_is_an_account_problem_and_never_shown() -> None:
    fake = FakeTranscriptionAPI(api_key="sk-right")
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        transcriber = OpenAITranscriber(http, api_key="sk-wrong-but-long")
        with pytest.raises(ProviderAccountProblem, match="invalid_api_key") as raised:
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
    assert len(fake.requests) == 1
    assert "sk-wrong" not in str(raised.value) and "[key]" in str(raised.value)


async def test_server_errors_end_as_unavailable() -> None:
    fake = FakeTranscriptionAPI(statuses=[500, 503])
    http, transcriber = client(fake)
    async with http:
        with pytest.raises(IntegrationUnavailable, match="503"):
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
    assert len(fake.requests) == 2


async def test_a_refusal_is_not_retried() -> None:
    fake = FakeTranscriptionAPI(statuses=[400])
    http, transcriber = client(fake)
    async with http:
        with pytest.raises(IntegrationRejected, match="Audio file might be corrupted"):
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
    assert len(fake.requests) == 1


async def test_the_fake_answers_as_the_description_says_each_model_does() -> None:
    for model, kind in (("whisper-1", "verbose_json"), ("gpt-4o-transcribe", "json")):
        fake = FakeTranscriptionAPI(seconds=6.0)
        http, transcriber = client(fake, model=model)
        async with http:
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
        request = fake.requests[0]
        body = json.loads(fake(request).content)
        assert multipart_fields(request)["response_format"] == kind.encode()
        if kind == "json":
            assert "duration" not in body and body["usage"]["type"] == "tokens"
        else:
            assert body["duration"] == 6.0 and body["usage"] == {"type": "duration", "seconds": 6}


def test_the_fake_refuses_shapes_openai_never_sends() -> None:
    with pytest.raises(ContractViolation, match=r"\['duration'\]"):
        check_answer({"text": "hi", "duration": 4.0}, "json")
    with pytest.raises(ContractViolation, match="'language' is a required property"):
        check_answer({"text": "hi", "duration": 4.0}, "verbose_json")
    fake = FakeTranscriptionAPI()
    unknown = httpx.Request(
        "POST",
        "https://api.openai.com/v1/audio/transcriptions",
        headers={"Authorization": "Bearer sk-test"},
        data={"model": "whisper-1", "language_hint": "en"},
        files={"file": ("a.webm", b"x", "audio/webm")},
    )
    unknown.read()
    with pytest.raises(ContractViolation, match="language_hint"):
        fake(unknown)
    assert len(VIOLATIONS) == 3
    VIOLATIONS.clear()  # seen: the autouse check need not fail this test
