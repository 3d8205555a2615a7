"""POST /api/transcribe through the real OpenAI client, the vendor faked at the HTTP layer."""

from __future__ import annotations

import logging

from sqlalchemy import select

from lens.tutor.models import Transcription
from tests.fixtures.auth import ORIGIN
from tests.integrations.fake_transcription import (
    FakeTranscriptionAPI,
    multipart_fields,
)
from tests.integrations.openai_errors import INSUFFICIENT_QUOTA
from tests.tutor.fake_model import FakeModel

MODULE = "/course/intro-to-ai-safety/welcome"


async def post_audio(
    client, audio: bytes = b"\x1aE\xdf\xa3webm", name="speech.webm", type="audio/webm"
):
    return await client.post(
        "/api/transcribe", files={"audio": (name, audio, type)}, headers=ORIGIN
    )


async def test_speech_becomes_text_and_is_counted(client_factory, db) -> None:
    fake = FakeTranscriptionAPI(text="Why is this hard?", seconds=6.0)
    async with client_factory(
        transport=fake.transport(), chat_model=FakeModel(), OPENAI_API_KEY="sk-test"
    ) as client:
        page = await client.get(MODULE)
        response = await post_audio(client)
    assert 'class="button secondary tutor-mic"' in page.text
    assert response.status_code == 200 and response.json() == {"text": "Why is this hard?"}
    fields = multipart_fields(fake.requests[0])
    assert fields["file"] == b"\x1aE\xdf\xa3webm" and fields["model"] == b"whisper-1"
    (row,) = await db.scalars(select(Transcription))
    assert row.actor.startswith("a:") and row.audio_bytes == 8 and row.cost_usd > 0


async def test_without_openai_there_is_no_microphone(client_factory) -> None:
    async with client_factory(chat_model=FakeModel()) as client:
        page = await client.get(MODULE)
        response = await post_audio(client)
    assert "tutor-mic" not in page.text
    assert response.status_code == 404
    assert "not set up" in response.json()["error"]["message"]


async def test_bad_recordings_say_what_to_fix(client_factory) -> None:
    fake = FakeTranscriptionAPI()
    async with client_factory(transport=fake.transport(), OPENAI_API_KEY="sk-test") as client:
        await client.get(MODULE)
        empty = await post_audio(client, audio=b"")
        text = await post_audio(client, name="notes.txt", type="text/plain")
        huge = await post_audio(client, audio=b"0" * (25 * 1024 * 1024 + 1))
        missing = await client.post("/api/transcribe", data={"x": "1"}, headers=ORIGIN)
        # A browser's blob without a useful name: the type decides.
        typed = await post_audio(client, name="blob", type="audio/ogg;codecs=opus")
    assert empty.status_code == 422 and "empty" in empty.json()["error"]["message"]
    assert text.status_code == 422 and "webm, ogg, mp3" in text.json()["error"]["message"]
    assert huge.status_code == 413 and "25 MB" in huge.json()["error"]["message"]
    assert missing.status_code == 422 and "'audio'" in missing.json()["error"]["message"]
    assert typed.status_code == 200
    assert multipart_fields(fake.requests[-1])["file.filename"] == b"speech.ogg"
    assert len(fake.requests) == 1  # nothing invalid reached the vendor


async def test_vendor_trouble_and_silence(client_factory) -> None:
    fake = FakeTranscriptionAPI(statuses=[503, 503, 400])
    async with client_factory(transport=fake.transport(), OPENAI_API_KEY="sk-test") as client:
        await client.get(MODULE)
        down = await post_audio(client)
        refused = await post_audio(client)
        fake.text = "   "
        silent = await post_audio(client)
    assert down.status_code == 503 and "type your message" in down.json()["error"]["message"]
    assert refused.status_code == 422 and "could not be understood" in refused.text
    assert silent.status_code == 422 and "No speech was heard" in silent.text


async def test_speech_shares_the_rate_limit_and_the_daily_cap(client_factory) -> None:
    fake = FakeTranscriptionAPI(seconds=600.0)  # ten minutes: $0.06
    async with client_factory(
        transport=fake.transport(),
        OPENAI_API_KEY="sk-test",
        LENS_TUTOR_MESSAGES_PER_MINUTE="2",
        LENS_TUTOR_DAILY_COST_CAP_USD="0.1",
    ) as client:
        await client.get(MODULE)
        assert (await post_audio(client)).status_code == 200
        assert (await post_audio(client)).status_code == 200
        third = await post_audio(client)
        assert third.status_code == 429 and "Wait a minute" in third.json()["error"]["message"]
        client.cookies.clear()
        await client.get(MODULE)  # someone else: their own rate, the site's shared budget
        capped = await post_audio(client)
    assert capped.status_code == 429 and "budget" in capped.json()["error"]["message"]
    assert len(fake.requests) == 2


async def test_token_billed_speech_counts_against_the_daily_cap(client_factory, db) -> None:
    """gpt-4o transcribe answers carry token usage and no duration: still counted."""
    fake = FakeTranscriptionAPI(seconds=600.0)  # 6,000 audio tokens at $6/M: $0.036
    async with client_factory(
        transport=fake.transport(),
        OPENAI_API_KEY="sk-test",
        LENS_TRANSCRIPTION_MODEL="gpt-4o-transcribe",
        LENS_TUTOR_DAILY_COST_CAP_USD="0.05",
    ) as client:
        await client.get(MODULE)
        assert (await post_audio(client)).status_code == 200
        assert (await post_audio(client)).status_code == 200
        capped = await post_audio(client)
    assert capped.status_code == 429 and "budget" in capped.json()["error"]["message"]
    assert len(fake.requests) == 2
    assert multipart_fields(fake.requests[0])["response_format"] == b"json"
    rows = list(await db.scalars(select(Transcription)))
    assert [row.seconds for row in rows] == [None, None]
    assert all(row.cost_usd > 0.036 for row in rows)


async def test_a_spent_openai_quota_is_the_sites_problem(client_factory, caplog) -> None:
    fake = FakeTranscriptionAPI(statuses=[(429, INSUFFICIENT_QUOTA)])
    caplog.set_level(logging.ERROR, logger="lens.tutor")
    async with client_factory(transport=fake.transport(), OPENAI_API_KEY="sk-test") as client:
        await client.get(MODULE)
        response = await post_audio(client)
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "not available on this site" in message and "type your message" in message
    assert "quota" not in message and "billing" not in message  # no vendor details
    assert len(fake.requests) == 1  # not retried
    (record,) = [r for r in caplog.records if "tutor.transcribe.account_problem" in r.getMessage()]
    assert record.levelno == logging.ERROR and "insufficient_quota" in record.getMessage()


async def test_a_new_cookie_is_no_new_speech_allowance(client_factory, db) -> None:
    """Visitors dropping their cookie share their network's allowance for recordings too,
    and each recording is counted before it is sent to the provider."""
    import httpx

    fake = FakeTranscriptionAPI(seconds=6.0)
    async with client_factory(
        transport=fake.transport(),
        OPENAI_API_KEY="sk-test",
        LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE="3",
    ) as client:
        codes = []
        for _ in range(5):
            transport = httpx.ASGITransport(app=client.app, client=("203.0.113.9", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as v:
                await v.get(MODULE)
                codes.append((await post_audio(v)).status_code)
        assert codes == [200, 200, 200, 429, 429]
    assert len(fake.requests) == 3
    rows = list(await db.scalars(select(Transcription)))
    assert len(rows) == 3 and {r.client_net for r in rows} == {"203.0.113.9"}
