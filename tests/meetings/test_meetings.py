from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import select

from lens.cohorts.models import Group, GroupMember
from lens.meetings.ical import IcsEvent, fold, render_calendar
from lens.meetings.models import Meeting
from lens.meetings.service import create_meetings, first_start
from lens.scheduling import service
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup

MONDAY = 0


def feed_path(page: str) -> str:
    """The path of the feed address a page shows once."""
    url = re.search(r'value="(https?://[^"]+\.ics)"', page).group(1)
    return "/" + url.split("/", 3)[3]


async def _group(db, cohort, people) -> Group:
    group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY * 48 + 36, status="active")
    db.add(group)
    await db.flush()
    for signup in people:
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=signup.role))
    await db.flush()
    return group


async def test_a_berlin_group_keeps_berlin_time_across_the_dst_change(db) -> None:
    # Summer time starts in Europe on 2027-03-28: 19:00 Berlin is 18:00 UTC before, 17:00 after.
    cohort = await make_cohort(db, start_date=date(2027, 3, 15), meetings=4, meeting_minutes=60)
    lead = await make_signup(
        db, cohort, role="facilitator", timezone="Europe/Berlin", available=evening(MONDAY, 19, 2)
    )
    members = [
        await make_signup(db, cohort, timezone="Europe/Berlin", available=evening(MONDAY, 19, 2))
        for _ in range(3)
    ]
    meetings = await create_meetings(
        db, cohort=cohort, group=await _group(db, cohort, [lead, *members])
    )
    assert {m.anchor_timezone for m in meetings} == {"Europe/Berlin"}
    assert [m.starts_at.strftime("%m-%d %H:%M") for m in meetings] == [
        "03-15 18:00", "03-22 18:00", "03-29 17:00", "04-05 17:00",
    ]  # fmt: skip
    assert all((m.ends_at - m.starts_at).total_seconds() == 3600 for m in meetings)


async def test_the_series_keeps_utc_when_local_time_would_lose_someone(db) -> None:
    cohort = await make_cohort(db, start_date=date(2027, 3, 15), meetings=4, meeting_minutes=60)
    lead = await make_signup(
        db, cohort, role="facilitator", timezone="Europe/Berlin", available=evening(MONDAY, 18, 4)
    )
    # Only 18:00-19:00 UTC works for this member, every week.
    fixed = await make_signup(db, cohort, timezone="UTC", available=evening(MONDAY, 18, 1))
    berlin = await make_signup(
        db, cohort, timezone="Europe/Berlin", available=evening(MONDAY, 18, 4)
    )
    meetings = await create_meetings(
        db, cohort=cohort, group=await _group(db, cohort, [lead, fixed, berlin])
    )
    assert {m.anchor_timezone for m in meetings} == {"UTC"}
    assert {m.starts_at.strftime("%H:%M") for m in meetings} == {"18:00"}


async def test_the_first_meeting_is_on_or_after_the_start_date(db) -> None:
    cohort = await make_cohort(db, start_date=date(2027, 1, 13))  # a Wednesday
    assert first_start(cohort, MONDAY * 48 + 36) == datetime(2027, 1, 18, 18, tzinfo=UTC)
    assert first_start(cohort, 3 * 48 + 36) == datetime(2027, 1, 14, 18, tzinfo=UTC)


async def test_approval_creates_meetings_and_the_feed_serves_them(app_client, db) -> None:
    cohort = await make_cohort(db, meetings=3, min_group_size=2)
    await make_signup(db, cohort, role="facilitator", available=evening(MONDAY, 18, 2))
    people = [await make_signup(db, cohort, available=evening(MONDAY, 18, 2)) for _ in range(2)]
    run = await service.request_grouping(db, cohort=cohort, by=None)
    await service.run_grouping(db, run=run)
    await service.approve(db, cohort=cohort, by=None)
    assert len(list(await db.scalars(select(Meeting)))) == 3

    user = await db.get(User, people[0].user_id)
    sign_in(app_client, user)
    made = await app_client.post("/account/calendar", headers=ORIGIN)
    path = feed_path(made.text)
    feed = await app_client.get(path)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert feed.text.count("BEGIN:VEVENT") == 3
    assert "DTSTART:20270111T180000Z" in feed.text and "\r\n" in feed.text
    group_page = await app_client.get(f"/groups/{(await db.scalar(select(Group))).id}")
    assert "Mon 11 Jan 2027, 18:00" in group_page.text

    again = await app_client.post("/account/calendar", headers=ORIGIN)
    assert "shown only once" in again.text
    assert (await app_client.get(path)).status_code == 404  # the old address stopped
    new_path = feed_path(again.text)
    assert (await app_client.get(new_path)).status_code == 200
    await app_client.post("/account/calendar/revoke", headers=ORIGIN)
    assert (await app_client.get(new_path)).status_code == 404


