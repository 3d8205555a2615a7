"""Which e-mail sender the settings ask for: SendGrid, else SMTP, else the outbox."""

from __future__ import annotations

import httpx

from lens.integrations.email.client import DevOutboxSender, EmailSender, SendGridSender
from lens.integrations.email.smtp import SmtpSender
from lens.settings import Settings


def email_sender_from_settings(settings: Settings, http: httpx.AsyncClient) -> EmailSender:
    if settings.sendgrid_api_key:
        return SendGridSender(
            http,
            api_key=settings.sendgrid_api_key,
            from_email=settings.from_email,
            base_url=settings.sendgrid_api_base,
        )
    if settings.smtp_host:
        return SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            security=settings.smtp_security,
            from_email=settings.from_email,
        )
    return DevOutboxSender()
