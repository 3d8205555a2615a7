"""The tutor's model gateway: one streaming interface, litellm underneath.

litellm speaks each provider's real API (Anthropic, Gemini, OpenAI, a local
OpenAI-compatible server or Ollama) from one model string (`LLM_PROVIDER`). It is
imported only when a model is first used: the import takes seconds, and a site without
a model configured never needs it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.logging import get_logger

log = get_logger("lens.integrations.llm")


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model: str | None = None  # the model that answered (the fallback, when it did)


Event = Delta | Usage


class ChatModel(Protocol):
    name: str

    def stream(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> AsyncIterator[Event]: ...

    def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        """The most a reply of this size can cost, whichever model answers it (USD)."""
        ...


class FirstTokenTimeout(IntegrationUnavailable):
    pass


class StoppedAnswering(IntegrationUnavailable):
    """The model went quiet mid-reply, or the reply ran past its time."""


class LiteLLMModel:
    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        api_base: str | None = None,
        connect_timeout: float = 10.0,
        first_token_timeout: float = 20.0,
        stall_timeout: float = 30.0,
        reply_timeout: float = 180.0,
        retries: int = 2,
        fallback: str | None = None,
    ) -> None:
        """`first_token_timeout` bounds the wait for the first token over every try and
        the fallback together: the learner waits that long at most before an error.
        Once it answers, a gap of `stall_timeout` between chunks, or a whole reply longer
        than `reply_timeout`, ends it as stopped part-way (what came is kept)."""
        self.name = model
        self.api_key = api_key
        self.api_base = api_base
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.fallback = fallback

    def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        return max(
            _cost(model, prompt_tokens, completion_tokens)
            for model in (self.name, self.fallback)
            if model
        )

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
        elif self.api_base:
            # A local OpenAI-compatible server needs no key, but the OpenAI SDK refuses
            # to start without one ("Missing credentials"): any placeholder will do.
            kwargs["api_key"] = "no-key-needed"
        if self.api_base:
            kwargs["api_base"] = self.api_base
        attempt = 0
        fallback = self.fallback
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_token_timeout
        while True:
            try:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the awaited step completes, and the
                # learner's browser going away must always stop the upstream request.
                async with asyncio.timeout_at(deadline):
                    response = await litellm.acompletion(**kwargs)
                    iterator = response.__aiter__()
                    # Retrying is only safe before anything reached the student.
                    first = await iterator.__anext__()
                break
            except TimeoutError as exc:
                if loop.time() >= deadline:
                    raise FirstTokenTimeout("the model did not start answering in time") from exc
                if attempt >= self.retries:
                    if fallback:
                        kwargs["model"], fallback, attempt = fallback, None, 0
                        continue
                    raise FirstTokenTimeout("the model did not start answering in time") from exc
            except Exception as exc:
                problem = _account_problem(exc)
                if problem is not None:
                    # Lens's account with this vendor (key, permissions, quota, billing):
                    # asking again will not help. The fallback may be another account.
                    if fallback:
                        log.error("llm.account_problem", model=kwargs["model"], error=problem)
                        kwargs["model"], fallback, attempt = fallback, None, 0
                        continue
                    raise ProviderAccountProblem(f"{kwargs['model']}: {problem}") from exc
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
        ends = loop.time() + self.reply_timeout
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
                    wait = min(self.stall_timeout, ends - loop.time())
                    if wait <= 0:
                        raise StoppedAnswering("the reply took longer than allowed")
                    async with asyncio.timeout(wait):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    if loop.time() >= ends:
                        raise StoppedAnswering("the reply took longer than allowed") from exc
                    raise StoppedAnswering("the model stopped answering part-way") from exc
        except asyncio.CancelledError:
            close = getattr(response, "aclose", None)
            if close is not None:
                await close()  # the browser left: stop the upstream request too
            raise
        except StoppedAnswering:
            close = getattr(response, "aclose", None)
            if close is not None:
                await close()
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        # Priced as the model that answered: after a fallback, not the configured one.
        answered = str(kwargs["model"])
        yield Usage(
            prompt_tokens,
            completion_tokens,
            _cost(answered, prompt_tokens, completion_tokens),
            model=answered,
        )


def _litellm() -> Any:
    # Never fetch the price list from the internet at import; use the bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    return litellm


def _account_problem(exc: BaseException) -> str | None:
    """What the vendor said, when it refused Lens's account rather than the request: a key
    it does not accept (401), no permission (403), payment needed (402, Anthropic's
    billing_error), or OpenAI's 429 `insufficient_quota` (quota or billing: a rate limit
    that waiting does not lift, unlike its `rate_limit_exceeded`)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = ""
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("type") or "")
    if code == "insufficient_quota" or '"insufficient_quota"' in str(exc):
        return f"quota or billing needs attention (insufficient_quota): {_vendor_message(exc)}"
    if status is not None and int(status) in (401, 402, 403):
        return f"{type(exc).__name__} (HTTP {status}): {_vendor_message(exc)}"
    return None


def _vendor_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    found = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', str(exc))
    return (found.group(1) if found else str(exc))[:300]


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
