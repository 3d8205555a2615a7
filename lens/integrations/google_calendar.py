"""Google Calendar: one event per group meeting, the group's members as attendees.

Speaks Calendar API v3 through google-api-python-client as a Workspace user
(GOOGLE_CALENDAR_EMAIL) via a service account with domain-wide delegation
(GOOGLE_CALENDAR_CREDENTIALS_FILE). The library is synchronous and its httplib2
connection is not thread-safe, so every call runs in a worker thread, one at a time per
client, at most one request per `min_interval` seconds. Tests pass the library's own
`HttpMockSequence` as `http`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import google.auth.exceptions
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.logging import get_logger
from lens.settings import ConfigError, Settings

log = get_logger("lens.integrations.google_calendar")

T = TypeVar("T")

SCOPES = ["https://www.googleapis.com/auth/calendar.events"]
# Calendar accepts up to 50 requests in one batch (the library would allow 1000).
BATCH_LIMIT = 50
# Google's rule for client-chosen event ids: base32hex characters, 5 to 1024 of them.
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
# Only what responses() reads, so a batch of 50 events stays small.
_RESPONSE_FIELDS = "id,status,attendees(email,responseStatus)"
# 403s that mean "slow down" or "quota spent for now", not "forbidden".
_RATE_LIMIT_REASONS = {
    "rateLimitExceeded",
    "userRateLimitExceeded",
    # "Calendar usage limits exceeded": too many invitations for now; it replenishes.
    "quotaExceeded",
    "dailyLimitExceeded",
}
_TEMPORARY_STATUSES = {429, 500, 502, 503, 504}


class GoogleCalendarRejected(IntegrationRejected):
    """Google refused a request; `status` and `reason` say how (409, "duplicate")."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CalendarEvent:
    summary: str
    description: str
    start: datetime  # aware; sent as UTC
    end: datetime
    attendees: tuple[str, ...]  # e-mail addresses
    # Ours, not Google's: inserting the same id twice answers 409, so a retried insert
    # cannot create a second event. Build it with `event_id_for`.
    event_id: str
    location: str | None = None  # e.g. the Discord voice channel link

    def __post_init__(self) -> None:
        if not _EVENT_ID.fullmatch(self.event_id):
            raise ValueError(
                f"event id {self.event_id!r} is not 5-1024 base32hex characters (a-v, 0-9)"
            )
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("calendar event times must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("a calendar event must end after it starts")


def event_id_for(*parts: int | str) -> str:
    """A stable, valid Google event id for our own key: `event_id_for("meeting", 12)`."""
    key = "/".join(str(part) for part in parts)
    # base32hex is exactly Google's alphabet; different keys give different ids.
    return "lens" + base64.b32hexencode(key.encode()).decode().rstrip("=").lower()


class Calendar(Protocol):
    async def upsert_event(self, event: CalendarEvent) -> str: ...

    async def patch_event(self, event: CalendarEvent) -> None: ...

    async def cancel_event(self, event_id: str) -> None: ...

    async def responses(self, event_ids: list[str]) -> dict[str, dict[str, str]]: ...


class GoogleCalendar:
    def __init__(
        self,
        *,
        credentials_file: str,
        calendar_email: str,
        http: Any = None,
        min_interval: float = 0.1,
        num_retries: int = 2,
    ) -> None:
        """`http` (an httplib2.Http look-alike) replaces the credentials, for tests."""
        self.calendar_email = calendar_email
        self._min_interval = min_interval
        # The library's own retry (5xx, 429, rate-limit 403s, dropped connections) with
        # randomised exponential back-off; safe for inserts because the id is ours.
        self._num_retries = num_retries
        if http is None:
            credentials = _load_credentials(credentials_file, calendar_email)
            self._service: Any = build(
                "calendar",
                "v3",
                credentials=credentials,
                static_discovery=True,
                cache_discovery=False,
            )
        else:
            self._service = build(
                "calendar", "v3", http=http, static_discovery=True, cache_discovery=False
            )
        self._lock = asyncio.Lock()
        # The worker thread keeps running if its awaiting task is cancelled; this keeps
        # the next call off the same httplib2 connection until it is done.
        self._thread_lock = threading.Lock()
        self._next_call_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleCalendar | None:
        """The client, or None when either Google Calendar setting is missing."""
        credentials_file = settings.google_calendar_credentials_file
        calendar_email = settings.google_calendar_email
        if not credentials_file or not calendar_email:
            return None
        return cls(credentials_file=credentials_file, calendar_email=calendar_email)

    async def upsert_event(self, event: CalendarEvent) -> str:
        """Create the event and invite its attendees; if it exists already, update it."""
        body = {"id": event.event_id, **_event_body(event)}
        try:
            created = await self._execute(
                self._service.events().insert(
                    calendarId=self.calendar_email, body=body, sendUpdates="all"
                )
            )
        except GoogleCalendarRejected as exc:
            if exc.status != 409:
                raise
            # An earlier attempt got through (or the event was cancelled: Google keeps
            # deleted ids). Patching with status "confirmed" brings a cancelled one back.
            log.info("calendar.event.exists", event_id=event.event_id)
            await self._patch(event, {**_event_body(event, patch=True), "status": "confirmed"})
            return event.event_id
        log.info("calendar.event.created", event_id=event.event_id)
        return str(created.get("id", event.event_id))

    async def patch_event(self, event: CalendarEvent) -> None:
        """Change time, attendees, title, text or location of an event and notify the
        attendees."""
        await self._patch(event, _event_body(event, patch=True))
        log.info("calendar.event.patched", event_id=event.event_id)

    async def cancel_event(self, event_id: str) -> None:
        """Delete the event and send cancellations; an event already gone is fine."""
        try:
            await self._execute(
                self._service.events().delete(
                    calendarId=self.calendar_email, eventId=event_id, sendUpdates="all"
                )
            )
        except GoogleCalendarRejected as exc:
            if exc.status not in (404, 410):  # 410: deleted before
                raise
            log.info("calendar.event.already_gone", event_id=event_id, status=exc.status)
            return
        log.info("calendar.event.cancelled", event_id=event_id)

    async def responses(self, event_ids: list[str]) -> dict[str, dict[str, str]]:
        """Event id -> {attendee e-mail (lower case): needsAction/accepted/declined/tentative}.

        Events that no longer exist (or were cancelled) are left out. A temporary failure
        of any event raises IntegrationUnavailable, so a caller never mistakes "could not
        read" for "gone".
        """
        result: dict[str, dict[str, str]] = {}
        unique = list(dict.fromkeys(event_ids))
        for chunk in _chunks(unique, BATCH_LIMIT):
            answers = await self._call(partial(self._get_batch, chunk), cost=len(chunk))
            for event_id, event, error in answers:
                if error is not None:
                    problem = _translate(error)
                    if isinstance(problem, IntegrationUnavailable):
                        raise problem from error
                    if problem.status not in (404, 410):
                        log.warning(
                            "calendar.responses.rejected",
                            event_id=event_id,
                            status=problem.status,
                            error=str(problem),
                        )
                    continue
                if event is None or event.get("status") == "cancelled":
                    continue
                result[event_id] = {
                    attendee["email"].lower(): attendee.get("responseStatus", "needsAction")
                    for attendee in event.get("attendees", [])
                    if attendee.get("email")
                }
        return result

    # -- plumbing ------------------------------------------------------------------

    async def _patch(self, event: CalendarEvent, body: dict[str, Any]) -> None:
        await self._execute(
            self._service.events().patch(
                calendarId=self.calendar_email,
                eventId=event.event_id,
                body=body,
                sendUpdates="all",
            )
        )

    async def _execute(self, request: Any) -> Any:
        """Send one googleapiclient HttpRequest (building it does no I/O)."""
        return await self._call(partial(request.execute, num_retries=self._num_retries))

    def _get_batch(self, event_ids: list[str]) -> list[tuple[str, Any, HttpError | None]]:
        answers: list[tuple[str, Any, HttpError | None]] = []

        def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
            answers.append((request_id, response, exception))

        batch = self._service.new_batch_http_request(callback=collect)
        events = self._service.events()
        for event_id in event_ids:
            request = events.get(
                calendarId=self.calendar_email, eventId=event_id, fields=_RESPONSE_FIELDS
            )
            batch.add(request, request_id=event_id)
        batch.execute()
        return answers

    async def _call(self, work: Callable[[], T], *, cost: int = 1) -> T:
        """Run one (batched) request in a thread, paced and with our own errors.

        `cost` is the number of requests it carries: Google counts each request inside a
        batch against the quota.
        """
        async with self._lock:
            wait = self._next_call_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await asyncio.to_thread(self._run, work)
            except HttpError as exc:
                raise _translate(exc) from exc
            except google.auth.exceptions.RefreshError as exc:
                # Usually domain-wide delegation not granted for this client and scope.
                if exc.retryable:
                    raise IntegrationUnavailable(f"Google sign-in failed: {exc}") from exc
                raise IntegrationRejected(
                    f"Google refused the service account for {self.calendar_email} "
                    f"(check domain-wide delegation for {SCOPES[0]}): {exc}"
                ) from exc
            except (
                google.auth.exceptions.TransportError,
                httplib2.HttpLib2Error,
                OSError,  # includes TimeoutError, socket.timeout, ConnectionError
            ) as exc:
                raise IntegrationUnavailable(
                    f"Google Calendar unreachable: {type(exc).__name__}"
                ) from exc
            finally:
                self._next_call_at = time.monotonic() + self._min_interval * cost

    def _run(self, work: Callable[[], T]) -> T:
        with self._thread_lock:
            return work()


def _load_credentials(path: str, calendar_email: str) -> service_account.Credentials:
    try:
        credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            path, scopes=SCOPES
        )
    except OSError as exc:
        raise ConfigError(
            f"GOOGLE_CALENDAR_CREDENTIALS_FILE: cannot read {path!r} "
            f"({exc.strerror or type(exc).__name__})"
        ) from exc
    except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        raise ConfigError(
            f"GOOGLE_CALENDAR_CREDENTIALS_FILE: {path!r} is not a service account JSON key ({exc})"
        ) from exc
    delegated: service_account.Credentials = credentials.with_subject(calendar_email)
    return delegated


