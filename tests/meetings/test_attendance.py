"""Attendance: suggestions from the group's call (joins, leaves, reconnects, late joins,
guests), from what people said beforehand, taking and correcting it (who may, what is
refused, the change log), and the note to someone who missed twice in a row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lens.cohorts.models import CohortChange, GroupMember
from lens.db.base import utcnow
from lens.errors import Conflict, Forbidden, Invalid
from lens.meetings import attendance
from lens.meetings.models import Attendance, Meeting, MeetingGuest, PresenceSpan, Rsvp
from lens.notifications.models import Delivery
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.running import World, running

HOUR = timedelta(hours=1)


async def _held(db, w: World, group, number: int, *, ago: timedelta = 2 * HOUR) -> Meeting:
    """Meeting `number` of `group`, moved so that it started `ago` and lasted an hour."""
    meeting = await db.scalar(
        select(Meeting).where(Meeting.group_id == group.id, Meeting.number == number)
    )
    meeting.starts_at = utcnow().replace(microsecond=0) - ago
    meeting.ends_at = meeting.starts_at + HOUR
    await db.flush()
    return meeting


def _span(db, group, user_id: int, start: datetime, minutes_in: int, minutes_long: int | None):
    joined = start + timedelta(minutes=minutes_in)
    left = None if minutes_long is None else joined + timedelta(minutes=minutes_long)
    db.add(PresenceSpan(group_id=group.id, user_id=user_id, joined_at=joined, left_at=left))


async def _user(db, signup) -> User:
    return await db.get(User, signup.user_id)


# -- suggestions --------------------------------------------------------------------------


async def test_suggestions_from_a_voice_log(db) -> None:
    w = await running(db, max_group_size=6)
    m = await _held(db, w, w.tue, 1)
    a, b, c = w.tue_people
    start = m.starts_at
    # a: the whole hour, with a dropped connection (reconnects after 2 minutes) and a
    # second device overlapping: counted once.
    _span(db, w.tue, a.user_id, start, -5, 20)
    _span(db, w.tue, a.user_id, start, 17, 43)
    _span(db, w.tue, a.user_id, start, 30, 10)
    # b: came 25 minutes in and stayed to the end (35 of 60: present, but late).
    _span(db, w.tue, b.user_id, start, 25, 60)
    # c: 20 minutes, then left: under half.
    _span(db, w.tue, c.user_id, start, 0, 20)
    # A guest from Thursday's group, in the call from the start and still there.
    guest = w.thu_people[0]
    db.add(MeetingGuest(meeting_id=m.id, signup_id=guest.id))
    _span(db, w.tue, guest.user_id, start, 2, None)
    # Someone in another group's call at that time does not count here.
    _span(db, w.thu, w.thu_people[1].user_id, start, 0, 60)
    await db.flush()

    lines = {line.row.signup.id: line for line in await attendance.roster(db, meeting=m)}
    assert set(lines) == {a.id, b.id, c.id, guest.id}  # members and the guest, not the facilitator
    assert (lines[a.id].suggested, lines[a.id].why) == ("present", "in the call 58 of 60 minutes")
    assert lines[b.id].suggested == "late" and "joined 25 minutes in" in lines[b.id].why
    assert (lines[c.id].suggested, lines[c.id].why) == ("absent", "in the call 20 of 60 minutes")
    assert lines[guest.id].suggested == "present" and lines[guest.id].guest_from == "Group 2"
    assert all(line.status is None for line in lines.values())


def test_presence_is_counted_once_and_clipped_to_the_meeting() -> None:
    start = datetime(2027, 3, 2, 18, 0, tzinfo=utcnow().tzinfo)
    meeting = Meeting(starts_at=start, ends_at=start + HOUR)
    m = timedelta(minutes=1)
    spans = [
        (start - 30 * m, start + 10 * m),  # from before the start: 10 minutes count
        (start + 5 * m, start + 15 * m),  # overlaps the first: 5 more
        (start + 50 * m, start + 90 * m),  # past the end: 10 count
        (start + 70 * m, None),  # after the meeting: nothing
    ]
    presence = attendance.presence_in(spans, meeting, now=start + 2 * HOUR)
    assert (presence.seconds, presence.first_join) == (25 * 60, start)
    assert attendance.suggest_from_presence(presence, meeting)[0] == "absent"
    exactly_half = attendance.presence_in([(start, start + 30 * m)], meeting, now=start)
    assert attendance.suggest_from_presence(exactly_half, meeting)[0] == "present"
    nothing = attendance.presence_in([], meeting, now=start)
    assert attendance.suggest_from_presence(nothing, meeting) == ("absent", "not in the call")


async def test_without_call_data_what_people_said_decides(db) -> None:
    w = await running(db)
    m = await _held(db, w, w.tue, 2)
    a, b, c = w.tue_people
    db.add(Rsvp(meeting_id=m.id, user_id=b.user_id, status="not_attending"))
    # c visits Thursday's group that week instead.
    thu = await db.scalar(select(Meeting).where(Meeting.group_id == w.thu.id, Meeting.number == 2))
    db.add(MeetingGuest(meeting_id=thu.id, signup_id=c.id, instead_of=m.id))
    await db.flush()
    lines = {line.row.signup.id: line for line in await attendance.roster(db, meeting=m)}
    assert (lines[a.id].suggested, lines[a.id].why) == ("present", "no call data: check")
    assert (lines[b.id].suggested, lines[b.id].why) == ("excused", "said they would not come")
    assert (lines[c.id].suggested, lines[c.id].why) == ("excused", "visits Group 2")


# -- taking it ----------------------------------------------------------------------------


async def test_the_facilitator_takes_it_and_corrects_it_with_a_log(db) -> None:
    w = await running(db)
    m = await _held(db, w, w.tue, 1)
    a, b, c = w.tue_people
    facilitator = await _user(db, w.fac_tue)
    marks = {a.id: "present", b.id: "late", c.id: "absent"}
    lines = await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks=marks)
    assert {line.row.signup.id: line.status for line in lines} == marks
    await attendance.take(
        db, meeting=m, group=w.tue, by=w.admin, marks={c.id: "present"}, reason="was on the phone"
    )
    log = list(await db.scalars(select(CohortChange).order_by(CohortChange.id)))
    assert [e.action for e in log] == ["attendance.take", "attendance.edit"]
    name_c = (await _user(db, c)).display_name
    assert log[1].details["marks"] == {name_c: "absent → present"}
    assert log[1].reason == "was on the phone" and log[1].actor_id == w.admin.id
    # Saving the same again changes nothing and logs nothing.
    await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks={c.id: "present"})
    assert len(list(await db.scalars(select(CohortChange)))) == 2
    assert await attendance.attended(db, signup_ids=[a.id, b.id, c.id]) == {
        a.id: 1,
        b.id: 1,
        c.id: 1,
    }


async def test_who_may_take_it_and_what_is_refused(db) -> None:
    w = await running(db)
    m = await _held(db, w, w.tue, 1)
    a = w.tue_people[0]
    facilitator = await _user(db, w.fac_tue)
    for outsider in (await _user(db, a), await _user(db, w.fac_thu)):
        with pytest.raises(Forbidden):
            await attendance.take(db, meeting=m, group=w.tue, by=outsider, marks={a.id: "present"})
    # A stand-in for this meeting may.
    m.substitute_signup_id = w.fac_free.id
    await attendance.take(
        db, meeting=m, group=w.tue, by=await _user(db, w.fac_free), marks={a.id: "present"}
    )
    # Someone of another group, not a guest here: refused, nothing written.
    with pytest.raises(Invalid, match="members and this meeting's guests only"):
        await attendance.take(
            db,
            meeting=m,
            group=w.tue,
            by=facilitator,
            marks={w.tue_people[1].id: "present", w.thu_people[0].id: "present"},
        )
    with pytest.raises(Invalid, match="present, late, absent or excused"):
        await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks={a.id: "maybe"})
    rows = list(await db.scalars(select(Attendance)))
    assert [(r.signup_id, r.status) for r in rows] == [(a.id, "present")]
    # A meeting not yet held, or cancelled.
    later = await db.scalar(
        select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == 3)
    )
    with pytest.raises(Conflict, match="has not started yet"):
        await attendance.take(
            db, meeting=later, group=w.tue, by=facilitator, marks={a.id: "absent"}
        )
    m.status = "cancelled"
    with pytest.raises(Conflict, match="cancelled"):
        await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks={a.id: "absent"})


async def test_a_guest_is_recorded_with_the_host_and_counts_for_them(db) -> None:
    w = await running(db)
    host = await _held(db, w, w.tue, 1)
    guest = w.thu_people[0]
    db.add(MeetingGuest(meeting_id=host.id, signup_id=guest.id))
    await db.flush()
    await attendance.take(
        db, meeting=host, group=w.tue, by=await _user(db, w.fac_tue), marks={guest.id: "present"}
    )
    assert await attendance.attended(db, signup_ids=[guest.id]) == {guest.id: 1}


# -- missing twice ------------------------------------------------------------------------


async def test_missing_twice_in_a_row_is_seen_and_nudged_once(db) -> None:
    w = await running(db)
    first = await _held(db, w, w.tue, 1, ago=8 * 24 * HOUR)
    second = await _held(db, w, w.tue, 2)
    a, b, c = w.tue_people
    facilitator = await _user(db, w.fac_tue)
    await attendance.take(
        db, meeting=first, group=w.tue, by=facilitator,
        marks={a.id: "absent", b.id: "excused", c.id: "absent"},
    )  # fmt: skip
    await attendance.take(
        db, meeting=second, group=w.tue, by=facilitator,
        marks={a.id: "absent", b.id: "absent", c.id: "present"},
    )  # fmt: skip
    assert await attendance.missed_in_a_row(db, group=w.tue) == {a.id: 2}
    nudged = list(await db.scalars(select(Delivery).where(Delivery.kind == "missed_meetings")))
    assert {d.user_id for d in nudged} == {a.user_id}  # b's first was excused
    # Saving again (another change) does not nudge a second time.
    await attendance.take(db, meeting=second, group=w.tue, by=facilitator, marks={c.id: "late"})
    again = list(await db.scalars(select(Delivery).where(Delivery.kind == "missed_meetings")))
    assert len(again) == len(nudged)
    # Corrected before it went: the message is dropped at send time.
    from lens.notifications.context import Drop, Site, prepare

    await attendance.take(db, meeting=second, group=w.tue, by=facilitator, marks={a.id: "excused"})
    site = Site(
        base_url="https://lens.example.org", secret="s" * 40, from_email="t@x.org", content=None
    )
    with pytest.raises(Drop, match="corrected"):
        await prepare(db, nudged[0], await _user(db, a), site)


# -- the page -----------------------------------------------------------------------------


async def test_the_attendance_page(app_client, db) -> None:
    w = await running(db)
    await _held(db, w, w.tue, 1)
    a, b, c = w.tue_people
    facilitator = await _user(db, w.fac_tue)
    url = f"/groups/{w.tue.id}/meetings/1/attendance"
    sign_in(app_client, await _user(db, a))
    assert (await app_client.get(url)).status_code == 403
    assert (
        await app_client.post(url, data={f"s{a.id}": "present"}, headers=ORIGIN)
    ).status_code == 403
    sign_in(app_client, facilitator)
    group_page = await app_client.get(f"/groups/{w.tue.id}")
    assert f'href="{url}">take attendance' in group_page.text
    page = await app_client.get(url)
    assert page.status_code == 200
    assert page.text.count('value="present" checked') == 3  # no call data: present, to check
    saved = await app_client.post(
        url, data={f"s{a.id}": "present", f"s{b.id}": "absent", f"s{c.id}": "late"}, headers=ORIGIN
    )
    assert saved.status_code == 303
    shown = await app_client.get(saved.headers["location"])
    assert "Attendance saved." in shown.text and "Recorded: Absent." in shown.text
    group_page = await app_client.get(f"/groups/{w.tue.id}")
    assert "attendance: 2 of 3 came" in group_page.text
    # Someone not in the group: a clear message, the marks typed kept, nothing saved.
    outsider = w.thu_people[0]
    bad = await app_client.post(
        url, data={f"s{a.id}": "absent", f"s{outsider.id}": "present"}, headers=ORIGIN
    )
    assert bad.status_code == 422 and "guests only; reload the page" in bad.text
    typed = bad.text[bad.text.index(f'id="attendance-{a.id}"') :]
    assert typed.index('value="absent" checked') < typed.index("</fieldset>")  # as typed
    row = await db.scalar(select(Attendance).where(Attendance.signup_id == a.id))
    await db.refresh(row)
    assert row.status == "present"
    # A meeting not yet held says so and offers no form.
    later = await app_client.get(f"/groups/{w.tue.id}/meetings/3/attendance")
    assert "has not started yet" in later.text and "Save attendance" not in later.text
    assert (await app_client.get(f"/groups/{w.tue.id}/meetings/99/attendance")).status_code == 404
    members = await db.scalars(select(GroupMember).where(GroupMember.group_id == w.tue.id))
    assert len(list(members)) == 4


async def test_who_the_list_is_about_at_a_past_meeting(db) -> None:
    w = await running(db, max_group_size=6)
    m = await _held(db, w, w.tue, 1, ago=8 * 24 * HOUR)
    a, b, c = w.tue_people
    facilitator = await _user(db, w.fac_tue)
    await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks={a.id: "present"})
    # a leaves the group; w.flexible joins it today, after that meeting.
    await db.execute(
        GroupMember.__table__.delete().where(
            (GroupMember.signup_id == a.id) & (GroupMember.group_id == w.tue.id)
        )
    )
    db.add(GroupMember(group_id=w.tue.id, signup_id=w.flexible.id, role="participant"))
    await db.flush()
    listed = {line.row.signup.id for line in await attendance.roster(db, meeting=m)}
    assert listed == {a.id, b.id, c.id}  # a's mark can be corrected; the newcomer is not there
    await attendance.take(db, meeting=m, group=w.tue, by=facilitator, marks={a.id: "excused"})
    with pytest.raises(Invalid):
        await attendance.take(
            db, meeting=m, group=w.tue, by=facilitator, marks={w.flexible.id: "absent"}
        )


async def test_one_note_per_run_of_absences(db) -> None:
    w = await running(db)
    a = w.tue_people[0]
    facilitator = await _user(db, w.fac_tue)
    for number, ago in ((1, 15), (2, 8), (3, 1)):
        meeting = await _held(db, w, w.tue, number, ago=ago * 24 * HOUR)
        await attendance.take(
            db, meeting=meeting, group=w.tue, by=facilitator, marks={a.id: "absent"}
        )
    notes = list(await db.scalars(select(Delivery).where(Delivery.kind == "missed_meetings")))
    assert {d.user_id for d in notes} == {a.user_id}
    assert len({d.subject for d in notes}) == 1  # the third absence sends nothing more


def test_a_stretch_whose_leave_was_missed_counts_four_hours_at_most() -> None:
    start = datetime(2027, 3, 2, 18, 0, tzinfo=utcnow().tzinfo)
    meeting = Meeting(starts_at=start, ends_at=start + HOUR)
    yesterday = start - timedelta(days=1)
    stale = attendance.presence_in([(yesterday, None)], meeting, now=start + 2 * HOUR)
    assert stale.seconds == 0  # open since yesterday: not in today's call
    # Taken half-way through: 20 of the 30 minutes so far is present.
    joined = [(start, start + timedelta(minutes=20))]
    so_far = attendance.presence_in(joined, meeting, now=start + timedelta(minutes=30))
    now = start + timedelta(minutes=30)
    assert attendance.suggest_from_presence(so_far, meeting, now=now) == (
        "present",
        "in the call 20 of 30 minutes",
    )
