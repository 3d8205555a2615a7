"""The reader: landing page, course overview, module viewer, section completion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import OptionalUser, load_user
from lens.auth.visitors import Reader
from lens.content.deps import content_store
from lens.content.parsed import ContentSet
from lens.courses.rendering import Block, TocEntry, clock, section_blocks
from lens.courses.service import (
    complete_section,
    course_modules,
    course_view,
    first_course,
    get_course,
    get_module,
    module_key,
    module_status,
    progress_rows,
    required_sections,
)
from lens.db.engine import unit_of_work
from lens.errors import NotFound
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


def rendered_section(
    request: Request, module_path: str, position: int
) -> tuple[list[Block], list[TocEntry]]:
    """A section's blocks, rendered and sanitised once per content snapshot."""
    store = content_store(request)
    assert store is not None
    key = ("section", module_path, position)
    cached = store.memo.get(key)
    if cached is None:
        cached = section_blocks(store.content.modules[module_path].sections[position])
        store.memo[key] = cached
    return cached  # type: ignore[return-value]


def current_content(request: Request) -> ContentSet:
    """The parsed current content this process serves."""
    store = content_store(request)
    if store is None:
        raise NotFound("No course content is loaded yet.")
    return store.content


@router.get("/")
async def landing(request: Request, viewer: OptionalUser) -> Response:
    content = current_content(request)
    course = first_course(content)
    first = None
    if course is not None:
        modules = course_modules(content, course)
        first = modules[0][1] if modules else None
    return render(request, "courses/landing.html", {"course": course, "first": first})


@router.get("/course/{slug}")
async def overview(request: Request, slug: str, viewer: OptionalUser) -> Response:
    content = current_content(request)
    course = get_course(content, slug)
    reader = Reader(request, viewer)
    async with get_lens(request).sessionmaker() as session:
        view = await course_view(session, content=content, course=course, actor=reader.actor)
    response = render(request, "courses/course.html", {"view": view})
    return reader.apply(request, response)


@router.get("/course/{slug}/{module_slug}")
async def module_page(
    request: Request,
    slug: str,
    module_slug: str,
    viewer: OptionalUser,
    s: int = 1,
    done: bool = False,
) -> Response:
    content = current_content(request)
    course = get_course(content, slug)
    item, module = get_module(content, course, module_slug)
    if not module.sections:
        raise NotFound("This module has no sections yet.")
    index = min(max(s, 1), len(module.sections))
    section = module.sections[index - 1]
    reader = Reader(request, viewer)
    async with get_lens(request).sessionmaker() as session:
        rows = await progress_rows(
            session, actor=reader.actor or "", module_keys=[module_key(module)]
        )
    status, _ = module_status(module, rows)
    key = module_key(module)
    done_ids = {cid for (_, cid), r in rows.items() if r.completed_at is not None}
    blocks, toc = rendered_section(request, module.path, index - 1)
    modules = course_modules(content, course)
    position = next(i for i, (_, m) in enumerate(modules) if m.slug == module.slug)
    next_module = modules[position + 1][1] if position + 1 < len(modules) else None
    unit = next(u for u in course.units if any(m.path == item.path for m in u.modules))
    unit_done = next_module is None or not any(
        m.path == modules[position + 1][0].path for m in unit.modules
    )
    response = render(
        request,
        "courses/module.html",
        {
            "course": course,
            "module": module,
            "section": section,
            "index": index,
            "blocks": blocks,
            "toc": toc,
            "done_ids": done_ids,
            "status": status,
            "just_completed": done,
            "next_module": next_module,
            "unit": unit,
            "unit_done": unit_done,
            "module_key": key,
            "tutor_ready": get_lens(request).chat_model is not None,
            "speech_ready": get_lens(request).transcriber is not None,
            "clock": clock,
            "required_left": [s for s in required_sections(module) if s.content_id not in done_ids],
        },
    )
    return reader.apply(request, response)


@router.post("/course/{slug}/{module_slug}/complete")
async def complete(
    request: Request,
    slug: str,
    module_slug: str,
    viewer: OptionalUser,
    content_id: Annotated[str, Form()],
    s: Annotated[int, Form()] = 1,
) -> Response:
    content = current_content(request)
    course = get_course(content, slug)
    _, module = get_module(content, course, module_slug)
    reader = Reader(request, viewer)
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        finished = await complete_section(
            session,
            actor=reader.actor or "",
            user_id=reader.user_id,
            module=module,
            content_id=content_id,
        )
    base = f"/course/{course.slug}/{module.slug}"
    if finished:
        target = f"{base}?s={s}&done=1"
    elif s < len(module.sections):
        target = f"{base}?s={s + 1}"
    else:
        target = f"{base}?s={s}"
    return reader.apply(request, RedirectResponse(target, status_code=303))
