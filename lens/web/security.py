"""Security headers on every response (plain ASGI middleware, like the request context).

- No page of Lens may be framed by another site (`X-Frame-Options: DENY` and CSP
  `frame-ancestors 'none'`): a hidden frame cannot trick a click on "delete my account".
- A strict Content-Security-Policy: scripts and styles only from Lens's own files, no
  inline script, no inline style attribute; images from anywhere over https (course
  content embeds them), frames only from YouTube's privacy-enhanced host (course videos).
- `Referrer-Policy`, `X-Content-Type-Options`, `Permissions-Policy` (the microphone for the
  tutor's speech input, nothing else), `Cross-Origin-Opener-Policy`.
- `Strict-Transport-Security` when the site is served over https in production.

A response that sets one of these itself (a page that needs a different policy) keeps
its own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

YOUTUBE = "https://www.youtube-nocookie.com"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        f"frame-src {YOUTUBE}",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)

PERMISSIONS_POLICY = (
    "microphone=(self), camera=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=(), browsing-topics=()"
)

HSTS = "max-age=31536000; includeSubDomains"


def security_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = security_headers(hsts=hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
