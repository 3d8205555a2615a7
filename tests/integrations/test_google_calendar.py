"""The Google Calendar client against the library's own HTTP mock (no network).

`Google` below is googleapiclient's HttpMockSequence, which records every request; a
scripted answer may also be a function of the request, which is how the batch endpoint
answers with the Content-IDs it was sent.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from googleapiclient.http import HttpMockSequence

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.google_calendar import (
    BATCH_LIMIT,
    CalendarEvent,
    GoogleCalendar,
    GoogleCalendarRejected,
    event_id_for,
)
from lens.settings import ConfigError, Settings
from tests.contracts.google_calendar.check import CalendarContract
from tests.contracts.validator import VIOLATIONS, ContractViolation

CONTRACT = CalendarContract.load()

CALENDAR = "meetings@lens.example.org"
EVENTS_URL = (
    f"https://www.googleapis.com/calendar/v3/calendars/{CALENDAR.replace('@', '%40')}/events"
)
BATCH_URL = "https://www.googleapis.com/batch/calendar/v3"
OK = {"status": "200", "content-type": "application/json; charset=UTF-8"}
Answer = tuple[dict[str, str], Any]


class Google(HttpMockSequence):  # type: ignore[misc]
    """HttpMockSequence whose answers may be computed from the request, and which checks
    every request Lens sends and every answer it is fed against Calendar's discovery
    document (tests/contracts/google_calendar/check.py)."""

    def request(
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
    ) -> Any:
        checked = CONTRACT.check_request(uri, method, body, headers)
        if self._iterable and callable(self._iterable[0]):
            respond = self._iterable.pop(0)
            self._iterable.insert(0, respond(uri, method, body, headers))
        response, content = super().request(uri, method, body, headers, **kw)
        CONTRACT.check_response(checked, response.status, response, content)
        return response, content


def error(status: int, message: str, reason: str = "") -> Answer:
    """An error in the shape Calendar documents: {"error": {"errors": [...], ...}}."""
    errors = [{"domain": "global", "reason": reason, "message": message}] if reason else []
    body = {"error": {"errors": errors, "code": status, "message": message}}
    return {"status": str(status), "content-type": "application/json"}, json.dumps(body)


def event_json(event_id: str, **fields: Any) -> Answer:
    return OK, json.dumps(
        {"kind": "calendar#event", "id": event_id, "status": "confirmed", **fields}
    )


def client(*answers: Any, **options: Any) -> tuple[GoogleCalendar, Google]:
    google = Google(list(answers))
    options.setdefault("min_interval", 0)
    options.setdefault("num_retries", 0)
    calendar = GoogleCalendar(
        credentials_file="unused.json", calendar_email=CALENDAR, http=google, **options
    )
    return calendar, google


def sent(google: Google, index: int = -1) -> tuple[str, str, dict[str, list[str]], Any]:
    """(method, path, query, JSON body) of a recorded request."""
    uri, method, body, _headers = google.request_sequence[index]
    parts = urlsplit(uri)
    return (
        method,
        f"{parts.scheme}://{parts.netloc}{parts.path}",
        parse_qs(parts.query),
        json.loads(body) if body else None,
    )


def meeting(**changes: Any) -> CalendarEvent:
    values: dict[str, Any] = {
        "summary": "Lens · Group 3 · week 2",
        "description": "Read module 2 before we meet.",
        # 18:00 in Berlin (summer time) is 16:00 UTC.
        "start": datetime(2025, 6, 3, 18, 0, tzinfo=timezone(timedelta(hours=2))),
        "end": datetime(2025, 6, 3, 19, 0, tzinfo=timezone(timedelta(hours=2))),
        "attendees": ("ada@example.org", "Grace@Example.org", "ada@example.org"),
        "location": "https://discord.com/channels/1/2",
        "event_id": event_id_for("meeting", 42),
    }
    values.update(changes)
    return CalendarEvent(**values)


# -- events ----------------------------------------------------------------------------


async def test_upsert_inserts_the_event_and_invites_everyone() -> None:
    event = meeting()
    calendar, google = client(event_json(event.event_id))

    assert await calendar.upsert_event(event) == event.event_id

    method, url, query, body = sent(google)
    assert (method, url) == ("POST", EVENTS_URL)
    assert query["sendUpdates"] == ["all"]
    assert body == {
        "id": event.event_id,
        "summary": "Lens · Group 3 · week 2",
        "description": "Read module 2 before we meet.",
        "start": {"dateTime": "2025-06-03T16:00:00+00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2025-06-03T17:00:00+00:00", "timeZone": "UTC"},
        "attendees": [{"email": "ada@example.org"}, {"email": "Grace@Example.org"}],
        "guestsCanSeeOtherGuests": False,
        "guestsCanModify": False,
        "guestsCanInviteOthers": False,
        "reminders": {"useDefault": True},
        "location": "https://discord.com/channels/1/2",
    }


async def test_an_event_without_location_sends_none() -> None:
    event = meeting(location=None)
    calendar, google = client(event_json(event.event_id))
    await calendar.upsert_event(event)
    assert "location" not in sent(google)[3]


async def test_upsert_of_an_existing_id_patches_it_instead() -> None:
    event = meeting(summary="Moved to Thursday")
    calendar, google = client(
        error(409, "The requested identifier already exists.", "duplicate"),
        event_json(event.event_id),
    )

    assert await calendar.upsert_event(event) == event.event_id

    assert len(google.request_sequence) == 2
    method, url, query, body = sent(google)
    assert (method, url) == ("PATCH", f"{EVENTS_URL}/{event.event_id}")
    assert query["sendUpdates"] == ["all"]
    assert body["summary"] == "Moved to Thursday"
    assert "id" not in body
    # Google keeps a cancelled event's id; the patch brings such an event back.
    assert body["status"] == "confirmed"


async def test_patch_sends_the_new_time_and_attendees() -> None:
    event = meeting(
        start=datetime(2025, 6, 5, 9, 30, tzinfo=UTC),
        end=datetime(2025, 6, 5, 10, 30, tzinfo=UTC),
        attendees=("ada@example.org", "linus@example.org"),
    )
    calendar, google = client(event_json(event.event_id))

    await calendar.patch_event(event)

    method, url, query, body = sent(google)
    assert (method, url) == ("PATCH", f"{EVENTS_URL}/{event.event_id}")
    assert query["sendUpdates"] == ["all"]
    assert body["start"] == {"dateTime": "2025-06-05T09:30:00+00:00", "timeZone": "UTC"}
    assert body["attendees"] == [{"email": "ada@example.org"}, {"email": "linus@example.org"}]
    assert "status" not in body  # a plain patch never revives a cancelled event


async def test_a_patch_without_location_clears_the_old_one() -> None:
    # A patch keeps what it leaves out: a group's meeting place removed must be sent.
    event = meeting(location=None)
    calendar, google = client(event_json(event.event_id))
    await calendar.patch_event(event)
    assert sent(google)[3]["location"] == ""
    calendar, google = client(event_json(event.event_id))
    await calendar.patch_event(meeting(location="Room 2.14, Library"))
    assert sent(google)[3]["location"] == "Room 2.14, Library"


async def test_cancel_deletes_and_notifies() -> None:
    calendar, google = client(({"status": "204"}, ""))

    await calendar.cancel_event("lens42s0")

    method, url, query, body = sent(google)
    assert (method, url) == ("DELETE", f"{EVENTS_URL}/lens42s0")
    assert query["sendUpdates"] == ["all"]
    assert body is None


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [(410, "Resource has been deleted", "deleted"), (404, "Not Found", "notFound")],
)
async def test_cancelling_an_event_that_is_gone_is_fine(
    status: int, message: str, reason: str
) -> None:
    calendar, google = client(error(status, message, reason))
    await calendar.cancel_event("lens42s0")
    assert len(google.request_sequence) == 1


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        error(429, "Rate Limit Exceeded", "rateLimitExceeded"),
        error(403, "User Rate Limit Exceeded", "userRateLimitExceeded"),
        error(403, "Calendar usage limits exceeded.", "quotaExceeded"),
        error(500, "Backend Error", "backendError"),
        error(503, "The service is currently unavailable."),
    ],
)
async def test_rate_limits_and_server_errors_are_worth_retrying(answer: Answer) -> None:
    calendar, _ = client(answer)
    with pytest.raises(IntegrationUnavailable):
        await calendar.upsert_event(meeting())


async def test_a_bad_request_is_rejected_with_googles_message() -> None:
    calendar, _ = client(error(400, "Invalid attendee email.", "invalid"))
    with pytest.raises(IntegrationRejected, match="Invalid attendee email") as raised:
        await calendar.upsert_event(meeting())
    assert isinstance(raised.value, GoogleCalendarRejected)
    assert (raised.value.status, raised.value.reason) == (400, "invalid")


async def test_forbidden_for_other_reasons_is_rejected() -> None:
    calendar, _ = client(error(403, "Forbidden", "forbidden"))
    with pytest.raises(IntegrationRejected):
        await calendar.cancel_event("lens42s0")


async def test_patching_a_missing_event_is_rejected() -> None:
    calendar, _ = client(error(404, "Not Found", "notFound"))
    with pytest.raises(GoogleCalendarRejected) as raised:
        await calendar.patch_event(meeting())
    assert raised.value.status == 404


@pytest.mark.parametrize("problem", [TimeoutError("timed out"), ConnectionResetError(104, "reset")])
async def test_transport_failures_are_worth_retrying(problem: Exception) -> None:
    def fail(*_: Any) -> Answer:
        raise problem

    calendar, _ = client(fail)
    with pytest.raises(IntegrationUnavailable, match="unreachable"):
        await calendar.cancel_event("lens42s0")


async def test_the_library_retries_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("googleapiclient.http.time.sleep", slept.append)
    event = meeting()
    calendar, google = client(
        error(503, "Backend Error", "backendError"), event_json(event.event_id), num_retries=2
    )

    assert await calendar.upsert_event(event) == event.event_id
    assert len(google.request_sequence) == 2 and len(slept) == 1


async def test_requests_are_paced() -> None:
    event = meeting()
    calendar, google = client(
        event_json(event.event_id), event_json(event.event_id), min_interval=30
    )
    await calendar.patch_event(event)

    # The second request waits out the interval (far longer than this test waits).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(calendar.patch_event(event), timeout=0.05)
    assert len(google.request_sequence) == 1


# -- responses (batch) -----------------------------------------------------------------


def batch_answer(events: dict[str, Answer]) -> Callable[..., Answer]:
    """Answer a Calendar batch request part by part, as Google does: multipart/mixed,
    each part an HTTP response whose Content-ID is `response-` + the request's."""

    def respond(uri: str, method: str, body: str, headers: dict[str, str]) -> Answer:
        assert (method, uri) == ("POST", BATCH_URL)
        message = email.parser.Parser(policy=email.policy.compat32).parsestr(
            f"Content-Type: {headers['content-type']}\r\n\r\n{body}"
        )
        boundary = "batch_lens_test_boundary"
        out = []
        for part in message.get_payload():
            request_line = part.get_payload().split("\n", 1)[0]
            verb, target, _ = request_line.split(" ")
            path, _, query = target.partition("?")
            assert verb == "GET"
            assert path.startswith(f"/calendar/v3/calendars/{CALENDAR.replace('@', '%40')}/events/")
            assert parse_qs(query)["fields"] == ["id,status,attendees(email,responseStatus)"]
            answer_headers, answer_body = events[path.rsplit("/", 1)[1]]
            status = int(answer_headers["status"])
            out.append(
                f"--{boundary}\r\n"
                "Content-Type: application/http\r\n"
                f"Content-ID: <response-{part['Content-ID'][1:-1]}>\r\n\r\n"
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n\r\n"
                f"{answer_body}\r\n"
            )
        content = "".join(out) + f"--{boundary}--\r\n"
        return {"status": "200", "content-type": f"multipart/mixed; boundary={boundary}"}, content

    return respond


