"""Where a group meets: a call link (http or https only) and/or a place ("Room 2.14,
Library"), set by its facilitator or an admin, and how calendars show them.

A change is recorded in the cohort's audit trail, re-syncs the group's Google Calendar
events (their location and description) and is published as `MeetingPlaceChanged`, so
the members are told. Saving what is already set changes nothing and tells no one.
How calendars show the place is in service.py (`event_location`, `describe_meeting`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.audit import record
from lens.cohorts.groups import get_group
from lens.errors import Forbidden, Invalid
from lens.events import publish
from lens.meetings.events import MeetingPlaceChanged
from lens.meetings.service import check_group_open, request_group_calendar_sync
from lens.users.models import User

# The columns' sizes (Group.call_url, Group.location).
CALL_URL_MAX = 500
LOCATION_MAX = 300
# Characters a web address never holds unencoded (RFC 3986). Refusing them also keeps
# the link from closing an <...> in a Discord message or a quote in a calendar line.
_NOT_IN_URLS = set('<>"\\^`{|}')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986


class PlaceInvalid(Invalid):
    """What is wrong with each field, by field name (call_url, location), so a form can
    show each message beside its field."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class Place:
    call_url: str | None
    location: str | None


def _controls(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


def check_call_url(text: str) -> str | None:
    """The call link as stored (None: no link), or Invalid saying which rule it breaks."""
    url = text.strip()
    if not url:
        return None
    if len(url) > CALL_URL_MAX:
        raise Invalid(f"Call link: at most {CALL_URL_MAX} characters (this one has {len(url)}).")
    if any(char.isspace() for char in url):
        raise Invalid("Call link: a web address has no spaces or line breaks; give the link alone.")
    if _controls(url) or _NOT_IN_URLS & set(url):
        raise Invalid(
            'Call link: it holds characters a web address cannot have (such as < > " { });'
            " paste the link as your call app gives it."
        )
    scheme, _, rest = url.partition(":")
    if not rest or not _SCHEME.fullmatch(scheme):
        raise Invalid("Call link: start it with https:// (or http://), as your call app gives it.")
    if scheme.lower() not in ("http", "https"):
        raise Invalid(
            f"Call link: only web addresses starting with https:// or http:// work here, "
            f"not {scheme.lower()}: links."
        )
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed port or IPv6 address
        host = None
    if not rest.startswith("//") or not host:
        raise Invalid("Call link: give the whole address, e.g. https://meet.example.org/abc-defg.")
    return url


def check_location(text: str) -> str | None:
    """The place as stored, on one line (None: no place), or Invalid."""
    location = " ".join(text.split())  # line breaks and runs of spaces become one space
    if not location:
        return None
    if len(location) > LOCATION_MAX:
        raise Invalid(
            f"Place: at most {LOCATION_MAX} characters (this one has {len(location)});"
            " give the room and building, and put directions on the group's channel."
        )
    if _controls(location):
        raise Invalid("Place: it holds invisible control characters; type it again.")
    return location


def check_place(*, call_url: str, location: str) -> Place:
    """Both fields checked, every problem reported at once (PlaceInvalid)."""
    problems: dict[str, str] = {}
    checked: dict[str, str | None] = {}
    for field, check, value in (
        ("call_url", check_call_url, call_url),
        ("location", check_location, location),
    ):
        try:
            checked[field] = check(value)
        except Invalid as exc:
            problems[field] = exc.message
    if problems:
        raise PlaceInvalid(problems)
    return Place(checked["call_url"], checked["location"])


async def set_meeting_place(
    session: AsyncSession, *, group_id: int, by: User, call_url: str, location: str
) -> bool:
    """Set (or, with both empty, clear) where the group meets. Its facilitator or an
    admin only. Returns whether anything changed: the same values again are no change,
    so a repeated request records, syncs and tells nothing."""
    access = await get_group(session, group_id=group_id, viewer=by)
    if not access.viewer_leads:
        raise Forbidden("Only the group's facilitator or an admin can change where it meets.")
    place = check_place(call_url=call_url, location=location)
    group = access.group
    await check_group_open(session, cohort_id=group.cohort_id)
    # Locked (PostgreSQL) and read again: of two identical requests at once, the second
    # waits, then sees the first's values and changes nothing.
    await session.refresh(group, with_for_update=True)
    if (group.call_url, group.location) == (place.call_url, place.location):
        return False
    group.call_url, group.location = place.call_url, place.location
    await session.flush()
    entry = await record(
        session,
        cohort_id=group.cohort_id,
        actor=by,
        action="group.place",
        group_ids=[group.id],
        details={"call_url": place.call_url, "location": place.location},
    )
    await publish(
        session,
        MeetingPlaceChanged(
            cohort_id=group.cohort_id,
            group_id=group.id,
            change_id=entry.id,
            call_url=place.call_url,
            location=place.location,
            by_user_id=by.id,
        ),
    )
    await request_group_calendar_sync(session, group_id=group.id)
    return True
