"""Who is asking, and may they: the one place routes get the user and check roles.

Every protected route declares its rule with one of these dependencies:

    CurrentUser      signed in (401 otherwise)
    AdminUser        signed in and an admin (403 otherwise)
    OptionalUser     anyone; the user or None

Facilitator rights are per group: lens/cohorts/groups.py (`get_group` for members,
its facilitator and admins; `get_group_to_lead` for the facilitator and admins only).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from lens.auth.models import RevokedSession
from lens.auth.sessions import SessionClaims
from lens.errors import Forbidden, Unauthorized
from lens.users.models import User
from lens.web.state import get_lens


async def load_user(request: Request) -> User | None:
    """The signed-in user, or None. A revoked or stale session is cleared."""
    if "user" in request.state._state:
        user: User | None = request.state.user
        return user
    claims: SessionClaims | None = getattr(request.state, "session", None)
    user = None
    if claims is not None:
        async with get_lens(request).reads() as session:
            # One query: the user, and whether this session was signed out.
            row = (
                await session.execute(
                    select(User, RevokedSession.session_id)
                    .outerjoin(RevokedSession, RevokedSession.session_id == claims.session_id)
                    .where(User.id == claims.user_id)
                )
            ).first()
        found, revoked = (row[0], row[1] is not None) if row is not None else (None, False)
        if (
            found is not None
            and not revoked
            and found.deleted_at is None
            and found.session_version == claims.version
        ):
            user = found
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
