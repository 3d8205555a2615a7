"""OpenAI's error bodies (its `Error` object: message, type, param, code) as its API
sends them, for the fakes of its chat and transcription endpoints."""

from __future__ import annotations

from typing import Any

INSUFFICIENT_QUOTA = {
    "message": "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "type": "insufficient_quota",
    "param": None,
    "code": "insufficient_quota",
}


def errors(model: str, *, limit: int, bad_request: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The body for each status a fake answers: `bad_request` for 400, the rate limit of
    `model` at `limit` requests a minute for 429."""
    return {
        400: bad_request,
        401: {
            "message": "Incorrect API key provided: sk-wrong. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
        429: {
            "message": f"Rate limit reached for {model} in organization org-lens on requests "
            f"per min (RPM): Limit {limit}, Used {limit}, Requested 1.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        500: {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
        503: {
            "message": "The server is overloaded or not ready yet.",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    }
