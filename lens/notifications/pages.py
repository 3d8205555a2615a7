"""Unsubscribe links (no sign-in: the signed link is the permission), per-kind
preferences on the account, and the admin's view of deliveries (filters, retrying
failed ones, a person's messages on their admin page)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lens.auth.deps import AdminUser, CurrentUser, load_user
from lens.db.engine import unit_of_work
from lens.errors import Conflict, Invalid, NotFound
from lens.notifications.admin import (
    LIST_LIMIT,
    PERSON_LIMIT,
    STATUSES,
    check_filters,
    list_deliveries,
    list_person_deliveries,
    retry_deliveries,
    status_counts,
)
from lens.notifications.kinds import CHANNELS, KINDS
from lens.notifications.models import Delivery, DeliveryStatus
from lens.notifications.service import check_unsubscribe, opted_out, set_preference
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render, render_fragment

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


# -- the admin's deliveries ------------------------------------------------------------


def _delivery_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"There is no delivery {raw!r}.")
    return int(raw)


def _back(status: str, kind: str, **notice: int) -> str:
    """The deliveries page with the filters the admin was looking at."""
    query = {k: v for k, v in {"status": status, "kind": kind}.items() if v}
    return "/admin/deliveries" + (f"?{urlencode(query | notice)}" if query or notice else "")


async def _deliveries_page(
    request: Request, *, status: str, kind: str, status_code: int = 200, **extra: object
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        counts = await status_counts(session, kind=kind)
        rows = await list_deliveries(session, status=status, kind=kind)
    failed = [r for r in rows if r.delivery.status == DeliveryStatus.FAILED]
    return render(
        request,
        "notifications/deliveries.html",
        {
            "counts": counts,
            "rows": rows,
            "failed": failed,
            "status": status,
            "kind": kind,
            "statuses": STATUSES,
            "kinds": list(KINDS.values()),
            "limit": LIST_LIMIT,
            # After a retry (the redirect's query); numbers only, anything else ignored.
            "notice": {
                k: int(v)
                for k in ("retried", "late", "skipped")
                if (v := request.query_params.get(k, "")).isdigit() and len(v) < 4
            },
            **extra,
        },
        status_code=status_code,
    )


@router.get("/admin/deliveries")
async def deliveries_page(
    request: Request, admin: AdminUser, status: str = "", kind: str = ""
) -> Response:
    try:
        status, kind = check_filters(status=status, kind=kind)
    except Invalid as exc:
        return await _deliveries_page(
            request, status="", kind="", status_code=exc.status_code, error=exc.message
        )
    return await _deliveries_page(request, status=status, kind=kind)


def _filters_from(form: Mapping[str, object]) -> tuple[str, str]:
    """The filters a form came from (to go back to them); unknown ones are dropped."""
    try:
        return check_filters(status=str(form.get("status", "")), kind=str(form.get("kind", "")))
    except Invalid:
        return "", ""


@router.post("/admin/deliveries/{delivery_id}/retry")
async def retry_delivery(request: Request, delivery_id: str, admin: AdminUser) -> Response:
    """Send one failed delivery again. Retrying one already waiting changes nothing."""
    status, kind = _filters_from(await request.form())
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        delivery = await session.get(Delivery, _delivery_id(delivery_id))
        if delivery is None:
            raise NotFound(f"There is no delivery {delivery_id}.")
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.DROPPED):
            raise Conflict(
                f"Only failed deliveries can be retried; delivery {delivery.id} was "
                f"{delivery.status}, so nothing changed."
            )
        done = await retry_deliveries(session, delivery_ids=[delivery.id], by=admin)
    return RedirectResponse(
        _back(status, kind, retried=done.retried, late=done.late, skipped=done.skipped),
        status_code=303,
    )


@router.post("/admin/deliveries/retry")
async def retry_failed_shown(request: Request, admin: AdminUser) -> Response:
    """Retry all failed shown: the ids the page listed, once the admin confirmed."""
    form = await request.form()
    status, kind = _filters_from(form)
    raw = [str(v) for v in form.getlist("ids")]
    problem = None
    if form.get("confirm") != "yes":
        problem = "Tick the box to confirm that every failed delivery shown is sent again."
    elif not raw:
        problem = "No failed deliveries were shown, so there is nothing to retry."
    elif len(raw) > LIST_LIMIT or not all(v.isdigit() and len(v) <= 18 for v in raw):
        problem = "The list of deliveries was not understood; reload the page and try again."
    if problem:
        return await _deliveries_page(
            request, status=status, kind=kind, status_code=422, error=problem
        )
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        done = await retry_deliveries(session, delivery_ids=[int(v) for v in raw], by=admin)
    return RedirectResponse(
        _back(status, kind, retried=done.retried, late=done.late, skipped=done.skipped),
        status_code=303,
    )


# -- a person's deliveries, on their admin page ----------------------------------------


async def person_panel(request: Request, session: AsyncSession, user: User) -> Markup | None:
    """For the admin's page of a person (place "admin.user"): their latest messages."""
    return render_fragment(
        request,
        "notifications/person_panel.html",
        {
            "person": user,
            "deliveries": await list_person_deliveries(session, user_id=user.id),
            "limit": PERSON_LIMIT,
            "channels": CHANNEL_LABELS,
        },
    )
