"""Course and module read models over the current content, and reading progress."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.service import USER_SESSION
from lens.auth.visitors import user_actor, visitor_actor
from lens.content.parsed import ContentSet, Course, CourseModule, Module, Section
from lens.courses.events import ModuleCompleted
from lens.courses.models import Progress, ReaderActivity
from lens.db.base import utcnow
from lens.errors import NotFound
from lens.events import publish
from lens.users.models import User

HEARTBEAT_SECONDS = 30
# A heartbeat sooner than this after the last one (another tab, a retry) counts nothing.
MIN_HEARTBEAT_GAP = timedelta(seconds=25)

Status = Literal["not started", "in progress", "completed"]


# -- read models -------------------------------------------------------------------------


def module_key(module: Module) -> str:
    return module.id or f"slug:{module.slug}"


@dataclass(frozen=True)
class ModuleEntry:
    module: Module
    optional: bool
    status: Status
    done: int
    required: int


@dataclass(frozen=True)
class UnavailableEntry:
    """A module the course file names that cannot be served: shown, never hidden."""

    label: str  # what the course file links, as a name
    optional: bool
    reason: str  # for admins: the module's first error, or why the link leads nowhere
    path: str | None

    status: Status = "not started"
    module: None = None


@dataclass(frozen=True)
class UnitView:
    number: int
    meeting: int | None
    modules: tuple[ModuleEntry | UnavailableEntry, ...]
    meeting_name: str | None = None

    @property
    def completed_required(self) -> int:
        return sum(1 for m in self.modules if not m.optional and m.status == "completed")

    @property
    def total_required(self) -> int:
        """Required modules, the unavailable ones too: a course is not done without them."""
        return sum(1 for m in self.modules if not m.optional)

    @property
    def unavailable(self) -> int:
        return sum(1 for m in self.modules if isinstance(m, UnavailableEntry))


@dataclass(frozen=True)
class CourseView:
    course: Course
    units: tuple[UnitView, ...]

    @property
    def next_module(self) -> ModuleEntry | None:
        """Where "continue" goes: the first unfinished required module, else any."""
        entries = [m for u in self.units for m in u.modules if isinstance(m, ModuleEntry)]
        for entry in entries:
            if not entry.optional and entry.status != "completed":
                return entry
        for entry in entries:
            if entry.status != "completed":
                return entry
        return entries[0] if entries else None


def get_course(content: ContentSet, slug: str) -> Course:
    course = content.courses.get(slug)
    if course is None:
        raise NotFound(f"There is no course {slug!r}.")
    return course


def first_course(content: ContentSet) -> Course | None:
    return next(iter(sorted(content.courses.values(), key=lambda c: c.title)), None)


def course_modules(content: ContentSet, course: Course) -> list[tuple[CourseModule, Module]]:
    """The course's modules that can be served, in order."""
    return [
        (item, content.modules[item.path])
        for unit in course.units
        for item in unit.modules
        if item.path is not None and item.path in content.modules
    ]


def unavailable_entry(content: ContentSet, item: CourseModule) -> UnavailableEntry:
    label = posixpath.splitext(posixpath.basename(item.path or item.link))[0] or item.link
    if item.path is None:
        reason = f"the course links [[{item.link}]], which leads to no file"
    else:
        errors = content.errors(item.path)
        reason = (
            f"{item.path} cannot be served: {errors[0].message} (line {errors[0].line})"
            if errors
            else f"{item.path} cannot be served"
        )
    return UnavailableEntry(label, item.optional, reason, item.path)


def get_module(content: ContentSet, course: Course, slug: str) -> tuple[CourseModule, Module]:
    for item, module in course_modules(content, course):
        if module.slug == slug:
            return item, module
    raise NotFound(f"There is no module {slug!r} in this course.")


def required_sections(module: Module) -> list[Section]:
    return [s for s in module.sections if not s.optional]


