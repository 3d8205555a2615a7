"""Request id and request log, as plain ASGI middleware (no per-request overhead of
BaseHTTPMiddleware, and streaming responses pass straight through)."""

from __future__ import annotations

import itertools
import re
import secrets
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lens.logging import log_request

_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{8,128}$")
# A new request's id: this process's random prefix and a count (unique without a call
# to the system's random source per request).
_PREFIX = secrets.token_hex(8)
_COUNT = itertools.count(1)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        # Keep a load balancer's id so one request can be followed across systems.
        request_id = incoming if _VALID_ID.match(incoming) else f"{_PREFIX}{next(_COUNT):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if path not in ("/healthz", "/readyz") and not path.startswith("/static/"):
                log_request(
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            structlog.contextvars.clear_contextvars()


class HeadAsGetMiddleware:
    """`HEAD` is answered wherever `GET` is (FastAPI routes declare GET only): the request
    runs as a GET and the body is dropped, headers (Content-Length included) kept.

    Not under /auth/: a sign-in's GET steps use up single-use state, and a link checker's
    HEAD must not (those answer 405 to HEAD, as before)."""

    SKIP = ("/auth/",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or scope["path"].startswith(self.SKIP)
        ):
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body":
                if ended or message.get("more_body", False):
                    return
                ended = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
