"""Who is reading: an account, or a visitor known by a signed random id.

Progress and tutor conversations belong to an *actor*: `u:<user id>` for an account,
`a:<visitor id>` for someone reading without an account, known by the signed `reader`
cookie. When a visitor signs in, lens/auth publishes VisitorSignedIn and the features
that keep per-actor data (reading progress, tutor conversations) move it to the account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from lens.users.models import User
from lens.web.state import get_lens

ANON_COOKIE = "reader"
ANON_MAX_AGE = 365 * 24 * 3600


def user_actor(user_id: int) -> str:
    return f"u:{user_id}"


def visitor_actor(visitor_id: str) -> str:
    return f"a:{visitor_id}"


def new_anonymous_id() -> str:
    return secrets.token_urlsafe(18)


def sign_anonymous_id(secret: str, anon_id: str) -> str:
    mac = hmac.new(secret.encode(), f"anon:{anon_id}".encode(), hashlib.sha256).hexdigest()
    return f"{anon_id}.{mac[:32]}"


def read_anonymous_id(secret: str, cookie: str | None) -> str | None:
    if not cookie or "." not in cookie:
        return None
    anon_id = cookie.rsplit(".", 1)[0]
    return anon_id if hmac.compare_digest(sign_anonymous_id(secret, anon_id), cookie) else None


class Reader:
    """Who is reading this request: an account, or a visitor (given a cookie if new)."""

    def __init__(self, request: Request, user: User | None) -> None:
        self.user_id = user.id if user else None
        self.new_cookie: str | None = None
        secret = get_lens(request).jwt_secret
        if user is not None:
            self.actor: str | None = user_actor(user.id)
            return
        anon = read_anonymous_id(secret, request.cookies.get(ANON_COOKIE))
        if anon is None:
            anon = new_anonymous_id()
            self.new_cookie = sign_anonymous_id(secret, anon)
        self.actor = visitor_actor(anon)

    def apply(self, request: Request, response: Response) -> Response:
        if self.new_cookie:
            response.set_cookie(
                ANON_COOKIE,
                self.new_cookie,
                max_age=ANON_MAX_AGE,
                httponly=True,
                samesite="lax",
                secure=get_lens(request).settings.secure_cookies,
            )
        return response