class Done(Protocol):
    """What the read models need of a progress row: a `Progress`, a row of
    `progress_rows` (its columns only, without the ORM's cost), or a `Mark`."""

    @property
    def completed_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Mark:
    """A progress row's completion, as the read models need it (`Done`)."""

    completed_at: datetime | None


_MARKS = select(Progress.module_key, Progress.content_id, Progress.completed_at)
# One module's marks: the module page runs it on every view (`Lens.read_rows`).
MODULE_PROGRESS = _MARKS.where(
    Progress.actor == bindparam("actor"), Progress.module_key == bindparam("module_key")
)
# The same marks with the signed-in reader's user row (lens.auth.deps.USER_SESSION) in
# front: one round trip for the module page. A row per mark (the user's columns
# repeated), or one with empty marks; none when the user is gone.
SIGNED_IN_MODULE_PROGRESS = USER_SESSION.add_columns(
    Progress.module_key, Progress.content_id, Progress.completed_at
).outerjoin_from(
    User,
    Progress,
    (Progress.actor == bindparam("actor")) & (Progress.module_key == bindparam("module_key")),
)


async def progress_rows(
    session: AsyncSession, *, actor: str, module_keys: list[str]
) -> dict[tuple[str, str], Done]:
    """All of a reader's progress marks for these modules, in one query (columns, not
    ORM objects)."""
    if not module_keys:
        return {}
    if len(module_keys) == 1:
        # = rather than IN: an IN list is re-rendered per execution.
        one = {"actor": actor, "module_key": module_keys[0]}
        rows = await session.execute(MODULE_PROGRESS, one)
    else:
        rows = await session.execute(
            _MARKS.where(Progress.actor == actor, Progress.module_key.in_(module_keys))
        )
    return {(r.module_key, r.content_id): r for r in rows}


def module_status(module: Module, rows: Mapping[tuple[str, str], Done]) -> tuple[Status, int]:
    key = module_key(module)
    done = sum(
        1
        for s in required_sections(module)
        if (r := rows.get((key, s.content_id))) is not None and r.completed_at is not None
    )
    module_row = rows.get((key, ""))
    if module_row is not None and module_row.completed_at is not None:
        return "completed", done
    touched = any(k[0] == key for k in rows)
    return ("in progress" if touched else "not started"), done


async def course_view(
    session: AsyncSession, *, content: ContentSet, course: Course, actor: str | None
) -> CourseView:
    modules = [m for _, m in course_modules(content, course)]
    rows = (
        await progress_rows(session, actor=actor, module_keys=[module_key(m) for m in modules])
        if actor
        else {}
    )
    units = []
    for unit in course.units:
        entries: list[ModuleEntry | UnavailableEntry] = []
        for item in unit.modules:
            module = content.modules.get(item.path) if item.path is not None else None
            if module is None:
                entries.append(unavailable_entry(content, item))
                continue
            status, done = module_status(module, rows)
            entries.append(
                ModuleEntry(module, item.optional, status, done, len(required_sections(module)))
            )
        units.append(UnitView(unit.number, unit.meeting, tuple(entries), unit.meeting_name))
    return CourseView(course, tuple(units))


# -- changes -------------------------------------------------------------------------------


async def _row(
    session: AsyncSession, *, actor: str, user_id: int | None, key: str, content_id: str
) -> Progress:
    row = await session.scalar(
        select(Progress).where(
            Progress.actor == actor, Progress.module_key == key, Progress.content_id == content_id
        )
    )
    if row is None:
        row = Progress(actor=actor, user_id=user_id, module_key=key, content_id=content_id)
        session.add(row)
        await session.flush()
    return row


async def complete_section(
    session: AsyncSession, *, actor: str, user_id: int | None, module: Module, content_id: str
) -> bool:
    """Mark one section done; True when that completes the module."""
    return await apply_completion(session, completion_record(actor, user_id, module, content_id))


