"""The learner's home: what it shows in each state (not enrolled, enrolled, waiting, in
a group, finished), and the landing page following the person's state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.auth.visitors import user_actor
from lens.courses.models import Progress
from lens.courses.service import module_key
from lens.db.base import utcnow
from lens.errors import Conflict
from lens.meetings.models import Attendance, Meeting
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.running import running
from tests.fixtures.users import make_user


async def test_someone_in_no_cohort_is_invited_to_enroll(app_client, db) -> None:
    sign_in(app_client, await make_user(db))
    page = await app_client.get("/my-course")
    assert page.status_code == 200 and 'href="/enroll"' in page.text
    landing = await app_client.get("/")
    assert "Enroll in a cohort" in landing.text and "Your cohorts" not in landing.text


async def test_enrolled_and_waiting(app_client, db) -> None:
    cohort = await make_cohort(db, status="open", name="Autumn 2027")
    signup = await make_signup(db, cohort)
    w = await running(db)
    sign_in(app_client, await db.get(User, signup.user_id))
    page = await app_client.get("/my-course")
    assert "You are enrolled. Groups are formed before the start" in page.text
    landing = await app_client.get("/")
    assert "Your cohorts" in landing.text and "Enroll in a cohort" not in landing.text
    sign_in(app_client, await db.get(User, w.flexible.user_id))
    waiting = await app_client.get("/my-course")
    assert "You are not in a group yet" in waiting.text
    assert f'href="/cohorts/{w.cohort.id}"' in waiting.text


async def test_in_a_group_the_week_ahead(app_client, db) -> None:
    content = app_client.app.state.content.content
    w = await running(db)
    me = w.tue_people[0]
    user = await db.get(User, me.user_id)
    user.timezone = "Europe/Berlin"
    w.tue.call_url = "https://meet.example.org/tue"
    meetings = list(
        await db.scalars(
            select(Meeting).where(Meeting.group_id == w.tue.id).order_by(Meeting.number)
        )
    )
    # Meeting 1 was last week and they came; meeting 2 is in two days.
    now = utcnow().replace(second=0, microsecond=0)
    for m, start in zip(meetings, [now - timedelta(days=5), now + timedelta(days=2)], strict=False):
        m.starts_at, m.ends_at = start, start + timedelta(hours=1)
    for m in meetings[2:]:
        m.starts_at += timedelta(days=30)
        m.ends_at += timedelta(days=30)
    db.add(Attendance(meeting_id=meetings[0].id, signup_id=me.id, status="present"))
    course = content.courses[w.cohort.course_slug]
    before_2 = next(u for u in course.units if u.meeting == 2)
    first = content.modules[before_2.modules[0].path]
    db.add(
        Progress(
            actor=user_actor(user.id), user_id=user.id, module_key=module_key(first),
            content_id="", completed_at=utcnow(), seconds=300,
        )
    )  # fmt: skip
    await db.flush()
    sign_in(app_client, user)
    page = await app_client.get("/my-course")
    text = page.text
    assert f'<a href="/groups/{w.tue.id}">Group 1</a>' in text
    assert "https://meet.example.org/tue" in text
    local = meetings[1].starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert f"Next meeting: {local:%A} {local.day} {local:%B, %H:%M}" in text
    assert f'{first.title}</a> <span class="small muted">completed' in text
    assert "Attendance</dt><dd>1 of 1 meetings of Group 1 so far" in text
    assert "Present</span>" in text
    assert "Completing the course" in text and "Meetings attended: 1 of 4" in text
    # Answering from here comes back here.
    answered = await app_client.post(
        f"/groups/{w.tue.id}/meetings/2/rsvp",
        data={"status": "attending", "back": "/my-course"},
        headers=ORIGIN,
    )
    assert answered.status_code == 303 and answered.headers["location"] == "/my-course"
    again = await app_client.get("/my-course")
    assert "Your answer: <strong>Attending</strong>" in again.text
    outward = await app_client.post(
        f"/groups/{w.tue.id}/meetings/2/rsvp",
        data={"status": "attending", "back": "//evil.example.org/"},
        headers=ORIGIN,
    )
    assert outward.headers["location"] == f"/groups/{w.tue.id}#meeting-2"
    landing = await app_client.get("/")
    assert "in Group 1; next meeting" in landing.text


async def test_finished(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    me = w.tue_people[0]
    first = await db.scalar(
        select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == 1)
    )
    db.add(Attendance(meeting_id=first.id, signup_id=me.id, status="present"))
    w.cohort.status = "finished"
    await db.flush()
    sign_in(app_client, await db.get(User, me.user_id))
    page = await app_client.get("/my-course")
    assert "This cohort has finished." in page.text and "<strong>Complete.</strong>" in page.text
    sign_in(app_client, await db.get(User, w.fac_tue.user_id))
    led = await app_client.get("/my-course")
    assert f'You led <a href="/groups/{w.tue.id}">Group 1</a>' in led.text
    # A stand-in finds the meeting's attendance page there.
    thu2 = await db.scalar(select(Meeting).where(Meeting.group_id == w.thu.id, Meeting.number == 2))
    thu2.substitute_signup_id = w.fac_free.id
    await db.flush()
    sign_in(app_client, await db.get(User, w.fac_free.user_id))
    stand_in = await app_client.get("/my-course")
    assert f'href="/groups/{w.thu.id}/meetings/2/attendance"' in stand_in.text


async def test_a_finished_cohorts_groups_are_closed(app_client, db) -> None:
    w = await running(db)
    w.cohort.status = "finished"
    await db.flush()
    facilitator = await db.get(User, w.fac_tue.user_id)
    sign_in(app_client, facilitator)
    page = await app_client.get(f"/groups/{w.tue.id}")
    assert "This group is closed: Spring 2027 has finished." in page.text
    assert "Save where you meet" not in page.text and "rsvp-form" not in page.text
    assert f'href="/groups/{w.tue.id}/meetings/2">change' not in page.text
    meeting = await app_client.get(f"/groups/{w.tue.id}/meetings/2")
    assert (
        "its meetings no longer move" in meeting.text and "Cancel the meeting" not in meeting.text
    )
    refused = {
        "place": await app_client.post(
            f"/groups/{w.tue.id}/place", data={"call_url": "https://meet.example.org/x"},
            headers=ORIGIN,
        ),
        "rsvp": await app_client.post(
            f"/groups/{w.tue.id}/meetings/2/rsvp", data={"status": "attending"}, headers=ORIGIN
        ),
        "cancel": await app_client.post(
            f"/groups/{w.tue.id}/meetings/2/cancel", data={"confirm": "yes"}, headers=ORIGIN
        ),
    }  # fmt: skip
    for what, response in refused.items():
        assert response.status_code == 409, what
        assert "its groups are closed" in response.text, what
    from lens.meetings.service import move_meetings

    with pytest.raises(Conflict, match="groups are closed"):
        await move_meetings(
            db, group=w.tue, number=2, new_start=utcnow() + timedelta(days=3), all_future=False
        )
    still = await db.scalar(
        select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == 2)
    )
    assert still.status == "scheduled" and w.tue.call_url != "https://meet.example.org/x"