async def test_responses_reads_every_attendees_answer_in_one_batch() -> None:
    events = {
        "lensaaaa1": event_json(
            "lensaaaa1",
            attendees=[
                {"email": "Ada@Example.org", "responseStatus": "accepted"},
                {"email": "grace@example.org", "responseStatus": "declined"},
                {"email": "linus@example.org", "responseStatus": "tentative"},
                {"email": "new@example.org"},
            ],
        ),
        "lensaaaa2": event_json(
            "lensaaaa2", attendees=[{"email": "ada@example.org", "responseStatus": "needsAction"}]
        ),
        "lensgone1": error(404, "Not Found", "notFound"),
        "lensgone2": error(410, "Resource has been deleted", "deleted"),
        "lensgone3": event_json("lensgone3", status="cancelled"),
        "lensnone1": event_json("lensnone1"),
    }
    calendar, google = client(batch_answer(events))

    answers = await calendar.responses([*events, "lensaaaa1"])

    assert len(google.request_sequence) == 1
    assert answers == {
        "lensaaaa1": {
            "ada@example.org": "accepted",
            "grace@example.org": "declined",
            "linus@example.org": "tentative",
            "new@example.org": "needsAction",
        },
        "lensaaaa2": {"ada@example.org": "needsAction"},
        "lensnone1": {},
    }