def completion_record(
    actor: str, user_id: int | None, module: Module, content_id: str
) -> dict[str, Any]:
    """A section marked read, as a record that needs no content to be applied (the
    module's required sections travel with it): saved now, or spooled while the database
    is away (lens/db/spool.py) and applied as it was when it was acknowledged."""
    if content_id not in {s.content_id for s in module.sections}:
        raise NotFound("This module has no such section (the course may have just changed).")
    return {
        "what": "complete",
        "actor": actor,
        "user_id": user_id,
        "module_key": module_key(module),
        "content_id": content_id,
        "required": [s.content_id for s in required_sections(module)],
        "at": utcnow().isoformat(),
    }


async def apply_completion(session: AsyncSession, record: dict[str, Any]) -> bool:
    actor, user_id, key = record["actor"], record["user_id"], record["module_key"]
    at = datetime.fromisoformat(record["at"])
    row = await _row(
        session, actor=actor, user_id=user_id, key=key, content_id=record["content_id"]
    )
    if row.completed_at is None:
        row.completed_at = at
    rows = await progress_rows(session, actor=actor, module_keys=[key])
    done = {cid for (_, cid), r in rows.items() if r.completed_at is not None}
    if all(cid in done for cid in record["required"]):
        module_row = await _row(session, actor=actor, user_id=user_id, key=key, content_id="")
        if module_row.completed_at is None:
            module_row.completed_at = at
            await session.flush()
            if user_id is not None:
                await publish(session, ModuleCompleted(user_id=user_id, module_key=key))
            return True
    await session.flush()
    return False


async def heartbeat(
    session: AsyncSession, *, actor: str, user_id: int | None, module: Module, content_id: str
) -> int:
    """Count up to 30 s of reading time; returns the seconds counted (0 if too soon)."""
    return await apply_heartbeat(session, heartbeat_record(actor, user_id, module, content_id))


def heartbeat_record(
    actor: str, user_id: int | None, module: Module, content_id: str
) -> dict[str, Any]:
    """A heartbeat as a record that needs no content to be applied (see
    completion_record)."""
    if content_id not in {s.content_id for s in module.sections}:
        raise NotFound("This module has no such section.")
    return {
        "what": "heartbeat",
        "actor": actor,
        "user_id": user_id,
        "module_key": module_key(module),
        "content_id": content_id,
        "at": utcnow().isoformat(),
    }


async def apply_heartbeat(session: AsyncSession, record: dict[str, Any]) -> int:
    actor = record["actor"]
    now = datetime.fromisoformat(record["at"])
    activity = await session.get(ReaderActivity, actor, with_for_update=True)
    if activity is not None and abs(now - activity.last_heartbeat_at) < MIN_HEARTBEAT_GAP:
        return 0
    if activity is None:
        session.add(ReaderActivity(actor=actor, last_heartbeat_at=now))
    else:
        activity.last_heartbeat_at = max(now, activity.last_heartbeat_at)
    row = await _row(
        session,
        actor=actor,
        user_id=record["user_id"],
        key=record["module_key"],
        content_id=record["content_id"],
    )
    row.seconds += HEARTBEAT_SECONDS
    await session.flush()
    return HEARTBEAT_SECONDS


async def merge_anonymous(session: AsyncSession, *, anon_id: str, user_id: int) -> int:
    """A visitor signed in: their progress joins their account. Returns rows moved."""
    source = visitor_actor(anon_id)
    target = user_actor(user_id)
    theirs = list(await session.scalars(select(Progress).where(Progress.actor == source)))
    if not theirs:
        return 0
    mine = {
        (r.module_key, r.content_id): r
        for r in await session.scalars(select(Progress).where(Progress.actor == target))
    }
    for row in theirs:
        existing = mine.get((row.module_key, row.content_id))
        if existing is None:
            row.actor = target
            row.user_id = user_id
            continue
        existing.seconds += row.seconds
        if row.completed_at and (
            existing.completed_at is None or row.completed_at < existing.completed_at
        ):
            existing.completed_at = row.completed_at
        await session.delete(row)
    await session.execute(delete(ReaderActivity).where(ReaderActivity.actor == source))
    await session.flush()
    return len(theirs)
