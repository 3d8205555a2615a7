"""The chat vendors' descriptions applied to the fake chat servers (OpenAI, Anthropic, Gemini).

The fakes are HTTP servers on loopback (tests/integrations/fake_openai.py,
tests/integrations/recorded_exchanges.py), since Lens's model client (litellm) speaks HTTP
itself. Each turns what it receives into an `httpx.Request` and what it answers into an
`httpx.Response`, and runs them through `checked(vendor, handler)`:

- requests: OpenAI's `post /chat/completions` (`CreateChatCompletionRequest`) and
  Anthropic's `post /v1/messages` (`CreateMessageParams`) through `Contract.load(vendor)`
  (../validator.py); Gemini's `models.streamGenerateContent` / `generateContent` through
  its discovery document (gemini/check.py), with `alt=sse`, the streaming framing
  gemini/FORMAT.md documents outside the discovery document;
- streamed answers event by event: OpenAI's chunks are `CreateChatCompletionStreamResponse`
  and the usage comes only when the request asked (`stream_options.include_usage`), on a
  last chunk whose `choices` is empty, with `usage: null` on every chunk before it;
  Anthropic's events are `MessageStreamEvent` (plus `ping`, and `error` as
  `ErrorResponse`, from its streaming guide: anthropic/FORMAT.md); Gemini's are
  `GenerateContentResponse` or Google's error envelope;
- JSON answers: a status the description lists through the description; the error
  statuses the vendors document elsewhere (OpenAI's error-codes guide and its SDK's status
  table, Anthropic's errors page: 500, 504, 529) only with the vendor's error body.

A mismatch raises ContractViolation and is recorded in VIOLATIONS (the servers run in
their own threads, so it is the autouse fixture in tests/conftest.py that fails the test).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.contracts.gemini import check as gemini
from tests.contracts.validator import Contract, Operation

Handler = Callable[[httpx.Request], httpx.Response]
ORIGINS = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
# OpenAI lists no error status on its operations: its error-codes guide has 401, 403,
# 429, 500 and 503, and its SDK (openai-python `_make_status_error`) maps 400, 404, 409
# and 422 as well.
OPENAI_ERRORS = {400, 401, 403, 404, 409, 422, 429, 500, 503}
# Anthropic's operation lists `4XX`; its errors page adds 500 api_error, 504 timeout_error
# and 529 overloaded_error.
ANTHROPIC_ERRORS = {500, 504, 529}
_GEMINI_PATH = re.compile(r"^/v1beta/models/[^/:]+:(streamGenerateContent|generateContent)$")


def fail(vendor: str, what: str, detail: str) -> None:
    if vendor == "gemini":
        gemini._fail(what, detail)
    else:
        Contract.load(vendor).fail(what, detail)


def checked(vendor: str, handler: Handler) -> Handler:
    """`handler` with what it receives and answers checked against `vendor`'s description.
    The answer must be complete (`content=`): a stream is checked event by event."""

    def check(request: httpx.Request) -> httpx.Response:
        operation = check_request(vendor, request)
        response = handler(request)
        check_answer(vendor, request, operation, response)
        return response

    return check


def as_request(method: str, vendor: str, target: str, headers: Any, body: bytes) -> httpx.Request:
    """What a loopback server received, as the request the vendor would have received."""
    pairs = list(headers.items())  # http.server's headers are an email Message
    return httpx.Request(method, ORIGINS[vendor] + target, headers=pairs, content=body)


# -- requests ------------------------------------------------------------------------------


def check_request(vendor: str, request: httpx.Request) -> Operation | None:
    if vendor != "gemini":
        return Contract.load(vendor).check_request(request)
    what = f"{request.method} {request.url.path} request"
    if request.method != "POST" or not _GEMINI_PATH.match(request.url.path):
        fail(vendor, what, "no such method in the discovery document")
    documented = gemini.document()["parameters"]
    for name, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
        if name not in documented:
            fail(vendor, what, f"query parameter {name!r} is not documented")
        elif name == "alt" and value not in [*documented["alt"]["enum"], "sse"]:
            fail(vendor, what, f"alt={value!r} is neither documented nor the SSE framing")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip()
    if kind != "application/json":
        fail(vendor, what, f"the body is sent as {kind!r}, not application/json")
    gemini.check_request(json.loads(request.content), what)
    return None


# -- answers -------------------------------------------------------------------------------


def check_answer(
    vendor: str, request: httpx.Request, operation: Operation | None, response: httpx.Response
) -> None:
    response.read()
    status = response.status_code
    what = f"{vendor} {request.method} {request.url.path} answer {status}"
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip()
    if kind == "text/event-stream":
        if status != 200:
            fail(vendor, what, "a stream comes only with 200")
        check_stream(vendor, request, response.content, what)
        return
    if kind != "application/json":
        fail(vendor, what, f"content type {kind!r}: the vendor answers JSON or a stream")
    body = json.loads(response.content) if response.content else None
    if vendor == "gemini":
        if status >= 400:
            gemini.check_error(body, what)
            if body["error"]["code"] != status:
                fail(vendor, what, f"error.code {body['error']['code']} is not the status")
        elif status == 200:
            gemini.check_chunk(body, what)
        else:
            fail(vendor, what, f"status {status} is not documented")
        return
    contract = Contract.load(vendor)
    assert operation is not None
    outside = OPENAI_ERRORS if vendor == "openai" else ANTHROPIC_ERRORS
    if contract.documents(operation, status):
        contract.check_response(operation, response)
    elif status in outside:
        contract.check_schema(body, "ErrorResponse", what)
    else:
        fail(vendor, what, f"status {status} is documented neither in the description nor docs")


def events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event."""
    text = body.decode().replace("\r\n", "\n")
    out = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").strip())
        if data:
            out.append((name, "\n".join(data)))
    return out


