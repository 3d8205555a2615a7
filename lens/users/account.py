"""A person's own account: profile, e-mail change, Discord link, export, deletion."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.models import SignInToken
from lens.auth.service import new_single_use_token, token_hash
from lens.cohorts.discord import request_realization_for_user
from lens.content.parsed import ContentSet
from lens.courses.models import Progress
from lens.db.base import utcnow
from lens.errors import Conflict, Invalid, RateLimited
from lens.integrations.email.client import EmailMessage, EmailSender
from lens.tutor.transcripts import delete_user_transcripts, list_transcripts, transcript_json
from lens.users.models import User
from lens.users.service import normalize_email

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)
EMAIL_CHANGES_PER_HOUR = 3
NICKNAME_MAX = 100


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


async def request_email_change(
    session: AsyncSession, *, user: User, new_email: str, sender: EmailSender, base_url: str
) -> str:
    """Send a confirmation link to the new address; nothing changes until it is used."""
    address = normalize_email(new_email)
    if address == user.email:
        raise Invalid("That is already your e-mail address.")
    taken = await session.scalar(select(User.id).where(User.email == address, User.id != user.id))
    if taken is not None:
        raise Conflict("Another account uses that address. Sign in with it, or pick another.")
    recent = await session.scalar(
        select(func.count())
        .select_from(SignInToken)
        .where(
            SignInToken.kind == "email_change",
            SignInToken.user_id == user.id,
            SignInToken.created_at > utcnow() - timedelta(hours=1),
        )
    )
    if (recent or 0) >= EMAIL_CHANGES_PER_HOUR:
        raise RateLimited("You asked for several confirmation e-mails already; try again later.")
    token = await new_single_use_token(
        session,
        kind="email_change",
        lifetime=EMAIL_CHANGE_LIFETIME,
        user_id=user.id,
        email=address,
    )
    link = f"{base_url}/account/email/confirm?token={token}"
    await sender.send(
        session,
        EmailMessage(
            to=address,
            subject="Confirm your new e-mail address for Lens",
            text=f"Hello,\n\nconfirm that Lens may use this address:\n\n{link}\n\n"
            "The link works once, for 24 hours. If you did not ask for this, ignore it.\n",
            html=f'<p>Hello,</p><p><a href="{link}">Confirm this address for Lens</a></p>'
            "<p>The link works once, for 24 hours. If you did not ask for this, ignore it.</p>",
        ),
    )
    return address


async def confirm_email_change(session: AsyncSession, *, user: User, token: str) -> str:
    row = await session.scalar(
        select(SignInToken)
        .where(SignInToken.token_hash == token_hash(token), SignInToken.kind == "email_change")
        .with_for_update()
    )
    if row is None or row.user_id != user.id:
        raise Invalid("This confirmation link is unknown, or belongs to another account.")
    if row.used_at is not None:
        raise Invalid("This confirmation link was already used.")
    if row.expires_at < utcnow():
        raise Invalid("This confirmation link has expired; ask for a new one.")
    assert row.email is not None
    taken = await session.scalar(select(User.id).where(User.email == row.email, User.id != user.id))
    if taken is not None:
        raise Conflict("Another account took that address in the meantime.")
    row.used_at = utcnow()
    user.email = row.email
    user.email_verified_at = utcnow()
    await session.flush()
    return row.email


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
    await request_realization_for_user(session, user_id=user.id)  # their group channels


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
    await request_realization_for_user(session, user_id=user.id)


def _when(value: Any) -> str | None:
    return value.isoformat() if value else None


async def export_data(
    session: AsyncSession, *, user: User, content: ContentSet | None = None
) -> dict[str, Any]:
    """Everything Lens keeps about this person (more sections join as features do)."""
    rows = list(await session.scalars(select(Progress).where(Progress.user_id == user.id)))
    transcripts = await list_transcripts(session, user_id=user.id, content=content)
    return {
        "account": account_data(user),
        "reading_progress": [
            {
                "module": r.module_key,
                "section": r.content_id or None,
                "completed_at": _when(r.completed_at),
                "seconds_reading": r.seconds,
            }
            for r in rows
        ],
        "tutor_conversations": [transcript_json(t) for t in transcripts],
        "exported_at": utcnow().isoformat(),
    }


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


async def delete_account(session: AsyncSession, *, user: User) -> None:
    """Remove personal data; the row stays (anonymous) so course statistics still add up."""
    await session.execute(delete(SignInToken).where(SignInToken.user_id == user.id))
    if user.email:
        await session.execute(delete(SignInToken).where(SignInToken.email == user.email))
    await delete_user_transcripts(session, user_id=user.id)
    user.discord_id = None
    user.discord_username = None
    user.discord_global_name = None
    user.avatar = None
    user.nickname = None
    user.email = None
    user.email_verified_at = None
    user.timezone = None
    user.is_admin = False
    user.deleted_at = utcnow()
    user.session_version += 1  # every session ends
    await session.flush()
    await request_realization_for_user(session, user_id=user.id)  # no more channel access
