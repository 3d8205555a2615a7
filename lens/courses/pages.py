"""The reader: landing page, course overview, module viewer (in a course, or alone at
/module/<slug>), a lens alone (/lens/<id>), section completion."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from starlette.responses import Response

from lens.auth.deps import OptionalUser, accept_user, load_user
from lens.auth.visitors import Reader, user_actor
from lens.content.deps import content_store
from lens.content.parsed import ContentSet, Course, CourseModule, Module
from lens.courses.rendering import Block, TocEntry, clock, section_blocks
from lens.courses.service import (
    MODULE_PROGRESS,
    SIGNED_IN_MODULE_PROGRESS,
    Mark,
    completion_record,
    course_modules,
    course_view,
    first_course,
    get_course,
    get_module,
    module_key,
    module_status,
    required_sections,
)
from lens.courses.spool import save_progress
from lens.errors import NotFound
from lens.logging import get_logger
from lens.users.models import User
from lens.web.panels import render_panels
from lens.web.query import query_bool, query_int
from lens.web.state import get_lens
from lens.web.templating import render, render_fragment

log = get_logger("lens.courses")
router = APIRouter(include_in_schema=False)  # every route loads the viewer (load_user)


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


def _section_html(request: Request, module: Module, index: int, page: dict[str, object]) -> Markup:
    """The section's part of the module page (courses/_section.html), the same for every
    reader: drawn once per content snapshot (and tutor set-up), then reused; it was the
    larger part of drawing the page."""
    store = content_store(request)
    assert store is not None
    key = ("section-html", module.path, index, page["tutor_ready"], page["speech_ready"])
    cached = store.memo.get(key)
    if cached is None:
        blocks, toc = rendered_section(request, module.path, index - 1)
        cached = render_fragment(
            request,
            "courses/_section.html",
            {**page, "section": module.sections[index - 1], "index": index,
             "blocks": blocks, "toc": toc},
        )  # fmt: skip
        store.memo[key] = cached
    return cast(Markup, cached)


def prerender(content: ContentSet) -> dict[object, object]:
    """Every module's sections rendered (as `rendered_section` keys them), for the
    content store to do in a thread when a snapshot loads. A section that fails to render
    is left to render (and fail, with its error page) when it is asked for."""
    memo: dict[object, object] = {}
    for path, module in content.modules.items():
        for position, section in enumerate(module.sections):
            try:
                memo[("section", path, position)] = section_blocks(section)
            except Exception as exc:  # one broken section must not stop the others
                log.warning("content.prerender_failed", module=path, section=position,
                            error=repr(exc))  # fmt: skip
    return memo


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
    async with get_lens(request).sessionmaker() as session:
        # A signed-in person's cohorts (lens/completion): where they are, not "enroll".
        panels = await render_panels(request, "landing", session, viewer)
    return render(
        request, "courses/landing.html", {"course": course, "first": first, "panels": panels}
    )


@router.get("/course/{slug}")
async def overview(request: Request, slug: str, viewer: OptionalUser) -> Response:
    content = current_content(request)
    course = get_course(content, slug)
    reader = Reader(request, viewer)
    async with get_lens(request).reads() as session:
        view = await course_view(session, content=content, course=course, actor=reader.actor)
    admin = viewer is not None and viewer.is_admin
    response = render(request, "courses/course.html", {"view": view, "admin": admin})
    return reader.apply(request, response)


async def module_page(request: Request) -> Response:
    """/course/{slug}/{module_slug}?s=&done=: the page every reader opens, and the one a
    whole cohort opens at once. A plain route: FastAPI's dependency solving and parameter
    validation cost more here than the page's own database read (bench/reader); `s` and
    `done` are read as FastAPI would (the same 422 when malformed). The viewer is loaded
    with the page's own read (`_viewer_and_marks`)."""
    slug, module_slug = request.path_params["slug"], request.path_params["module_slug"]
    try:
        s, done = query_int(request, "s", 1), query_bool(request, "done", False)
        content = current_content(request)
        course = get_course(content, slug)
        renamed = content.slug_aliases.get(module_slug)
        if renamed is None:
            item, module = get_module(content, course, module_slug)
    except Exception:
        await load_user(request)  # the error page shows who is signed in
        raise
    if renamed is not None:
        # An earlier slug (`slug-aliases`): old links and bookmarks keep working.
        await load_user(request)  # a signed-out cookie is cleared here too
        return RedirectResponse(f"/course/{course.slug}/{renamed}?s={s}", status_code=301)
    return await _module_page(request, content, module, course, item, s, done)


router.add_route("/course/{slug}/{module_slug}", module_page, methods=["GET"],
                 include_in_schema=False)  # fmt: skip


@router.get("/module/{module_slug}")
async def module_alone(
    request: Request, module_slug: str, viewer: OptionalUser, s: int = 1, done: bool = False
) -> Response:
    """Any module, listed in a course or not, without a course around it."""
    content = current_content(request)
    renamed = content.slug_aliases.get(module_slug)
    if renamed is not None:
        return RedirectResponse(f"/module/{renamed}?s={s}", status_code=301)
    module = content.module_by_slug(module_slug)
    if module is None:
        raise NotFound(f"There is no module {module_slug!r}.")
    return await _module_page(request, content, module, None, None, s, done)


