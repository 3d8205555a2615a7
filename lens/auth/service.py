"""Signing in and out: OAuth states, single-use codes and links, session versions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import bindparam, delete, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.models import OAuthState, RevokedSession, SignInToken
from lens.auth.sessions import MAX_SESSION_SECONDS, SessionClaims
from lens.db.base import utcnow
from lens.errors import Invalid, RateLimited
from lens.events import publish
from lens.integrations.discord.oauth import DiscordUser
from lens.integrations.email.client import EmailMessage, EmailSender
from lens.users.events import DiscordAccountChanged
from lens.users.models import User
from lens.users.service import normalize_email
from lens.web.messages import MessageTemplates

MESSAGES = MessageTemplates(Path(__file__).parent / "templates")
STATE_LIFETIME = timedelta(minutes=10)
# Discord sign-ins started from one network and not yet finished or expired: generous,
# since a class or an office shares one address, but not a free row and redirect each.
DISCORD_STARTS_PER_NETWORK = 60
BOT_CODE_LIFETIME = timedelta(minutes=10)
EMAIL_LINK_LIFETIME = timedelta(minutes=15)
# At most this many sign-in e-mails per address, and per IP address, per window.
EMAIL_LIMIT_PER_ADDRESS = 3
EMAIL_LIMIT_PER_IP = 10
EMAIL_LIMIT_WINDOW = timedelta(hours=1)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def new_single_use_token(
    session: AsyncSession,
    *,
    kind: str,
    lifetime: timedelta,
    user_id: int | None = None,
    email: str | None = None,
    ip: str | None = None,
    next_path: str = "/",
) -> str:
    """A random secret, stored only as its hash, good once until `lifetime` has passed."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        SignInToken(
            kind=kind,
            token_hash=token_hash(secret),
            user_id=user_id,
            email=email,
            ip=ip,
            next_path=safe_next(next_path),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return secret


def safe_next(value: str | None) -> str:
    """A path on this site to go to after sign-in; anything else becomes `/`.

    Refuses absolute URLs, scheme-relative `//host`, backslash tricks (`/\\host`, which
    browsers treat as `//host`) and their percent-encoded forms.
    """
    if not value or len(value) > 500:
        return "/"
    candidate = value.strip()
    for _ in range(3):  # look through up to three layers of percent-encoding
        decoded = unquote(candidate)
        if decoded == candidate:
            break
        candidate = decoded
    if (
        not candidate.startswith("/")
        or candidate.startswith(("//", "/\\"))
        or "\\" in candidate
        or any(ord(c) < 32 or ord(c) == 127 for c in candidate)
    ):
        return "/"
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return "/"
    return value.strip() if value.strip().startswith("/") else "/"


class SignInProblem(Invalid):
    """A sign-in that cannot go on; the message says why, the page offers a retry."""

    def __init__(self, message: str, *, title: str = "Sign-in did not work") -> None:
        super().__init__(message, status_code=400)
        self.title = title


# -- Discord OAuth state --------------------------------------------------------------


async def start_discord_sign_in(
    session: AsyncSession,
    *,
    next_path: str,
    browser_nonce: str,
    link_user_id: int | None = None,
    client_net: str | None = None,
) -> tuple[str, str]:
    """A new single-use state and PKCE verifier for one trip to Discord.

    `browser_nonce` is also set as a cookie in the browser that starts; the callback must
    come back to that same browser. At most DISCORD_STARTS_PER_NETWORK starts from one
    network (`client_net`) are open at a time (a state lives STATE_LIFETIME).
    """
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    now = utcnow()
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < now))
    if client_net:
        open_here = await session.scalar(
            select(func.count())
            .select_from(OAuthState)
            .where(OAuthState.client_net == client_net, OAuthState.expires_at >= now)
        )
        if (open_here or 0) >= DISCORD_STARTS_PER_NETWORK:
            raise RateLimited(
                "Many sign-ins with Discord were started from your network in the last few "
                "minutes. Finish the one you started, or try again in ten minutes."
            )
    session.add(
        OAuthState(
            state_hash=token_hash(state),
            next_path=safe_next(next_path),
            code_verifier=verifier,
            browser_hash=token_hash(browser_nonce),
            link_user_id=link_user_id,
            created_at=now,
            expires_at=now + STATE_LIFETIME,
            client_net=client_net,
        )
    )
    await session.flush()
    return state, verifier


