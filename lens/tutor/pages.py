"""Transcript pages: a student's own conversations; the admin's prompts and export."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, CurrentUser, load_user
from lens.content.deps import loaded_content
from lens.courses.service import course_modules, get_course, module_key
from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError
from lens.tutor.prompt import DEFAULT_BASE_PROMPT
from lens.tutor.transcripts import (
    MAX_BASE_PROMPT_CHARS,
    ExportFilter,
    export_transcripts,
    list_base_prompts,
    list_transcripts,
    set_base_prompt,
)
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


@router.get("/account/transcripts")
async def my_transcripts(request: Request, user: CurrentUser) -> Response:
    async with get_lens(request).sessionmaker() as session:
        transcripts = await list_transcripts(
            session, user_id=user.id, content=loaded_content(request)
        )
    return render(request, "account/transcripts.html", {"transcripts": transcripts})


async def _admin_page(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    lens = get_lens(request)
    content = loaded_content(request)
    courses = sorted(content.courses.values(), key=lambda c: c.title) if content else []
    async with lens.sessionmaker() as session:
        prompts = await list_base_prompts(session)
    context = {
        "courses": courses,
        "prompts": prompts,
        "default_prompt": DEFAULT_BASE_PROMPT,
        "max_chars": MAX_BASE_PROMPT_CHARS,
        "configured": lens.chat_model is not None,
        **extra,
    }
    return render(request, "admin/tutor.html", context, status_code=status_code)


@router.get("/admin/tutor")
async def tutor_admin(request: Request, admin: AdminUser, saved: str = "") -> Response:
    return await _admin_page(request, saved=saved)


@router.post("/admin/tutor/prompt")
async def save_prompt(
    request: Request,
    admin: AdminUser,
    course: Annotated[str, Form()],
    prompt: Annotated[str, Form()] = "",
) -> Response:
    content = loaded_content(request)
    if content is None or course not in content.courses:
        raise Invalid(f"There is no course {course!r}; reload the page and try again.")
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            await set_base_prompt(session, course_slug=course, prompt=prompt, by=admin)
    except LensError as exc:
        # Shown beside the form with the text as typed, so nothing is lost.
        return await _admin_page(
            request,
            status_code=exc.status_code,
            error_course=course,
            error=exc.message,
            draft=prompt,
        )
    return RedirectResponse(f"/admin/tutor?saved={course}#course-{course}", status_code=303)


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"The {name} date {value!r} is not a date; use YYYY-MM-DD.") from None


@router.get("/admin/tutor/transcripts.json")
async def export(
    request: Request, admin: AdminUser, course: str = "", since: str = "", until: str = ""
) -> Response:
    content = loaded_content(request)
    module_keys: set[str] | None = None
    if course:
        if content is None:
            raise Invalid("No course content is loaded, so there is no course to filter by.")
        module_keys = {
            module_key(m) for _, m in course_modules(content, get_course(content, course))
        }
    first, last = _day(since, "start"), _day(until, "end")
    where = ExportFilter(
        module_keys=module_keys,
        since=datetime.combine(first, time(), UTC) if first else None,
        # The end date is inclusive: everything before the next midnight UTC.
        until=datetime.combine(last + timedelta(days=1), time(), UTC) if last else None,
    )
    where.check()
    header = {
        "exported_at": utcnow().isoformat(),
        "course": course or None,
        "since": since or None,
        "until": until or None,
        "note": "Times are UTC; the end date is inclusive.",
    }
    name = f"lens-transcripts-{course or 'all'}-{utcnow():%Y%m%d}.json"
    return StreamingResponse(
        export_transcripts(
            get_lens(request).sessionmaker, content=content, where=where, header=header
        ),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