async def test_responses_sends_at_most_fifty_events_per_batch() -> None:
    ids = [event_id_for("meeting", n) for n in range(BATCH_LIMIT + 10)]
    events = {
        event_id: event_json(
            event_id, attendees=[{"email": "a@example.org", "responseStatus": "accepted"}]
        )
        for event_id in ids
    }
    calendar, google = client(batch_answer(events), batch_answer(events))

    answers = await calendar.responses(ids)

    assert set(answers) == set(ids)
    sizes = [body.count("Content-ID:") for _, _, body, _ in google.request_sequence]
    assert sizes == [50, 10]


async def test_responses_of_nothing_sends_nothing() -> None:
    calendar, google = client()
    assert await calendar.responses([]) == {}
    assert google.request_sequence == []


async def test_a_rate_limited_event_in_a_batch_fails_the_whole_read() -> None:
    events = {
        "lensaaaa1": event_json("lensaaaa1", attendees=[]),
        "lensaaaa2": error(403, "Rate Limit Exceeded", "rateLimitExceeded"),
    }
    calendar, _ = client(batch_answer(events))
    # Leaving it out would read as "event deleted"; better to try again later.
    with pytest.raises(IntegrationUnavailable):
        await calendar.responses(list(events))


async def test_a_failed_batch_request_is_worth_retrying() -> None:
    calendar, _ = client(error(503, "Service unavailable"))
    with pytest.raises(IntegrationUnavailable):
        await calendar.responses(["lensaaaa1"])


