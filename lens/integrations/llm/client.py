"""The tutor's model gateway: one streaming interface, litellm underneath.

litellm speaks each provider's real API (Anthropic, Gemini, OpenAI, a local
OpenAI-compatible server or Ollama) from one model string (`LLM_PROVIDER`). It is
imported only when a model is first used: the import takes seconds, and a site without
a model configured never needs it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from lens.errors import IntegrationRejected, IntegrationUnavailable


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


Event = Delta | Usage


class ChatModel(Protocol):
    name: str

    def stream(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> AsyncIterator[Event]: ...


class FirstTokenTimeout(IntegrationUnavailable):
    pass


class LiteLLMModel:
    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        api_base: str | None = None,
        connect_timeout: float = 10.0,
        first_token_timeout: float = 30.0,
        retries: int = 2,
        fallback: str | None = None,
    ) -> None:
        self.name = model
        self.api_key = api_key
        self.api_base = api_base
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.retries = retries
        self.fallback = fallback

    async def stream(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> AsyncIterator[Event]:
        litellm = _litellm()
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": "system", "content": system}, *messages],
            "stream": True,
            "max_tokens": max_tokens,
            "timeout": self.first_token_timeout,
            "stream_options": {"include_usage": True},
            # Retries are ours (before the first token only); the SDKs would retry too.
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.api_base:
            kwargs["api_base"] = self.api_base
        attempt = 0
        fallback = self.fallback
        while True:
            try:
                response = await asyncio.wait_for(
                    litellm.acompletion(**kwargs), timeout=self.first_token_timeout
                )
                iterator = response.__aiter__()
                # Retrying is only safe before anything reached the student.
                first = await asyncio.wait_for(iterator.__anext__(), self.first_token_timeout)
                break
            except TimeoutError as exc:
                if attempt >= self.retries:
                    if fallback:
                        kwargs["model"], fallback, attempt = fallback, None, 0
                        continue
                    raise FirstTokenTimeout("the model did not start answering in time") from exc
            except Exception as exc:
                if not _retryable(exc) or attempt >= self.retries:
                    if fallback and _retryable(exc):
                        # The main model is down: the fallback gets its own tries.
                        kwargs["model"], fallback, attempt = fallback, None, 0
                        continue
                    raise _translate(exc) from exc
            attempt += 1
            await asyncio.sleep(min(4.0, 0.5 * 2**attempt))
        prompt_tokens = completion_tokens = 0
        chunk: Any = first
        try:
            while True:
                usage = getattr(chunk, "usage", None)
                if usage:
                    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
                    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
                for choice in getattr(chunk, "choices", None) or []:
                    text = getattr(getattr(choice, "delta", None), "content", None)
                    if text:
                        yield Delta(text)
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
        except asyncio.CancelledError:
            close = getattr(response, "aclose", None)
            if close is not None:
                await close()  # the browser left: stop the upstream request too
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        yield Usage(
            prompt_tokens, completion_tokens, _cost(self.name, prompt_tokens, completion_tokens)
        )


def _litellm() -> Any:
    # Never fetch the price list from the internet at import; use the bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    return litellm


def _retryable(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return int(status) == 429 or int(status) >= 500
    return type(exc).__name__ in {
        "APIConnectionError",
        "Timeout",
        "ServiceUnavailableError",
        "RateLimitError",
        "InternalServerError",
    }


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, IntegrationUnavailable | IntegrationRejected):
        return exc
    if _retryable(exc):
        return IntegrationUnavailable(f"the model provider is unavailable ({type(exc).__name__})")
    return IntegrationRejected(f"the model provider refused the request ({type(exc).__name__})")


def _cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    try:
        prompt_cost, completion_cost = _litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return float(prompt_cost + completion_cost)
    except Exception:
        return 0.0  # a model litellm has no price for (a local one): free as far as we know
