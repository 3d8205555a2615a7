"""Telling a group about itself: the group message, and the reminders and reading nudges
of every meeting ahead; for a whole new group, or for newcomers who joined late."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Group, GroupStatus
from lens.jobs.service import enqueue
from lens.meetings.service import list_meetings, member_user_ids
from lens.notifications.service import notify, schedule_meeting_notifications

# The job's name from before announcements moved here: queued rows keep working.
ANNOUNCE_KIND = "meetings.announce"


async def request_announcement(
    session: AsyncSession,
    *,
    group_id: int,
    user_ids: list[int] | None = None,
    message: bool = True,
    because: str = "",
) -> None:
    """Queue telling a group (or the newcomers in `user_ids`) about it and its meetings:
    the group message now (unless `message` is false: a change message said it already),
    reminders and reading nudges for every meeting ahead. A job, so approving a cohort
    of thousands does not write all of it in one request."""
    who = "all" if user_ids is None else ",".join(map(str, sorted(user_ids)))
    await enqueue(
        session,
        kind=ANNOUNCE_KIND,
        payload={"group_id": group_id, "user_ids": user_ids, "message": message},
        # Once per group and people, or per cause (a change that put them back in).
        dedupe_key=f"announce:group:{group_id}:{who}" + (f":{because}" if because else ""),
    )


async def announce_group(
    session: AsyncSession,
    *,
    group_id: int,
    user_ids: list[int] | None = None,
    message: bool = True,
) -> int:
    group = await session.get(Group, group_id)
    if group is None or group.status != GroupStatus.ACTIVE:
        return 0
    users = user_ids if user_ids is not None else await member_user_ids(session, group_id=group_id)
    added = 0
    if message:
        added += await notify(
            session,
            kind="group_assigned",
            user_ids=users,
            subject=f"group:{group.id}",
            context={"group_id": group.id},
        )
    for meeting in await list_meetings(session, group=group):
        if meeting.status == "scheduled":
            added += await schedule_meeting_notifications(
                session, meeting_id=meeting.id, starts_at=meeting.starts_at, user_ids=users
            )
    return added
