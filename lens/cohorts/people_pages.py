"""The admin's people pages: find a person, see their roles, cohorts, groups and
reading, make them an admin or approve them as a facilitator.

Features above add their parts to a person's page (their notifications) through
lens/web/panels.py, place "admin.user".
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.cohorts.people import (
    check_approvable,
    check_id,
    facilitator_roles,
    get_person,
    get_person_signup,
    get_person_user,
)
from lens.cohorts.service import REASON_TEXT, approve_facilitator
from lens.content.deps import course_titles, loaded_content
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError
from lens.users.admin import check_page, search_users, set_admin
from lens.web.panels import render_panels
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

# What a finished action says on the person's page (the redirect's ?done=).
DONE = {
    "admin": "{name} is now an admin.",
    "not-admin": "{name} is no longer an admin.",
    "unchanged": "Nothing changed: {name} already had that role.",
    "approved": "{name} is approved as a facilitator.",
}


@router.get("/admin/users")
async def people_page(request: Request, admin: AdminUser, q: str = "", page: str = "") -> Response:
    try:
        number = check_page(page)
        async with get_lens(request).sessionmaker() as session:
            found = await search_users(session, query=q, page=number)
            roles = await facilitator_roles(session, user_ids=[u.id for u in found.users])
    except Invalid as exc:
        return render(
            request,
            "admin/users.html",
            {"q": q, "found": None, "roles": {}, "error": exc.message},
            status_code=exc.status_code,
        )
    return render(request, "admin/users.html", {"q": q, "found": found, "roles": roles})


async def _person_page(
    request: Request, raw_id: str, admin: AdminUser, *, status_code: int = 200, **extra: object
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        user = await get_person_user(session, user_id=check_id(raw_id))
        person = await get_person(session, user=user, content=loaded_content(request))
        # What features above add here (the person's notifications).
        panels = await render_panels(request, "admin.user", session, user)
    done = DONE.get(request.query_params.get("done", ""))
    context = {
        "person": person,
        "user": user,
        "viewer_is_them": user.id == admin.id,
        "panels": panels,
        "courses": course_titles(request),
        "reasons": REASON_TEXT,
        "done": done.format(name=user.display_name) if done and status_code == 200 else None,
        **extra,
    }
    return render(request, "admin/user.html", context, status_code=status_code)


@router.get("/admin/users/{user_id}")
async def person_page(request: Request, user_id: str, admin: AdminUser) -> Response:
    return await _person_page(request, user_id, admin)


@router.post("/admin/users/{user_id}/admin")
async def admin_role_form(request: Request, user_id: str, admin: AdminUser) -> Response:
    """Make a person an admin (admin=yes) or take the role away (admin=no)."""
    form = await request.form()
    try:
        choice = form.get("admin")
        if choice not in ("yes", "no"):
            raise Invalid("Choose whether to make this person an admin or to remove the role.")
        if form.get("confirm") != "yes":
            raise Invalid("Tick the box to confirm the change of role.")
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            user = await get_person_user(session, user_id=check_id(user_id))
            changed = await set_admin(session, user=user, is_admin=choice == "yes", by=admin)
    except LensError as exc:
        if exc.status_code == 404:
            raise
        return await _person_page(
            request, user_id, admin, status_code=exc.status_code, error=exc.message
        )
    done = ("admin" if choice == "yes" else "not-admin") if changed else "unchanged"
    return RedirectResponse(f"/admin/users/{user.id}?done={done}#roles", status_code=303)


@router.post("/admin/users/{user_id}/signups/{signup_id}/approve")
async def approve_form(
    request: Request, user_id: str, signup_id: str, admin: AdminUser
) -> Response:
    """Approve a person as a facilitator in the cohort they signed up for as one."""
    form = await request.form()
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            user = await get_person_user(session, user_id=check_id(user_id))
            signup = await get_person_signup(
                session, user=user, signup_id=check_id(signup_id, what="signup")
            )
            check_approvable(signup)
            if form.get("confirm") != "yes":
                raise Invalid("Tick the box to confirm the approval.")
            await approve_facilitator(session, signup=signup)
    except LensError as exc:
        if exc.status_code == 404:
            raise
        return await _person_page(
            request, user_id, admin, status_code=exc.status_code, error=exc.message
        )
    return RedirectResponse(f"/admin/users/{user.id}?done=approved#roles", status_code=303)
