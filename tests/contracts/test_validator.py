"""The validator's own features (tests/contracts/validator.py), each on the vendor
description that needs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.contracts.validator import VIOLATIONS, Contract, ContractViolation

GITHUB = "https://api.github.com/repos/lens-test/course-content"
DISCORD = "https://discord.com/api/v10"
SENDGRID = "https://api.sendgrid.com/v3/mail/send"
MAIL = {
    "personalizations": [{"to": [{"email": "ada@example.org"}]}],
    "from": {"email": "team@lens.example.org"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


def violates(check: Callable[[], Any], match: str) -> None:
    """`check` raises ContractViolation matching `match`; the violation it recorded is
    taken back, as it was meant (the autouse fixture fails a test on any left)."""
    with pytest.raises(ContractViolation, match=match) as caught:
        check()
    VIOLATIONS.remove(str(caught.value))


def test_parameters_named_by_ref_are_followed() -> None:
    github = Contract.load("github")
    # compare's `page` and `per_page` are `$ref: #/components/parameters/...`. The
    # description types per_page as an integer (its "max 100" is prose, and GitHub caps a
    # larger one rather than refusing it), so what the schema refuses is a non-integer.
    operation = github.check_request(httpx.Request("GET", f"{GITHUB}/compare/a...b?per_page=100"))
    assert operation.template == "/repos/{owner}/{repo}/compare/{basehead}"
    violates(
        lambda: github.check_request(httpx.Request("GET", f"{GITHUB}/compare/a...b?per_page=x")),
        "compare/{basehead} request query per_page: at \\(top\\): 'x' is not of type 'integer'",
    )
    violates(
        lambda: github.check_request(httpx.Request("GET", f"{GITHUB}/compare/a...b?limit=5")),
        "query parameter 'limit' is not documented",
    )


def test_answers_named_by_ref_are_followed() -> None:
    # SendGrid's 400 is `$ref: #/components/responses/PostMailSend400`.
    sendgrid = Contract.load("sendgrid")
    send = httpx.Request("POST", SENDGRID, json=MAIL)
    sendgrid.checked(lambda r: httpx.Response(400, json={"errors": [{"message": "m"}]}))(send)
    violates(
        lambda: sendgrid.checked(lambda r: httpx.Response(400, json={"errors": "m"}))(send),
        "answer 400: at errors: 'm' is not of type 'array'",
    )


def test_a_multi_segment_path_parameter_spans_several_segments() -> None:
    github = Contract.load("github")
    operation = github.check_request(httpx.Request("GET", f"{GITHUB}/contents/a/b/c.md?ref=main"))
    assert operation.template == "/repos/{owner}/{repo}/contents/{path}"
    # A parameter without `x-multi-segment` (owner, repo) stays one segment.
    violates(
        lambda: github.check_request(
            httpx.Request("GET", "https://api.github.com/repos/lens/test/extra/contents/a.md")
        ),
        "GET /repos/lens/test/extra/contents/a.md: no such operation",
    )


def test_path_parameters_are_checked_against_their_schema() -> None:
    discord = Contract.load("discord")
    discord.check_request(httpx.Request("GET", f"{DISCORD}/guilds/1100000000000000000/channels"))
    violates(
        lambda: discord.check_request(httpx.Request("GET", f"{DISCORD}/guilds/lens/channels")),
        "path parameter guild_id='lens'",
    )


async def test_a_streamed_answer_is_left_for_the_code_to_read() -> None:
    # A transcription streamed as server-sent events: the check must not read the body.
    openai = Contract.load("openai")
    operation = openai.operation("POST", "/v1/audio/transcriptions")
    events = [b'data: {"type": "transcript.text.delta", "delta": "Hi"}\n\n', b"data: [DONE]\n\n"]

    async def body() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    def streamed(kind: str) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": kind}, content=body())

    answer = streamed("text/event-stream")
    openai.check_response(operation, answer)
    assert not answer.is_stream_consumed
    assert await answer.aread() == b"".join(events)
    # Status and media type are still checked.
    violates(
        lambda: openai.check_response(operation, streamed("text/html")),
        "content type 'text/html' is not documented",
    )


def test_a_status_documented_outside_the_description_passes_only_through_its_check() -> None:
    sendgrid = Contract.load("sendgrid")
    send = httpx.Request("POST", SENDGRID, json=MAIL)
    limited = {"errors": [{"field": None, "message": "too many requests"}]}

    def error_body(response: httpx.Response, what: str) -> None:
        sendgrid.check_schema(response.json(), "ErrorResponse", what)

    def answering(body: Any) -> Callable[[httpx.Request], httpx.Response]:
        return lambda request: httpx.Response(429, json=body)

    sendgrid.checked(answering(limited), outside={429: error_body})(send)
    violates(
        lambda: sendgrid.checked(answering(limited))(send),
        "answer 429: status 429 is not documented",
    )
    violates(
        lambda: sendgrid.checked(answering({"errors": "slow"}), outside={429: error_body})(send),
        "answer 429: at errors: 'slow' is not of type 'array'",
    )
    # A status the description lists is the description's to check, whatever `outside` says.
    violates(
        lambda: sendgrid.checked(
            lambda r: httpx.Response(400, json={"errors": "m"}),
            outside={400: lambda response, what: None},
        )(send),
        "answer 400: at errors",
    )
