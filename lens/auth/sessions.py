"""The session cookie: a signed JWT (HS256) naming the user, their session version and
the session's own random id (`sid`, kept through renewals: signing out revokes it).

The middleware reads the cookie on every request (no database), renews it when more
than half of its 24 hours have passed, and clears it when a handler found it revoked.
Whether the user still exists and the version still matches is checked by
`lens.auth.deps.current_user`, which needs the database.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "session"
LIFETIME_SECONDS = 24 * 3600
# Renewal never stretches one sign-in beyond this; then the person signs in again.
MAX_SESSION_SECONDS = 30 * 24 * 3600
RENEW_AFTER_SECONDS = LIFETIME_SECONDS // 2
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    version: int
    issued_at: int
    signed_in_at: int
    session_id: str = ""  # empty in a token issued before session ids existed


def issue_token(
    secret: str,
    *,
    user_id: int,
    version: int,
    now: float | None = None,
    signed_in_at: int | None = None,
    session_id: str | None = None,
) -> str:
    """A new session's token (a new `sid`), or a renewal of one (`session_id` given)."""
    issued = int(now if now is not None else time.time())
    payload = {
        "sub": str(user_id),
        "sv": version,
        "sid": session_id or secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + LIFETIME_SECONDS,
        "auth_time": signed_in_at if signed_in_at is not None else issued,
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


# Tokens whose signature has been checked: (secret, token) -> payload, the most recent
# _VERIFIED_MAX. Each page a signed-in person opens carries the same token until it is
# renewed; checking it again cost more than the page's database read. What depends on
# the time (expiry, the longest sign-in) is still checked on every use.
_VERIFIED: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_VERIFIED_MAX = 10_000


def _verified(secret: str, token: str) -> dict[str, Any]:
    key = (secret, token)
    payload = _VERIFIED.get(key)
    if payload is None:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "exp", "iat"], "verify_exp": False},
            leeway=0,
        )
        _VERIFIED[key] = payload
        if len(_VERIFIED) > _VERIFIED_MAX:
            _VERIFIED.popitem(last=False)
    return payload


def read_token(secret: str, token: str, *, now: float | None = None) -> SessionClaims | None:
    """The claims of a valid token; None for a tampered, expired or malformed one."""
    try:
        payload = _verified(secret, token)
        at = now if now is not None else time.time()
        if int(payload["exp"]) <= at:  # as PyJWT reads it: not a number, NaN, ∞: refused
            return None
        issued = int(payload["iat"])
        signed_in = int(payload.get("auth_time", issued))
        if at - signed_in > MAX_SESSION_SECONDS:
            return None
        sid = payload.get("sid")
        if not isinstance(sid, str) or not sid:
            # A cookie from before session ids: one fixed id per sign-in, kept through
            # renewal, so signing out revokes it and every copy of it too.
            sid = f"legacy:{payload['sub']}:{signed_in}"
        return SessionClaims(int(payload["sub"]), int(payload.get("sv", 0)), issued, signed_in, sid)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError, OverflowError):
        return None


def cookie_header(
    value: str, *, secure: bool, domain: str | None, max_age: int = LIFETIME_SECONDS
) -> str:
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if domain:
        parts.append(f"Domain={domain}")
    return "; ".join(parts)


class SessionMiddleware:
    """Puts `session` (SessionClaims or None) in request.state; renews or clears the cookie.

    A handler that signs someone in or out sets `request.state.set_session` to a new
    token or to "" (clear); the middleware writes the cookie on the way out.
    """

    def __init__(self, app: ASGIApp, *, secret: Any, secure: bool, domain: str | None) -> None:
        self.app = app
        self.secret = secret  # a callable: the secret is only known once the app starts
        self.secure = secure
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secret: str = self.secret()
        state = scope.setdefault("state", {})
        claims = None
        raw = _cookie(scope)
        if raw:
            claims = read_token(secret, raw)
        state["session"] = claims
        state["session_cookie_present"] = bool(raw)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                new = state.get("set_session")
                if new is not None:
                    if new == "":
                        headers.append("set-cookie", self._header("", max_age=0))
                    else:
                        headers.append("set-cookie", self._header(new))
                elif raw and claims is None:
                    headers.append("set-cookie", self._header("", max_age=0))
                elif claims and time.time() - claims.issued_at > RENEW_AFTER_SECONDS:
                    token = issue_token(
                        secret,
                        user_id=claims.user_id,
                        version=claims.version,
                        signed_in_at=claims.signed_in_at,
                        session_id=claims.session_id or None,
                    )
                    headers.append("set-cookie", self._header(token))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _header(self, value: str, max_age: int = LIFETIME_SECONDS) -> str:
        return cookie_header(value, secure=self.secure, domain=self.domain, max_age=max_age)


def _cookie(scope: Scope) -> str | None:
    # Starlette's lenient parser: one malformed cookie from another site must not hide ours.
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(COOKIE)
            if found:
                return found
    return None
