"""Who came to a meeting: present, late, absent or excused, per member of the group and
per guest from another group (recorded with the host).

The facilitator (the group's own, the meeting's stand-in) or an admin takes it on the
meeting's page once the meeting has started, from a form pre-filled with a suggestion:
from the group's call when a call service reported who was in it (`PresenceSpan`, kept
by the Discord bot: 50 % of the meeting or more is present, late when the first join
came more than ten minutes in), else from what the person said beforehand (visiting
another group that week, or "not attending": excused), else present. Every save that
changes something is written in the cohort's change log; `AttendanceRecorded` lets the
features above nudge people who missed twice in a row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts import audit
from lens.cohorts.models import Group, GroupMember, GroupStatus, Role, Signup
from lens.cohorts.service import SignupRow
from lens.db.base import utcnow
from lens.errors import Conflict, Forbidden, Invalid
from lens.events import publish
from lens.meetings.events import AttendanceRecorded
from lens.meetings.models import (
    Attendance,
    AttendanceStatus,
    Meeting,
    MeetingGuest,
    PresenceSpan,
    Rsvp,
    RsvpStatus,
)
from lens.users.models import User

PRESENT_SHARE = 0.5  # in the call for at least this share of the meeting: present
LATE_AFTER = timedelta(minutes=10)  # a first join later than this into the meeting: late
# A stretch still open this long after its join is one whose leave was missed (the bot
# was away): it counts this long at most.
OPEN_AT_MOST = timedelta(hours=4)
LABELS = {
    AttendanceStatus.PRESENT: "Present",
    AttendanceStatus.LATE: "Late",
    AttendanceStatus.ABSENT: "Absent",
    AttendanceStatus.EXCUSED: "Excused",
}


# -- presence in the group's call ---------------------------------------------------------


async def record_presence(
    session: AsyncSession, *, group_id: int, user_id: int, joined: bool, at: datetime | None = None
) -> None:
    """A person joined (`joined`) or left the group's call. A join while a stretch is
    open already changes nothing (a move between the call and a breakout room); a leave
    closes every open stretch of theirs in that group's call."""
    at = at or utcnow()
    open_spans = list(
        await session.scalars(
            select(PresenceSpan).where(
                PresenceSpan.group_id == group_id,
                PresenceSpan.user_id == user_id,
                PresenceSpan.left_at.is_(None),
            )
        )
    )
    if joined:
        if not open_spans:
            session.add(PresenceSpan(group_id=group_id, user_id=user_id, joined_at=at))
    else:
        for span in open_spans:
            span.left_at = max(at, span.joined_at)
    await session.flush()


async def close_all_presence(session: AsyncSession, *, at: datetime | None = None) -> int:
    """Close every open stretch (the bot starts and cannot know what it missed; it opens
    stretches again for the people it then finds in calls)."""
    at = at or utcnow()
    spans = list(await session.scalars(select(PresenceSpan).where(PresenceSpan.left_at.is_(None))))
    for span in spans:
        span.left_at = max(at, span.joined_at)
    await session.flush()
    return len(spans)


@dataclass(frozen=True)
class Presence:
    seconds: int  # in the call during the meeting's time
    first_join: datetime | None  # the first join that overlaps the meeting

    def share(self, meeting: Meeting, *, now: datetime | None = None) -> float:
        """Of the meeting so far (attendance may be taken before it ends)."""
        end = min(meeting.ends_at, now) if now is not None else meeting.ends_at
        length = (end - meeting.starts_at).total_seconds()
        return self.seconds / length if length > 0 else 0.0


def presence_in(
    spans: Iterable[tuple[datetime, datetime | None]], meeting: Meeting, *, now: datetime
) -> Presence:
    """How long the stretches cover the meeting's time (overlaps counted once: a person
    in the call twice, on two devices, was there once)."""
    start, end = meeting.starts_at, meeting.ends_at
    ends = [(joined, left or min(now, joined + OPEN_AT_MOST)) for joined, left in spans]
    clipped = sorted(
        (max(joined, start), min(left, end))
        for joined, left in ends
        if joined < end and left > start
    )
    covered, first, reach = 0.0, None, start
    for lo, hi in clipped:
        if hi <= lo:
            continue
        first = lo if first is None else first
        lo = max(lo, reach)
        if hi > lo:
            covered += (hi - lo).total_seconds()
            reach = hi
    return Presence(int(covered), first)


