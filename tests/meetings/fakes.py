"""A recording Google Calendar, at the `Calendar` interface the meeting jobs use."""

from __future__ import annotations

from dataclasses import dataclass, field

from lens.integrations.google_calendar import CalendarEvent, GoogleCalendarRejected


@dataclass
class FakeCalendar:
    """Holds events by id like Google does (a cancelled id stays known), records every
    call, answers `responses` from `answers` (leaving out cancelled events, as the real
    client does), and raises `fail_with` when it is set."""

    events: dict[str, CalendarEvent] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, event id)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)
    fail_with: Exception | None = None

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def upsert_event(self, event: CalendarEvent) -> str:
        self._check()
        self.calls.append(("upsert", event.event_id))
        self.events[event.event_id] = event
        self.cancelled.discard(event.event_id)
        return event.event_id

    async def patch_event(self, event: CalendarEvent) -> None:
        self._check()
        self.calls.append(("patch", event.event_id))
        if event.event_id not in self.events:
            raise GoogleCalendarRejected("Not Found", status=404, reason="notFound")
        self.events[event.event_id] = event

    async def cancel_event(self, event_id: str) -> None:
        self._check()
        self.calls.append(("cancel", event_id))
        self.cancelled.add(event_id)

    async def responses(self, event_ids: list[str]) -> dict[str, dict[str, str]]:
        self._check()
        self.asked.append(list(event_ids))
        # Like GoogleCalendar.responses: a cancelled event is left out, answers or not.
        return {
            i: self.answers[i] for i in event_ids if i in self.answers and i not in self.cancelled
        }