async def consume_state(
    session: AsyncSession, *, state: str | None, browser_nonce: str | None
) -> OAuthState:
    """Take the state back exactly once (any process may serve the callback)."""
    if not state:
        raise SignInProblem("The answer from Discord did not say which sign-in it belongs to.")
    row: OAuthState | None = await session.scalar(
        delete(OAuthState).where(OAuthState.state_hash == token_hash(state)).returning(OAuthState)
    )
    if row is None:
        raise SignInProblem(
            "This sign-in was already used or is unknown. Please start again.",
            title="Sign-in link already used",
        )
    if row.expires_at < utcnow():
        raise SignInProblem(
            "This sign-in took longer than 10 minutes and expired. Please start again.",
            title="Sign-in expired",
        )
    if not browser_nonce or not secrets.compare_digest(row.browser_hash, token_hash(browser_nonce)):
        raise SignInProblem(
            "This sign-in was started in another browser. Please start it here.",
            title="Sign-in started elsewhere",
        )
    return row


async def upsert_discord_user(session: AsyncSession, *, discord: DiscordUser) -> User:
    user = await session.scalar(select(User).where(User.discord_id == discord.id))
    newly_linked = user is None
    # An address Discord has not verified proves nothing: never store it.
    email = normalize_email(discord.email) if discord.email and discord.verified else None
    if user is None and email and discord.verified:
        # Someone who first came by e-mail link now signs in with Discord: one account.
        user = await session.scalar(
            select(User).where(User.email == email, User.discord_id.is_(None))
        )
    if user is None:
        user = User(discord_id=discord.id)
        session.add(user)
    user.discord_id = discord.id
    user.discord_username = discord.username
    user.discord_global_name = discord.global_name
    user.avatar = discord.avatar
    if email and (user.email is None or user.email == email):
        taken = await session.scalar(select(User.id).where(User.email == email, User.id != user.id))
        if taken is None:
            user.email = email
            if discord.verified and user.email_verified_at is None:
                user.email_verified_at = utcnow()
    await session.flush()
    if newly_linked:  # an e-mail account now has Discord: open its group channels
        await publish(session, DiscordAccountChanged(user.id))
    return user


# -- single-use codes and links ------------------------------------------------------------


async def create_bot_code(
    session: AsyncSession, *, discord_id: str, username: str | None = None, next_path: str = "/"
) -> str:
    """For the Discord bot: a code that signs this Discord user in for the next 10 minutes."""
    user = await session.scalar(select(User).where(User.discord_id == discord_id))
    if user is None:
        user = User(discord_id=discord_id, discord_username=username)
        session.add(user)
        await session.flush()
    return await new_single_use_token(
        session, kind="bot", lifetime=BOT_CODE_LIFETIME, user_id=user.id, next_path=next_path
    )


async def _consume(
    session: AsyncSession, *, kind: str, secret: str | None, what: str
) -> SignInToken:
    if not secret:
        raise SignInProblem(f"This {what} is incomplete. Please ask for a new one.")
    row = await session.scalar(
        select(SignInToken)
        .where(SignInToken.token_hash == token_hash(secret), SignInToken.kind == kind)
        .with_for_update()
    )
    if row is None:
        raise SignInProblem(
            f"This {what} is unknown. Check that you copied all of it, or ask for a new one.",
            title=f"Unknown {what}",
        )
    if row.used_at is not None:
        raise SignInProblem(
            f"This {what} was already used. Each one works once; ask for a new one.",
            title=f"{what.capitalize()} already used",
        )
    if row.expires_at < utcnow():
        raise SignInProblem(
            f"This {what} has expired. Ask for a new one.", title=f"{what.capitalize()} expired"
        )
    row.used_at = utcnow()
    await session.flush()
    return row


