"""Discord's fakes checked against Discord's own description (this folder).

    transport = httpx.MockTransport(checked(fake.handle))

REST routes go through `Contract.load("discord")` (../validator.py, from
openapi.excerpt.json): the operation must exist, its query and JSON body fit, and the
answer's status and JSON body fit. What that description leaves out is checked here, from
facts.json and facts_http.json (Discord's documentation, quoted in FACTS.md and
FACTS_HTTP.md):

- path parameters, which the description types (snowflakes) but the validator does not read;
- the headers every request carries: `Authorization` with a token type the operation's
  security allows (`Bot` or `Bearer`), a `DiscordBot (url, version)` User-Agent;
- 429 answers: the rate-limit body (`message`, `retry_after`, `global`, `code?`) and a
  known `X-RateLimit-Scope`. The description has no 429: its `4XX` is `ErrorResponse`,
  whose required `code` a rate-limit body lacks;
- 5xx answers: documented by status only (facts.json `http_status_codes`), any body;
- rate-limit headers on any answer: the bucket headers together and sane,
  `X-RateLimit-Scope` and `X-RateLimit-Global` on 429s only;
- POST /api/oauth2/token, which has no operation in the description: a form body with
  the grant's fields, client authentication, a PKCE verifier of 43 to 128 characters,
  and a token answer or an OAuth error JSON (`{"error", "error_description"?}`).

A mismatch raises ContractViolation inside the transport and is recorded in VIOLATIONS,
which tests/conftest.py checks after every test.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.contracts.validator import Contract, Operation

HERE = Path(__file__).parent
Handler = Callable[[httpx.Request], httpx.Response]
_BUCKET_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)
_JSON_TYPES = {"string": str, "integer": int, "float": (int, float), "boolean": bool}


@cache
def facts() -> dict[str, Any]:
    return dict(json.loads((HERE / "facts.json").read_text()))


@cache
def http_facts() -> dict[str, Any]:
    return dict(json.loads((HERE / "facts_http.json").read_text()))


def contract() -> Contract:
    return Contract.load("discord")


def fail(what: str, detail: str) -> None:
    contract().fail(what, detail)


# -- the transport ---------------------------------------------------------------------


def checked(handler: Handler) -> Handler:
    """A MockTransport handler that checks what a Discord fake receives and answers."""

    def check(request: httpx.Request) -> httpx.Response:
        if is_token_request(request):
            check_token_request(request)
            response = handler(request)
            check_token_response(response)
            return response
        operation = check_request(request)
        response = handler(request)
        check_response(operation, response)
        return response

    return check


def is_token_request(request: httpx.Request) -> bool:
    return request.url.path == http_facts()["oauth2_token"]["path"]


def check_request(request: httpx.Request) -> Operation:
    """The validator's request check (path and query parameters, body), plus headers."""
    operation = contract().check_request(request)
    what = f"{request.method} {operation.template} request"
    _check_headers(operation, request, what)
    return operation


def check_response(operation: Operation, response: httpx.Response) -> None:
    """The validator's answer check, with 429s and 5xx from the documentation."""
    what = f"{operation.method} {operation.template} answer {response.status_code}"
    check_rate_limit_headers(what, response)
    status = response.status_code
    if status == 429:
        check_rate_limited(what, response)
    elif status >= 500:
        if "5xx" not in facts()["http_status_codes"]:
            fail(what, "5xx answers are not documented")
    else:
        contract().check_response(operation, response)


# -- requests --------------------------------------------------------------------------


def _check_headers(operation: Operation, request: httpx.Request, what: str) -> None:
    headers = http_facts()["headers"]
    allowed = [
        headers["authorization"]["token_types"][scheme]
        for requirement in operation.spec.get("security") or []
        for scheme in requirement
    ]
    authorization = request.headers.get("Authorization", "")
    kind, _, token = authorization.partition(" ")
    if allowed and (kind not in allowed or not token.strip()):
        fail(what, f"Authorization must be one of {allowed} followed by a token")
    user_agent = request.headers.get("User-Agent", "")
    if not re.match(headers["user_agent"]["pattern"], user_agent):
        fail(what, f"User-Agent {user_agent!r} is not {headers['user_agent']['format']!r}")
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if request.content and kind not in headers["content_types"]:
        fail(what, f"Content-Type {kind!r} is not one Discord takes")


# -- rate limits -----------------------------------------------------------------------


def check_rate_limit_headers(what: str, response: httpx.Response) -> None:
    headers = response.headers
    present = [h for h in _BUCKET_HEADERS if h in headers]
    if present and len(present) != len(_BUCKET_HEADERS):
        missing = sorted(set(_BUCKET_HEADERS) - set(present))
        fail(what, f"rate-limit headers {present} come without {missing}")
    if present:
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            float(headers["X-RateLimit-Reset"])
            reset_after = float(headers["X-RateLimit-Reset-After"])
        except ValueError as exc:
            fail(what, f"a rate-limit header is not a number: {exc}")
            return
        if not 0 <= remaining <= limit or reset_after < 0:
            fail(what, f"rate-limit headers out of range: {dict(headers)}")
        if not headers["X-RateLimit-Bucket"]:
            fail(what, "an empty X-RateLimit-Bucket")
    if response.status_code != 429:
        for name in ("X-RateLimit-Scope", "X-RateLimit-Global"):
            if name in headers:
                fail(what, f"{name} is returned only on HTTP 429 responses")


