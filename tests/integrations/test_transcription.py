from __future__ import annotations

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.transcription import OpenAITranscriber
from tests.integrations.fake_transcription import FakeTranscriptionAPI, multipart_fields


def client(fake: FakeTranscriptionAPI, **options) -> tuple[httpx.AsyncClient, OpenAITranscriber]:
    http = httpx.AsyncClient(transport=fake.transport())
    return http, OpenAITranscriber(http, api_key="sk-test", **options)


async def test_sends_the_audio_as_openai_expects_and_reads_the_text() -> None:
    fake = FakeTranscriptionAPI(text="  Hello tutor.  ", duration=30.0)
    http, transcriber = client(fake)
    async with http:
        result = await transcriber.transcribe(
            audio=b"OggS-audio", filename="speech.ogg", content_type="audio/ogg"
        )
    (request,) = fake.requests
    assert str(request.url) == "https://api.openai.com/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer sk-test"
    fields = multipart_fields(request)
    assert fields["model"] == b"whisper-1"
    assert fields["response_format"] == b"verbose_json"
    assert fields["file"] == b"OggS-audio" and fields["file.filename"] == b"speech.ogg"
    assert result.text == "Hello tutor."
    assert result.seconds == 30.0 and result.cost_usd == pytest.approx(0.003)


async def test_newer_models_ask_for_plain_json() -> None:
    fake = FakeTranscriptionAPI(duration=None)
    http, transcriber = client(fake, model="gpt-4o-mini-transcribe")
    async with http:
        result = await transcriber.transcribe(
            audio=b"x", filename="a.webm", content_type="audio/webm"
        )
    assert multipart_fields(fake.requests[0])["response_format"] == b"json"
    assert result.seconds is None and result.cost_usd == 0.0


async def test_a_rate_limit_is_retried_once() -> None:
    fake = FakeTranscriptionAPI(statuses=[429])
    http, transcriber = client(fake)
    async with http:
        result = await transcriber.transcribe(
            audio=b"x", filename="a.webm", content_type="audio/webm"
        )
    assert len(fake.requests) == 2 and result.text == "What does alignment mean?"


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
        with pytest.raises(IntegrationRejected, match="scripted 400"):
            await transcriber.transcribe(audio=b"x", filename="a.webm", content_type="audio/webm")
    assert len(fake.requests) == 1
