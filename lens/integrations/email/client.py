"""E-mail: the interface, the SendGrid client, and the development outbox."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.models import OutboxEmail
from lens.logging import get_logger

log = get_logger("lens.email")

SENDGRID_API = "https://api.sendgrid.com"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    # e.g. "text/calendar; method=REQUEST; charset=UTF-8" for a calendar invitation
    content_type: str


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # Extra headers, e.g. List-Unsubscribe for notifications.
    headers: dict[str, str] = field(default_factory=dict)


class EmailSender(Protocol):
    async def send(self, session: AsyncSession, message: EmailMessage) -> None: ...


class SendGridSender:
    """SendGrid's v3 mail/send API (202 Accepted on success)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        from_email: str,
        base_url: str = SENDGRID_API,
    ) -> None:
        self.http = http
        self.api_key = api_key
        self.from_email = from_email
        self.url = base_url.rstrip("/") + "/v3/mail/send"

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": {"email": self.from_email, "name": "Lens"},
            "subject": message.subject,
            "content": content,
            # Sign-in links must not be rewritten by click tracking.
            "tracking_settings": {"click_tracking": {"enable": False, "enable_text": False}},
        }
        if message.attachments:
            body["attachments"] = [
                {
                    "content": base64.b64encode(a.content).decode("ascii"),
                    "type": a.content_type,
                    "filename": a.filename,
                    "disposition": "attachment",
                }
                for a in message.attachments
            ]
        if message.headers:
            body["headers"] = dict(message.headers)
        try:
            response = await self.http.post(
                self.url, json=body, headers={"Authorization": f"Bearer {self.api_key}"}
            )
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"SendGrid unreachable: {type(exc).__name__}") from exc
        if response.status_code in (200, 202):
            log.info("email.sent", provider="sendgrid", subject=message.subject)
            return
        if response.status_code == 429 or response.status_code >= 500:
            raise IntegrationUnavailable(f"SendGrid answered HTTP {response.status_code}")
        if response.status_code in (401, 403):
            # The key or the sender, not this message: keep it for when that is fixed.
            raise IntegrationUnavailable(
                f"SendGrid refused the key or sender (HTTP {response.status_code}): check "
                "SENDGRID_API_KEY and that FROM_EMAIL is a verified sender"
            )
        raise IntegrationRejected(f"SendGrid refused the message (HTTP {response.status_code})")


class DevOutboxSender:
    """Development: print the message and keep it for the /dev/outbox page."""

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        session.add(
            OutboxEmail(
                to=message.to, subject=message.subject, text=message.text, html=message.html
            )
        )
        await session.flush()
        # Shown in full on purpose: in development this is how you read your e-mail.
        print(f"\n--- e-mail to {message.to}: {message.subject}\n{message.text}\n---\n", flush=True)
