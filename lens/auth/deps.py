"""Who is asking, and may they: the one place routes get the user and check roles.

Every protected route declares its rule with one of these dependencies:

    CurrentUser      signed in (401 otherwise)
    AdminUser        signed in and an admin (403 otherwise)
    OptionalUser     anyone; the user or None

Facilitator rights are per group: lens/cohorts/groups.py (`get_group` for members,
its facilitator and admins; `get_group_to_lead` for the facilitator and admins only).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import make_transient_to_detached

from lens.auth.service import USER_COLUMNS, USER_SESSION
from lens.auth.sessions import SessionClaims
from lens.errors import Forbidden, Unauthorized
from lens.users.models import User
from lens.web.state import get_lens


async def load_user(request: Request) -> User | None:
    """The signed-in user, or None. A revoked or stale session is cleared.

    The user is detached (as one loaded by a session that has closed): its columns are
    loaded; add it to a session to change it."""
    if "user" in request.state._state:
        user: User | None = request.state.user
        return user
    claims: SessionClaims | None = getattr(request.state, "session", None)
    row = None
    if claims is not None:
        rows = await get_lens(request).read_rows(
            USER_SESSION, user_id=claims.user_id, session_id=claims.session_id
        )
        row = rows[0] if rows else None
    return accept_user(request, row)


def accept_user(request: Request, row: Any) -> User | None:
    """The signed-in user from a row of `USER_SESSION`'s columns (a page's own read may
    join more to it: one round trip), or None (no session, or one revoked or stale: its
    cookie is then cleared). Remembered for the rest of the request (`load_user`)."""
    claims: SessionClaims | None = getattr(request.state, "session", None)
    user = None
    if claims is not None:
        if (
            row is not None
            and row["lens_revoked"] is None
            and row["deleted_at"] is None
            and row["session_version"] == claims.version
        ):
            user = User(**{key: row[name] for key, name in USER_COLUMNS})
            make_transient_to_detached(user)
        else:
            request.state.set_session = ""  # revoked: forget the cookie
    request.state.user = user
    return user


async def require_user(user: Annotated[User | None, Depends(load_user)]) -> User:
    if user is None:
        raise Unauthorized("Please sign in to continue.")
    return user


async def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("This is for course administrators only.")
    return user


OptionalUser = Annotated[User | None, Depends(load_user)]
CurrentUser = Annotated[User, Depends(require_user)]
AdminUser = Annotated[User, Depends(require_admin)]
