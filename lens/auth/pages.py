"""Sign-in and sign-out pages: Discord, bot codes, e-mail links, the development outbox."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from lens.auth.deps import CurrentUser, OptionalUser, load_user
from lens.auth.events import VisitorSignedIn
from lens.auth.service import (
    SignInProblem,
    consume_bot_code,
    consume_email_link,
    consume_state,
    revoke_session,
    safe_next,
    send_email_link,
    sign_out_everywhere,
    start_discord_sign_in,
    upsert_discord_user,
)
from lens.auth.sessions import SessionClaims, issue_token
from lens.auth.visitors import ANON_COOKIE, read_anonymous_id
from lens.db.engine import unit_of_work
from lens.errors import (
    Conflict,
    IntegrationRejected,
    IntegrationUnavailable,
    LensError,
    NotFound,
    Unauthorized,
)
from lens.events import publish
from lens.integrations.discord.oauth import DiscordOAuth
from lens.integrations.email.models import OutboxEmail
from lens.logging import get_logger
from lens.users.models import User
from lens.users.service import link_discord
from lens.web.network import client_network
from lens.web.security import CONTENT_SECURITY_POLICY
from lens.web.state import get_lens
from lens.web.templating import render

log = get_logger("lens.auth")
OAUTH_COOKIE = "oauth_nonce"
router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


async def _sign_in(request: Request, user: User, next_path: str) -> RedirectResponse:
    lens = get_lens(request)
    request.state.set_session = issue_token(
        lens.jwt_secret, user_id=user.id, version=user.session_version
    )
    # What they read before signing in joins their account (lens/courses, lens/tutor).
    anon = read_anonymous_id(lens.jwt_secret, request.cookies.get(ANON_COOKIE))
    if anon is not None:
        async with unit_of_work(lens.sessionmaker) as session:
            await publish(session, VisitorSignedIn(visitor_id=anon, user_id=user.id))
    request.state.user = user
    log.info("auth.signed_in", user_id=user.id)
    return RedirectResponse(safe_next(next_path), status_code=303)


def _problem(request: Request, problem: SignInProblem, next_path: str = "/") -> Response:
    return render(
        request,
        "auth/problem.html",
        {"title": problem.title, "message": problem.message, "next": safe_next(next_path)},
        status_code=problem.status_code,
    )


def _discord(request: Request) -> DiscordOAuth:
    lens = get_lens(request)
    settings = lens.settings
    if not settings.discord_login_enabled:
        raise NotFound("Signing in with Discord is not set up on this site.")
    assert settings.discord_client_id and settings.discord_client_secret
    return DiscordOAuth(
        client_id=settings.discord_client_id,
        client_secret=settings.discord_client_secret,
        redirect_uri=f"{settings.public_url}/auth/discord/callback",
        http=lens.http,
    )


@router.get("/auth/signin")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    settings = get_lens(request).settings
    return render(
        request,
        "auth/signin.html",
        {"next": safe_next(next), "discord": settings.discord_login_enabled},
    )


@router.get("/auth/discord")
async def discord_start(
    request: Request, viewer: OptionalUser, next: str = "/", link: bool = False
) -> Response:
    oauth = _discord(request)
    if link and viewer is None:
        raise Unauthorized("Sign in first, then link your Discord account.")
    nonce = secrets.token_urlsafe(24)
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        state, verifier = await start_discord_sign_in(
            session,
            next_path=next,
            browser_nonce=nonce,
            link_user_id=viewer.id if link and viewer else None,
            client_net=client_network(request.client.host if request.client else None),
        )
    response = RedirectResponse(oauth.authorize_url(state=state, code_verifier=verifier), 302)
    # Lax is enough: Discord sends the browser back with a top-level GET.
    response.set_cookie(
        OAUTH_COOKIE,
        nonce,
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=get_lens(request).settings.secure_cookies,
        path="/auth/discord",
    )
    return response


@router.get("/auth/discord/callback")
async def discord_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    oauth = _discord(request)
    lens = get_lens(request)
    try:
        async with unit_of_work(lens.sessionmaker) as session:
            # The state is spent whatever happens next, so it can never be replayed.
            stored = await consume_state(
                session, state=state, browser_nonce=request.cookies.get(OAUTH_COOKIE)
            )
        if error:
            if error == "access_denied":
                raise SignInProblem(
                    "You chose not to let Lens see your Discord account, so you are not "
                    "signed in. You can try again, or use an e-mail link instead.",
                    title="Sign-in cancelled",
                )
            raise SignInProblem(f"Discord said: {error_description or error}.")
        if not code:
            raise SignInProblem("Discord did not send back a sign-in code. Please try again.")
        try:
            discord_user = await oauth.fetch_user(code=code, code_verifier=stored.code_verifier)
        except IntegrationUnavailable as exc:
            log.warning("auth.discord.unavailable", error=str(exc))
            raise SignInProblem(
                "Discord is not answering right now. Please try again in a minute.",
                title="Discord is unavailable",
            ) from exc
        except IntegrationRejected as exc:
            log.warning("auth.discord.rejected", error=str(exc))
            raise SignInProblem(
                "Discord did not accept this sign-in (it may have expired). Please try again.",
                title="Discord refused the sign-in",
            ) from exc
        if stored.link_user_id is not None:
            viewer = await load_user(request)
            if viewer is None or viewer.id != stored.link_user_id:
                raise SignInProblem(
                    "Sign in to the account you are linking, then try again.",
                    title="Not your account",
                )
            async with unit_of_work(lens.sessionmaker) as session:
                owner = await session.get(User, stored.link_user_id)
                if owner is None or owner.deleted_at is not None:
                    raise SignInProblem("The account to link no longer exists.")
                try:
                    await link_discord(
                        session,
                        user=owner,
                        discord_id=discord_user.id,
                        username=discord_user.username,
                    )
                except Conflict as exc:
                    raise SignInProblem(exc.message, title="Discord account in use") from exc
            return RedirectResponse("/account?linked=1", status_code=303)
        async with unit_of_work(lens.sessionmaker) as session:
            user = await upsert_discord_user(session, discord=discord_user)
        return await _sign_in(request, user, stored.next_path)
    except SignInProblem as problem:
        return _problem(request, problem)


@router.get("/auth/code")
async def bot_code_confirm(request: Request, code: str = "", next: str = "/") -> Response:
    # A button, not a sign-in on GET: Discord's link previews fetch posted links, and
    # must not use up the single-use code.
    return render(request, "auth/code_confirm.html", {"code": code, "next": safe_next(next)})


@router.post("/auth/code")
async def bot_code(
    request: Request,
    code: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            user = await consume_bot_code(session, code=code)
    except SignInProblem as problem:
        return _problem(request, problem, next)
    return await _sign_in(request, user, next)


@router.post("/auth/email")
async def email_link_request(
    request: Request,
    email: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    lens = get_lens(request)
    context = {
        "email": email,
        "next": safe_next(next),
        "discord": lens.settings.discord_login_enabled,
    }
    try:
        async with unit_of_work(lens.sessionmaker) as session:
            await send_email_link(
                session,
                email=email,
                # Counted per network (an IPv6 /64, not each of its addresses).
                ip=client_network(request.client.host if request.client else None),
                next_path=next,
                sender=lens.email,
                base_url=lens.settings.public_url,
            )
    except LensError as exc:
        return render(
            request,
            "auth/signin.html",
            {**context, "error": exc.message},
            status_code=exc.status_code,
        )
    except (IntegrationUnavailable, IntegrationRejected) as exc:
        log.error("auth.email.send_failed", error=str(exc))
        return render(
            request,
            "auth/signin.html",
            {**context, "error": "We could not send the e-mail just now. Please try again."},
            status_code=503,
        )
    return render(
        request,
        "auth/email_sent.html",
        {"email": email.strip().lower(), "outbox": lens.settings.dev_outbox_enabled},
    )


@router.get("/auth/email/verify")
async def email_link_confirm(request: Request, token: str = "") -> Response:
    # A page with a button rather than signing in on GET: mail scanners that open
    # links must not use up the single-use link.
    return render(request, "auth/email_confirm.html", {"token": token})


@router.post("/auth/email/verify")
async def email_link_use(request: Request, token: Annotated[str, Form()] = "") -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            user, next_path = await consume_email_link(session, token=token)
    except SignInProblem as problem:
        return _problem(request, problem)
    return await _sign_in(request, user, next_path)


@router.post("/auth/signout")
async def sign_out(request: Request) -> Response:
    """Signs this browser out: the cookie is cleared and its session revoked, so a copy
    of the cookie taken before (another device, a stolen one) no longer works."""
    claims: SessionClaims | None = getattr(request.state, "session", None)
    if claims is not None and claims.session_id:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            await revoke_session(session, claims=claims)
    request.state.set_session = ""
    request.state.user = None
    return RedirectResponse("/", status_code=303)


@router.post("/auth/signout-everywhere")
async def sign_out_all(request: Request, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        await sign_out_everywhere(session, user=fresh)
    request.state.set_session = ""
    request.state.user = None
    return RedirectResponse("/", status_code=303)


@router.get("/dev/outbox")
async def dev_outbox(request: Request, to: Annotated[str | None, Query()] = None) -> Response:
    lens = get_lens(request)
    if not lens.settings.dev_outbox_enabled:
        raise NotFound("There is no development outbox on this site.")
    async with lens.sessionmaker() as session:
        query = select(OutboxEmail).order_by(OutboxEmail.id.desc()).limit(50)
        if to:
            query = query.where(OutboxEmail.to == to.strip().lower())
        emails = list(await session.scalars(query))
    response = render(request, "auth/outbox.html", {"emails": emails})
    # The e-mails shown are e-mail HTML, styled inline as mail clients need: this page
    # (development only) allows inline styles; scripts stay as strict as everywhere.
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    )
    return response
