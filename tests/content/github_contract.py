"""GitHub's description (tests/contracts/github) applied to the GitHub fakes.

Every request a GitHub fake receives, and every answer it gives, goes through
`Contract.load("github").checked(...)`. Two things the description cannot check are
checked here from GitHub's own docs (tests/contracts/github/FACTS.md, facts.json):

- rate-limit answers: "If you exceed your primary rate limit, you will receive a 403 or
  429 response" (and likewise for secondary limits) holds for every operation, but the
  description lists 403 for none of the four Lens calls but contents, and 429 for none;
- the push webhook's payload, a request to Lens (`x-webhooks.push`), not to GitHub.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.contracts.validator import Contract

FACTS = json.loads((Path(__file__).parents[1] / "contracts" / "github" / "facts.json").read_text())

Handler = Callable[[httpx.Request], httpx.Response]


def contract() -> Contract:
    return Contract.load("github")


def _fail(what: str, detail: str) -> None:
    contract().fail(what, detail)


def checked(handler: Handler, *, limit: Handler | None = None) -> Handler:
    """A MockTransport handler: every request is checked against the description; the
    answer of `limit` (a rate limit, or None to let `handler` answer) against GitHub's
    rate-limit docs, any other answer against the description."""
    github = contract()
    if limit is None:
        return github.checked(handler)

    def check(request: httpx.Request) -> httpx.Response:
        operation = github.check_request(request)
        answer = limit(request)
        if answer is not None:
            check_rate_limit(answer, f"{request.method} {operation.template}")
            return answer
        response = handler(request)
        github.check_response(operation, response)
        return response

    return check


# -- rate limits ---------------------------------------------------------------------


def check_rate_limit(response: httpx.Response, what: str) -> None:
    """A rate-limit answer as GitHub's docs describe it: 403 or 429; a `basic-error`
    body; and `retry-after`, or `x-ratelimit-remaining: 0` with `x-ratelimit-reset`, or
    a message that says it is a secondary rate limit."""
    primary, secondary = FACTS["primary_rate_limit"], FACTS["secondary_rate_limit"]
    what = f"{what} rate-limit answer {response.status_code}"
    if response.status_code not in {*primary["exceeded_status"], *secondary["exceeded_status"]}:
        _fail(what, "a rate limit is a 403 or a 429")
    body = json.loads(response.content)
    contract().check_schema(body, "basic-error", what)
    headers = response.headers
    for name in ("retry-after", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-limit"):
        if name in headers and not headers[name].isdigit():
            _fail(what, f"{name} is not a whole number: {headers[name]!r}")
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    if exhausted and "x-ratelimit-reset" not in headers:
        _fail(what, "x-ratelimit-remaining: 0 without x-ratelimit-reset")
    says_secondary = "secondary rate limit" in body.get("message", "")
    if not ("retry-after" in headers or exhausted or says_secondary):
        _fail(what, "neither retry-after, nor remaining 0, nor a secondary-limit message")


# -- the push webhook ------------------------------------------------------------------


def check_push_delivery(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A push delivery as the description's `x-webhooks.push` has it: its headers (all
    strings) and a JSON body that fits `webhook-push`. Returns the payload."""
    operation = contract().spec["x-webhooks"]["push"]["post"]
    documented = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
    sent = {name.lower() for name in headers}
    missing = sorted(documented - sent)
    if missing:
        _fail("push delivery", f"headers the description lists are missing: {missing}")
    if headers.get("X-GitHub-Event", headers.get("x-github-event")) != "push":
        _fail("push delivery", "X-GitHub-Event is not push")
    payload = json.loads(body)
    contract().check_at(
        payload,
        *("x-webhooks", "push", "post", "requestBody", "content", "application/json", "schema"),
        what="push delivery body",
    )
    return payload