def test_ical_text_is_escaped_and_folded() -> None:
    event = IcsEvent(
        uid="meeting-1@lens.test",
        sequence=2,
        start=datetime(2027, 1, 11, 18, tzinfo=UTC),
        end=datetime(2027, 1, 11, 19, tzinfo=UTC),
        summary="Spring, 2027; group 1",
        description="Line one\nLine two with a long tail " + "é" * 60,
    )
    text = render_calendar([event], method="REQUEST")
    assert "SUMMARY:Spring\\, 2027\\; group 1\r\n" in text
    assert "METHOD:REQUEST\r\n" in text and "SEQUENCE:2\r\n" in text
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    unfolded = text.replace("\r\n ", "")
    assert "DESCRIPTION:Line one\\nLine two with a long tail " + "é" * 60 in unfolded
    assert fold("x" * 75) == "x" * 75


async def test_a_facilitator_moves_and_cancels_meetings(app_client, db) -> None:
    cohort = await make_cohort(db, start_date=date(2027, 3, 15), meetings=4, meeting_minutes=60)
    lead = await make_signup(
        db, cohort, role="facilitator", timezone="Europe/Berlin", available=evening(MONDAY, 19, 2)
    )
    member = await make_signup(
        db, cohort, timezone="Europe/Berlin", available=evening(MONDAY, 19, 2)
    )
    group = await _group(db, cohort, [lead, member])
    await create_meetings(db, cohort=cohort, group=group)
    lead_user = await db.get(User, lead.user_id)
    lead_user.timezone = "Europe/Berlin"
    await db.flush()
    base = f"/groups/{group.id}/meetings"

    sign_in(app_client, await db.get(User, member.user_id))
    assert (await app_client.get(f"{base}/2")).status_code == 403  # members cannot
    sign_in(app_client, lead_user)
    page = await app_client.get(f"{base}/2")
    assert page.status_code == 200 and 'value="19:00"' in page.text
    # Meeting 2 (22 March, 19:00 Berlin) and every later one move to Tuesday 20:00 Berlin.
    moved = await app_client.post(
        f"{base}/2/move",
        data={"day": "2027-03-23", "at": "20:00", "all_future": "true"},
        headers=ORIGIN,
    )
    assert moved.status_code == 303
    bad = await app_client.post(f"{base}/3/move", data={"day": "soon", "at": ""}, headers=ORIGIN)
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    past = await app_client.post(
        f"{base}/3/move", data={"day": "2020-01-01", "at": "10:00"}, headers=ORIGIN
    )
    assert past.status_code == 422 and "in the future" in past.text
    unconfirmed = await app_client.post(f"{base}/4/cancel", headers=ORIGIN)
    assert unconfirmed.status_code == 422
    cancelled = await app_client.post(f"{base}/4/cancel", data={"confirm": "yes"}, headers=ORIGIN)
    assert cancelled.status_code == 303

    db.expire_all()
    meetings = list(await db.scalars(select(Meeting).order_by(Meeting.number)))
    # Berlin wall-clock: 19:00 Mon, then 20:00 Tue (UTC moves by the DST change on 28 March).
    assert [(m.starts_at.strftime("%m-%d %H:%M"), m.status, m.sequence) for m in meetings] == [
        ("03-15 18:00", "scheduled", 0),
        ("03-23 19:00", "scheduled", 1),
        ("03-30 18:00", "scheduled", 1),
        ("04-06 18:00", "cancelled", 2),
    ]
