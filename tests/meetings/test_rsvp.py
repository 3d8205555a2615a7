"""RSVPs: members answer on the group page; answers in Google Calendar are read back
every six hours; the facilitator sees who comes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.db.base import utcnow
from lens.errors import IntegrationUnavailable
from lens.integrations.google_calendar import event_id_for
from lens.jobs.periodic import PERIODIC
from lens.jobs.registry import JobContext
from lens.meetings import tasks
from lens.meetings.calendar import RSVP_SYNC_KIND
from lens.meetings.models import Meeting, Rsvp
from lens.meetings.service import rsvps_for_group, set_rsvp
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import make_signup
from tests.fixtures.users import make_user
from tests.meetings.fakes import FakeCalendar
from tests.meetings.test_calendar_sync import EVERY_SLOT, group_with_meetings


def job_context(db, settings, calendar) -> JobContext:
    extras = {"calendar": calendar} if calendar is not None else {}
    return JobContext(
        session=db, job_id=1, kind=RSVP_SYNC_KIND, attempt=1, settings=settings, extras=extras
    )


async def rsvps(db) -> dict[tuple[int, int], tuple[str, str]]:
    rows = await db.scalars(select(Rsvp).execution_options(populate_existing=True))
    return {(r.meeting_id, r.user_id): (r.status, r.source) for r in rows}


def meeting_item(page: str, number: int) -> str:
    """The <li> of one meeting on the group page."""
    found = re.search(rf'<li id="meeting-{number}"(.*?)\n    </li>', page, re.S)
    assert found, f"meeting {number} is not on the page"
    return found.group(1)


# -- reading answers from Google ---------------------------------------------------------


async def test_rsvp_sync_runs_every_six_hours() -> None:
    assert any(p.kind == RSVP_SYNC_KIND and p.every == timedelta(hours=6) for p in PERIODIC)


async def test_google_answers_become_rsvps_for_next_weeks_meetings(db, make_settings) -> None:
    _, _, users, series = await group_with_meetings(db)
    lead, ada, bo, _ = users
    now = utcnow()
    # Meeting 1 in two days and 2 in five (both asked about); 3 in ten days (too far);
    # 4 in three days but without an event yet.
    for meeting, days in zip(series, (2, 5, 10, 3), strict=True):
        meeting.starts_at = now + timedelta(days=days)
        meeting.ends_at = meeting.starts_at + timedelta(hours=1)
        meeting.calendar_event_id = event_id_for("meeting", meeting.id)
    series[3].calendar_event_id = None
    await db.flush()
    first, second, third, _ = (m.calendar_event_id for m in series)
    calendar = FakeCalendar(
        answers={
            first: {
                lead.email: "accepted",
                ada.email.upper(): "declined",  # Google's case need not be ours
                bo.email: "needsAction",
                "someone.else@example.org": "accepted",  # not in the group
            },
            second: {ada.email: "tentative"},
            third: {ada.email: "accepted"},
        }
    )
    await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})

    assert calendar.asked == [[first, second]]  # one batched call, only these two
    m1, m2 = series[0].id, series[1].id
    assert await rsvps(db) == {
        (m1, lead.id): ("attending", "google"),
        (m1, ada.id): ("not_attending", "google"),
        (m1, bo.id): ("pending", "google"),
        (m2, ada.id): ("tentative", "google"),
    }

    # Ada answers on the site; Bo says yes in Google, Ada's "maybe" goes back to no answer.
    await set_rsvp(db, meeting=series[0], user=ada, status="attending")
    calendar.answers[first] |= {ada.email.upper(): "declined", bo.email: "accepted"}
    calendar.answers[second] = {ada.email: "needsAction"}
    await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})
    answers = await rsvps(db)
    assert answers[(m1, ada.id)] == ("attending", "site")  # the site answer stays
    assert answers[(m1, bo.id)] == ("attending", "google")
    assert answers[(m2, ada.id)] == ("tentative", "google")  # "no answer" never overwrites

    # Ada changes her mind in Google about meeting 2: that answer came from Google; it follows.
    calendar.answers[second] = {ada.email: "declined"}
    await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})
    assert (await rsvps(db))[(m2, ada.id)] == ("not_attending", "google")


async def test_rsvp_sync_without_google_calendar_or_events_asks_nothing(db, make_settings) -> None:
    _, _, _, series = await group_with_meetings(db)
    calendar = FakeCalendar()
    await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})
    assert calendar.asked == []  # no meeting has an event
    series[0].starts_at = utcnow() + timedelta(days=1)
    series[0].ends_at = series[0].starts_at + timedelta(hours=1)
    series[0].calendar_event_id = event_id_for("meeting", series[0].id)
    series[0].status = "cancelled"
    await db.flush()
    await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})
    assert calendar.asked == []  # cancelled
    # Not configured: no client at all, nothing happens.
    await tasks.rsvp_sync(job_context(db, make_settings(), None), {})
    assert await rsvps(db) == {}


async def test_rsvp_sync_retries_when_google_is_unavailable(db, make_settings) -> None:
    _, _, _, series = await group_with_meetings(db)
    series[0].starts_at = utcnow() + timedelta(days=1)
    series[0].ends_at = series[0].starts_at + timedelta(hours=1)
    series[0].calendar_event_id = event_id_for("meeting", series[0].id)
    await db.flush()
    calendar = FakeCalendar(fail_with=IntegrationUnavailable("Google Calendar busy (429)"))
    with pytest.raises(IntegrationUnavailable):
        await tasks.rsvp_sync(job_context(db, make_settings(), calendar), {})


# -- answering on the site ---------------------------------------------------------------


async def test_a_member_answers_and_the_facilitator_sees_who_comes(app_client, db) -> None:
    _, group, users, series = await group_with_meetings(db)
    lead, ada, bo, cy = users
    ada.nickname, bo.nickname, lead.nickname = "Ada", "Bo", "Fay"
    await db.flush()
    page_url = f"/groups/{group.id}"

    sign_in(app_client, ada)
    answered = await app_client.post(
        f"{page_url}/meetings/2/rsvp", data={"status": "attending"}, headers=ORIGIN
    )
    assert answered.status_code == 303
    assert answered.headers["location"] == f"{page_url}#meeting-2"
    page = (await app_client.get(page_url)).text
    second = meeting_item(page, 2)
    assert "Your answer: <strong>Attending</strong>" in second
    assert 'value="attending" class="button small-button" aria-pressed="true"' in second
    assert "Your answer: <strong>No answer</strong>" in meeting_item(page, 1)
    assert "Not attending: " not in page  # members do not see the others' answers

    # Changing the answer replaces it.
    await app_client.post(
        f"{page_url}/meetings/2/rsvp", data={"status": "not_attending"}, headers=ORIGIN
    )
    sign_in(app_client, bo)
    await app_client.post(
        f"{page_url}/meetings/2/rsvp", data={"status": "tentative"}, headers=ORIGIN
    )
    sign_in(app_client, lead)  # the facilitator answers too: they are in the group
    await app_client.post(
        f"{page_url}/meetings/2/rsvp", data={"status": "attending"}, headers=ORIGIN
    )

    answers = await rsvps_for_group(db, group=group)
    assert answers == {
        series[1].id: {ada.id: "not_attending", bo.id: "tentative", lead.id: "attending"}
    }
    second = meeting_item((await app_client.get(page_url)).text, 2)
    cy_name = cy.display_name
    assert "<strong>Attending: 1</strong> (Fay)" in second
    assert "<strong>Not attending: 1</strong> (Ada)" in second
    assert "<strong>Maybe: 1</strong> (Bo)" in second
    assert f"<strong>No answer: 1</strong> ({cy_name})" in second
    assert "Your answer: <strong>Attending</strong>" in second

    # An admin (not in the group) sees the answers but has no buttons, and cannot answer.
    admin = await make_user(db, is_admin=True)
    sign_in(app_client, admin)
    as_admin = meeting_item((await app_client.get(page_url)).text, 2)
    assert "<strong>Maybe: 1</strong> (Bo)" in as_admin and "aria-pressed" not in as_admin
    refused = await app_client.post(
        f"{page_url}/meetings/2/rsvp", data={"status": "attending"}, headers=ORIGIN
    )
    assert refused.status_code == 403
    assert "Only the group&#39;s members and its facilitator answer" in refused.text


async def test_who_may_not_answer(app_client, db) -> None:
    cohort, group, users, _ = await group_with_meetings(db)
    url = f"/groups/{group.id}/meetings/1/rsvp"
    data = {"status": "attending"}
    assert (await app_client.post(url, data=data, headers=ORIGIN)).status_code == 401
    sign_in(app_client, await make_user(db))  # a student outside the group
    stranger = await app_client.post(url, data=data, headers=ORIGIN)
    assert stranger.status_code == 403 and "for its members and facilitator" in stranger.text
    # The facilitator of another group of the same cohort.
    other_lead = await make_signup(db, cohort, role="facilitator", available=EVERY_SLOT)
    sign_in(app_client, await db.get(User, other_lead.user_id))
    assert (await app_client.post(url, data=data, headers=ORIGIN)).status_code == 403
    sign_in(app_client, users[1])
    missing = await app_client.post(
        f"/groups/{group.id}/meetings/99/rsvp", data=data, headers=ORIGIN
    )
    assert missing.status_code == 404 and "has no meeting 99" in missing.text
    assert (
        await app_client.post(
            f"/groups/{group.id + 999}/meetings/1/rsvp", data=data, headers=ORIGIN
        )
    ).status_code == 404
    assert await rsvps(db) == {}


async def test_bad_answers_and_closed_meetings_are_refused(app_client, db) -> None:
    _, group, users, series = await group_with_meetings(db)
    sign_in(app_client, users[1])
    base = f"/groups/{group.id}/meetings"
    bad = await app_client.post(f"{base}/1/rsvp", data={"status": "yes"}, headers=ORIGIN)
    assert bad.status_code == 422
    assert (
        "&#39;yes&#39; is not an answer: choose attending, not_attending or tentative" in bad.text
    )
    empty = await app_client.post(f"{base}/1/rsvp", headers=ORIGIN)
    assert empty.status_code == 422 and "Choose an answer" in empty.text
    pending = await app_client.post(f"{base}/1/rsvp", data={"status": "pending"}, headers=ORIGIN)
    assert pending.status_code == 422

    over, cancelled = series[0], series[1]
    over.starts_at = utcnow() - timedelta(hours=3)
    over.ends_at = over.starts_at + timedelta(hours=1)
    cancelled.status = "cancelled"
    await db.flush()
    past = await app_client.post(f"{base}/1/rsvp", data={"status": "attending"}, headers=ORIGIN)
    assert past.status_code == 409 and "Meeting 1 is over" in past.text
    gone = await app_client.post(f"{base}/2/rsvp", data={"status": "attending"}, headers=ORIGIN)
    assert gone.status_code == 409 and "Meeting 2 is cancelled" in gone.text
    assert await rsvps(db) == {}
    page = (await app_client.get(f"/groups/{group.id}")).text
    # Buttons only for meetings still ahead.
    assert "aria-pressed" not in meeting_item(page, 1) + meeting_item(page, 2)
    assert "aria-pressed" in meeting_item(page, 3)


async def test_an_answer_given_twice_at_once_is_one_rsvp(db) -> None:
    _, _, users, series = await group_with_meetings(db)
    await set_rsvp(db, meeting=series[0], user=users[1], status="tentative")
    await set_rsvp(db, meeting=series[0], user=users[1], status="attending")
    rows = list(await db.scalars(select(Rsvp)))
    assert [(r.meeting_id, r.user_id, r.status, r.source) for r in rows] == [
        (series[0].id, users[1].id, "attending", "site")
    ]
    assert (await db.get(Meeting, series[0].id)).status == "scheduled"
