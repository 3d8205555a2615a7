"""SendGrid's v3 mail/send, faked at the HTTP layer and held to SendGrid's description.

Like the real API it refuses a request without the account's key (401), answers 202 with
no body when it accepts a message, and answers errors as `{"errors": [{"message",
"field"}]}`. Every request and answer goes through `Contract.load("sendgrid")`; the one
status SendGrid documents outside its OpenAPI file, 429 (its rate-limits page:
`{"errors": [{"field": null, "message": "too many requests"}]}`), is checked against the
description's `ErrorResponse`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.contracts.validator import Contract

CONTRACT = Contract.load("sendgrid")
URL = "https://api.sendgrid.com/v3/mail/send"


def _error_body(response: httpx.Response, what: str) -> None:
    """SendGrid documents 429 in its docs, not in its description: the usual error body."""
    CONTRACT.check_schema(response.json() if response.content else None, "ErrorResponse", what)


UNDOCUMENTED = {429: _error_body}
UNAUTHORIZED = {
    "errors": [
        {
            "field": None,
            "message": "The provided authorization grant is invalid, expired, or revoked",
        }
    ]
}
TOO_MANY_REQUESTS = {"errors": [{"field": None, "message": "too many requests"}]}


def error(message: str, field: str | None = None) -> dict[str, Any]:
    """A SendGrid error body with one error."""
    return {"errors": [{"message": message, "field": field}]}


def authorized(headers: Any, api_key: str | None) -> bool:
    value = str(headers.get("authorization") or "")
    scheme, _, key = value.partition(" ")
    return scheme == "Bearer" and bool(key) and (api_key is None or key == api_key)


def check_send(payload: dict[str, Any], *, api_key: str = "SG.test-key") -> None:
    """The request SendGridSender would make for `payload`, checked against SendGrid's
    description (for fakes that stand in for the sender rather than the API)."""
    CONTRACT.check_request(
        httpx.Request("POST", URL, json=payload, headers={"Authorization": f"Bearer {api_key}"})
    )


@dataclass
class FakeSendGrid:
    """`answers` are (status, body) answered first, one per request; then 202."""

    api_key: str | None = "SG.test-key"  # None: any bearer key is accepted
    answers: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not authorized(request.headers, self.api_key):
            return httpx.Response(401, json=UNAUTHORIZED)
        if self.answers:
            status, body = self.answers.pop(0)
            return httpx.Response(status, json=body) if body is not None else httpx.Response(status)
        self.accepted.append(json.loads(request.content))
        return httpx.Response(202)

    def handler(self) -> Any:
        return CONTRACT.checked(self.handle, outside=UNDOCUMENTED)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler())
