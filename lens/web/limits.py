"""A size limit on request bodies, checked before anything reads them (plain ASGI).

Every request with a body may send `LENS_MAX_BODY_BYTES` (1 MB by default); a few
routes that take more say so in `overrides` (the tutor's speech upload, GitHub's
webhook). A declared Content-Length over the limit is refused at once with 413, before
a byte is read; a body sent without one (chunked) is counted as it arrives and cut off
at the limit, so no handler ever holds more than the limit in memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024 * 1024


class BodyTooLarge(HTTPException):
    """Raised by `receive` once a body passes the limit. An HTTPException, so FastAPI's
    body parsing lets it through (it turns any other error into a 400) and the app's
    error handler draws the 413 page or JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _megabytes(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n // 1024} KB"


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, limit: int, overrides: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get(scope["path"], self.limit)
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(scope, send, 400, "The Content-Length header is not a number.")
                    return
                break
        if declared is not None and (declared > limit or declared < 0):
            await _refuse(scope, send, 413, _too_large(limit))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, 413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"The request is larger than this address accepts ({_megabytes(limit)}); send less."


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """The app's own error answer (the error page, or `{"error": {...}}` for the API)."""
    from lens.web.errors import error_response

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    response = error_response(Request(scope), status=status, message=message)
    response.headers["Connection"] = "close"
    await response(scope, nothing, send)
