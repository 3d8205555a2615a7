"""At send time: is this notification still true and wanted, and what does it say?

Each kind's builder loads the current state (the meeting, the group, the person's
membership and progress) and either returns the template context, or raises Drop with
the reason when the message no longer holds: a moved or cancelled meeting, a member
who left, modules already read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.visitors import user_actor
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
    SignupStatus,
)
from lens.content.parsed import ContentSet
from lens.courses.models import Progress
from lens.courses.service import module_key, module_status, progress_rows
from lens.db.base import utcnow
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.discord_groups.service import channel_url, group_text_channel
from lens.integrations.email.client import Attachment
from lens.meetings.ical import IcsEvent, render_calendar
from lens.meetings.models import Meeting
from lens.meetings.service import describe_meeting, event_location, event_url
from lens.notifications.kinds import EMAIL, get_kind
from lens.notifications.models import Delivery
from lens.notifications.service import too_late, unsubscribe_url
from lens.users.models import User
from lens.web.messages import local_time


class Drop(Exception):
    """The notification no longer holds; the reason is recorded on the delivery."""


@dataclass
class Prepared:
    context: dict[str, Any]
    attachments: tuple[Attachment, ...] = ()
    language: str = "en"
    headers: dict[str, str] = field(default_factory=dict)
    host: str = "lens"  # the site's host name, for Message-IDs


@dataclass(frozen=True)
class Site:
    base_url: str
    secret: str  # signs unsubscribe links
    from_email: str
    content: ContentSet | None
    discord_server_id: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "lens"


Builder = Callable[[AsyncSession, Delivery, User, Site, dict[str, Any]], Awaitable[Prepared]]
_BUILDERS: dict[str, Builder] = {}


def builder(*kinds: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for kind in kinds:
            _BUILDERS[kind] = fn
        return fn

    return register


async def prepare(session: AsyncSession, delivery: Delivery, user: User, site: Site) -> Prepared:
    spec = get_kind(delivery.kind)
    late = too_late(delivery, now=utcnow())
    if late is not None:
        raise Drop(f"too late: due {int(late.total_seconds() // 60)} minutes ago")
    base: dict[str, Any] = {
        "name": user.display_name,
        "site_url": site.base_url,
        "preferences_url": f"{site.base_url}/account/notifications",
        "unsubscribe_url": None,
    }
    headers: dict[str, str] = {}
    if spec.can_unsubscribe:
        url = unsubscribe_url(site.base_url, site.secret, user.id, spec.name, delivery.channel)
        base["unsubscribe_url"] = url
        if delivery.channel == EMAIL:
            # RFC 8058 one-click: mail clients POST to the link without a page.
            headers = {
                "List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
    prepared = await _BUILDERS[delivery.kind](session, delivery, user, site, base)
    prepared.headers.update(headers)
    prepared.host = site.host
    return prepared


def _zone(user: User, signup: Signup | None) -> str:
    return user.timezone or (signup.timezone if signup else None) or "UTC"


def _course_title(site: Site, cohort: Cohort) -> str:
    course = site.content.courses.get(cohort.course_slug) if site.content else None
    return course.title if course else cohort.course_slug


@builder("welcome")
async def _welcome(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    row = (
        await session.execute(
            select(Signup, Cohort)
            .join(Cohort, Cohort.id == Signup.cohort_id)
            .where(Signup.id == delivery.context["signup_id"], Signup.user_id == user.id)
        )
    ).first()
    if row is None or row[0].status == SignupStatus.WITHDRAWN:
        raise Drop("no longer enrolled")
    signup, cohort = row
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "role": "facilitator" if signup.role == Role.FACILITATOR else "participant",
            # A calendar date: the same everywhere, not converted.
            "start_date": f"{cohort.start_date:%A} {cohort.start_date.day} "
            f"{cohort.start_date:%B %Y}",
            "meetings": cohort.meetings,
            "meeting_minutes": cohort.meeting_minutes,
            "course_url": f"{site.base_url}/course/{cohort.course_slug}",
            "enrollment_url": f"{site.base_url}/enroll/{cohort.id}",
        }
    )


@dataclass
class _Membership:
    signup: Signup
    group: Group
    cohort: Cohort


_MEMBERS = "lens.notifications.memberships"
_MEETINGS = "lens.notifications.meetings"
_CHANNELS = "lens.notifications.channels"
_PROGRESS = "lens.notifications.progress"


async def preload(session: AsyncSession, deliveries: list[Delivery]) -> dict[int, User]:
    """Load, for a whole batch, what the builders would otherwise ask for one by one:
    the recipients, the meetings, the memberships and reading progress involved. Kept
    in the session (its identity map and `info`), which prepares the batch in turn."""
    users = {
        u.id: u
        for u in await session.scalars(
            select(User).where(User.id.in_({d.user_id for d in deliveries}))
        )
    }
    meeting_ids = {d.context["meeting_id"] for d in deliveries if "meeting_id" in d.context}
    group_ids = {d.context["group_id"] for d in deliveries if "group_id" in d.context}
    if meeting_ids:
        meetings = list(await session.scalars(select(Meeting).where(Meeting.id.in_(meeting_ids))))
        # Held here: the identity map keeps only weak references.
        session.info[_MEETINGS] = {m.id: m for m in meetings}
        group_ids |= {m.group_id for m in meetings}
    members: dict[tuple[int, int], tuple[Signup, Group, Cohort] | None] = {
        (g, u): None for g in group_ids for u in users
    }
    if group_ids:
        rows = await session.execute(
            select(Signup, Group, Cohort)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .join(Group, Group.id == GroupMember.group_id)
            .join(Cohort, Cohort.id == Group.cohort_id)
            .where(Group.id.in_(group_ids), Signup.user_id.in_(list(users)))
        )
        for signup, group, cohort in rows.all():
            members[(group.id, signup.user_id)] = (signup, group, cohort)
    session.info[_MEMBERS] = members
    if group_ids:
        session.info[_CHANNELS] = dict(
            (
                await session.execute(
                    select(DiscordSpace.group_id, DiscordSpace.discord_id).where(
                        DiscordSpace.kind == SpaceKind.TEXT,
                        DiscordSpace.group_id.in_(group_ids),
                    )
                )
            ).all()
        )
    if meeting_ids:
        progress = await session.scalars(
            select(Progress).where(Progress.actor.in_([user_actor(u) for u in users]))
        )
        by_actor: dict[str, dict[tuple[str, str], Progress]] = {}
        for row in progress:
            by_actor.setdefault(row.actor, {})[(row.module_key, row.content_id)] = row
        session.info[_PROGRESS] = by_actor
    return users


async def _membership(session: AsyncSession, user: User, group_id: int) -> _Membership:
    cached = session.info.get(_MEMBERS, {})
    if (group_id, user.id) in cached:
        found = cached[(group_id, user.id)]
        if found is None:
            raise Drop("no longer in the group")
        return _check_member(*found)
    row = (
        await session.execute(
            select(Signup, Group, Cohort)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .join(Group, Group.id == GroupMember.group_id)
            .join(Cohort, Cohort.id == Group.cohort_id)
            .where(Group.id == group_id, Signup.user_id == user.id)
        )
    ).first()
    if row is None:
        raise Drop("no longer in the group")
    return _check_member(*row)


def _check_member(signup: Signup, group: Group, cohort: Cohort) -> _Membership:
    if signup.status == SignupStatus.WITHDRAWN:
        raise Drop("withdrew from the cohort")
    if group.status != GroupStatus.ACTIVE:
        raise Drop("the group is not active")
    return _Membership(signup, group, cohort)


def _ics(
    site: Site, user: User, group: Group, cohort: Cohort, meetings: list[Meeting], method: str
) -> Attachment:
    events = [
        IcsEvent(
            uid=f"meeting-{m.id}@{site.host}",
            sequence=m.sequence,
            start=m.starts_at,
            end=m.ends_at,
            summary=f"{cohort.name}: {group.name}, meeting {m.number}",
            description=describe_meeting(m, group, cohort, base_url=site.base_url),
            location=event_location(group),
            url=event_url(group, base_url=site.base_url),
            cancelled=m.status == "cancelled",
            organizer=site.from_email,
            attendees=((user.display_name, user.email),) if user.email else (),
        )
        for m in meetings
    ]
    text = render_calendar(events, method=method)
    return Attachment(
        filename="cancel.ics" if method == "CANCEL" else "invite.ics",
        content=text.encode(),
        content_type=f"text/calendar; method={method}; charset=UTF-8",
    )


@builder("group_assigned")
async def _group_assigned(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    member = await _membership(session, user, delivery.context["group_id"])
    group, cohort = member.group, member.cohort
    zone = _zone(user, member.signup)
    people = (
        await session.execute(
            select(User, GroupMember.role)
            .join(Signup, Signup.user_id == User.id)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .where(GroupMember.group_id == group.id)
            .order_by(User.id)
        )
    ).all()
    meetings = list(
        await session.scalars(
            select(Meeting).where(Meeting.group_id == group.id).order_by(Meeting.number)
        )
    )
    # A late joiner's group is under way: what matters is what is still ahead.
    now = utcnow()
    upcoming = [m for m in meetings if m.status == "scheduled" and m.ends_at > now]
    if not upcoming:
        raise Drop("the group has no meetings ahead")
    first = upcoming[0].starts_at.astimezone(ZoneInfo(zone))
    facilitator = next((u.display_name for u, role in people if role == Role.FACILITATOR), None)
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "group_name": group.name,
            "weekly_time": f"{first:%A}s at {first:%H:%M} ({zone})",
            "first_meeting": local_time(upcoming[0].starts_at, zone),
            "meetings": len(meetings),
            "facilitator": facilitator,
            "members": [u.display_name for u, role in people if role != Role.FACILITATOR],
            "group_url": f"{site.base_url}/groups/{group.id}",
            "channel_url": await _channel(session, site, group.id),
            "calendar_url": f"{site.base_url}/account/calendar",
            "call_url": group.call_url,
            "location": group.location,
        },
        attachments=(_ics(site, user, group, cohort, upcoming, "REQUEST"),),
    )


async def _meeting_member(
    session: AsyncSession, user: User, meeting_id: int
) -> tuple[Meeting, _Membership]:
    meeting = session.info.get(_MEETINGS, {}).get(meeting_id) or await session.get(
        Meeting, meeting_id
    )
    if meeting is None:
        raise Drop("the meeting no longer exists")
    member = await _membership(session, user, meeting.group_id)
    if member.cohort.status == CohortStatus.FINISHED:
        raise Drop("the cohort has finished: no more meetings")
    return meeting, member


async def _open_modules(
    session: AsyncSession, site: Site, user: User, cohort: Cohort, meeting_number: int
) -> list[dict[str, Any]]:
    """The required modules due before this meeting that the person has not completed."""
    course = site.content.courses.get(cohort.course_slug) if site.content else None
    if course is None or site.content is None:
        return []
    due = [
        site.content.modules[item.path]
        for unit in course.units
        if unit.meeting == meeting_number
        for item in unit.modules
        if not item.optional and item.path in site.content.modules
    ]
    if not due:
        return []
    keys = [module_key(m) for m in due]
    actor = user_actor(user.id)
    if _PROGRESS in session.info:
        mine = session.info[_PROGRESS].get(actor, {})
        rows = {k: r for k, r in mine.items() if k[0] in keys}
    else:
        rows = await progress_rows(session, actor=actor, module_keys=keys)
    return [
        {
            "title": m.title,
            "url": f"{site.base_url}/course/{course.slug}/{m.slug}",
            "minutes": None,
        }
        for m in due
        if module_status(m, rows)[0] != "completed"
    ]


async def _channel(session: AsyncSession, site: Site, group_id: int) -> str | None:
    if not site.discord_server_id:
        return None
    if _CHANNELS in session.info:
        return channel_url(site.discord_server_id, session.info[_CHANNELS].get(group_id))
    return channel_url(site.discord_server_id, await group_text_channel(session, group_id=group_id))


async def _meeting_fields(
    session: AsyncSession, site: Site, meeting: Meeting, member: _Membership, zone: str
) -> dict[str, Any]:
    return {
        "course_title": _course_title(site, member.cohort),
        "cohort_name": member.cohort.name,
        "group_name": member.group.name,
        "meeting_number": meeting.number,
        "meetings": member.cohort.meetings,
        "when": local_time(meeting.starts_at, zone),
        "group_url": f"{site.base_url}/groups/{member.group.id}",
        "rsvp_url": f"{site.base_url}/groups/{member.group.id}#meeting-{meeting.number}",
        "channel_url": await _channel(session, site, member.group.id),
        "call_url": member.group.call_url,
        "location": member.group.location,
    }


def _check_same_time(meeting: Meeting, delivery: Delivery) -> None:
    if meeting.status != "scheduled":
        raise Drop("the meeting was cancelled")
    if meeting.starts_at != datetime.fromisoformat(delivery.context["starts_at"]):
        raise Drop("the meeting moved (the new time has its own reminders)")


@builder("meeting_reminder_24h", "meeting_reminder_1h")
async def _reminder(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    meeting, member = await _meeting_member(session, user, delivery.context["meeting_id"])
    _check_same_time(meeting, delivery)
    zone = _zone(user, member.signup)
    modules = await _open_modules(session, site, user, member.cohort, meeting.number)
    return Prepared(
        {**base, **await _meeting_fields(session, site, meeting, member, zone), "modules": modules}
    )


@builder("module_nudge_3d", "module_nudge_1d")
async def _nudge(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    meeting, member = await _meeting_member(session, user, delivery.context["meeting_id"])
    _check_same_time(meeting, delivery)
    modules = await _open_modules(session, site, user, member.cohort, meeting.number)
    if not modules:
        raise Drop(f"nothing left to read for meeting {meeting.number}")
    zone = _zone(user, member.signup)
    return Prepared(
        {**base, **await _meeting_fields(session, site, meeting, member, zone), "modules": modules}
    )


@builder("meeting_changed")
async def _changed(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    meeting, member = await _meeting_member(session, user, delivery.context["meeting_id"])
    if meeting.sequence != delivery.context["sequence"]:
        raise Drop("the meeting changed again since (that change has its own message)")
    zone = _zone(user, member.signup)
    old = datetime.fromisoformat(delivery.context["old_starts_at"])
    return Prepared(
        {
            **base,
            **await _meeting_fields(session, site, meeting, member, zone),
            "old_when": local_time(old, zone),
            "later_moved": bool(delivery.context.get("later_moved")),
        },
        # Every meeting the change moved, so calendars holding the group invitation
        # update them all (not only the first).
        attachments=(
            _ics(
                site,
                user,
                member.group,
                member.cohort,
                await _moved_meetings(session, meeting, delivery.context.get("meeting_ids")),
                "REQUEST",
            ),
        ),
    )


async def _moved_meetings(
    session: AsyncSession, first: Meeting, ids: list[int] | None
) -> list[Meeting]:
    if not ids or ids == [first.id]:
        return [first]
    rows = await session.scalars(
        select(Meeting)
        .where(Meeting.id.in_(ids), Meeting.status == "scheduled")
        .order_by(Meeting.number)
    )
    return list(rows)


@builder("meeting_cancelled")
async def _cancelled(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    meeting, member = await _meeting_member(session, user, delivery.context["meeting_id"])
    if meeting.status != "cancelled":
        raise Drop("the meeting is no longer cancelled")
    zone = _zone(user, member.signup)
    return Prepared(
        {**base, **await _meeting_fields(session, site, meeting, member, zone)},
        attachments=(_ics(site, user, member.group, member.cohort, [meeting], "CANCEL"),),
    )


@builder("meeting_place_changed")
async def _place_changed(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    member = await _membership(session, user, delivery.context["group_id"])
    group, cohort = member.group, member.cohort
    said = (delivery.context.get("call_url"), delivery.context.get("location"))
    if (group.call_url, group.location) != said:
        raise Drop("the place changed again since (that change has its own message)")
    upcoming = list(
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.group_id == group.id,
                Meeting.status == "scheduled",
                Meeting.ends_at > utcnow(),
            )
            .order_by(Meeting.number)
        )
    )
    if not upcoming:
        raise Drop("the group has no meetings ahead")
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "group_name": group.name,
            "call_url": group.call_url,
            "location": group.location,
            "next_meeting": local_time(upcoming[0].starts_at, _zone(user, member.signup)),
            "group_url": f"{site.base_url}/groups/{group.id}",
            "channel_url": await _channel(session, site, group.id),
        },
        # The meetings ahead with their new place, for calendars that took the group's
        # invitation (same SEQUENCE, a newer DTSTAMP: an update, as RFC 5546 allows).
        attachments=(_ics(site, user, group, cohort, upcoming, "REQUEST"),),
    )