def suggest_from_presence(
    presence: Presence, meeting: Meeting, *, now: datetime | None = None
) -> tuple[str, str]:
    """A suggested status and why, from the time in the call (of the meeting so far)."""
    minutes = presence.seconds // 60
    end = min(meeting.ends_at, now) if now is not None else meeting.ends_at
    length = int((end - meeting.starts_at).total_seconds() // 60)
    why = f"in the call {minutes} of {length} minutes"
    if presence.seconds and presence.share(meeting, now=now) >= PRESENT_SHARE:
        assert presence.first_join is not None
        if presence.first_join > meeting.starts_at + LATE_AFTER:
            late = int((presence.first_join - meeting.starts_at).total_seconds() // 60)
            return AttendanceStatus.LATE, f"{why}, joined {late} minutes in"
        return AttendanceStatus.PRESENT, why
    return AttendanceStatus.ABSENT, why if presence.seconds else "not in the call"


# -- the roster of a meeting --------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    row: SignupRow
    guest_from: str | None  # a guest: the group they come from
    status: str | None  # as recorded, if it was
    suggested: str
    why: str  # where the suggestion comes from

    @property
    def shown(self) -> str:
        """What the form shows checked."""
        return self.status or self.suggested


async def _members(session: AsyncSession, meeting: Meeting) -> list[tuple[SignupRow, str | None]]:
    """Who the meeting's attendance is about: the group's participants who had joined by
    its end, anyone already marked for it (who may have left the group since: their mark
    can still be corrected), and its guests (with the group they come from)."""
    rows = await session.execute(
        select(Signup, User)
        .join(GroupMember, GroupMember.signup_id == Signup.id)
        .join(User, User.id == Signup.user_id)
        .where(
            GroupMember.group_id == meeting.group_id,
            GroupMember.role == Role.PARTICIPANT,
            GroupMember.joined_at.is_(None) | (GroupMember.joined_at < meeting.ends_at),
        )
        .order_by(User.id)
    )
    members: list[tuple[SignupRow, str | None]] = [(SignupRow(s, u), None) for s, u in rows.all()]
    listed = {row.signup.id for row, _ in members}
    former = await session.execute(
        select(Signup, User)
        .join(Attendance, Attendance.signup_id == Signup.id)
        .join(User, User.id == Signup.user_id)
        .where(Attendance.meeting_id == meeting.id, Signup.id.not_in(listed or {-1}))
        .outerjoin(
            MeetingGuest,
            (MeetingGuest.signup_id == Signup.id) & (MeetingGuest.meeting_id == meeting.id),
        )
        .where(MeetingGuest.id.is_(None))
        .order_by(User.id)
    )
    members += [(SignupRow(s, u), None) for s, u in former.all()]
    guests = (
        await session.execute(
            select(Signup, User)
            .join(MeetingGuest, MeetingGuest.signup_id == Signup.id)
            .join(User, User.id == Signup.user_id)
            .where(MeetingGuest.meeting_id == meeting.id)
            .order_by(User.id)
        )
    ).all()
    homes = dict(
        (
            await session.execute(
                select(GroupMember.signup_id, Group.number)
                .join(Group, Group.id == GroupMember.group_id)
                .where(
                    GroupMember.signup_id.in_([s.id for s, _ in guests] or [-1]),
                    GroupMember.role == Role.PARTICIPANT,
                    Group.status == GroupStatus.ACTIVE,
                )
            )
        ).all()
    )
    seen = {row.signup.id for row, _ in members}
    for signup, user in guests:
        if signup.id not in seen:
            home = f"Group {homes[signup.id]}" if signup.id in homes else "another group"
            members.append((SignupRow(signup, user), home))
    return members


async def roster(session: AsyncSession, *, meeting: Meeting) -> list[Line]:
    """The members and guests of a meeting, each with what is recorded and a suggestion."""
    people = await _members(session, meeting)
    signup_ids = [row.signup.id for row, _ in people] or [-1]
    user_ids = [row.user.id for row, _ in people] or [-1]
    recorded = dict(
        (
            await session.execute(
                select(Attendance.signup_id, Attendance.status).where(
                    Attendance.meeting_id == meeting.id, Attendance.signup_id.in_(signup_ids)
                )
            )
        ).all()
    )
    spans: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for user_id, joined, left in await session.execute(
        select(PresenceSpan.user_id, PresenceSpan.joined_at, PresenceSpan.left_at).where(
            PresenceSpan.group_id == meeting.group_id,
            PresenceSpan.joined_at < meeting.ends_at,
            (PresenceSpan.left_at.is_(None)) | (PresenceSpan.left_at > meeting.starts_at),
        )
    ):
        spans[user_id].append((joined, left))
    tracked = bool(spans)  # someone was in the call: its absence from it means something
    away = dict(
        (
            await session.execute(
                select(MeetingGuest.signup_id, Group.number)
                .join(Meeting, Meeting.id == MeetingGuest.meeting_id)
                .join(Group, Group.id == Meeting.group_id)
                .where(MeetingGuest.instead_of == meeting.id)
            )
        ).all()
    )
    declined = set(
        await session.scalars(
            select(Rsvp.user_id).where(
                Rsvp.meeting_id == meeting.id,
                Rsvp.user_id.in_(user_ids),
                Rsvp.status == RsvpStatus.NOT_ATTENDING,
            )
        )
    )
    now = utcnow()
    lines = []
    for row, guest_from in people:
        if row.signup.id in away:
            suggested, why = AttendanceStatus.EXCUSED, f"visits Group {away[row.signup.id]}"
        elif tracked:
            presence = presence_in(spans.get(row.user.id, []), meeting, now=now)
            suggested, why = suggest_from_presence(presence, meeting, now=now)
        elif row.user.id in declined:
            suggested, why = AttendanceStatus.EXCUSED, "said they would not come"
        else:
            suggested, why = AttendanceStatus.PRESENT, "no call data: check"
        lines.append(Line(row, guest_from, recorded.get(row.signup.id), suggested, why))
    return lines


# -- taking it ----------------------------------------------------------------------------


async def may_take(session: AsyncSession, *, meeting: Meeting, user: User) -> bool:
    """The group's facilitator, the meeting's stand-in, or an admin."""
    if user.is_admin:
        return True
    leads = await session.scalar(
        select(GroupMember.signup_id)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .where(
            GroupMember.group_id == meeting.group_id,
            GroupMember.role == Role.FACILITATOR,
            Signup.user_id == user.id,
        )
    )
    if leads is not None:
        return True
    if meeting.substitute_signup_id is None:
        return False
    stand_in = await session.get(Signup, meeting.substitute_signup_id)
    return stand_in is not None and stand_in.user_id == user.id


def check_held(meeting: Meeting) -> None:
    if meeting.status == "cancelled":
        raise Conflict(f"Meeting {meeting.number} was cancelled; there is no attendance to take.")
    if meeting.starts_at > utcnow():
        raise Conflict(
            f"Meeting {meeting.number} has not started yet; attendance is taken once it has."
        )


async def take(
    session: AsyncSession,
    *,
    meeting: Meeting,
    group: Group,
    by: User,
    marks: Mapping[int, str],
    reason: str | None = None,
) -> list[Line]:
    """Record `marks` (signup id: status) for the meeting: all or nothing."""
    if not await may_take(session, meeting=meeting, user=by):
        raise Forbidden("Only the group's facilitator, the meeting's stand-in or an admin "
                        "takes attendance.")  # fmt: skip
    check_held(meeting)
    # One save at a time per meeting (two facilitators' saves would both insert a row).
    await session.get(Meeting, meeting.id, with_for_update=True)
    lines = {line.row.signup.id: line for line in await roster(session, meeting=meeting)}
    for signup_id, status in marks.items():
        if signup_id not in lines:
            raise Invalid(
                "Attendance is taken for the group's members and this meeting's guests only; "
                "reload the page."
            )
        if status not in AttendanceStatus.ALL:
            raise Invalid("Choose present, late, absent or excused for each person.")
    existing = {
        a.signup_id: a
        for a in await session.scalars(
            select(Attendance).where(
                Attendance.meeting_id == meeting.id, Attendance.signup_id.in_(list(marks) or [-1])
            )
        )
    }
    changed: dict[str, str] = {}
    edited = False
    for signup_id, status in marks.items():
        row = existing.get(signup_id)
        name = lines[signup_id].row.user.display_name
        if row is None:
            session.add(
                Attendance(
                    meeting_id=meeting.id, signup_id=signup_id, status=status, recorded_by=by.id
                )
            )
            changed[name] = status
        elif row.status != status:
            changed[name] = f"{row.status} → {status}"
            row.status, row.recorded_by, row.recorded_at = status, by.id, utcnow()
            edited = True
    await session.flush()
    if changed:
        await audit.record(
            session,
            cohort_id=group.cohort_id,
            actor=by,
            action="attendance.edit" if edited else "attendance.take",
            group_ids=[group.id],
            details={"group": group.name, "meeting": meeting.number, "marks": changed},
            reason=reason,
        )
        await publish(
            session,
            AttendanceRecorded(
                cohort_id=group.cohort_id,
                group_id=group.id,
                meeting_id=meeting.id,
                absent_signup_ids=tuple(
                    sorted(s for s, st in marks.items() if st == AttendanceStatus.ABSENT)
                ),
            ),
        )
    return await roster(session, meeting=meeting)


# -- reading it ---------------------------------------------------------------------------


async def missed_in_a_row(session: AsyncSession, *, group: Group) -> dict[int, int]:
    """Participants of the group whose latest recorded meetings (of this group) were
    absences, two or more in a row: signup id → how many (an excused one breaks the run)."""
    rows = await session.execute(
        select(Attendance.signup_id, Attendance.status, Meeting.number)
        .join(Meeting, Meeting.id == Attendance.meeting_id)
        .join(
            GroupMember,
            (GroupMember.signup_id == Attendance.signup_id)
            & (GroupMember.group_id == Meeting.group_id),
        )
        .where(Meeting.group_id == group.id, GroupMember.role == Role.PARTICIPANT)
        .order_by(Meeting.number.desc())
    )
    runs: dict[int, int] = {}
    done: set[int] = set()
    for signup_id, status, _ in rows.all():
        if signup_id in done:
            continue
        if status == AttendanceStatus.ABSENT:
            runs[signup_id] = runs.get(signup_id, 0) + 1
        else:
            done.add(signup_id)
    return {s: n for s, n in runs.items() if n >= 2}


async def attended(session: AsyncSession, *, signup_ids: Iterable[int]) -> dict[int, int]:
    """Meetings each person came to (present or late), as members or as guests."""
    ids = list(signup_ids) or [-1]
    counts: dict[int, int] = dict.fromkeys(ids, 0)
    for signup_id in await session.scalars(
        select(Attendance.signup_id)
        .join(Meeting, Meeting.id == Attendance.meeting_id)
        .where(
            Attendance.signup_id.in_(ids),
            Attendance.status.in_(AttendanceStatus.ATTENDED),
            Meeting.status != "cancelled",
        )
    ):
        counts[signup_id] += 1
    return counts


async def summary(
    session: AsyncSession, *, meetings: Iterable[Meeting]
) -> dict[int, tuple[int, int]]:
    """Per meeting with attendance taken: (came, marked)."""
    ids = [m.id for m in meetings] or [-1]
    out: dict[int, tuple[int, int]] = {}
    for meeting_id, status in await session.execute(
        select(Attendance.meeting_id, Attendance.status).where(Attendance.meeting_id.in_(ids))
    ):
        came, marked = out.get(meeting_id, (0, 0))
        out[meeting_id] = (came + (status in AttendanceStatus.ATTENDED), marked + 1)
    return out


async def missed_twice(
    session: AsyncSession, *, meeting: Meeting, signup_ids: Iterable[int]
) -> dict[int, int]:
    """Of `signup_ids`, those marked absent at `meeting` and at the group's meeting before
    it (the last one not cancelled): the ones to ask whether the time still suits them,
    each with the number of the first meeting of their run of absences (one note per
    run, however long it gets)."""
    ids = list(signup_ids)
    if not ids:
        return {}
    held = list(
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.group_id == meeting.group_id,
                Meeting.number <= meeting.number,
                Meeting.status != "cancelled",
            )
            .order_by(Meeting.number.desc())
        )
    )
    if len(held) < 2 or held[0].id != meeting.id:
        return {}
    marks: dict[tuple[int, int], str] = {
        (m, s): st
        for m, s, st in await session.execute(
            select(Attendance.meeting_id, Attendance.signup_id, Attendance.status).where(
                Attendance.meeting_id.in_([m.id for m in held]), Attendance.signup_id.in_(ids)
            )
        )
    }
    absent = AttendanceStatus.ABSENT
    out = {}
    for s in ids:
        run = 0
        for m in held:
            if marks.get((m.id, s)) != absent:
                break
            run += 1
        if run >= 2:
            out[s] = held[run - 1].number
    return out
