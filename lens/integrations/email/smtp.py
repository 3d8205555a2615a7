"""E-mail through any SMTP server (a relay, Postmark, SES, a local Mailpit)."""

from __future__ import annotations

import email.message
import email.utils
from datetime import UTC, datetime
from email.headerregistry import Address
from typing import Literal, get_args

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.client import Attachment, EmailMessage
from lens.logging import get_logger

log = get_logger("lens.email")

Security = Literal["starttls", "tls", "none"]


class SmtpSender:
    """Sends one message per connection: Lens sends few e-mails, and a fresh connection
    never fails on a socket the server closed while idle."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        security: str,
        from_email: str,
        from_name: str = "Lens",
        timeout: float = 20,
    ) -> None:
        if security not in get_args(Security):
            raise ValueError(f"SMTP security must be starttls, tls or none, not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("SMTP needs both a username and a password, or neither")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.security = security
        # Address() refuses a malformed from_email here, at start-up, not at the first send.
        self.sender = Address(display_name=from_name, addr_spec=from_email)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpSender(host={self.host!r}, port={self.port}, security={self.security!r})"

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        mime = self.build(message)
        try:
            await aiosmtplib.send(
                mime,
                sender=self.sender.addr_spec,
                recipients=[message.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                use_tls=self.security == "tls",
                # False, not None: None would upgrade opportunistically, and "none" is
                # for servers whose certificate we cannot check (a local Mailpit).
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise IntegrationUnavailable(
                f"SMTP login failed: check SMTP_USERNAME/SMTP_PASSWORD ({exc.code} {exc.message})"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            raise _by_code(refusal.code, f"refused the recipient: {refusal.message}") from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            # 552 at MAIL FROM answers the SIZE we announced: this message is too big.
            # Any other refusal of our own address is the operator's to fix, then retry.
            if exc.code == 552:
                raise _by_code(exc.code, f"refused the message size: {exc.message}") from exc
            raise IntegrationUnavailable(
                f"SMTP server refused the sender {self.sender.addr_spec} "
                f"({exc.code} {exc.message}): check FROM_EMAIL"
            ) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise _by_code(exc.code, f"refused the message: {exc.message}") from exc
        except aiosmtplib.SMTPNotSupported as exc:
            # Only raised for an address that needs SMTPUTF8 on a server without it.
            raise IntegrationRejected(f"SMTP server cannot deliver to {message.to}: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Greeting, EHLO or STARTTLS refused: the server, not this message.
            raise IntegrationUnavailable(f"SMTP server answered {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Refused connections, timeouts, disconnects, TLS failures.
            raise IntegrationUnavailable(
                f"SMTP server {self.host}:{self.port} unreachable: {type(exc).__name__}"
            ) from exc
        except ValueError as exc:
            # aiosmtplib refuses addresses that cannot go on an SMTP command line.
            raise IntegrationRejected(f"not a deliverable address: {message.to!r}") from exc
        log.info("email.sent", provider="smtp", subject=message.subject)

    def build(self, message: EmailMessage) -> email.message.EmailMessage:
        """The MIME message as it goes over the wire (public for previews and tests)."""
        mime = email.message.EmailMessage()
        mime["From"] = self.sender
        try:
            mime["To"] = message.to
        except ValueError as exc:  # a line break in the address: header injection
            raise IntegrationRejected(f"not a deliverable address: {message.to!r}") from exc
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.format_datetime(datetime.now(UTC))
        # Without a domain make_msgid asks the resolver for our own name.
        mime["Message-ID"] = email.utils.make_msgid(domain=self.sender.domain)
        mime.set_content(message.text)
        if message.html:
            mime.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            _attach(mime, attachment)
        for name, value in message.headers.items():
            del mime[name]
            mime[name] = value
        return mime


def _attach(mime: email.message.EmailMessage, attachment: Attachment) -> None:
    # Let the header parser split "text/calendar; method=REQUEST; charset=UTF-8" so that
    # every parameter survives: calendar clients show Accept/Decline only when
    # method=REQUEST is on the part.
    parsed = email.message.EmailMessage()
    parsed["Content-Type"] = attachment.content_type
    mime.add_attachment(
        attachment.content,
        maintype=parsed.get_content_maintype(),
        subtype=parsed.get_content_subtype(),
        filename=attachment.filename,
        params=dict(parsed["Content-Type"].params),
    )


def _by_code(code: int, what: str) -> Exception:
    text = f"SMTP server {what} ({code})"
    # 5xx is the server's final answer for this message; 4xx asks us to come back later.
    if 500 <= code < 600:
        return IntegrationRejected(text)
    return IntegrationUnavailable(text)