# -- the fake keeps to the discovery document ------------------------------------------


async def test_the_fake_refuses_answers_google_never_gives() -> None:
    event = meeting()
    invented, _ = client(event_json(event.event_id, duration=60))
    with pytest.raises(ContractViolation, match="'duration' was unexpected"):
        await invented.upsert_event(event)
    deleted_with_body, _ = client(({"status": "200"}, "{}"))
    with pytest.raises(ContractViolation, match="204"):
        await deleted_with_body.cancel_event("lens42s0")
    bad_error, _ = client(({"status": "409", "content-type": "application/json"}, '"dup"'))
    with pytest.raises(ContractViolation, match="'dup' is not of type 'object'"):
        await bad_error.upsert_event(event)
    assert len(VIOLATIONS) == 3
    VIOLATIONS.clear()  # seen: the autouse check need not fail this test


async def test_a_batch_answer_must_answer_every_request() -> None:
    events = {"lensaaaa1": event_json("lensaaaa1", attendees=[])}

    def first_only(uri: str, method: str, body: str, headers: dict[str, str]) -> Answer:
        answer_headers, content = batch_answer(events)(uri, method, body, headers)
        boundary = answer_headers["content-type"].split("boundary=")[1]
        first = content.split(f"--{boundary}\r\n")[1]
        return answer_headers, f"--{boundary}\r\n{first}--{boundary}--\r\n"

    events["lensaaaa2"] = event_json("lensaaaa2", attendees=[])
    calendar, _ = client(first_only)
    with pytest.raises(ContractViolation, match="no part answers"):
        await calendar.responses(list(events))
    VIOLATIONS.clear()