async def consume_bot_code(session: AsyncSession, *, code: str | None) -> User:
    row = await _consume(session, kind="bot", secret=code, what="sign-in code")
    user = await session.get(User, row.user_id)
    if user is None or user.deleted_at is not None:
        raise SignInProblem("The account this code was made for no longer exists.")
    return user


async def send_email_link(
    session: AsyncSession,
    *,
    email: str,
    ip: str | None,
    next_path: str,
    sender: EmailSender,
    base_url: str,
) -> None:
    address = normalize_email(email)
    since = utcnow() - EMAIL_LIMIT_WINDOW
    # name+anything@host is one mailbox: count it once.
    local, _, host = address.partition("@")
    base = local.split("+", 1)[0]
    mailbox = f"{base}@{host}"
    per_address = await session.scalar(
        select(func.count())
        .select_from(SignInToken)
        .where(
            SignInToken.kind == "email",
            SignInToken.created_at > since,
            (SignInToken.email == mailbox)
            | SignInToken.email.like(f"{_like(base)}+%@{_like(host)}", escape="\\"),
        )
    )
    if (per_address or 0) >= EMAIL_LIMIT_PER_ADDRESS:
        raise RateLimited(
            "We already sent several sign-in links to this address in the last hour. "
            "Please use the newest one, or try again later."
        )
    if ip:
        per_ip = await session.scalar(
            select(func.count())
            .select_from(SignInToken)
            .where(SignInToken.ip == ip, SignInToken.created_at > since)
        )
        if (per_ip or 0) >= EMAIL_LIMIT_PER_IP:
            raise RateLimited("Too many sign-in links were asked for from here. Try again later.")
    token = await new_single_use_token(
        session,
        kind="email",
        lifetime=EMAIL_LINK_LIFETIME,
        email=address,
        ip=ip,
        next_path=next_path,
    )
    link = f"{base_url}/auth/email/verify?token={token}"
    minutes = int(EMAIL_LINK_LIFETIME.total_seconds() // 60)
    # Rendered like the notifications (lens/web/messages), but sent now and never
    # queued: the person is waiting for it, and the link must not sit in a table.
    rendered = MESSAGES.email(
        "sign_in_link",
        {"link": link, "minutes": minutes, "unsubscribe_url": None, "site_url": base_url},
    )
    await sender.send(
        session,
        EmailMessage(to=address, subject=rendered.subject, text=rendered.text, html=rendered.html),
    )


async def consume_email_link(session: AsyncSession, *, token: str | None) -> tuple[User, str]:
    row = await _consume(session, kind="email", secret=token, what="sign-in link")
    assert row.email is not None
    user = await session.scalar(select(User).where(User.email == row.email))
    if user is None:
        user = User(email=row.email)
        session.add(user)
    elif user.deleted_at is not None:
        raise SignInProblem("This account was deleted.")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await session.flush()
    return user, row.next_path


async def sign_out_everywhere(session: AsyncSession, *, user: User) -> None:
    user.session_version += 1
    await session.flush()


async def revoke_session(session: AsyncSession, *, claims: SessionClaims) -> None:
    """Refuse this session's cookie from now on (signing out twice is harmless)."""
    expires = datetime.fromtimestamp(claims.signed_in_at + MAX_SESSION_SECONDS, UTC)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(RevokedSession)
        .values(session_id=claims.session_id, expires_at=expires)
        .on_conflict_do_nothing(index_elements=[RevokedSession.session_id])
    )


# The signed-in user's row and whether this session was signed out, in one round trip.
# Run on every page a signed-in person opens: a Core select built once, through
# `Lens.read_rows` (on PostgreSQL straight through the driver), not an ORM query.
USER_SESSION = (
    select(*User.__table__.columns, RevokedSession.session_id.label("lens_revoked"))
    .outerjoin_from(User, RevokedSession, RevokedSession.session_id == bindparam("session_id"))
    .where(User.id == bindparam("user_id"))
)
# (attribute, column) for every column the User maps.
USER_COLUMNS = [(attr.key, attr.columns[0].name) for attr in inspect(User).column_attrs]
