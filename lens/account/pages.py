"""The account page: profile, e-mail, Discord, notifications, export, deletion."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.account.service import delete_account, export_data
from lens.auth.deps import CurrentUser, load_user
from lens.auth.email_change import confirm_email_change, request_email_change
from lens.content.deps import loaded_content
from lens.db.engine import unit_of_work
from lens.errors import LensError
from lens.users.models import User
from lens.users.nicknames import request_nickname_push
from lens.users.service import account_data, timezones, unlink_discord, update_profile
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])
api = APIRouter(prefix="/api", tags=["account"])

DELETE_WORD = "delete"


def _account(request: Request, user: User, *, status_code: int = 200, **extra: object) -> Response:
    settings = get_lens(request).settings
    context = {
        "user": user,
        "timezones": timezones(),
        "discord_enabled": settings.discord_login_enabled,
        "saved": request.query_params.get("saved"),
        "linked": request.query_params.get("linked"),
        **extra,
    }
    return render(request, "account/account.html", context, status_code=status_code)


@router.get("/account")
async def account(request: Request, user: CurrentUser) -> Response:
    return _account(request, user)


@router.post("/account")
async def save_profile(
    request: Request,
    user: CurrentUser,
    nickname: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
    email_notifications: Annotated[bool, Form()] = False,
    dm_notifications: Annotated[bool, Form()] = False,
) -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            fresh = await session.get(User, user.id)
            assert fresh is not None
            before = fresh.nickname
            await update_profile(
                session,
                user=fresh,
                nickname=nickname,
                timezone=timezone,
                email_notifications=email_notifications,
                dm_notifications=dm_notifications,
            )
            if fresh.nickname != before:
                # The server shows the same name (the bot sets it, off this request).
                await request_nickname_push(
                    session, settings=get_lens(request).settings, user=fresh
                )
    except LensError as exc:
        # Show the form again with what they typed, and what to fix.
        draft = User(
            id=user.id,
            email=user.email,
            email_verified_at=user.email_verified_at,
            discord_id=user.discord_id,
            discord_username=user.discord_username,
            nickname=nickname,
            timezone=timezone,
            email_notifications=email_notifications,
            dm_notifications=dm_notifications,
        )
        return _account(request, draft, status_code=exc.status_code, profile_error=exc.message)
    return RedirectResponse("/account?saved=profile", status_code=303)


@router.post("/account/email")
async def change_email(
    request: Request, user: CurrentUser, email: Annotated[str, Form()] = ""
) -> Response:
    lens = get_lens(request)
    try:
        async with unit_of_work(lens.sessionmaker) as session:
            fresh = await session.get(User, user.id)
            assert fresh is not None
            address = await request_email_change(
                session,
                user=fresh,
                new_email=email,
                sender=lens.email,
                base_url=lens.settings.public_url,
            )
    except LensError as exc:
        return _account(
            request, user, status_code=exc.status_code, email_error=exc.message, new_email=email
        )
    return _account(request, user, email_sent=address)


@router.get("/account/email/confirm")
async def confirm_email_page(request: Request, user: CurrentUser, token: str = "") -> Response:
    return render(request, "account/confirm_email.html", {"token": token})


@router.post("/account/email/confirm")
async def confirm_email(
    request: Request, user: CurrentUser, token: Annotated[str, Form()] = ""
) -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            fresh = await session.get(User, user.id)
            assert fresh is not None
            await confirm_email_change(session, user=fresh, token=token)
    except LensError as exc:
        return _account(request, user, status_code=exc.status_code, email_error=exc.message)
    return RedirectResponse("/account?saved=email", status_code=303)


@router.post("/account/discord/unlink")
async def discord_unlink(request: Request, user: CurrentUser) -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            fresh = await session.get(User, user.id)
            assert fresh is not None
            await unlink_discord(session, user=fresh)
    except LensError as exc:
        return _account(request, user, status_code=exc.status_code, discord_error=exc.message)
    return RedirectResponse("/account?saved=discord", status_code=303)


@router.get("/account/data.json")
async def download_data(request: Request, user: CurrentUser) -> Response:
    lens = get_lens(request)
    async with lens.sessionmaker() as session:
        data = await export_data(session, user=user, content=loaded_content(request))
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="lens-my-data.json"'},
    )


@router.get("/account/delete")
async def delete_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "account/delete.html", {"word": DELETE_WORD})


@router.post("/account/delete")
async def delete(
    request: Request, user: CurrentUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    if confirm.strip().lower() != DELETE_WORD:
        return render(
            request,
            "account/delete.html",
            {"word": DELETE_WORD, "error": f"Type {DELETE_WORD} to confirm. Nothing was deleted."},
            status_code=422,
        )
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        await delete_account(session, user=fresh)
    request.state.set_session = ""
    request.state.user = None
    return render(request, "account/deleted.html")


@api.get("/me")
async def me(user: CurrentUser) -> dict[str, object]:
    """The signed-in person's account."""
    return account_data(user)