def check_rate_limited(what: str, response: httpx.Response) -> None:
    """A 429 as Discord's Rate Limits topic documents it (facts.json `rate_limits`)."""
    documented = facts()["rate_limits"]
    kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if kind != "application/json":
        fail(what, f"a 429 comes with a JSON body, not {kind!r}")
    response.read()
    try:
        body = json.loads(response.content)
    except ValueError:
        fail(what, "a 429 body that is not JSON")
        return
    if not isinstance(body, dict):
        fail(what, "a 429 body that is not an object")
        return
    fields = documented["status_429_body"]["fields"]
    for name, field in fields.items():
        if name not in body:
            if field["required"]:
                fail(what, f"the 429 body lacks {name!r}")
            continue
        kind_ = _JSON_TYPES[field["type"]]
        if not isinstance(body[name], kind_) or (
            field["type"] != "boolean" and isinstance(body[name], bool)
        ):
            fail(what, f"the 429 body's {name!r} is not a {field['type']}")
    extra = set(body) - set(fields)
    if extra:
        fail(what, f"the 429 body has fields Discord does not document: {sorted(extra)}")
    scopes = ("user", "global", "shared")
    scope = response.headers.get("X-RateLimit-Scope")
    if scope is not None and scope not in scopes:
        fail(what, f"X-RateLimit-Scope {scope!r} is not one of {scopes}")
    is_global = response.headers.get("X-RateLimit-Global", "").lower() == "true"
    if body["global"] != is_global or (scope is not None and body["global"] != (scope == "global")):
        fail(what, "`global`, X-RateLimit-Global and X-RateLimit-Scope disagree")


# -- the OAuth2 token endpoint ---------------------------------------------------------


def check_token_request(request: httpx.Request) -> None:
    token = http_facts()["oauth2_token"]
    what = f"{request.method} {token['path']} request"
    if request.method != token["method"]:
        fail(what, f"the token endpoint takes {token['method']}")
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if kind != token["request_content_type"]:
        fail(what, f"the token endpoint takes only {token['request_content_type']}, not {kind!r}")
    user_agent = request.headers.get("User-Agent", "")
    if not re.match(http_facts()["headers"]["user_agent"]["pattern"], user_agent):
        fail(what, f"User-Agent {user_agent!r} is not DiscordBot ($url, $versionNumber)")
    form = {k: v for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
    repeated = [k for k, v in form.items() if len(v) != 1]
    if repeated:
        fail(what, f"repeated form fields {repeated}")
    fields = {k: v[0] for k, v in form.items()}
    grant = token["grant_types"].get(fields.get("grant_type", ""))
    if grant is None:
        fail(what, f"grant_type {fields.get('grant_type')!r} is not one Discord takes")
        return
    missing = [f for f in grant["required"] if not fields.get(f)]
    if missing:
        fail(what, f"missing {missing}")
    basic = _basic_client(request)
    in_body = fields.get("client_id") and fields.get("client_secret")
    if bool(basic) == bool(in_body):
        fail(what, f"client authentication: {token['client_authentication']}, exactly one")
    known = {"grant_type", "client_id", "client_secret", *grant["required"], *grant["optional"]}
    unknown = sorted(set(fields) - known)
    if unknown:
        fail(what, f"form fields the grant does not take: {unknown}")
    verifier = fields.get("code_verifier")
    if verifier is not None:
        rule = token["code_verifier"]
        if not rule["min_length"] <= len(verifier) <= rule["max_length"] or not re.match(
            rule["alphabet"], verifier
        ):
            fail(what, "code_verifier must be 43 to 128 unreserved characters (RFC 7636)")


def check_token_response(response: httpx.Response) -> None:
    token = http_facts()["oauth2_token"]
    status = response.status_code
    what = f"POST {token['path']} answer {status}"
    check_rate_limit_headers(what, response)
    if status == 429:
        check_rate_limited(what, response)
        return
    if status >= 500:
        return  # documented by status only
    if status == token["response"]["status"]:
        shape = token["response"]
    elif status in token["error"]["statuses"]:
        shape = token["error"]
    else:
        fail(what, f"status {status} is not documented for the token endpoint")
        return
    kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if kind != shape["content_type"]:
        fail(what, f"content type {kind!r}, not {shape['content_type']!r}")
    response.read()
    try:
        body = json.loads(response.content)
    except ValueError:
        fail(what, "a body that is not JSON")
        return
    if not isinstance(body, dict):
        fail(what, "a body that is not an object")
        return
    for name, type_ in shape["required"].items():
        if not isinstance(body.get(name), _type(type_)):
            fail(what, f"{name!r} must be a {type_}")
    for name, type_ in shape["optional"].items():
        if name in body and not isinstance(body[name], _type(type_)):
            fail(what, f"{name!r} must be a {type_}")
    extra = sorted(set(body) - set(shape["required"]) - set(shape["optional"]))
    if extra:
        fail(what, f"fields not documented here: {extra}")
    if shape is token["error"] and body["error"] not in token["error"]["codes"]:
        fail(what, f"error {body['error']!r} is not an OAuth 2.0 error code")


def _type(name: str) -> type | tuple[type, ...]:
    return {"string": str, "integer": int, "object": dict}[name]


def _basic_client(request: httpx.Request) -> str | None:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind != "Basic":
        return None
    try:
        return base64.b64decode(value).decode()
    except ValueError:
        return None
