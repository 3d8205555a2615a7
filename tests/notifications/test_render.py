"""Every kind, rendered from a fixed context, against its golden files.

To accept a deliberate change: LENS_UPDATE_GOLDEN=1 pytest tests/notifications, then
read the diff of tests/notifications/golden before committing it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lens.notifications.kinds import KINDS
from lens.notifications.render import render_discord, render_email
from lens.web.messages import local_time

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LENS_UPDATE_GOLDEN") == "1"
SITE = "https://lens.example.org"
MEETING = datetime(2027, 3, 30, 16, 0, tzinfo=UTC)  # 18:00 in Berlin (summer time)

BASE: dict[str, Any] = {
    "name": "Ada <Lovelace>",  # escaped in HTML, as typed in text
    "site_url": SITE,
    "preferences_url": f"{SITE}/account/notifications",
    "unsubscribe_url": f"{SITE}/notifications/unsubscribe?u=7&k=KIND&c=email&t=abc",
    "course_title": "Introduction to AI Safety",
    "cohort_name": "Spring 2027",
}
MEETING_FIELDS: dict[str, Any] = {
    "group_name": "Group 3",
    "meeting_number": 2,
    "meetings": 8,
    "when": local_time(MEETING, "Europe/Berlin"),
    "group_url": f"{SITE}/groups/3",
    "rsvp_url": f"{SITE}/groups/3#meeting-2",
    "channel_url": "https://discord.com/channels/1/2",
    # As typed: a link with a query (escaped in HTML, as is in text and Discord) and a
    # place with characters Discord would read as markdown.
    "call_url": "https://meet.example.org/abc-defg-hij?pwd=x1&lang=en",
    "location": "Room 2.14 (east wing), Library",
}
MODULES = [
    {"title": "Goals and means", "url": f"{SITE}/course/ai/goals", "minutes": 25},
    {"title": "Specification gaming", "url": f"{SITE}/course/ai/spec", "minutes": None},
]

CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {
        "role": "participant",
        "start_date": "Monday 1 March 2027",
        "meetings": 8,
        "meeting_minutes": 90,
        "course_url": f"{SITE}/course/ai",
        "enrollment_url": f"{SITE}/enroll/1",
    },
    "group_assigned": {
        "group_name": "Group 3",
        "weekly_time": "Tuesdays at 18:00 (Europe/Berlin)",
        "first_meeting": local_time(datetime(2027, 3, 2, 17, 0, tzinfo=UTC), "Europe/Berlin"),
        "meetings": 8,
        "facilitator": "Grace",
        "members": ["Ada <Lovelace>", "Alan", "Katherine"],
        "group_url": f"{SITE}/groups/3",
        "channel_url": None,
        "calendar_url": f"{SITE}/account/calendar",
        "call_url": MEETING_FIELDS["call_url"],
        "location": None,
    },
    "meeting_reminder_24h": {**MEETING_FIELDS, "modules": MODULES},
    "meeting_reminder_1h": {**MEETING_FIELDS, "modules": [], "location": None},
    "meeting_changed": {
        **MEETING_FIELDS,
        "old_when": local_time(datetime(2027, 3, 29, 16, 0, tzinfo=UTC), "Europe/Berlin"),
        "later_moved": True,
    },
    "meeting_cancelled": MEETING_FIELDS,
    "module_nudge_3d": {**MEETING_FIELDS, "modules": MODULES},
    "module_nudge_1d": {**MEETING_FIELDS, "modules": MODULES[1:]},
    "meeting_place_changed": {
        "group_name": "Group 3",
        "call_url": MEETING_FIELDS["call_url"],
        "location": MEETING_FIELDS["location"],
        "next_meeting": local_time(MEETING, "Europe/Berlin"),
        "group_url": f"{SITE}/groups/3",
        "channel_url": "https://discord.com/channels/1/2",
    },
    "membership_changed": {
        "left_group": "Group 2",
        "by_themselves": False,
        "withdrew": False,
        "options_url": f"{SITE}/cohorts/1",
        "group_name": "Group 3",
        "weekly_time": "Tuesdays at 18:00 (Europe/Berlin)",
        "first_meeting": local_time(MEETING, "Europe/Berlin"),
        "group_url": f"{SITE}/groups/3",
        "channel_url": "https://discord.com/channels/1/2",
        "call_url": "https://meet.example.org/abc?x=1&y=2",
        "location": None,
    },
    "roster_changed": {
        "group_name": "Group 3",
        "member": "Alan <T>",
        "joined": True,
        "participants": 5,
        "group_url": f"{SITE}/groups/3",
    },
    "switch_requested": {
        "group_name": "Group 3",
        "member": "Alan <T>",
        "from_group": "Group 2",
        "group_url": f"{SITE}/groups/3#switch-requests",
    },
    "cohort_finished": {
        "attended": 3,
        "meetings_needed": 4,
        "complete": False,
        "missing": ["1 more meeting", "module: Goals and means"],
        "my_course_url": f"{SITE}/my-course",
    },
    "certificate_issued": {
        "facilitation": False,
        "certificate_url": f"{SITE}/certificates/AbC123",
    },
    "missed_meetings": {
        "group_name": "Group 3",
        "next_meeting": "Tuesday 9 March 2027, 18:00 (Europe/Berlin)",
        "group_url": f"{SITE}/groups/3",
        "options_url": f"{SITE}/cohorts/1",
    },
    "switch_refused": {
        "group_name": "Group 3",
        "own_group": "Group 2",
        "options_url": f"{SITE}/cohorts/1",
    },
    "guest_visit": {**MEETING_FIELDS, "guest": "Alan <T>", "cancelled": False},
    "unplaced_options": {
        "offers": [
            {"group": "Group 3", "local": "Tuesday 18:00", "participants": 4},
            {"group": "Group 5", "local": "Thursday 19:30", "participants": 1},
        ],
        "later": ["Autumn 2027 (from Monday 6 September 2027)"],
        "options_url": f"{SITE}/cohorts/1",
        "availability_url": f"{SITE}/enroll/1/availability",
    },
    "facilitator_changed": {
        **MEETING_FIELDS,
        "new": "Grace",
        "old": "Edsger",
        "you_new": False,
        "you_old": False,
        "you_dropped": False,
    },
}


def context(kind: str) -> dict[str, Any]:
    merged = {**BASE, **CONTEXTS[kind]}
    if merged["unsubscribe_url"]:
        merged["unsubscribe_url"] = merged["unsubscribe_url"].replace("KIND", kind)
    return merged


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual)
        return
    assert path.exists(), f"no golden file {name}; run with LENS_UPDATE_GOLDEN=1"
    assert actual == path.read_text(), f"{name} differs from its golden file"


def test_every_kind_has_a_context_here() -> None:
    assert sorted(CONTEXTS) == sorted(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_email_matches_golden(kind: str) -> None:
    rendered = render_email(kind, context(kind))
    check(f"{kind}.subject", rendered.subject + "\n")
    check(f"{kind}.txt", rendered.text)
    check(f"{kind}.html", rendered.html)
    # Escaped where it is HTML, as typed where it is text.
    if "Ada" in rendered.html:
        assert "Ada &lt;Lovelace&gt;" in rendered.html and "<Lovelace>" not in rendered.html
        assert "Ada <Lovelace>" in rendered.text


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_discord_matches_golden(kind: str) -> None:
    message = render_discord(kind, context(kind))
    assert len(message) <= 2000
    check(f"{kind}.discord", message + "\n")


def test_times_are_shown_in_the_readers_zone() -> None:
    assert local_time(MEETING, "Europe/Berlin") == "Tuesday 30 March 2027, 18:00 (Europe/Berlin)"
    assert (
        local_time(MEETING, "America/New_York") == "Tuesday 30 March 2027, 12:00 (America/New_York)"
    )
    assert local_time(MEETING, "Asia/Kolkata") == "Tuesday 30 March 2027, 21:30 (Asia/Kolkata)"


def test_each_change_reads_right_for_its_reader() -> None:
    """The variants the golden files do not hold: taken out, left by oneself, a stand-in
    as the group and as the stand-in see it, a facilitator replaced."""
    removed = {**context("membership_changed"), "group_name": None}
    email = render_email("membership_changed", removed)
    assert email.subject == "You are no longer in Group 2 (Spring 2027)"
    assert "the course team took you out of Group 2" in email.text
    assert "You are still enrolled" in email.text and f"{SITE}/cohorts/1" in email.text
    left = render_email("membership_changed", {**removed, "by_themselves": True, "withdrew": True})
    assert left.subject == "You left Spring 2027" and "you left the cohort" in left.text
    moved = render_email("membership_changed", context("membership_changed"))
    assert '<a href="https://meet.example.org/abc?x=1&amp;y=2">' in moved.html
    assert "Call link: https://meet.example.org/abc?x=1&y=2" in moved.text

    stand_in = context("facilitator_changed")
    group_sees = render_email("facilitator_changed", stand_in)
    assert group_sees.subject == "Group 3, meeting 2: Grace stands in"
    assert "Grace stands in as facilitator of Group 3" in group_sees.text
    assert ", for Edsger." in group_sees.text
    assert render_email("facilitator_changed", {**stand_in, "you_new": True}).subject == (
        "Group 3, meeting 2: you stand in"
    )
    dropped = render_email("facilitator_changed", {**stand_in, "you_dropped": True})
    assert dropped.subject == "Group 3, meeting 2: you no longer stand in"
    assert "you no longer stand in at meeting 2 of Group 3" in dropped.text
    assert "Grace stands in instead. Thank you!" in dropped.text
    back = render_email("facilitator_changed", {**stand_in, "new": None, "you_old": True})
    assert "you no longer stand in at meeting 2" in back.text
    for_good = {**stand_in, "meeting_number": None}
    assert render_email("facilitator_changed", for_good).subject == (
        "Group 3 has a new facilitator"
    )
    replaced = render_email("facilitator_changed", {**for_good, "you_old": True})
    assert replaced.subject == "You no longer lead Group 3"
    assert "Grace takes over. Thank you!" in replaced.text
    left_group = render_email("roster_changed", {**context("roster_changed"), "joined": False})
    assert left_group.subject == "Group 3: Alan <T> left"
    assert "now has 5 participants" in left_group.text


def test_unplaced_without_offers_are_told_to_add_times() -> None:
    bare = {**context("unplaced_options"), "offers": [], "later": []}
    email = render_email("unplaced_options", bare)
    assert "No group has room at a time you gave" in email.text
    assert f"{SITE}/enroll/1/availability" in email.text and "later cohort" not in email.text
    gone = render_email("guest_visit", {**context("guest_visit"), "cancelled": True})
    assert gone.subject == "Group 3, meeting 2: Alan <T> no longer visits"
