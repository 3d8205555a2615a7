"""The vendors Lens names, spoken to directly: each one's streaming HTTP API (sent by
lens.integrations.llm.connections).

Anthropic (Messages API), OpenAI and any OpenAI-compatible server (Chat Completions),
and Google Gemini (generateContent over server-sent events). Each route builds the
request its vendor documents and reads its stream into text and token counts; the
policy around it (first-token deadline, retries, fallback, stall and reply limits,
cancellation, price) is `lens.integrations.llm.client.PolicyModel`'s, shared with the
litellm route for any other model string.

Why not litellm for these: under a live session's burst (200 streams started together)
litellm spent 75-115 ms of CPU per exchange on this 2-core machine and the provider never
saw more than 44 streams at once; a plain HTTP stream costs a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem

ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
OPENAI_BASE = "https://api.openai.com/v1"
GEMINI_BASE = "https://generativelanguage.googleapis.com/v1beta"

VENDORS = ("anthropic", "openai", "gemini")


class ProviderUnavailable(IntegrationUnavailable):
    """The vendor could not answer now (overloaded, rate-limited, 5xx, network): asking
    again, or the fallback, may help."""


class ProviderRefused(IntegrationRejected):
    """The vendor refused this request (a 4xx that is not about Lens's account)."""


@dataclass
class Counts:
    """Token counts as the stream reports them (the last report wins per field)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Request:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Route:
    """One vendor's wire format."""

    vendor: str
    name: str  # the model's name at the vendor (without the `vendor/` prefix)
    api_key: str | None
    api_base: str | None = None
    counts: Counts = field(default_factory=Counts)

    def request(self, *, system: str, messages: list[dict[str, str]], max_tokens: int) -> Request:
        raise NotImplementedError

    def texts(self, event: str, data: Any) -> list[str]:
        """The text in one server-sent event (updating `counts`); raises on an error
        event."""
        raise NotImplementedError


class AnthropicRoute(Route):
    def request(self, *, system: str, messages: list[dict[str, str]], max_tokens: int) -> Request:
        base = (self.api_base or ANTHROPIC_BASE).rstrip("/")
        return Request(
            url=f"{base}/v1/messages",
            headers={
                "x-api-key": self.api_key or "",
                "anthropic-version": ANTHROPIC_VERSION,
                "content-type": "application/json",
                "accept": "text/event-stream",
            },
            body={
                "model": self.name,
                "max_tokens": max_tokens,
                "system": system,
                "messages": _alternating(messages),
                "stream": True,
            },
        )

    def texts(self, event: str, data: Any) -> list[str]:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [str(delta["text"])]
        elif kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.counts.prompt_tokens = _prompt_tokens_anthropic(usage)
            self.counts.completion_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            if usage.get("output_tokens") is not None:
                self.counts.completion_tokens = int(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                self.counts.prompt_tokens = _prompt_tokens_anthropic(usage)
        elif kind == "error" or event == "error":
            raise stream_error(self.vendor, data)
        return []


def _prompt_tokens_anthropic(usage: dict[str, Any]) -> int:
    # Cached prompt tokens are billed too (cheaper; counted in full here, never less).
    return sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


class OpenAIRoute(Route):
    def request(self, *, system: str, messages: list[dict[str, str]], max_tokens: int) -> Request:
        base = (self.api_base or OPENAI_BASE).rstrip("/")
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        # A local OpenAI-compatible server needs no key: then no Authorization at all.
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        limit = "max_tokens" if self.api_base else "max_completion_tokens"
        return Request(
            url=f"{base}/chat/completions",
            headers=headers,
            body={
                "model": self.name,
                "messages": [{"role": "system", "content": system}, *messages],
                "stream": True,
                "stream_options": {"include_usage": True},
                # OpenAI's own API takes max_completion_tokens (max_tokens is refused by
                # its reasoning models); OpenAI-compatible servers know max_tokens.
                limit: max_tokens,
            },
        )

    def texts(self, event: str, data: Any) -> list[str]:
        if not isinstance(data, dict):
            return []
        if data.get("error"):
            raise stream_error(self.vendor, data)
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.counts.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.counts.completion_tokens = int(usage.get("completion_tokens") or 0)
        out = []
        for choice in data.get("choices") or []:
            text = ((choice or {}).get("delta") or {}).get("content")
            if text:
                out.append(str(text))
        return out


class GeminiRoute(Route):
    def request(self, *, system: str, messages: list[dict[str, str]], max_tokens: int) -> Request:
        base = (self.api_base or GEMINI_BASE).rstrip("/")
        return Request(
            url=f"{base}/models/{quote(self.name, safe='.-_')}:streamGenerateContent?alt=sse",
            headers={
                "x-goog-api-key": self.api_key or "",
                "content-type": "application/json",
                "accept": "text/event-stream",
            },
            body={
                "systemInstruction": {"parts": [{"text": system}]},
                "contents": [
                    {
                        "role": "model" if m["role"] == "assistant" else "user",
                        "parts": [{"text": m["content"]}],
                    }
                    for m in _alternating(messages)
                ],
                "generationConfig": {"maxOutputTokens": max_tokens},
            },
        )

    def texts(self, event: str, data: Any) -> list[str]:
        if not isinstance(data, dict):
            return []
        if data.get("error"):
            raise stream_error(self.vendor, data)
        usage = data.get("usageMetadata")
        if isinstance(usage, dict):
            self.counts.prompt_tokens = int(usage.get("promptTokenCount") or 0)
            # Thinking is billed as output.
            self.counts.completion_tokens = int(usage.get("candidatesTokenCount") or 0) + int(
                usage.get("thoughtsTokenCount") or 0
            )
        out = []
        for candidate in data.get("candidates") or []:
            for part in ((candidate or {}).get("content") or {}).get("parts") or []:
                if isinstance(part, dict) and part.get("text") and not part.get("thought"):
                    out.append(str(part["text"]))
        return out


ROUTES: dict[str, type[Route]] = {
    "anthropic": AnthropicRoute,
    "openai": OpenAIRoute,
    "gemini": GeminiRoute,
}


def route_for(model: str, *, api_key: str | None, api_base: str | None) -> Route | None:
    """The direct route for `vendor/name`, or None for a model string litellm must serve."""
    vendor, sep, name = model.partition("/")
    cls = ROUTES.get(vendor.lower()) if sep else None
    if cls is None or not name:
        return None
    return cls(vendor=vendor.lower(), name=name, api_key=api_key, api_base=api_base)


def _alternating(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Anthropic and Gemini want user and assistant turns to alternate, starting with
    the user: consecutive turns of one role (a reply that failed and was dropped) are
    joined."""
    out: list[dict[str, str]] = []
    for m in messages:
        role = "assistant" if m["role"] == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1] = {"role": role, "content": out[-1]["content"] + "\n\n" + m["content"]}
        elif not out and role == "assistant":
            continue
        else:
            out.append({"role": role, "content": m["content"]})
    return out


# -- errors ------------------------------------------------------------------------------


def http_error(vendor: str, status: int, body: bytes) -> Exception:
    """The exception for a vendor's error answer (before any text was streamed)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    kind, message = _error_fields(data)
    if not message:
        message = body[:300].decode("utf-8", "replace").strip() or f"HTTP {status}"
    said = f"{vendor} HTTP {status}{f' {kind}' if kind else ''}: {message[:300]}"
    if kind == "insufficient_quota":
        return ProviderAccountProblem(f"quota or billing needs attention ({said})")
    if status in (401, 402, 403) or kind in ("authentication_error", "permission_error",
                                            "billing_error"):  # fmt: skip
        return ProviderAccountProblem(said)
    if _google_reasons(data) & {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED",
                                "API_KEY_HTTP_REFERRER_BLOCKED", "BILLING_DISABLED"}:  # fmt: skip
        return ProviderAccountProblem(said)  # Google says a bad key with a 400
    if kind in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return ProviderAccountProblem(said)
    if status == 400 and "credit balance" in message.lower():
        return ProviderAccountProblem(said)  # Anthropic: the account has no credit left
    if status == 404 or kind == "not_found_error":
        # Usually LLM_PROVIDER names a model this vendor does not have: a person must fix it.
        return ProviderAccountProblem(f"the model was not found ({said})")
    if status in (408, 409, 429) or status >= 500:
        return ProviderUnavailable(said)
    return ProviderRefused(said)


def _google_reasons(data: Any) -> set[str]:
    """The `reason`s of a Google error's ErrorInfo details."""
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return {str(d.get("reason")) for d in details or [] if isinstance(d, dict) and d.get("reason")}


def stream_error(vendor: str, data: Any) -> Exception:
    """An error reported inside the stream (Anthropic's `error` event, or an error object
    in a chunk): the vendor gave up part-way."""
    kind, message = _error_fields(data)
    said = f"{vendor} stream error{f' {kind}' if kind else ''}: {(message or '')[:300]}"
    if kind in ("authentication_error", "permission_error", "billing_error"):
        return ProviderAccountProblem(said)
    if kind in ("invalid_request_error", "INVALID_ARGUMENT"):
        return ProviderRefused(said)
    return ProviderUnavailable(said)


def _error_fields(data: Any) -> tuple[str, str]:
    """(kind, message) from the vendors' error bodies: Anthropic {"type": "error",
    "error": {"type", "message"}}, OpenAI {"error": {"message", "type", "code"}}, Google
    {"error": {"code", "message", "status"}} (or a list of one)."""
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error")
    if not isinstance(error, dict):
        return str(data.get("type") or ""), str(data.get("message") or "")
    kind = error.get("code") if isinstance(error.get("code"), str) else None
    kind = kind or error.get("status") or error.get("type") or ""
    return str(kind), str(error.get("message") or "")


class SSEReader:
    """Server-sent events from a streamed response, read a network chunk at a time: every
    event complete in what has arrived comes back together, so when Lens is busy and
    tokens pile up they are handled (and sent on to the learner) as one, not one by one.
    `[DONE]` ends the stream; data that is not JSON (a keep-alive) is skipped."""

    def __init__(self, response: Any) -> None:
        """`response`: anything with `aiter_bytes()` (lens.integrations.llm.connections'
        Response, or httpx's)."""
        # aiter_bytes, not aiter_raw: a compressed stream (Content-Encoding) is decoded.
        self.chunks = response.aiter_bytes().__aiter__()
        self.buffer = b""
        self.event = ""
        self.data: list[bytes] = []
        self.done = False

    async def next_events(self) -> list[tuple[str, Any]]:
        """The events complete so far (at least one); StopAsyncIteration at the end."""
        while not self.done:
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                self.done = True
                chunk = b"\n\n"  # whatever was left is an event
            out = self._feed(chunk)
            if out:
                return out
        raise StopAsyncIteration

    async def finish(self, seconds: float) -> None:
        """After `[DONE]`: read what is left of the body (the chunked encoding's last
        chunk, which a vendor sends right after), so that its connection is known to be
        at the end of the answer and can carry the next request. Given up after
        `seconds`; the connection is then closed rather than kept."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(seconds):
                async for _ in self.chunks:
                    pass

    def _feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out: list[tuple[str, Any]] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if line:
                if line.startswith(b":"):
                    continue  # a comment
                name, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if name == b"event":
                    self.event = value.decode("utf-8", "replace")
                elif name == b"data":
                    self.data.append(value)
                continue
            if self.data:
                payload = b"\n".join(self.data)
                if payload.strip() == b"[DONE]":
                    self.done = True
                    return out
                with contextlib.suppress(ValueError):  # not JSON: a keep-alive
                    out.append((self.event or "message", json.loads(payload)))
            self.event, self.data = "", []
        return out
