"""The SMTP sender against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage as MimeMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.client import Attachment, EmailMessage
from lens.integrations.email.smtp import SmtpSender

ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Lens//EN\r\nMETHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\nUID:meeting-7@lens\r\nSUMMARY:Week 3 \xe2\x80\x93 Alignment\r\n"
    b"DTSTART:20250310T170000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
INVITE = EmailMessage(
    to="ada@example.org",
    subject="Your group meets on Monday",
    text="Hi Ada,\n\nYour group meets on Monday at 17:00 UTC.\n",
    html="<p>Hi Ada,</p><p>Your group meets on <b>Monday</b> at 17:00 UTC.</p>",
    attachments=(Attachment("invite.ics", ICS, "text/calendar; method=REQUEST; charset=UTF-8"),),
    headers={
        "List-Unsubscribe": "<https://lens.test/unsubscribe/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)
USERNAME, PASSWORD = "lens", "correct horse battery staple"
# SMTP has no use for the database session the EmailSender protocol passes.
NO_SESSION = cast(AsyncSession, None)


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 OK"


class RefuseRecipient(Recorder):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return self.reply


class RefuseData(Recorder):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "554 5.7.1 Message rejected as spam"


def check_password(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers 535 itself.
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(handler: Any, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    # server_hostname: otherwise aiosmtpd asks the resolver for this machine's name.
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="mx.lens.test", **kwargs
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def sender(port: int, **kwargs: Any) -> SmtpSender:
    kwargs.setdefault("username", None)
    kwargs.setdefault("password", None)
    kwargs.setdefault("timeout", 5)
    return SmtpSender(
        host="127.0.0.1", port=port, security="none", from_email="team@lens.test", **kwargs
    )


def parse(envelope: Any) -> MimeMessage:
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, MimeMessage)
    return message


def text_of(part: MimeMessage) -> str:
    # Text goes over the wire with CRLF line ends, as RFC 5322 requires.
    return str(part.get_content()).replace("\r\n", "\n")


async def test_sends_text_html_invitation_and_headers() -> None:
    recorder = Recorder()
    with smtp_server(recorder) as port, capture_logs() as logs:
        await sender(port).send(NO_SESSION, INVITE)

    [envelope] = recorder.envelopes
    assert envelope.mail_from == "team@lens.test"
    assert envelope.rcpt_tos == ["ada@example.org"]
    received = parse(envelope)
    assert received["From"] == "Lens <team@lens.test>"
    assert received["To"] == "ada@example.org"
    assert received["Subject"] == "Your group meets on Monday"
    assert received["Message-ID"].endswith("@lens.test>")
    assert received["Date"].datetime.tzinfo is not None
    assert received["List-Unsubscribe"] == "<https://lens.test/unsubscribe/abc>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    assert received.get_content_type() == "multipart/mixed"
    body = received.get_body(preferencelist=("plain",))
    assert body is not None and text_of(body) == INVITE.text
    html = received.get_body(preferencelist=("html",))
    assert html is not None and text_of(html).strip() == INVITE.html
    [invite] = received.iter_attachments()
    assert isinstance(invite, MimeMessage)
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_param("method") == "REQUEST"
    assert invite.get_content_charset() == "utf-8"
    assert invite.get_filename() == "invite.ics"
    assert invite.get_payload(decode=True) == ICS

    assert [e for e in logs if e["event"] == "email.sent"] == [
        {"event": "email.sent", "provider": "smtp", "subject": INVITE.subject, "log_level": "info"}
    ]


async def test_text_only_message_is_a_single_part() -> None:
    recorder = Recorder()
    plain = EmailMessage(to="ada@example.org", subject="Sign in", text="Your link: x\n")
    with smtp_server(recorder) as port:
        await sender(port).send(NO_SESSION, plain)
        await sender(port).send(NO_SESSION, plain)

    first, second = (parse(e) for e in recorder.envelopes)
    assert first.get_content_type() == "text/plain"
    assert text_of(first) == "Your link: x\n"
    assert first["Message-ID"] != second["Message-ID"]


async def test_unknown_recipient_is_rejected() -> None:
    with (
        smtp_server(RefuseRecipient("550 5.1.1 No such user")) as port,
        pytest.raises(IntegrationRejected, match="550") as caught,
    ):
        await sender(port).send(NO_SESSION, INVITE)
    assert "No such user" in str(caught.value)


async def test_greylisted_recipient_is_retried_later() -> None:
    with (
        smtp_server(RefuseRecipient("451 4.3.0 try later")) as port,
        pytest.raises(IntegrationUnavailable, match="451"),
    ):
        await sender(port).send(NO_SESSION, INVITE)


async def test_message_refused_after_data_is_rejected() -> None:
    with smtp_server(RefuseData()) as port, pytest.raises(IntegrationRejected, match="554"):
        await sender(port).send(NO_SESSION, INVITE)


async def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(IntegrationUnavailable, match="unreachable"):
        await sender(free_port()).send(NO_SESSION, INVITE)


async def test_silent_server_times_out_as_unavailable() -> None:
    # Listening but never accepting: the TCP connection opens, the greeting never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(IntegrationUnavailable, match="unreachable"):
            await sender(port, timeout=0.3).send(NO_SESSION, INVITE)


async def test_login_with_the_right_password() -> None:
    recorder = Recorder()
    with smtp_server(recorder, authenticator=check_password, auth_require_tls=False) as port:
        smtp = sender(port, username=USERNAME, password=PASSWORD)
        await smtp.send(NO_SESSION, INVITE)
    assert len(recorder.envelopes) == 1
    assert PASSWORD not in repr(smtp)


async def test_wrong_password_is_an_operator_problem() -> None:
    recorder = Recorder()
    with smtp_server(recorder, authenticator=check_password, auth_require_tls=False) as port:
        smtp = sender(port, username=USERNAME, password="wrong password")
        with (
            capture_logs() as logs,
            pytest.raises(
                IntegrationUnavailable, match="SMTP login failed: check SMTP_USERNAME/SMTP_PASSWORD"
            ) as caught,
        ):
            await smtp.send(NO_SESSION, INVITE)
    assert "535" in str(caught.value)
    assert "wrong password" not in str(caught.value) and "wrong password" not in str(logs)
    assert recorder.envelopes == []


def test_configuration_is_checked_up_front() -> None:
    with pytest.raises(ValueError, match="starttls, tls or none"):
        SmtpSender(
            host="h", port=25, username=None, password=None, security="ssl", from_email="a@b.c"
        )
    with pytest.raises(ValueError, match="username and a password"):
        SmtpSender(
            host="h", port=25, username="u", password=None, security="tls", from_email="a@b.c"
        )


async def test_address_with_a_line_break_is_rejected() -> None:
    recorder = Recorder()
    evil = EmailMessage(to="ada@example.org\r\nBcc: all@example.org", subject="x", text="x")
    with (
        smtp_server(recorder) as port,
        pytest.raises(IntegrationRejected, match="not a deliverable address"),
    ):
        await sender(port).send(NO_SESSION, evil)
    assert recorder.envelopes == []