async def _viewer_and_marks(request: Request, key: str) -> tuple[User | None, list[Any]]:
    """Who is reading and their marks on this module, in one round trip for a signed-in
    reader (the session's user, joined to their progress); for a visitor, or when the
    viewer is known already, the progress read alone."""
    lens = get_lens(request)
    claims = getattr(request.state, "session", None)
    if claims is not None and "user" not in request.state._state:
        rows = await lens.read_rows(
            SIGNED_IN_MODULE_PROGRESS,
            user_id=claims.user_id,
            session_id=claims.session_id,
            actor=user_actor(claims.user_id),
            module_key=key,
        )
        viewer = accept_user(request, rows[0] if rows else None)
        if viewer is not None:
            return viewer, [r for r in rows if r["content_id"] is not None]
    viewer = await load_user(request)
    reader = Reader(request, viewer)
    return viewer, await lens.read_rows(MODULE_PROGRESS, actor=reader.actor or "", module_key=key)


async def _module_page(
    request: Request,
    content: ContentSet,
    module: Module,
    course: Course | None,
    item: CourseModule | None,
    s: int,
    done: bool,
) -> Response:
    key = module_key(module)
    viewer, found = await _viewer_and_marks(request, key)
    reader = Reader(request, viewer)
    rows = {(r["module_key"], r["content_id"]): Mark(r["completed_at"]) for r in found}
    status, _ = module_status(module, rows)
    done_ids = {cid for (_, cid), r in rows.items() if r.completed_at is not None}
    context: dict[str, object] = {
        "course": course,
        "module": module,
        "base": f"/course/{course.slug}/{module.slug}" if course else f"/module/{module.slug}",
        "done_ids": done_ids,
        "status": status,
        "just_completed": done,
        "next_module": None,
        "unit": None,
        "unit_done": True,
        "module_key": key,
        "tutor_ready": get_lens(request).chat_model is not None,
        "speech_ready": get_lens(request).transcriber is not None,
        "clock": clock,
        "required_left": [s for s in required_sections(module) if s.content_id not in done_ids],
        "admin": viewer is not None and viewer.is_admin,
    }
    if module.sections:
        index = min(max(s, 1), len(module.sections))
        context.update(
            section=module.sections[index - 1],
            index=index,
            section_html=_section_html(request, module, index, context),
        )
    else:
        context.update(section=None, index=0)
    if course is not None and item is not None:
        modules = course_modules(content, course)
        position = next(i for i, (_, m) in enumerate(modules) if m.path == module.path)
        next_module = modules[position + 1][1] if position + 1 < len(modules) else None
        unit = next(u for u in course.units if any(m.path == item.path for m in u.modules))
        context.update(
            next_module=next_module,
            unit=unit,
            unit_done=next_module is None
            or not any(m.path == modules[position + 1][0].path for m in unit.modules),
        )
    response = render(request, "courses/module.html", context)
    return reader.apply(request, response)


@router.get("/lens/{lens_id}")
async def lens_alone(request: Request, lens_id: str, viewer: OptionalUser) -> Response:
    """One lens (an article or a video with its framing), on its own, for sharing."""
    content = current_content(request)
    section = content.lens_by_id(lens_id)
    if section is None:
        raise NotFound("There is no such lens (its link may be out of date).")
    store = content_store(request)
    assert store is not None
    memo_key = ("lens", section.source_path)
    cached = store.memo.get(memo_key)
    if cached is None:
        cached = section_blocks(section)
        store.memo[memo_key] = cached
    blocks, toc = cast(tuple[list[Block], list[TocEntry]], cached)
    users_key = ("lens-users", section.source_path)
    used_in = store.memo.get(users_key)
    if used_in is None:  # once per snapshot: which modules read this lens
        used_in = [
            m
            for m in sorted(content.modules.values(), key=lambda m: m.title)
            if any(s.source_path == section.source_path for s in m.sections)
        ]
        store.memo[users_key] = used_in
    return render(
        request,
        "courses/lens.html",
        {
            "section": section,
            "blocks": blocks,
            "toc": toc,
            "clock": clock,
            "used_in": used_in,
            "lens_alone": True,
            "tutor_ready": False,
        },
    )


async def _complete(
    request: Request,
    viewer: User | None,
    module: Module,
    base: str,
    content_id: str,
    s: int,
) -> Response:
    reader = Reader(request, viewer)
    lens = get_lens(request)
    record = completion_record(reader.actor or "", reader.user_id, module, content_id)
    # While the database is away the mark waits on this server and is saved when it is
    # back: the reader goes on as if it were saved now.
    _, finished = await save_progress(lens.sessionmaker, lens.settings, record)
    if finished:
        target = f"{base}?s={s}&done=1"
    elif s < len(module.sections):
        target = f"{base}?s={s + 1}"
    else:
        target = f"{base}?s={s}"
    return reader.apply(request, RedirectResponse(target, status_code=303))


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
    base = f"/course/{course.slug}/{module.slug}"
    return await _complete(request, viewer, module, base, content_id, s)


@router.post("/module/{module_slug}/complete")
async def complete_alone(
    request: Request,
    module_slug: str,
    viewer: OptionalUser,
    content_id: Annotated[str, Form()],
    s: Annotated[int, Form()] = 1,
) -> Response:
    content = current_content(request)
    module = content.module_by_slug(module_slug)
    if module is None:
        raise NotFound(f"There is no module {module_slug!r}.")
    return await _complete(request, viewer, module, f"/module/{module.slug}", content_id, s)
