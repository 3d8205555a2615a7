"""E-mail: the interface, the SendGrid client, and the development outbox."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Protocol

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

    def payload(self, message: EmailMessage) -> dict[str, Any]:
        """The JSON body of the mail/send request for `message`."""
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body: dict[str, Any] = {
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
        return body

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        try:
            response = await self.http.post(
                self.url,
                json=self.payload(message),
                headers={"Authorization": f"Bearer {self.api_key}"},
            )
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"SendGrid unreachable: {type(exc).__name__}") from exc
        if response.status_code in (200, 202):
            log.info("email.sent", provider="sendgrid", subject=message.subject)
            return
        status = response.status_code
        # SendGrid says what it refused in `errors[].message`; without it an operator
        # sees only a status. It goes in the exception too, which the notification
        # sender keeps as the delivery's last error (the admin's deliveries page).
        errors = _sendgrid_errors(response)
        log.warning("email.refused", provider="sendgrid", status=status, errors=errors)
        said = f": {'; '.join(errors)}" if errors else ""
        if status == 429 or status >= 500:
            raise IntegrationUnavailable(f"SendGrid answered HTTP {status}{said}")
        if status in (401, 403):
            # The key or the sender, not this message: keep it for when that is fixed.
            raise IntegrationUnavailable(
                f"SendGrid refused the key or sender (HTTP {status}{said}): check "
                "SENDGRID_API_KEY and that FROM_EMAIL is a verified sender"
            )
        raise IntegrationRejected(f"SendGrid refused the message (HTTP {status}){said}")


def _sendgrid_errors(response: httpx.Response) -> list[str]:
    """`errors[].message` of a SendGrid error answer, each with its `field` when it names
    one, e.g. "personalizations.0.to.0.email: Does not contain a valid address."."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return []
    found: list[str] = []
    for error in errors[:5] if isinstance(errors, list) else []:
        if not isinstance(error, dict) or not error.get("message"):
            continue
        message = str(error["message"])[:300]
        field = error.get("field")
        # The description's own examples write a missing field as the string "null".
        if isinstance(field, str) and field and field != "null":
            message = f"{field}: {message}"
        found.append(message)
    return found


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
