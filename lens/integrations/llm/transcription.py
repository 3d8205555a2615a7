"""Speech to text for the tutor's microphone button: OpenAI's transcription API.

POST {base}/audio/transcriptions, multipart/form-data with `file` and `model`, bearer
auth; the answer is JSON with `text` (and `duration` in seconds with `verbose_json`,
which only the whisper models offer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.logging import get_logger

log = get_logger("lens.integrations.transcription")

OPENAI_BASE = "https://api.openai.com/v1"
# USD per minute of audio (OpenAI's published price for whisper-1).
PRICE_PER_MINUTE = {"whisper-1": 0.006, "gpt-4o-transcribe": 0.006, "gpt-4o-mini-transcribe": 0.003}


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float | None  # audio length, when the provider says
    cost_usd: float


class Transcriber(Protocol):
    async def transcribe(self, *, audio: bytes, filename: str, content_type: str) -> Transcript: ...


class OpenAITranscriber:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        model: str = "whisper-1",
        base_url: str = OPENAI_BASE,
        retries: int = 1,
        timeout: float = 60.0,
    ) -> None:
        self.http = http
        self.api_key = api_key
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.timeout = timeout

    async def transcribe(self, *, audio: bytes, filename: str, content_type: str) -> Transcript:
        verbose = self.model.startswith("whisper")
        data = {"model": self.model, "response_format": "verbose_json" if verbose else "json"}
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.post(
                    f"{self.base_url}/audio/transcriptions",
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    data=data,
                    files={"file": (filename, audio, content_type)},
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                error: Exception = IntegrationUnavailable(
                    f"transcription service unreachable ({type(exc).__name__})"
                )
            else:
                if response.status_code == 200:
                    return self._transcript(response)
                if response.status_code == 429 or response.status_code >= 500:
                    error = IntegrationUnavailable(
                        f"transcription service answered {response.status_code}"
                    )
                else:
                    raise IntegrationRejected(
                        f"transcription refused ({response.status_code}): {_message(response)}"
                    )
            if attempt < self.retries:
                await asyncio.sleep(0.5 * (attempt + 1))
        raise error

    def _transcript(self, response: httpx.Response) -> Transcript:
        try:
            body = response.json()
            text = str(body["text"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrationUnavailable("transcription service sent an unreadable answer") from exc
        seconds = body.get("duration")
        seconds = float(seconds) if isinstance(seconds, int | float) else None
        cost = (seconds or 0.0) / 60 * PRICE_PER_MINUTE.get(self.model, 0.006)
        return Transcript(text=text, seconds=seconds, cost_usd=cost)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
