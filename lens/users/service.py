"""People: finding and creating accounts, the profile rules, linking a Discord account."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import Conflict, Invalid, NotFound
from lens.events import publish
from lens.users.events import DiscordAccountChanged
from lens.users.models import User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DISCORD_ID = re.compile(r"^\d{15,22}$")
NICKNAME_MAX = 100


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


# -- the profile ----------------------------------------------------------------------


@cache
def timezones() -> tuple[str, ...]:
    """Every IANA zone name people pick from (Etc/ and legacy aliases left out)."""
    skip = ("Etc/", "SystemV/", "posix/", "right/")
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n and not n.startswith(skip))
    return (*names, "UTC")


def check_timezone(value: str) -> str:
    value = value.strip()
    if value not in zoneinfo.available_timezones():
        raise Invalid(
            f"{value!r} is not a time zone we know; pick one from the list "
            "(for example Europe/Berlin or America/New_York)"
        )
    return value


def check_nickname(value: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value.replace("\t", " ")):
        raise Invalid("The nickname has characters it cannot have; use letters, digits, spaces.")
    value = " ".join(value.split())
    if len(value) > NICKNAME_MAX:
        raise Invalid(f"The nickname is too long: at most {NICKNAME_MAX} characters, please.")
    return value or None


async def update_profile(
    session: AsyncSession,
    *,
    user: User,
    nickname: str,
    timezone: str | None,
    email_notifications: bool,
    dm_notifications: bool,
) -> User:
    user.nickname = check_nickname(nickname)
    user.timezone = check_timezone(timezone) if timezone and timezone.strip() else None
    user.email_notifications = email_notifications
    user.dm_notifications = dm_notifications
    await session.flush()
    return user


# -- Discord --------------------------------------------------------------------------


async def link_discord(
    session: AsyncSession, *, user: User, discord_id: str, username: str
) -> None:
    other = await session.scalar(
        select(User).where(User.discord_id == discord_id, User.id != user.id)
    )
    if other is not None:
        raise Conflict(
            "That Discord account is already linked to another Lens account. Sign in with "
            "Discord to use that account, or unlink it there first."
        )
    user.discord_id = discord_id
    user.discord_username = username
    await session.flush()
    await publish(session, DiscordAccountChanged(user.id))  # their group channels


async def unlink_discord(session: AsyncSession, *, user: User) -> None:
    if user.discord_id is None:
        raise Invalid("No Discord account is linked.")
    if not (user.email and user.email_verified_at):
        raise Invalid(
            "Add and confirm an e-mail address first; without Discord it is how you sign in."
        )
    user.discord_id = None
    user.discord_username = None
    user.discord_global_name = None
    user.avatar = None
    await session.flush()
    # The old Discord account must stop reading the group channels.
    await publish(session, DiscordAccountChanged(user.id))


def _when(value: Any) -> str | None:
    return value.isoformat() if value else None


def account_data(user: User) -> dict[str, Any]:
    when = _when
    return {
        "id": user.id,
        "nickname": user.nickname,
        "email": user.email,
        "email_verified_at": when(user.email_verified_at),
        "timezone": user.timezone,
        "discord": {
            "id": user.discord_id,
            "username": user.discord_username,
            "global_name": user.discord_global_name,
            "avatar": user.avatar,
        },
        "is_admin": user.is_admin,
        "notifications": {
            "email": user.email_notifications,
            "discord_dm": user.dm_notifications,
        },
        "terms_accepted_at": when(user.terms_accepted_at),
        "created_at": when(user.created_at),
    }
