"""Changes to a running cohort's groups, by an admin: add a late or unplaced signup to a
group, move a member, remove one, swap a group's facilitator for good or for one meeting.

Each change is planned first (`plan`): checked like a grouping edit (the person can make
every meeting ahead, the group has room, the facilitator leads no more groups than they
offered), with its consequences worded for the admin and a token of the state it was
planned on. `apply` plans again under the cohort's lock and refuses when the token no
longer matches (another admin changed the same person or group meanwhile) or a rule is
broken, so nothing is half-done; then it writes the change, an audit entry, queues the
calendar updates and publishes the event that tells people and updates Discord.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts import audit
from lens.cohorts.models import (
    GroupMember,
    Role,
    SignupStatus,
    SwitchRequest,
)
from lens.db.base import utcnow
from lens.errors import Conflict
from lens.events import publish
from lens.meetings.models import Meeting, MeetingGuest
from lens.meetings.service import request_calendar_sync, request_group_calendar_sync
from lens.scheduling.change_plan import (
    ACTIONS,
    ADD,
    FACILITATOR,
    MOVE,
    REMOVE,
    SUBSTITUTE,
    UNSUBSTITUTE,
    Ask,
    Plan,
    groups_of_signup,
    meetings_ahead,
    plan,
)
from lens.scheduling.events import FacilitatorChanged, MembershipChanged
from lens.scheduling.service import lock_cohort
from lens.users.models import User

__all__ = [
    "ACTIONS",
    "ADD",
    "FACILITATOR",
    "MOVE",
    "REMOVE",
    "SUBSTITUTE",
    "UNSUBSTITUTE",
    "Ask",
    "Plan",
    "apply",
    "groups_of_signup",
    "meetings_ahead",
    "plan",
]


async def apply(
    session: AsyncSession,
    *,
    cohort_id: int,
    ask: Ask,
    token: str,
    actor: User,
    reason: str = "",
    as_action: str | None = None,
) -> Plan:
    """Make the change planned with `token` (see the module's docstring). `as_action`
    names a change a person makes themselves (member.switch, member.withdraw,
    member.defer) in the change log and the messages."""
    cohort = await lock_cohort(session, cohort_id)
    planned = await plan(session, cohort=cohort, ask=ask)
    if token != planned.token:
        raise Conflict(
            f"{planned.person.user.display_name}'s place changed since this page was shown "
            "(someone else changed it a moment ago); nothing was changed. Look at the "
            "groups again and redo the change if it is still wanted.",
        )
    if planned.problems:
        raise Conflict(planned.problems[0] + " Nothing was changed.")
    signup, user = planned.person.signup, planned.person.user
    source, target = planned.source, planned.target
    details: dict[str, object] = {
        "person": user.display_name,
        "from": source.name if source else None,
        "to": target.name if target and ask.action in (ADD, MOVE) else None,
    }
    if ask.action in (ADD, MOVE, REMOVE):
        if source is not None:
            await _take_out(session, group_id=source.id, signup_id=signup.id, role=Role.PARTICIPANT)
        if target is not None:
            session.add(GroupMember(group_id=target.id, signup_id=signup.id, role=Role.PARTICIPANT))
            signup.status, signup.unplaced_reason = SignupStatus.GROUPED, None
        else:
            signup.status, signup.unplaced_reason = SignupStatus.UNPLACED, "removed"
        await session.flush()
        if as_action is not None and target is None:
            signup.unplaced_reason = "switched_out"
        entry = await audit.record(
            session,
            cohort_id=cohort.id,
            actor=actor,
            action=as_action or ask.action,
            subject_user_id=user.id,
            group_ids=[g.id for g in (source, target) if g is not None],
            details=details,
            reason=reason,
        )
        for group in (source, target):
            if group is not None:
                await request_group_calendar_sync(session, group_id=group.id)
        await _settle_pending(session, signup_id=signup.id, out=target is None)
        await publish(
            session,
            MembershipChanged(
                cohort_id=cohort.id,
                user_id=user.id,
                left_group_id=source.id if source else None,
                joined_group_id=target.id if target else None,
                action=as_action or ask.action,
                change_id=entry.id,
            ),
        )
        return planned
    assert target is not None
    old = planned.replaced
    details.update(
        group=target.name,
        new=user.display_name,
        old=old.user.display_name if old else None,
    )
    if ask.action == FACILITATOR:
        if old is not None:
            await _take_out(
                session, group_id=target.id, signup_id=old.signup.id, role=Role.FACILITATOR
            )
            if not await groups_of_signup(session, old.signup.id):
                old.signup.status, old.signup.unplaced_reason = SignupStatus.UNPLACED, "replaced"
        session.add(GroupMember(group_id=target.id, signup_id=signup.id, role=Role.FACILITATOR))
        signup.status, signup.unplaced_reason = SignupStatus.GROUPED, None
        await session.flush()
        await request_group_calendar_sync(session, group_id=target.id)
        meeting_id = None
        new_user: int | None = user.id
        old_user = old.user.id if old else None
    else:
        meeting = planned.meeting
        assert meeting is not None
        # Compare and set: the stand-in the plan saw, or nothing changes.
        expected = meeting.substitute_signup_id if ask.action == SUBSTITUTE else signup.id
        changed = await session.execute(
            update(Meeting)
            .where(
                Meeting.id == meeting.id,
                Meeting.substitute_signup_id.is_(None)
                if expected is None
                else Meeting.substitute_signup_id == expected,
            )
            .values(
                substitute_signup_id=signup.id if ask.action == SUBSTITUTE else None,
                sequence=Meeting.sequence + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("Meeting's stand-in changed a moment ago; nothing was changed.")
        await session.refresh(meeting)
        details.update(meeting=meeting.number)
        if planned.dropped is not None and ask.action == SUBSTITUTE:
            details.update(dropped=planned.dropped.user.display_name)
        await request_calendar_sync(session, meetings=[meeting])
        meeting_id = meeting.id
        new_user = user.id if ask.action == SUBSTITUTE else None
        old_user = old.user.id if old else None
        if ask.action == UNSUBSTITUTE:
            new_user, old_user = None, user.id
    entry = await audit.record(
        session,
        cohort_id=cohort.id,
        actor=actor,
        action=ask.action,
        subject_user_id=user.id,
        group_ids=[target.id],
        details=details,
        reason=reason,
    )
    await publish(
        session,
        FacilitatorChanged(
            cohort_id=cohort.id,
            group_id=target.id,
            old_user_id=old_user,
            new_user_id=new_user,
            meeting_id=meeting_id,
            change_id=entry.id,
            dropped_user_id=planned.dropped.user.id
            if planned.dropped is not None and ask.action == SUBSTITUTE
            else None,
        ),
    )
    return planned


async def _take_out(session: AsyncSession, *, group_id: int, signup_id: int, role: str) -> None:
    """Delete the membership the change was planned on; if another transaction took it
    first (two admins at once), this one changes nothing."""
    gone = await session.execute(
        delete(GroupMember).where(
            GroupMember.group_id == group_id,
            GroupMember.signup_id == signup_id,
            GroupMember.role == role,
        )
    )
    if gone.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone else changed this group a moment ago; nothing was changed.")


async def _settle_pending(session: AsyncSession, *, signup_id: int, out: bool) -> None:
    """A person whose group changed has no switch request left open (the facilitator
    would answer a question no longer asked); one who left every group visits no other
    group's meeting ahead either (invitation and Discord access go with it)."""
    await session.execute(
        update(SwitchRequest)
        .where(SwitchRequest.signup_id == signup_id, SwitchRequest.status == "pending")
        .values(status="withdrawn", decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not out:
        return
    visits = list(
        await session.scalars(
            select(Meeting)
            .join(MeetingGuest, MeetingGuest.meeting_id == Meeting.id)
            .where(MeetingGuest.signup_id == signup_id, Meeting.ends_at > utcnow())
        )
    )
    if visits:
        await session.execute(
            delete(MeetingGuest).where(
                MeetingGuest.signup_id == signup_id,
                MeetingGuest.meeting_id.in_([m.id for m in visits]),
            )
        )
        await request_calendar_sync(session, meetings=visits)
