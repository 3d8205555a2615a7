from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import Invalid, NotFound
from lens.users.models import User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DISCORD_ID = re.compile(r"^\d{15,22}$")


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if len(value) > 254 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Invalid("That e-mail address is too long or has characters it cannot have.")
    if not _EMAIL.match(value):
        raise Invalid(f"{email!r} is not an e-mail address (expected name@example.org)")
    return value


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def get_user_by_discord_id(session: AsyncSession, *, discord_id: str) -> User | None:
    return await session.scalar(select(User).where(User.discord_id == discord_id))


async def find_user(session: AsyncSession, *, identifier: str) -> User | None:
    """A user by e-mail address or Discord id (what an operator types)."""
    identifier = identifier.strip()
    if "@" in identifier:
        return await get_user_by_email(session, email=identifier)
    if _DISCORD_ID.match(identifier):
        return await get_user_by_discord_id(session, discord_id=identifier)
    raise Invalid(
        f"{identifier!r} is neither an e-mail address nor a Discord user id "
        "(a Discord id is 15 to 22 digits; copy it with Developer Mode on)"
    )


async def create_user(
    session: AsyncSession, *, email: str | None = None, discord_id: str | None = None
) -> User:
    if not email and not discord_id:
        raise Invalid("a user needs an e-mail address or a Discord id")
    user = User(
        email=normalize_email(email) if email else None,
        discord_id=discord_id,
    )
    session.add(user)
    await session.flush()
    return user


async def make_admin(session: AsyncSession, *, identifier: str, create: bool = False) -> User:
    user = await find_user(session, identifier=identifier)
    if user is None:
        if not create:
            raise NotFound(
                f"no user with {identifier!r}; they must sign in once first, "
                "or run again with --create to create the account now"
            )
        if "@" in identifier:
            user = await create_user(session, email=identifier)
        else:
            user = await create_user(session, discord_id=identifier.strip())
    user.is_admin = True
    await session.flush()
    return user
