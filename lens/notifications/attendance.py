"""At send time, the message to someone marked absent at two meetings of their group in a
row (missed_meetings): when the next one is, and what they can do if the time no longer
suits them. Dropped if either mark was changed since."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.db.base import utcnow
from lens.meetings import attendance
from lens.meetings.models import Meeting
from lens.notifications.context import Drop, Prepared, Site, _course_title, builder
from lens.notifications.models import Delivery
from lens.users.models import User
from lens.web.messages import local_time


@builder("missed_meetings")
async def _missed_meetings(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    meeting = await session.get(Meeting, ctx["meeting_id"])
    signup = await session.get(Signup, ctx["signup_id"])
    if meeting is None or signup is None or signup.user_id != user.id:
        raise Drop("the meeting or the signup is gone")
    if not await attendance.missed_twice(session, meeting=meeting, signup_ids=[signup.id]):
        raise Drop("the attendance was corrected since")
    group = await session.get(Group, meeting.group_id)
    cohort = await session.get(Cohort, signup.cohort_id)
    assert group is not None and cohort is not None
    member = await session.scalar(
        select(GroupMember.signup_id).where(
            GroupMember.group_id == group.id, GroupMember.signup_id == signup.id
        )
    )
    if member is None:
        raise Drop("no longer in the group")
    following = await session.scalar(
        select(Meeting)
        .where(
            Meeting.group_id == group.id,
            Meeting.status == "scheduled",
            Meeting.starts_at > utcnow(),
        )
        .order_by(Meeting.starts_at)
        .limit(1)
    )
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "group_name": group.name,
            "next_meeting": local_time(following.starts_at, user.timezone or "UTC")
            if following
            else None,
            "group_url": f"{site.base_url}/groups/{group.id}",
            "options_url": f"{site.base_url}/cohorts/{cohort.id}",
        }
    )
