"""Speech to text for the tutor's microphone button: OpenAI's transcription API.

POST {base}/audio/transcriptions, multipart/form-data with `file`, `model` and
`response_format`, bearer auth. The whisper models answer `verbose_json`: `text`,
`duration` (the audio's length in seconds) and `usage` `{"type": "duration", "seconds"}`.
The gpt-4o transcribe models take only `json` and answer `text` with `usage`
`{"type": "tokens", "input_tokens", "input_token_details": {"audio_tokens",
"text_tokens"}, "output_tokens", "total_tokens"}` and no `duration`. The cost comes from
`usage` (from `duration` when an answer has no usage), so speech counts against the
site's daily cost cap whichever model is set.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.logging import get_logger

log = get_logger("lens.integrations.transcription")

OPENAI_BASE = "https://api.openai.com/v1"
# USD per minute of audio, for answers billed by duration (OpenAI's price for whisper-1;
# its per-minute estimates for the gpt-4o models, should they ever answer that way).
PRICE_PER_MINUTE = {"whisper-1": 0.006, "gpt-4o-transcribe": 0.006, "gpt-4o-mini-transcribe": 0.003}
# USD per million tokens (audio input, text input, text output): OpenAI's published prices
# for the models billed by tokens. litellm's bundled price list is not used: it prices
# gpt-4o-transcribe's audio tokens at the text rate.
PRICE_PER_MILLION_TOKENS = {
    "gpt-4o-transcribe": (6.00, 2.50, 10.00),
    "gpt-4o-mini-transcribe": (3.00, 1.25, 5.00),
    "gpt-4o-mini-transcribe-2025-12-15": (3.00, 1.25, 5.00),
}
# A model billed by tokens whose price Lens does not know costs the dearest known price:
# never less than it does, so it cannot slip past the cost cap.
_DEAREST = max(PRICE_PER_MILLION_TOKENS.values())


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
                status = response.status_code
                if status == 200:
                    return self._transcript(response)
                code, message = _error(response)
                if status in (401, 403) or code == "insufficient_quota":
                    # The key, the permissions, or quota and billing: an admin must act,
                    # and asking again will not help (a real rate limit is a 429 too).
                    raise ProviderAccountProblem(
                        f"OpenAI refused the account for transcription "
                        f"({status} {code or 'error'}): {message}"
                    )
                if status == 429 or status >= 500:
                    error = IntegrationUnavailable(f"transcription service answered {status}")
                else:
                    raise IntegrationRejected(f"transcription refused ({status}): {message}")
            if attempt < self.retries:
                await asyncio.sleep(0.5 * (attempt + 1))
        raise error

    def _transcript(self, response: httpx.Response) -> Transcript:
        try:
            body = response.json()
            text = str(body["text"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrationUnavailable("transcription service sent an unreadable answer") from exc
        seconds = _number(body.get("duration"))
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        if usage.get("type") == "tokens":
            cost = self._token_cost(usage)
        else:
            # Billed by duration: usage.seconds is what OpenAI bills (whole seconds),
            # `duration` the audio's exact length.
            billed = _number(usage.get("seconds")) if usage.get("type") == "duration" else None
            if seconds is None:
                seconds = billed
            minutes = (billed if billed is not None else seconds or 0.0) / 60
            cost = minutes * PRICE_PER_MINUTE.get(self.model, 0.006)
        return Transcript(text=text, seconds=seconds, cost_usd=cost)

    def _token_cost(self, usage: dict[str, Any]) -> float:
        audio_price, text_price, output_price = PRICE_PER_MILLION_TOKENS.get(self.model, _DEAREST)
        input_tokens = _count(usage.get("input_tokens"))
        details = usage.get("input_token_details")
        details = details if isinstance(details, dict) else {}
        text_tokens = min(_count(details.get("text_tokens")), input_tokens)
        # Input tokens not said to be text are priced as audio, the dearer kind.
        audio_tokens = input_tokens - text_tokens
        output_tokens = _count(usage.get("output_tokens"))
        return (
            audio_tokens * audio_price + text_tokens * text_price + output_tokens * output_price
        ) / 1_000_000


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int:
    return max(0, int(value)) if isinstance(value, int) and not isinstance(value, bool) else 0


def _error(response: httpx.Response) -> tuple[str, str]:
    """(error.code, error.message) of OpenAI's error answer `{"error": {...}}`."""
    try:
        error = response.json()["error"]
        return str(error.get("code") or error.get("type") or ""), str(error["message"])[:200]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:200]
