"""The OpenAI and SendGrid fakes answer only what the real APIs answer, and refuse what
they refuse (issue 16). Each fake is driven here at the HTTP level, as Lens's clients
drive it, and its answers are read against the vendor's description."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.contracts.validator import Contract
from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.fake_transcription import FakeTranscriptionAPI
from tests.notifications.fake_providers import ProviderServer

OPENAI = Contract.load("openai")
TRANSCRIBE = "https://api.openai.com/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


def chat(openai: FakeOpenAI, **headers: str) -> httpx.Response:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return httpx.post(f"{openai.base}/chat/completions", json=body, headers=headers, timeout=10)


def test_the_chat_fake_sends_usage_on_a_last_chunk_without_choices(openai: FakeOpenAI) -> None:
    response = chat(openai, Authorization="Bearer sk-test")
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    for chunk in chunks:
        OPENAI.check_schema(chunk, "CreateChatCompletionStreamResponse", "chat chunk")
    *before, last = chunks
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(chunk["choices"] and chunk.get("usage") is None for chunk in before)


def test_the_chat_fake_refuses_a_request_without_the_key(openai: FakeOpenAI) -> None:
    response = chat(openai)
    assert response.status_code == 401
    OPENAI.check_schema(response.json(), "ErrorResponse", "chat answer 401")


def test_the_chat_fakes_errors_are_openais_error_objects(openai: FakeOpenAI) -> None:
    openai.script.append(("status", 429))
    response = chat(openai, Authorization="Bearer sk-test")
    assert response.status_code == 429
    OPENAI.check_schema(response.json(), "ErrorResponse", "chat answer 429")


def transcription_request(model: str, response_format: str) -> httpx.Request:
    request = httpx.Request(
        "POST",
        TRANSCRIBE,
        headers={"Authorization": "Bearer sk-test"},
        data={"model": model, "response_format": response_format},
        files={"file": ("speech.webm", b"\x1aE\xdf\xa3", "audio/webm")},
    )
    request.read()
    return request


def test_the_transcription_fake_answers_json_without_a_duration() -> None:
    """gpt-4o transcribe answers `json` with token usage; `duration` is whisper's, in
    `verbose_json` only."""
    answer = FakeTranscriptionAPI()(transcription_request("gpt-4o-mini-transcribe", "json"))
    body = answer.json()
    OPENAI.check_schema(body, "CreateTranscriptionResponseJson", "json answer")
    assert "duration" not in body and body["usage"]["type"] == "tokens"


def test_the_transcription_fake_answers_verbose_json_in_full() -> None:
    answer = FakeTranscriptionAPI()(transcription_request("whisper-1", "verbose_json"))
    body = answer.json()
    OPENAI.check_schema(body, "CreateTranscriptionResponseVerboseJson", "verbose answer")
    assert body["usage"]["type"] == "duration"


def test_the_transcription_fakes_errors_are_openais_error_objects() -> None:
    answer = FakeTranscriptionAPI(statuses=[400])(transcription_request("whisper-1", "json"))
    assert answer.status_code == 400
    OPENAI.check_schema(answer.json(), "ErrorResponse", "transcription answer 400")


def test_the_sendgrid_server_refuses_a_request_without_the_key() -> None:
    mail = {
        "personalizations": [{"to": [{"email": "ada@example.org"}]}],
        "from": {"email": "team@lens.example.org"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hello"}],
    }
    with ProviderServer() as server:
        refused = httpx.post(f"{server.url}/v3/mail/send", json=mail, timeout=10)
        accepted = httpx.post(
            f"{server.url}/v3/mail/send",
            json=mail,
            headers={"Authorization": "Bearer SG.test"},
            timeout=10,
        )
        assert server.providers.email_counts() == {"ada@example.org": 1}
    assert refused.status_code == 401 and refused.json()["errors"][0]["message"]
    assert accepted.status_code == 202 and accepted.content == b""
