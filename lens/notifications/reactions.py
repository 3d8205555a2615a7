"""What people are told when something happens below: they enrolled, their groups were
approved, they joined a group, a meeting moved or was cancelled."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.events import SignupConfirmed
from lens.events import reaction
from lens.meetings.events import MeetingCancelled, MeetingPlaceChanged, MeetingsMoved
from lens.meetings.service import member_user_ids
from lens.notifications.announce import request_announcement
from lens.notifications.service import (
    drop_pending,
    meeting_subject,
    notify,
    schedule_meeting_notifications,
)
from lens.scheduling.events import GroupsApproved, MemberJoined


@reaction(SignupConfirmed)
async def welcome(session: AsyncSession, event: SignupConfirmed) -> None:
    await notify(
        session,
        kind="welcome",
        user_ids=[event.user_id],
        subject=f"signup:{event.signup_id}",
        context={"signup_id": event.signup_id},
    )


@reaction(GroupsApproved)
async def announce_the_groups(session: AsyncSession, event: GroupsApproved) -> None:
    for group_id in event.group_ids:
        await request_announcement(session, group_id=group_id)


@reaction(MemberJoined)
async def announce_to_the_newcomer(session: AsyncSession, event: MemberJoined) -> None:
    await request_announcement(session, group_id=event.group_id, user_ids=[event.user_id])


@reaction(MeetingsMoved)
async def meetings_moved(session: AsyncSession, event: MeetingsMoved) -> None:
    users = await member_user_ids(session, group_id=event.group_id)
    for move in event.moves:
        await drop_pending(
            session,
            subject_prefix=meeting_subject(move.meeting_id, move.old_start),
            reason="the meeting moved",
        )
        await schedule_meeting_notifications(
            session, meeting_id=move.meeting_id, starts_at=move.new_start, user_ids=users
        )
    # One message about the change (the first meeting's), saying whether later ones
    # moved too, rather than one per meeting.
    first = event.moves[0]
    await notify(
        session,
        kind="meeting_changed",
        user_ids=users,
        subject=f"meeting:{first.meeting_id}#seq{first.sequence}",
        context={
            "meeting_id": first.meeting_id,
            "sequence": first.sequence,
            "old_starts_at": first.old_start.isoformat(),
            "later_moved": len(event.moves) > 1,
            "meeting_ids": [move.meeting_id for move in event.moves],
        },
    )


@reaction(MeetingCancelled)
async def meeting_cancelled(session: AsyncSession, event: MeetingCancelled) -> None:
    await drop_pending(
        session,
        subject_prefix=meeting_subject(event.meeting_id, event.starts_at),
        reason="the meeting was cancelled",
    )
    await notify(
        session,
        kind="meeting_cancelled",
        user_ids=await member_user_ids(session, group_id=event.group_id),
        subject=f"meeting:{event.meeting_id}#seq{event.sequence}",
        context={"meeting_id": event.meeting_id, "sequence": event.sequence},
    )


@reaction(MeetingPlaceChanged)
async def meeting_place_changed(session: AsyncSession, event: MeetingPlaceChanged) -> None:
    """The group hears where it meets now, except whoever changed it. One message per
    change (its audit entry); a request that changed nothing published nothing."""
    await notify(
        session,
        kind="meeting_place_changed",
        user_ids=[
            u
            for u in await member_user_ids(session, group_id=event.group_id)
            if u != event.by_user_id
        ],
        subject=f"change:{event.change_id}",
        context={
            "group_id": event.group_id,
            "call_url": event.call_url,
            "location": event.location,
        },
    )
