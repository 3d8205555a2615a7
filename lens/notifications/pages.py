"""Unsubscribe links (no sign-in: the signed link is the permission), per-kind
preferences on the account, and the admin's view of deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response

from lens.auth.deps import AdminUser, CurrentUser, load_user
from lens.db.engine import unit_of_work
from lens.errors import Invalid
from lens.notifications.kinds import CHANNELS, KINDS
from lens.notifications.models import Delivery, DeliveryStatus
from lens.notifications.service import check_unsubscribe, opted_out, set_preference
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

CHANNEL_LABELS = {"email": "e-mail", "discord": "Discord message"}
UNSUBSCRIBE_PATH = "/notifications/unsubscribe"


def _parse(u: str, k: str, c: str, t: str, secret: str) -> tuple[int, str, str]:
    if not u.isdigit():
        raise Invalid("This unsubscribe link is not complete; copy the whole link.")
    check_unsubscribe(secret, int(u), k, c, t)
    return int(u), k, c


@router.get(UNSUBSCRIBE_PATH)
async def unsubscribe_page(
    request: Request, u: str = "", k: str = "", c: str = "", t: str = ""
) -> Response:
    _parse(u, k, c, t, get_lens(request).jwt_secret)
    return render(
        request,
        "notifications/unsubscribe.html",
        {
            "label": KINDS[k].label,
            "channel": CHANNEL_LABELS[c],
            "query": request.url.query,
            "done": False,
        },
    )


@router.post(UNSUBSCRIBE_PATH)
async def unsubscribe(
    request: Request, u: str = "", k: str = "", c: str = "", t: str = ""
) -> Response:
    """The button on the page, and mail clients' one-click POST (RFC 8058)."""
    user_id, kind, channel = _parse(u, k, c, t, get_lens(request).jwt_secret)
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        await set_preference(session, user_id=user_id, kind=kind, channel=channel, enabled=False)
    return render(
        request,
        "notifications/unsubscribe.html",
        {"label": KINDS[kind].label, "channel": CHANNEL_LABELS[channel], "done": True},
    )


@router.get("/account/notifications")
async def preferences_page(request: Request, user: CurrentUser, saved: bool = False) -> Response:
    async with get_lens(request).sessionmaker() as session:
        off = await opted_out(session, user_id=user.id)
    kinds = [k for k in KINDS.values() if k.can_unsubscribe]
    return render(
        request,
        "notifications/preferences.html",
        {
            "kinds": kinds,
            "channels": [(c, CHANNEL_LABELS[c]) for c in CHANNELS],
            "off": off,
            "saved": saved,
            "user": user,
        },
    )


@router.post("/account/notifications")
async def save_preferences(request: Request, user: CurrentUser) -> Response:
    form = await request.form()
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        for kind in KINDS.values():
            if not kind.can_unsubscribe:
                continue
            for channel in CHANNELS:
                await set_preference(
                    session,
                    user_id=user.id,
                    kind=kind.name,
                    channel=channel,
                    enabled=form.get(f"{kind.name}:{channel}") == "on",
                )
    return RedirectResponse("/account/notifications?saved=1", status_code=303)


@router.get("/admin/deliveries")
async def deliveries_page(request: Request, admin: AdminUser, status: str = "") -> Response:
    async with get_lens(request).sessionmaker() as session:
        counts = dict(
            (
                await session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                )
            ).all()
        )
        query = select(Delivery).order_by(Delivery.updated_at.desc()).limit(100)
        if status:
            query = query.where(Delivery.status == status)
        else:
            query = query.where(
                Delivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.PENDING])
            )
        rows = list(await session.scalars(query))
    return render(
        request,
        "notifications/deliveries.html",
        {
            "counts": counts,
            "rows": rows,
            "status": status,
            "statuses": [
                DeliveryStatus.PENDING,
                DeliveryStatus.SENDING,
                DeliveryStatus.SENT,
                DeliveryStatus.FAILED,
                DeliveryStatus.DROPPED,
            ],
        },
    )
