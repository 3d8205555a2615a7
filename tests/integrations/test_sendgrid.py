"""SendGrid's v3 mail/send request shape, as documented, over a mock transport that holds
requests and answers to SendGrid's description (tests/integrations/fake_sendgrid.py)."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.client import Attachment, EmailMessage, SendGridSender
from tests.contracts.validator import VIOLATIONS, ContractViolation
from tests.integrations.fake_sendgrid import TOO_MANY_REQUESTS, FakeSendGrid, error

INVITE = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


async def test_a_notification_with_an_invitation_and_unsubscribe_headers() -> None:
    fake = FakeSendGrid(api_key="SG.key")

    async with httpx.AsyncClient(transport=fake.transport()) as http:
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
    (request,) = fake.requests
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
    assert fake.accepted == [body]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, error("Does not contain a valid address.", "personalizations.0.to.0.email"),
         IntegrationRejected),
        (403, error("The from address does not match a verified Sender Identity.", "from"),
         IntegrationUnavailable),
        (413, error("The request body is too large."), IntegrationRejected),
        (429, TOO_MANY_REQUESTS, IntegrationUnavailable),
        (500, error("internal server error"), IntegrationUnavailable),
    ],
)  # fmt: skip
async def test_refusals_are_permanent_and_overload_or_a_bad_key_temporary(
    status, body, error
) -> None:
    fake = FakeSendGrid(api_key="k", answers=[(status, body)])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        sender = SendGridSender(http, api_key="k", from_email="a@b.c", base_url="https://sg.test")
        with pytest.raises(error):
            await sender.send(None, EmailMessage(to="x@y.z", subject="s", text="t"))  # type: ignore[arg-type]


async def test_sendgrids_error_messages_are_kept_and_logged(caplog) -> None:
    fake = FakeSendGrid(
        answers=[
            (
                400,
                {
                    "errors": [
                        {
                            "message": "Does not contain a valid address.",
                            "field": "personalizations.0.to.0.email",
                        },
                        {"message": "The subject is required.", "field": "subject"},
                    ]
                },
            ),
            (500, error("internal server error")),
        ]
    )
    caplog.set_level(logging.WARNING, logger="lens.email")
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        sender = SendGridSender(http, api_key="SG.test-key", from_email="a@b.c")
        message = EmailMessage(to="x@y.z", subject="s", text="t")
        with pytest.raises(IntegrationRejected) as refused:
            await sender.send(None, message)  # type: ignore[arg-type]
        with pytest.raises(IntegrationUnavailable) as down:
            await sender.send(None, message)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "SendGrid refused the message (HTTP 400): personalizations.0.to.0.email: Does not "
        "contain a valid address.; subject: The subject is required."
    )
    assert str(down.value) == "SendGrid answered HTTP 500: internal server error"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "email.refused" in logged and "Does not contain a valid address." in logged


async def test_a_wrong_key_is_refused_like_sendgrid_does() -> None:
    fake = FakeSendGrid(api_key="SG.right")
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        sender = SendGridSender(http, api_key="SG.wrong", from_email="a@b.c")
        with pytest.raises(IntegrationUnavailable, match="authorization grant is invalid"):
            await sender.send(None, EmailMessage(to="x@y.z", subject="s", text="t"))  # type: ignore[arg-type]
    assert fake.accepted == []


async def test_the_fake_refuses_what_sendgrid_would() -> None:
    """The fake holds Lens's request to SendGrid's description: an empty subject is
    refused (`subject` has minLength 1), and so is an answer SendGrid never gives."""
    fake = FakeSendGrid()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        sender = SendGridSender(http, api_key="SG.test-key", from_email="a@b.c")
        with pytest.raises(ContractViolation, match="subject"):
            await sender.send(None, EmailMessage(to="x@y.z", subject="", text="t"))  # type: ignore[arg-type]
        fake.answers.append((503, error("unavailable")))
        with pytest.raises(ContractViolation, match="503 is not documented"):
            await sender.send(None, EmailMessage(to="x@y.z", subject="s", text="t"))  # type: ignore[arg-type]
    assert len(VIOLATIONS) == 2
    VIOLATIONS.clear()  # seen: the autouse check need not fail this test
