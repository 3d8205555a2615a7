"""SendGrid's v3 mail/send request shape, as documented, over a mock transport."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.client import Attachment, EmailMessage, SendGridSender

INVITE = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


async def test_a_notification_with_an_invitation_and_unsubscribe_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        sender = SendGridSender(http, api_key="SG.key", from_email="team@lens.example")
        await sender.send(
            None,  # type: ignore[arg-type]
            EmailMessage(
                to="ada@example.org",
                subject="Your group",
                text="Hello",
                html="<p>Hello</p>",
                attachments=(Attachment("invite.ics", INVITE, "text/calendar; method=REQUEST"),),
                headers={"List-Unsubscribe": "<https://x/u>", "X-Lens-Delivery": "abc"},
            ),
        )
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.sendgrid.com/v3/mail/send"
    assert request.headers["Authorization"] == "Bearer SG.key"
    body = json.loads(request.content)
    assert body["personalizations"] == [{"to": [{"email": "ada@example.org"}]}]
    assert body["from"] == {"email": "team@lens.example", "name": "Lens"}
    assert body["subject"] == "Your group"
    # text/plain first, then text/html: SendGrid refuses another order.
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    (attachment,) = body["attachments"]
    assert base64.b64decode(attachment["content"]) == INVITE
    assert attachment["type"] == "text/calendar; method=REQUEST"
    assert attachment["filename"] == "invite.ics"
    assert attachment["disposition"] == "attachment"
    assert body["headers"] == {"List-Unsubscribe": "<https://x/u>", "X-Lens-Delivery": "abc"}


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, IntegrationRejected), (403, IntegrationUnavailable), (429, IntegrationUnavailable),
     (503, IntegrationUnavailable)],
)  # fmt: skip
async def test_refusals_are_permanent_and_overload_or_a_bad_key_temporary(status, error) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(status, json={"errors": []}))
    async with httpx.AsyncClient(transport=transport) as http:
        sender = SendGridSender(http, api_key="k", from_email="a@b.c", base_url="https://sg.test")
        with pytest.raises(error):
            await sender.send(None, EmailMessage(to="x@y.z", subject="s", text="t"))  # type: ignore[arg-type]
