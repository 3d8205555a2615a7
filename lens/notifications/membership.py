"""At send time, the messages about changes to a running cohort's groups: a person moved
or taken out (membership_changed), a facilitator told who came or went
(roster_changed), a group told who leads it (facilitator_changed). Each checks that
the change still holds; one undone meanwhile is dropped."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import (
    Cohort,
    Group,
    GroupMember,
    Role,
    Signup,
    SignupStatus,
    SwitchRequest,
)
from lens.db.base import utcnow
from lens.meetings.models import Meeting, MeetingGuest
from lens.notifications.context import (
    Drop,
    Prepared,
    Site,
    _channel,
    _course_title,
    _ics,
    _membership,
    _zone,
    builder,
)
from lens.notifications.models import Delivery
from lens.scheduling.change_plan import meetings_ahead
from lens.scheduling.joiners import openings
from lens.scheduling.selfservice import later_cohorts
from lens.users.models import User
from lens.web.messages import local_time

BY_THEMSELVES = ("member.switch", "member.withdraw", "member.defer")


async def _group(session: AsyncSession, group_id: int | None) -> tuple[Group, Cohort]:
    group = await session.get(Group, group_id) if group_id is not None else None
    cohort = await session.get(Cohort, group.cohort_id) if group is not None else None
    if group is None or cohort is None:
        raise Drop("the group no longer exists")
    return group, cohort


async def _is_in(session: AsyncSession, user: User, group: Group, role: str | None = None) -> bool:
    query = (
        select(func.count())
        .select_from(GroupMember)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .where(GroupMember.group_id == group.id, Signup.user_id == user.id)
    )
    if role is not None:
        query = query.where(GroupMember.role == role)
    return bool(await session.scalar(query))


async def _led(session: AsyncSession, user: User, group_id: int) -> tuple[Group, Cohort]:
    """The group, when the recipient still leads it (messages for its facilitator)."""
    group, cohort = await _group(session, group_id)
    if not await _is_in(session, user, group, Role.FACILITATOR):
        raise Drop("no longer leads the group")
    return group, cohort


def _about(base: dict[str, Any], site: Site, cohort: Cohort, group: Group) -> dict[str, Any]:
    return {
        **base,
        "course_title": _course_title(site, cohort),
        "cohort_name": cohort.name,
        "group_name": group.name,
    }


def _place(group: Group) -> dict[str, Any]:
    return {"call_url": group.call_url, "location": group.location}


@builder("membership_changed")
async def _membership_changed(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    left, cohort = await _group(session, ctx["left_group_id"])
    fields: dict[str, Any] = {
        **base,
        "course_title": _course_title(site, cohort),
        "cohort_name": cohort.name,
        "left_group": left.name,
        "by_themselves": ctx.get("action") in BY_THEMSELVES,
        "withdrew": ctx.get("action") in ("member.withdraw", "member.defer"),
        "options_url": f"{site.base_url}/cohorts/{cohort.id}",
    }
    attachments = []
    old = await meetings_ahead(session, left)
    if ctx.get("joined_group_id") is not None:
        member = await _membership(session, user, ctx["joined_group_id"])
        if await _is_in(session, user, left):
            raise Drop("back in the group they left")
        new = await meetings_ahead(session, member.group)
        if not new:
            raise Drop("the new group has no meetings ahead")
        zone = _zone(user, member.signup)
        first = new[0].starts_at.astimezone(ZoneInfo(zone))
        fields.update(
            group_name=member.group.name,
            weekly_time=f"{first:%A}s at {first:%H:%M} ({zone})",
            first_meeting=local_time(new[0].starts_at, zone),
            group_url=f"{site.base_url}/groups/{member.group.id}",
            channel_url=await _channel(session, site, member.group.id),
            **_place(member.group),
        )
        attachments.append(_ics(site, user, member.group, member.cohort, new, "REQUEST"))
    else:
        if await _is_in(session, user, left):
            raise Drop("back in the group")
        fields.update(group_name=None)
    if old:
        attachments.append(_ics(site, user, left, cohort, old, "CANCEL"))
    return Prepared(fields, attachments=tuple(attachments))


@builder("roster_changed")
async def _roster_changed(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    group, cohort = await _led(session, user, ctx["group_id"])
    member = await session.get(User, ctx["member_id"])
    if member is None:
        raise Drop("the member's account is gone")
    joined = bool(ctx["joined"])
    if joined != await _is_in(session, member, group):
        raise Drop("undone since")
    count = await session.scalar(
        select(func.count())
        .select_from(GroupMember)
        .where(GroupMember.group_id == group.id, GroupMember.role == Role.PARTICIPANT)
    )
    return Prepared(
        {
            **_about(base, site, cohort, group),
            "member": member.display_name,
            "joined": joined,
            "participants": int(count or 0),
            "group_url": f"{site.base_url}/groups/{group.id}",
        }
    )


@builder("facilitator_changed")
async def _facilitator_changed(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    group, cohort = await _group(session, ctx["group_id"])
    ids = [i for i in (ctx["old_user_id"], ctx["new_user_id"]) if i]
    names = {
        u.id: u.display_name for u in await session.scalars(select(User).where(User.id.in_(ids)))
    }
    fields: dict[str, Any] = {
        **_about(base, site, cohort, group),
        "new": names.get(ctx["new_user_id"]),
        "old": names.get(ctx["old_user_id"]),
        "you_new": ctx["new_user_id"] == user.id,
        "you_old": ctx["old_user_id"] == user.id,
        "you_dropped": ctx.get("dropped_user_id") == user.id,
        "group_url": f"{site.base_url}/groups/{group.id}",
        "meeting_number": None,
    }
    if ctx.get("meeting_id") is not None:
        meeting = await session.get(Meeting, ctx["meeting_id"])
        if meeting is None or meeting.status != "scheduled":
            raise Drop("the meeting is cancelled or gone")
        if meeting.ends_at <= utcnow():
            raise Drop("the meeting is over")
        substitute = await session.get(Signup, meeting.substitute_signup_id or 0)
        now_standing = substitute.user_id if substitute else None
        if now_standing != ctx["new_user_id"]:
            raise Drop("the stand-in changed again since")
        zone = user.timezone or "UTC"
        fields.update(meeting_number=meeting.number, when=local_time(meeting.starts_at, zone))
    elif ctx["new_user_id"] is not None:
        new_user = await session.get(User, ctx["new_user_id"])
        if new_user is None or not await _is_in(session, new_user, group, Role.FACILITATOR):
            raise Drop("the change was undone since")
    return Prepared(fields)


@builder("switch_requested")
async def _switch_requested(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    group, cohort = await _led(session, user, ctx["group_id"])
    found = (
        await session.execute(
            select(SwitchRequest, User, Group)
            .join(Signup, Signup.id == SwitchRequest.signup_id)
            .join(User, User.id == Signup.user_id)
            .join(Group, Group.id == SwitchRequest.from_group_id)
            .where(SwitchRequest.id == ctx["request_id"])
        )
    ).first()
    if found is None or found[0].status != "pending":
        raise Drop("the request was decided or taken back")
    _, member, from_group = found
    return Prepared(
        {
            **_about(base, site, cohort, group),
            "member": member.display_name,
            "from_group": from_group.name,
            "group_url": f"{site.base_url}/groups/{group.id}#switch-requests",
        }
    )


@builder("switch_refused")
async def _switch_refused(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    group, cohort = await _group(session, ctx["group_id"])
    request = await session.get(SwitchRequest, ctx["request_id"])
    if request is None or request.status != "refused":
        raise Drop("the request is no longer refused")
    own = await session.get(Group, request.from_group_id)
    stays = own is not None and await _is_in(session, user, own, Role.PARTICIPANT)
    return Prepared(
        {
            **_about(base, site, cohort, group),
            "own_group": own.name if own is not None and stays else None,
            "options_url": f"{site.base_url}/cohorts/{cohort.id}",
        }
    )


@builder("guest_visit")
async def _guest_visit(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    group, cohort = await _led(session, user, ctx["group_id"])
    meeting = await session.get(Meeting, ctx["meeting_id"])
    guest = await session.get(User, ctx["guest_id"])
    if meeting is None or guest is None or meeting.status != "scheduled":
        raise Drop("the meeting or the guest is gone")
    coming = await session.scalar(
        select(func.count())
        .select_from(MeetingGuest)
        .join(Signup, Signup.id == MeetingGuest.signup_id)
        .where(MeetingGuest.meeting_id == meeting.id, Signup.user_id == guest.id)
    )
    if bool(coming) == bool(ctx["cancelled"]):
        raise Drop("changed again since")
    return Prepared(
        {
            **_about(base, site, cohort, group),
            "guest": guest.display_name,
            "cancelled": bool(ctx["cancelled"]),
            "meeting_number": meeting.number,
            "when": local_time(meeting.starts_at, user.timezone or "UTC"),
            "group_url": f"{site.base_url}/groups/{group.id}/meetings/{meeting.number}",
        }
    )


@builder("unplaced_options")
async def _unplaced_options(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    cohort = await session.get(Cohort, ctx["cohort_id"])
    signup = await session.get(Signup, ctx["signup_id"])
    if cohort is None or signup is None or signup.user_id != user.id:
        raise Drop("the signup is gone")
    if signup.status != SignupStatus.UNPLACED:
        raise Drop(f"no longer waiting for a group ({signup.status})")
    offers = await openings(session, cohort=cohort, signup=signup)
    later = await later_cohorts(session, cohort=cohort)
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "offers": [
                {"group": o.group.name, "local": o.local, "participants": o.participants}
                for o in offers[:5]
            ],
            "later": [
                f"{c.name} (from {c.start_date:%A} {c.start_date.day} {c.start_date:%B %Y})"
                for c in later[:3]
            ],
            "options_url": f"{site.base_url}/cohorts/{cohort.id}",
            "availability_url": f"{site.base_url}/enroll/{cohort.id}/availability",
        }
    )
