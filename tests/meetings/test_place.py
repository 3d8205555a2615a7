"""Where a group meets: a call link and/or a place, set by its facilitator or an admin,
checked, shown on the group and meeting pages, in iCal feeds and Google Calendar events,
audited, and told to the group once per change."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from lens.cohorts.models import CohortChange, Group, GroupMember
from lens.db.base import utcnow
from lens.errors import Forbidden, Invalid
from lens.integrations.google_calendar import GoogleCalendar, event_id_for
from lens.jobs.models import Job
from lens.meetings.ical import IcsEvent, render_calendar, uri
from lens.meetings.place import (
    CALL_URL_MAX,
    LOCATION_MAX,
    PlaceInvalid,
    check_call_url,
    check_location,
    set_meeting_place,
)
from lens.meetings.service import CALENDAR_SYNC_KIND, create_meetings
from lens.notifications.models import Delivery
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.users import make_user
from tests.meetings.fakes import FakeCalendar
from tests.meetings.test_calendar_sync import fresh, next_monday, run_jobs
from tests.meetings.test_meetings import feed_path

EVERY_SLOT = list(range(7 * 48))
MONDAY_18_UTC = 36
CALL = "https://meet.example.org/abc-defg-hij?pwd=x1&lang=en"
PUBLIC_URL = "https://lens.example.org"


async def two_groups(db) -> dict[str, Any]:
    """A running cohort, meetings ahead: group 1 (Fiona leads Mia and Noor) and group 2
    (Otto leads Pia)."""
    cohort = await make_cohort(db, start_date=next_monday(), meetings=3, status="running")
    found: dict[str, Any] = {"cohort": cohort}
    for number, people in ((1, ("Fiona", "Mia", "Noor")), (2, ("Otto", "Pia"))):
        group = Group(cohort_id=cohort.id, number=number, start_slot=MONDAY_18_UTC, status="active")
        db.add(group)
        await db.flush()
        for index, name in enumerate(people):
            role = "facilitator" if index == 0 else "participant"
            user = await make_user(db, nickname=name, email=f"{name.lower()}@example.org")
            signup = await make_signup(
                db, cohort, user=user, role=role, status="grouped", available=EVERY_SLOT
            )
            db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=role))
            found[name] = user
        await db.flush()
        found[f"group{number}"] = group
        found[f"meetings{number}"] = await create_meetings(db, cohort=cohort, group=group)
    return found


async def place_messages(db, group: Group) -> list[tuple[int, str]]:
    rows = await db.execute(
        select(Delivery.user_id, Delivery.channel)
        .where(Delivery.kind == "meeting_place_changed")
        .order_by(Delivery.id)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def audit(db, group: Group) -> list[dict[str, Any]]:
    rows = await db.scalars(
        select(CohortChange)
        .where(CohortChange.action == "group.place", CohortChange.cohort_id == group.cohort_id)
        .order_by(CohortChange.id)
    )
    return [{"actor": r.actor_id, "groups": r.group_ids, **r.details} for r in rows]


async def synced(db) -> list[int]:
    """The meetings whose Google Calendar event sync is queued."""
    payloads = await db.scalars(select(Job.payload).where(Job.kind == CALENDAR_SYNC_KIND))
    return sorted(p["meeting_id"] for p in payloads)


# -- the rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,says",
    [
        ("javascript:alert(document.cookie)", "not javascript: links"),
        ("JavaScript:alert(1)", "not javascript: links"),
        ("ftp://files.example.org/meeting", "not ftp: links"),
        ("data:text/html,<b>hi</b>", "cannot have"),
        ("mailto:team@example.org", "not mailto: links"),
        ("ms-teams:/l/meetup-join/19", "not ms-teams: links"),
        ("meet.example.org/abc-defg-hij", "start it with https://"),
        ("https://", "give the whole address"),
        ("https:meet.example.org", "give the whole address"),
        ("https://meet.example.org/abc defg", "no spaces"),
        ("https://meet.example.org/abc\ndefg", "no spaces"),
        ('https://meet.example.org/"><script>', "cannot have"),
        ("https://meet.example.org/\u202eevil", "cannot have"),
        ("https://meet.example.org/" + "a" * CALL_URL_MAX, f"at most {CALL_URL_MAX} characters"),
    ],
)
def test_a_call_link_that_is_not_a_web_address_is_refused(typed: str, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_call_url(typed)
    assert refused.value.message.startswith("Call link: ")  # names the field
    assert says in refused.value.message


def test_call_links_and_places_as_stored() -> None:
    assert (
        check_call_url("  https://meet.example.org/abc?x=1  ") == "https://meet.example.org/abc?x=1"
    )
    assert check_call_url("HTTP://Meet.Example.org/x") == "HTTP://Meet.Example.org/x"
    assert check_call_url("https://example.org:8443/r/1") == "https://example.org:8443/r/1"
    longest = "https://meet.example.org/" + "a" * (CALL_URL_MAX - 25)
    assert check_call_url(longest) == longest
    assert check_call_url("   ") is None
    assert check_location(" Room 2.14,\n  Library ") == "Room 2.14, Library"
    assert check_location("\n") is None
    assert check_location("x" * LOCATION_MAX) == "x" * LOCATION_MAX
    with pytest.raises(Invalid, match=rf"^Place: at most {LOCATION_MAX} characters \(this one"):
        check_location("x" * (LOCATION_MAX + 1))


# -- who may set it, and what a change does ----------------------------------------------


async def test_the_facilitator_sets_it_and_the_group_hears_once(db) -> None:
    found = await two_groups(db)
    group, fiona = found["group1"], found["Fiona"]
    await db.execute(delete(Job))  # the events were made (the jobs ran) before

    changed = await set_meeting_place(
        db, group_id=group.id, by=fiona, call_url=f" {CALL} ", location="Room 2.14, Library"
    )
    assert changed is True
    assert (group.call_url, group.location) == (CALL, "Room 2.14, Library")
    assert await audit(db, group) == [
        {
            "actor": fiona.id,
            "groups": [group.id],
            "call_url": CALL,
            "location": "Room 2.14, Library",
        }
    ]
    # Mia and Noor, on both channels; not Fiona, who made the change.
    members = [found["Mia"].id, found["Noor"].id]
    assert sorted(await place_messages(db, group)) == sorted(
        (u, c) for u in members for c in ("email", "discord")
    )
    # Every meeting of the group ahead gets its Google Calendar event updated.
    assert await synced(db) == sorted(m.id for m in found["meetings1"])

    # The same again (a double click, a reload): nothing recorded, nobody told.
    again = await set_meeting_place(
        db, group_id=group.id, by=fiona, call_url=CALL, location=" Room 2.14,  Library"
    )
    assert again is False
    assert len(await audit(db, group)) == 1 and len(await place_messages(db, group)) == 4

    # A second change is a second message; clearing both is a change too.
    await set_meeting_place(db, group_id=group.id, by=fiona, call_url=CALL, location="")
    await set_meeting_place(db, group_id=group.id, by=fiona, call_url="", location="")
    assert (group.call_url, group.location) == (None, None)
    assert [(a["call_url"], a["location"]) for a in await audit(db, group)] == [
        (CALL, "Room 2.14, Library"),
        (CALL, None),
        (None, None),
    ]
    assert len(await place_messages(db, group)) == 3 * 4
    # Group 2 heard nothing of it.
    assert found["Pia"].id not in {u for u, _ in await place_messages(db, group)}


async def test_only_the_facilitator_or_an_admin_sets_it(db) -> None:
    found = await two_groups(db)
    group = found["group1"]
    with pytest.raises(Forbidden, match="Only the group's facilitator or an admin"):
        await set_meeting_place(db, group_id=group.id, by=found["Mia"], call_url=CALL, location="")
    with pytest.raises(Forbidden):  # leads group 2, not this one
        await set_meeting_place(db, group_id=group.id, by=found["Otto"], call_url=CALL, location="")
    assert group.call_url is None and await audit(db, group) == []

    admin = await make_user(db, is_admin=True)
    assert await set_meeting_place(db, group_id=group.id, by=admin, call_url=CALL, location="")
    assert await audit(db, group) == [
        {"actor": admin.id, "groups": [group.id], "call_url": CALL, "location": None}
    ]
    # The admin is not in the group: the whole group hears of it, facilitator included.
    assert {u for u, _ in await place_messages(db, group)} == {
        found["Fiona"].id,
        found["Mia"].id,
        found["Noor"].id,
    }


async def test_refusals_report_every_field_and_change_nothing(db) -> None:
    found = await two_groups(db)
    group = found["group1"]
    with pytest.raises(PlaceInvalid) as refused:
        await set_meeting_place(
            db, group_id=group.id, by=found["Fiona"], call_url="ftp://x.org/a", location="x" * 301
        )
    assert set(refused.value.problems) == {"call_url", "location"}
    assert refused.value.status_code == 422
    assert group.call_url is None and await audit(db, group) == []
    assert await place_messages(db, group) == []


# -- the pages ---------------------------------------------------------------------------


async def test_the_form_on_the_group_page(app_client, db) -> None:
    found = await two_groups(db)
    group_id = found["group1"].id
    page = f"/groups/{group_id}"

    sign_in(app_client, found["Mia"])
    assert f'action="{page}/place"' not in (await app_client.get(page)).text  # not for them
    refused = await app_client.post(
        f"{page}/place", data={"call_url": CALL, "location": ""}, headers=ORIGIN
    )
    assert refused.status_code == 403
    assert "Only the group&#39;s facilitator or an admin" in refused.text

    sign_in(app_client, found["Otto"])  # another group's facilitator
    other = await app_client.post(f"{page}/place", data={"call_url": CALL}, headers=ORIGIN)
    assert other.status_code == 403

    sign_in(app_client, found["Fiona"])
    assert f'action="{page}/place"' in (await app_client.get(page)).text
    bad = await app_client.post(
        f"{page}/place",
        data={"call_url": "javascript:alert(1)", "location": "Room 2.14, Library"},
        headers=ORIGIN,
    )
    assert bad.status_code == 422
    text = html.unescape(bad.text)
    assert "Call link: only web addresses starting with https:// or http:// work here" in text
    # What was typed stays in the form, the message beside its field.
    assert 'value="javascript:alert(1)"' in bad.text and 'value="Room 2.14, Library"' in bad.text
    assert 'aria-invalid="true" aria-describedby="call_url-error"' in bad.text
    assert 'href="javascript:' not in bad.text
    group = await db.get(Group, group_id, populate_existing=True)
    assert group is not None and group.call_url is None

    saved = await app_client.post(
        f"{page}/place", data={"call_url": CALL, "location": "Room 2.14, Library"}, headers=ORIGIN
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{page}?place=saved#place"
    same = await app_client.post(
        f"{page}/place", data={"call_url": CALL, "location": "Room 2.14, Library"}, headers=ORIGIN
    )
    assert same.headers["location"] == f"{page}?place=unchanged#place"
    assert "Nothing changed" in (await app_client.get(same.headers["location"])).text

    # Members see it on the group page, the link as a link; the facilitator on the
    # meeting page too.
    link = f'<a href="{html.escape(CALL)}" rel="noopener noreferrer">{html.escape(CALL)}</a>'
    sign_in(app_client, found["Mia"])
    member_view = await app_client.get(page)
    assert link in member_view.text and "Room 2.14, Library" in member_view.text
    sign_in(app_client, found["Fiona"])
    meeting = await app_client.get(f"{page}/meetings/2")
    assert link in meeting.text and "Room 2.14, Library" in meeting.text

    # An admin clears it.
    sign_in(app_client, await make_user(db, is_admin=True))
    cleared = await app_client.post(
        f"{page}/place", data={"call_url": "", "location": ""}, headers=ORIGIN
    )
    assert cleared.status_code == 303
    assert html.escape(CALL) not in (await app_client.get(page)).text
    group = await db.get(Group, group_id, populate_existing=True)
    assert group is not None and (group.call_url, group.location) == (None, None)


# -- calendars ---------------------------------------------------------------------------


def test_ical_place_lines_are_escaped() -> None:
    event = IcsEvent(
        uid="meeting-1@lens.test",
        sequence=0,
        start=utcnow(),
        end=utcnow() + timedelta(hours=1),
        summary="Group 1",
        description="Call link: https://x.org/a?b=1,2;c\r\nWhere: Room 2\\14",
        location="Room 2.14; Library, east\rwing",
        url="https://meet.example.org/a b?x=1,2;y\r\nX-EVIL:1",
    )
    text = render_calendar([event]).replace("\r\n ", "")
    assert "LOCATION:Room 2.14\\; Library\\, east\\nwing\r\n" in text
    assert "DESCRIPTION:Call link: https://x.org/a?b=1\\,2\\;c\\nWhere: Room 2\\\\14\r\n" in text
    # A URI is not TEXT: no backslashes, and nothing that could start a new line.
    assert "URL:https://meet.example.org/a%20b?x=1,2;y%0D%0AX-EVIL:1\r\n" in text
    assert "\r\nX-EVIL" not in text
    assert uri(CALL) == CALL


async def test_the_feed_carries_the_place(app_client, db) -> None:
    found = await two_groups(db)
    group = found["group1"]
    await set_meeting_place(
        db, group_id=group.id, by=found["Fiona"], call_url=CALL, location="Room 2.14, Library"
    )
    sign_in(app_client, found["Mia"])
    made = await app_client.post("/account/calendar", headers=ORIGIN)
    feed = (await app_client.get(feed_path(made.text))).text.replace("\r\n ", "")
    assert feed.count("LOCATION:Room 2.14\\, Library\r\n") == 3
    assert feed.count(f"URL:{CALL}\r\n") == 3
    assert f"\\nCall link: {CALL}\\nWhere: Room 2.14\\, Library\\nYour group's page: " in feed

    # Only a call link: it is the location too (calendar apps make a link of it).
    await set_meeting_place(db, group_id=group.id, by=found["Fiona"], call_url=CALL, location="")
    feed = (await app_client.get(feed_path(made.text))).text.replace("\r\n ", "")
    assert feed.count(f"LOCATION:{CALL}\r\n") == 3


@pytest.fixture
def calendar(monkeypatch) -> FakeCalendar:
    fake = FakeCalendar()
    monkeypatch.setattr(GoogleCalendar, "from_settings", classmethod(lambda cls, settings: fake))
    return fake


async def test_google_calendar_events_follow_the_place(
    db, sessionmaker, make_settings, calendar
) -> None:
    settings = make_settings(FRONTEND_URL=PUBLIC_URL)
    found = await two_groups(db)
    group, meetings = found["group1"], found["meetings1"]
    await run_jobs(db, sessionmaker, settings)
    first = await fresh(db, meetings[0].id)
    assert first.calendar_event_id is not None
    assert calendar.events[first.calendar_event_id].location is None

    await set_meeting_place(
        db, group_id=group.id, by=found["Fiona"], call_url=CALL, location="Room 2.14, Library"
    )
    calls = len(calendar.calls)
    await run_jobs(db, sessionmaker, settings)
    # One update per meeting of the group (not of group 2's).
    assert calendar.calls[calls:] == [("patch", event_id_for("meeting", m.id)) for m in meetings]
    event = calendar.events[first.calendar_event_id]
    assert event.location == "Room 2.14, Library"
    assert event.description.splitlines() == [
        "Weekly meeting 1 of 3.",
        f"Call link: {CALL}",
        "Where: Room 2.14, Library",
        f"Your group's page: {PUBLIC_URL}/groups/{group.id}",
    ]

    await set_meeting_place(db, group_id=group.id, by=found["Fiona"], call_url="", location="")
    calls = len(calendar.calls)
    await run_jobs(db, sessionmaker, settings)
    assert len(calendar.calls) - calls == len(meetings)
    event = calendar.events[first.calendar_event_id]
    assert event.location is None and "Call link" not in event.description


async def test_members_only_see_their_own_group(app_client, db) -> None:
    found = await two_groups(db)
    await set_meeting_place(
        db, group_id=found["group1"].id, by=found["Fiona"], call_url=CALL, location=""
    )
    sign_in(app_client, await db.get(User, found["Pia"].id))
    assert (await app_client.get(f"/groups/{found['group1'].id}")).status_code == 403
    assert html.escape(CALL) not in (await app_client.get(f"/groups/{found['group2'].id}")).text
