"""iCalendar (RFC 5545) text for feeds and invitations, written by hand: a handful of
properties, CRLF line ends, text escaping (URIs are not TEXT: encoded instead), and
lines folded at 75 octets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

PRODID = "-//Lens//Cohort meetings//EN"


@dataclass(frozen=True)
class IcsEvent:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    summary: str
    description: str = ""
    location: str | None = None  # a place, or a call link
    url: str | None = None  # the call link, or the group's page
    cancelled: bool = False
    organizer: str | None = None  # e-mail address
    attendees: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (name, e-mail)


def escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\n")
        .replace("\r", "\n")  # a lone CR would end the content line
        .replace("\n", "\\n")
    )


def uri(value: str) -> str:
    """A URI property value: not TEXT-escaped (a backslash would break the link), with
    anything that could end or split the line percent-encoded. Links are checked when
    they are set (lens/meetings/place.py); this keeps the calendar well-formed anyway."""
    return quote(value, safe="/:?#[]@!$&'()*+,;=%~")


def fold(line: str) -> str:
    """Split a content line into 75-octet pieces, never inside a UTF-8 character."""
    data = line.encode()
    if len(data) <= 75:
        return line
    pieces, start, limit = [], 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1  # do not cut a multi-byte character
        pieces.append(data[start:end].decode())
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(pieces)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_calendar(
    events: Sequence[IcsEvent], *, method: str = "PUBLISH", name: str | None = None
) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines.append(f"METHOD:{method}")
    if name:
        lines.append(f"X-WR-CALNAME:{escape(name)}")
    stamp = _when(datetime.now(UTC))
    for event in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event.uid}",
            f"SEQUENCE:{event.sequence}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_when(event.start)}",
            f"DTEND:{_when(event.end)}",
            f"SUMMARY:{escape(event.summary)}",
            f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}",
        ]
        if event.description:
            lines.append(f"DESCRIPTION:{escape(event.description)}")
        if event.location:
            lines.append(f"LOCATION:{escape(event.location)}")
        if event.url:
            lines.append(f"URL:{uri(event.url)}")
        if event.organizer:
            lines.append(f"ORGANIZER:mailto:{event.organizer}")
        for attendee_name, email in event.attendees:
            lines.append(
                f'ATTENDEE;CN="{attendee_name.replace(chr(34), "")}";ROLE=REQ-PARTICIPANT;'
                f"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{email}"
            )
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