def check_stream(vendor: str, request: httpx.Request, body: bytes, what: str) -> None:
    got = events(body)
    if vendor == "openai":
        asked = json.loads(request.content) if request.content else {}
        check_openai_stream([data for _, data in got], asked, what)
        return
    for name, data in got:
        value = json.loads(data)
        if vendor == "anthropic":
            if not isinstance(value, dict) or name != value.get("type"):
                fail(vendor, what, f"event {name!r} carries data of type {value!r:.80}")
            elif name == "ping":
                if value != {"type": "ping"}:
                    fail(vendor, what, f"a ping with more than its type: {value}")
            else:
                schema = "ErrorResponse" if name == "error" else "MessageStreamEvent"
                Contract.load(vendor).check_schema(value, schema, f"{what} event {name}")
        elif isinstance(value, dict) and "error" in value:
            gemini.check_error(value, f"{what} error event")
        else:
            gemini.check_chunk(value, f"{what} chunk")


def check_openai_stream(datas: list[str], asked: dict[str, Any], what: str) -> None:
    """OpenAI's chat stream: chunks, then `[DONE]`; an error ends it early. Usage only
    when asked, on a last chunk of its own (empty `choices`), `null` on the chunks before."""
    openai = Contract.load("openai")
    chunks: list[dict[str, Any]] = []
    done = False
    for data in datas:
        if done:
            fail("openai", what, "data after [DONE]")
        if data == "[DONE]":
            done = True
            continue
        value = json.loads(data)
        if isinstance(value, dict) and "error" in value:
            openai.check_schema(value, "ErrorResponse", f"{what} error event")
            return  # the stream ends there, without its usage
        openai.check_schema(value, "CreateChatCompletionStreamResponse", f"{what} chunk")
        chunks.append(value)
    with_usage = bool((asked.get("stream_options") or {}).get("include_usage"))
    if not with_usage:
        if any("usage" in chunk for chunk in chunks):
            fail("openai", what, "`usage` in a stream that did not ask for it (include_usage)")
        return
    if not done:
        return  # cut short: the usage chunk may never come
    *before, last = chunks or [{}]
    if last.get("choices") != [] or not last.get("usage"):
        fail("openai", what, "the usage asked for comes on a last chunk with empty `choices`")
    for chunk in before:
        if chunk.get("usage") is not None or "usage" not in chunk:
            fail("openai", what, "`usage: null` on every chunk before the last one")
        if not chunk.get("choices"):
            fail("openai", what, "only the last chunk (the usage) has empty `choices`")
