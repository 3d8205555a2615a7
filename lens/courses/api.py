"""JSON API for the reader: course, course progress, module, completion, heartbeat."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lens.auth.deps import OptionalUser
from lens.auth.visitors import Reader
from lens.courses.pages import current_content
from lens.courses.rendering import section_blocks
from lens.courses.service import (
    ModuleEntry,
    completion_record,
    course_modules,
    course_view,
    get_course,
    get_module,
    heartbeat_record,
    module_key,
)
from lens.courses.spool import save_progress
from lens.errors import NotFound
from lens.web.state import get_lens

router = APIRouter(prefix="/api", tags=["reader"])


class ModuleSummary(BaseModel):
    slug: str
    title: str
    key: str
    optional: bool
    sections: int


class UnitOut(BaseModel):
    number: int
    meeting: int | None
    modules: list[ModuleSummary]


class CourseOut(BaseModel):
    slug: str
    title: str
    units: list[UnitOut]


class ModuleProgress(BaseModel):
    slug: str
    status: str
    required_done: int
    required_total: int


class CourseProgressOut(BaseModel):
    course: str
    modules: list[ModuleProgress]
    next_module: str | None


class SegmentOut(BaseModel):
    kind: str
    html: str = ""
    omitted_html: str = ""
    start_seconds: float | None = None
    end_seconds: float | None = None
    transcript: str = ""


class SectionOut(BaseModel):
    content_id: str
    kind: str
    title: str
    optional: bool
    outcome_id: str | None
    segments: list[SegmentOut]


class ModuleOut(BaseModel):
    slug: str
    title: str
    key: str
    sections: list[SectionOut]


class CompleteIn(BaseModel):
    course: str
    module: str = Field(description="module slug")
    content_id: str


class CompleteOut(BaseModel):
    module_completed: bool
    # The database was away: kept on this server and saved when it is back (202).
    saved_later: bool = False


class HeartbeatIn(BaseModel):
    course: str = ""  # empty: the module read on its own (/module/<slug>)
    module_key: str
    content_id: str


class HeartbeatOut(BaseModel):
    counted_seconds: int
    saved_later: bool = False  # as CompleteOut.saved_later; counted then


@router.get("/courses/{slug}", response_model=CourseOut)
async def course(request: Request, slug: str) -> CourseOut:
    content = current_content(request)
    found = get_course(content, slug)
    units = []
    for unit in found.units:
        modules = [
            ModuleSummary(
                slug=m.slug,
                title=m.title,
                key=module_key(m),
                optional=item.optional,
                sections=len(m.sections),
            )
            for item in unit.modules
            if item.path is not None and (m := content.modules.get(item.path)) is not None
        ]
        units.append(UnitOut(number=unit.number, meeting=unit.meeting, modules=modules))
    return CourseOut(slug=found.slug, title=found.title, units=units)


@router.get("/courses/{slug}/progress", response_model=CourseProgressOut)
async def course_progress(request: Request, slug: str, viewer: OptionalUser) -> JSONResponse:
    content = current_content(request)
    found = get_course(content, slug)
    reader = Reader(request, viewer)
    async with get_lens(request).sessionmaker() as session:
        view = await course_view(session, content=content, course=found, actor=reader.actor)
    body = CourseProgressOut(
        course=found.slug,
        modules=[
            ModuleProgress(
                slug=e.module.slug, status=e.status, required_done=e.done, required_total=e.required
            )
            for u in view.units
            for e in u.modules
            if isinstance(e, ModuleEntry)
        ],
        next_module=view.next_module.module.slug if view.next_module else None,
    )
    response = JSONResponse(body.model_dump())
    reader.apply(request, response)
    return response


@router.get("/courses/{slug}/modules/{module_slug}", response_model=ModuleOut)
async def module(request: Request, slug: str, module_slug: str) -> ModuleOut:
    content = current_content(request)
    _, found = get_module(content, get_course(content, slug), module_slug)
    sections = []
    for section in found.sections:
        blocks, _ = section_blocks(section)
        sections.append(
            SectionOut(
                content_id=section.content_id,
                kind=section.kind,
                title=section.title,
                optional=section.optional,
                outcome_id=section.outcome_id,
                segments=[
                    SegmentOut(
                        kind=b.kind,
                        html=b.html,
                        omitted_html=b.omitted_html,
                        start_seconds=b.start if b.kind == "clip" else None,
                        end_seconds=b.end if b.kind == "clip" else None,
                        transcript=b.transcript,
                    )
                    for b in blocks
                ],
            )
        )
    return ModuleOut(slug=found.slug, title=found.title, key=module_key(found), sections=sections)


@router.post("/progress/complete", response_model=CompleteOut)
async def complete(request: Request, body: CompleteIn, viewer: OptionalUser) -> JSONResponse:
    content = current_content(request)
    _, found = get_module(content, get_course(content, body.course), body.module)
    reader = Reader(request, viewer)
    record = completion_record(reader.actor or "", reader.user_id, found, body.content_id)
    lens = get_lens(request)
    saved, finished = await save_progress(lens.sessionmaker, lens.settings, record)
    response = JSONResponse(
        CompleteOut(module_completed=bool(finished), saved_later=not saved).model_dump(),
        status_code=200 if saved else 202,
    )
    reader.apply(request, response)
    return response


@router.post("/progress/heartbeat", response_model=HeartbeatOut)
async def beat(request: Request, body: HeartbeatIn, viewer: OptionalUser) -> JSONResponse:
    content = current_content(request)
    if body.course:
        found_course = get_course(content, body.course)
        candidates = [m for _, m in course_modules(content, found_course)]
    else:  # a module read on its own (/module/<slug>)
        candidates = list(content.modules.values())
    match = next((m for m in candidates if module_key(m) == body.module_key), None)
    if match is None:
        raise NotFound("There is no such module (the content may have just changed).")
    reader = Reader(request, viewer)
    record = heartbeat_record(reader.actor or "", reader.user_id, match, body.content_id)
    lens = get_lens(request)
    saved, counted = await save_progress(lens.sessionmaker, lens.settings, record)
    response = JSONResponse(
        HeartbeatOut(counted_seconds=int(counted or 0), saved_later=not saved).model_dump(),
        status_code=200 if saved else 202,
    )
    reader.apply(request, response)
    return response
