"""Changing the e-mail address of an account: a confirmation link to the new address,
and nothing changes until it is used."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.models import SignInToken
from lens.auth.service import new_single_use_token, token_hash
from lens.db.base import utcnow
from lens.errors import Conflict, Invalid, RateLimited
from lens.integrations.email.client import EmailMessage, EmailSender
from lens.users.models import User
from lens.users.service import normalize_email

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)
EMAIL_CHANGES_PER_HOUR = 3


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
