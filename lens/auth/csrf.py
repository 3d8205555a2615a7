"""Cross-site request forgery: a state-changing request must come from this site.

Browsers send `Origin` on every cross-site POST (and `Referer` nearly always); a request
whose Origin or Referer names another site is refused. A cookie-authenticated request
with neither is refused too. Endpoints authenticated otherwise (the GitHub webhook,
signed by HMAC) are exempt.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# The unsubscribe link carries its own signature; mail clients POST to it (RFC 8058).
EXEMPT_PATHS = frozenset({"/api/content/webhook", "/notifications/unsubscribe"})


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_origins: set[str]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}

    def _allowed(self, scope: Scope, origin: str) -> bool:
        if origin in self.allowed:
            return True
        # The site as this request reached it (behind the public URL, or in tests).
        host = next((v.decode() for k, v in scope["headers"] if k == b"host"), "")
        return origin in {f"{scope.get('scheme', 'http')}://{host}".lower()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in EXEMPT_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        referer_origin = _origin_of(headers["referer"]) if "referer" in headers else None
        has_cookie = "session=" in headers.get("cookie", "")
        problem = None
        if origin and origin != "null":
            if not self._allowed(scope, origin.lower()):
                problem = "comes from another site"
        elif referer_origin:
            if not self._allowed(scope, referer_origin):
                problem = "comes from another site"
        elif has_cookie or origin == "null":
            problem = "does not say where it comes from"
        if problem is None:
            await self.app(scope, receive, send)
            return
        message = f"Refused: this request {problem}. Reload the page and try again."
        if scope["path"].startswith("/api"):
            response: JSONResponse | PlainTextResponse = JSONResponse(
                {"error": {"status": 403, "message": message}}, status_code=403
            )
        else:
            response = PlainTextResponse(message, status_code=403)
        await response(scope, receive, send)
