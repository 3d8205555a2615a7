"""What people are told when something happens below: they enrolled, their groups were
approved, they joined a group, a meeting moved or was cancelled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.events import CohortFinished, SignupConfirmed
from lens.cohorts.models import Role, Signup, SignupStatus
from lens.completion.events import CertificateIssued
from lens.db.base import utcnow
from lens.events import reaction
from lens.meetings import attendance
from lens.meetings.events import (
    AttendanceRecorded,
    MeetingCancelled,
    MeetingPlaceChanged,
    MeetingsMoved,
)
from lens.meetings.models import Meeting
from lens.meetings.service import facilitator_user_ids, member_user_ids
from lens.notifications.announce import request_announcement
from lens.notifications.service import (
    drop_pending,
    meeting_subject,
    notify,
    schedule_meeting_notifications,
)
from lens.scheduling.events import (
    FacilitatorChanged,
    GroupsApproved,
    GuestVisit,
    MemberJoined,
    MembershipChanged,
    SwitchRefused,
    SwitchRequested,
)


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
    # Those left out hear it too, with what they can do (built when it is sent).
    unplaced = await session.execute(
        select(Signup.id, Signup.user_id).where(
            Signup.cohort_id == event.cohort_id,
            Signup.status == SignupStatus.UNPLACED,
            Signup.role == Role.PARTICIPANT,
        )
    )
    for signup_id, user_id in unplaced.all():
        await notify(
            session,
            kind="unplaced_options",
            user_ids=[user_id],
            subject=f"unplaced:{signup_id}",
            context={"cohort_id": event.cohort_id, "signup_id": signup_id},
        )


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


@reaction(MembershipChanged)
async def membership_changed(session: AsyncSession, event: MembershipChanged) -> None:
    """The person hears what changed for them (a whole group message when they were
    added, a change message when moved or taken out); the facilitators of the groups
    they left and joined hear who came or went."""
    because = f"change:{event.change_id}"
    if event.joined_group_id is not None:
        await request_announcement(
            session,
            group_id=event.joined_group_id,
            user_ids=[event.user_id],
            message=event.left_group_id is None,
            because=because,
        )
    if event.left_group_id is not None:
        await notify(
            session,
            kind="membership_changed",
            user_ids=[event.user_id],
            subject=because,
            context={
                "change_id": event.change_id,
                "left_group_id": event.left_group_id,
                "joined_group_id": event.joined_group_id,
                "action": event.action,
            },
        )
    for group_id, joined in ((event.left_group_id, False), (event.joined_group_id, True)):
        if group_id is None:
            continue
        leads = await facilitator_user_ids(session, group_id=group_id)
        await notify(
            session,
            kind="roster_changed",
            user_ids=[u for u in leads if u != event.user_id],
            subject=f"{because}:group:{group_id}",
            context={
                "change_id": event.change_id,
                "group_id": group_id,
                "member_id": event.user_id,
                "joined": joined,
            },
        )


@reaction(FacilitatorChanged)
async def facilitator_changed(session: AsyncSession, event: FacilitatorChanged) -> None:
    """The group hears who leads it (for good, or at one meeting); a new facilitator
    gets the group message and the reminders; the one replaced hears it too."""
    because = f"change:{event.change_id}"
    members = await member_user_ids(session, group_id=event.group_id)
    if event.meeting_id is None and event.new_user_id is not None:
        await request_announcement(
            session, group_id=event.group_id, user_ids=[event.new_user_id], because=because
        )
    told = [u for u in members if u != event.new_user_id or event.meeting_id is not None]
    extra = [
        u for u in (event.old_user_id, event.new_user_id, event.dropped_user_id) if u is not None
    ]
    await notify(
        session,
        kind="facilitator_changed",
        user_ids=[*told, *(u for u in extra if u not in told)],
        subject=because,
        context={
            "change_id": event.change_id,
            "group_id": event.group_id,
            "meeting_id": event.meeting_id,
            "old_user_id": event.old_user_id,
            "new_user_id": event.new_user_id,
            "dropped_user_id": event.dropped_user_id,
        },
    )


@reaction(SwitchRequested)
async def switch_requested(session: AsyncSession, event: SwitchRequested) -> None:
    await notify(
        session,
        kind="switch_requested",
        user_ids=await facilitator_user_ids(session, group_id=event.group_id),
        subject=f"switch:{event.request_id}",
        context={"request_id": event.request_id, "group_id": event.group_id},
    )


@reaction(SwitchRefused)
async def switch_refused(session: AsyncSession, event: SwitchRefused) -> None:
    await notify(
        session,
        kind="switch_refused",
        user_ids=[event.user_id],
        subject=f"switch:{event.request_id}",
        context={"request_id": event.request_id, "group_id": event.group_id},
    )


@reaction(GuestVisit)
async def guest_visit(session: AsyncSession, event: GuestVisit) -> None:
    await notify(
        session,
        kind="guest_visit",
        user_ids=await facilitator_user_ids(session, group_id=event.group_id),
        subject=f"change:{event.change_id}",
        context={
            "group_id": event.group_id,
            "meeting_id": event.meeting_id,
            "guest_id": event.user_id,
            "cancelled": event.cancelled,
        },
    )


@reaction(AttendanceRecorded)
async def missed_meetings(session: AsyncSession, event: AttendanceRecorded) -> None:
    """Someone marked absent twice in a row is asked whether the time still suits them
    (once per run of absences: a third absence, or saving again, sends nothing more)."""
    meeting = await session.get(Meeting, event.meeting_id)
    if meeting is None or not event.absent_signup_ids:
        return
    runs = await attendance.missed_twice(
        session, meeting=meeting, signup_ids=event.absent_signup_ids
    )
    for signup_id, first in runs.items():
        signup = await session.get(Signup, signup_id)
        if signup is None:
            continue
        await notify(
            session,
            kind="missed_meetings",
            user_ids=[signup.user_id],
            subject=f"missed:{meeting.group_id}:{first}",  # once per run of absences
            context={"meeting_id": meeting.id, "signup_id": signup_id},
        )


@reaction(CertificateIssued)
async def certificate_issued(session: AsyncSession, event: CertificateIssued) -> None:
    if event.user_id is None:
        return
    await notify(
        session,
        kind="certificate_issued",
        user_ids=[event.user_id],
        subject=f"certificate:{event.certificate_id}",
        context={"certificate_id": event.certificate_id},
    )


# After the certificates' job (lens/completion/tasks.py) has had its turn: those with a
# certificate hear of it in its own message, and this one is dropped for them.
SUMMARY_DELAY = timedelta(minutes=15)


@reaction(CohortFinished)
async def cohort_finished(session: AsyncSession, event: CohortFinished) -> None:
    """Each participant hears where they ended: what they did, and what is missing."""
    rows = await session.execute(
        select(Signup.id, Signup.user_id).where(
            Signup.cohort_id == event.cohort_id,
            Signup.role == Role.PARTICIPANT,
            Signup.status == SignupStatus.GROUPED,  # in a group to the end
        )
    )
    for signup_id, user_id in rows.all():
        await notify(
            session,
            kind="cohort_finished",
            user_ids=[user_id],
            subject=f"finished:{event.cohort_id}",
            context={"cohort_id": event.cohort_id, "signup_id": signup_id},
            send_at=utcnow() + SUMMARY_DELAY,
        )