def _event_body(event: CalendarEvent, *, patch: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": event.summary,
        "description": event.description,
        "start": {"dateTime": _utc(event.start), "timeZone": "UTC"},
        "end": {"dateTime": _utc(event.end), "timeZone": "UTC"},
        "attendees": [{"email": email} for email in _unique_emails(event.attendees)],
        # Members of a group should not see each other's addresses or change the event.
        "guestsCanSeeOtherGuests": False,
        "guestsCanModify": False,
        "guestsCanInviteOthers": False,
        "reminders": {"useDefault": True},
    }
    if event.location:
        body["location"] = event.location
    elif patch:
        # A patch keeps whatever it does not name: an empty one clears a former location
        # (a group's meeting place removed).
        body["location"] = ""
    return body


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _unique_emails(emails: tuple[str, ...]) -> list[str]:
    seen: dict[str, str] = {}
    for email in emails:
        seen.setdefault(email.strip().lower(), email.strip())
    return list(seen.values())


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _translate(exc: HttpError) -> IntegrationUnavailable | GoogleCalendarRejected:
    if isinstance(exc, BatchError) or getattr(exc.resp, "status", None) is None:
        # The batch answer itself could not be read.
        return IntegrationUnavailable(f"Google Calendar sent an unreadable answer: {exc.reason}")
    status = int(exc.resp.status)
    reason = _error_reason(exc.content)
    message = exc.reason or str(getattr(exc.resp, "reason", "")) or "no message"
    code = f"{status} {reason}" if reason else str(status)
    if status in _TEMPORARY_STATUSES or (status == 403 and reason in _RATE_LIMIT_REASONS):
        return IntegrationUnavailable(f"Google Calendar busy ({code}): {message}")
    return GoogleCalendarRejected(
        f"Google Calendar refused the request ({code}): {message}", status=status, reason=reason
    )


def _error_reason(content: bytes | None) -> str:
    # {"error": {"errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded"}], ...}}
    try:
        data = json.loads(content or b"")
        errors = data["error"].get("errors") or []
        return str(errors[0].get("reason", "")) if errors else ""
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return ""