def test_requests_are_checked_against_the_methods_parameters_and_body() -> None:
    url = f"{EVENTS_URL}/lensaaaa1"
    json_body = {"content-type": "application/json"}
    with pytest.raises(ContractViolation, match="sendUpdates"):
        CONTRACT.check_request(f"{url}?sendUpdates=everyone", "PATCH", "{}", json_body)
    with pytest.raises(ContractViolation, match="notifyAttendees"):
        CONTRACT.check_request(f"{url}?notifyAttendees=true", "PATCH", "{}", json_body)
    with pytest.raises(ContractViolation, match="is a required property"):
        CONTRACT.check_request(EVENTS_URL, "POST", json.dumps({"summary": "s"}), json_body)
    with pytest.raises(ContractViolation, match="is not a 'date-time'"):
        CONTRACT.check_request(
            url, "PATCH", json.dumps({"start": {"dateTime": "2025-06-03 16:00"}}), json_body
        )
    assert len(VIOLATIONS) == 4
    VIOLATIONS.clear()


# -- events and ids --------------------------------------------------------------------


def test_event_ids_follow_googles_alphabet_and_are_stable() -> None:
    first = event_id_for("meeting", 42)
    assert first == event_id_for("meeting", 42) != event_id_for("meeting", 43)
    assert set(first) <= set("0123456789abcdefghijklmnopqrstuv") and 5 <= len(first) <= 1024


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"event_id": "Lens-42"}, "base32hex"),
        ({"event_id": "abc"}, "base32hex"),
        ({"start": datetime(2025, 6, 3, 18, 0)}, "timezone-aware"),
        ({"end": datetime(2025, 6, 3, 15, 0, tzinfo=UTC)}, "end after"),
    ],
)
def test_invalid_events_are_refused_before_any_request(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        meeting(**changes)


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"google_calendar_email": CALENDAR},
        {"google_calendar_credentials_file": "/etc/lens/google.json"},
    ],
)
def test_no_client_without_both_settings(values: dict[str, str]) -> None:
    assert GoogleCalendar.from_settings(Settings(_env_file=None, **values)) is None  # type: ignore[call-arg]


def test_a_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        google_calendar_credentials_file=str(tmp_path / "missing.json"),
        google_calendar_email=CALENDAR,
    )
    with pytest.raises(ConfigError, match=r"GOOGLE_CALENDAR_CREDENTIALS_FILE.*missing\.json"):
        GoogleCalendar.from_settings(settings)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"type": "service_account", "client_email": "x@y"}),
        json.dumps(
            {
                "type": "service_account",
                "client_email": "lens@project.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
                "private_key_id": "1",
                "private_key": "not a key",
            }
        ),
    ],
)
def test_an_invalid_key_file_names_the_setting(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(content)
    with pytest.raises(ConfigError, match="GOOGLE_CALENDAR_CREDENTIALS_FILE"):
        GoogleCalendar(credentials_file=str(key_file), calendar_email=CALENDAR)


def test_a_valid_key_acts_as_the_calendar_user(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "lens-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "lens@lens-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        google_calendar_credentials_file=str(key_file),
        google_calendar_email=CALENDAR,
    )

    calendar = GoogleCalendar.from_settings(settings)

    assert calendar is not None
    credentials = calendar._service._http.credentials  # google_auth_httplib2.AuthorizedHttp
    assert credentials.service_account_email == "lens@lens-test.iam.gserviceaccount.com"
    assert credentials._subject == CALENDAR  # domain-wide delegation: act as this user
    assert credentials.scopes == ["https://www.googleapis.com/auth/calendar.events"]
