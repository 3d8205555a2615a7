"""Recording fakes for the two channels, at the interface the sender uses.

Discord's goes through the real client (DiscordRest) to a fake Discord API whose requests
and answers are checked against Discord's description (tests/contracts/discord/checks.py).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from lens.integrations.discord.ratelimit import RateLimits
from lens.integrations.discord.rest import DiscordRest
from lens.integrations.email.client import EmailMessage, SendGridSender
from tests.contracts.discord.checks import checked
from tests.fixtures.fake_discord import (
    FakeClock,
    dm_channel_object,
    error,
    message_object,
    user_object,
)
from tests.integrations.fake_sendgrid import check_send

# Only builds request bodies; never sends.
SENDGRID = SendGridSender(None, api_key="SG.test-key", from_email="team@lens.example.org")  # type: ignore[arg-type]


@dataclass
class RecordingEmail:
    """Records what the sender hands to e-mail. Each message must also be one SendGrid
    would take: the request SendGridSender makes of it is checked against SendGrid's
    description (an empty subject or body, say, SendGrid refuses)."""

    sent: list[EmailMessage] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        check_send(SENDGRID.payload(message))
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if m.to == address]


DISCORD_TOKEN = "notifications-bot-token"
DISCORD_BOT_USER = user_object("1300000000000000001", "Lens", bot=True)


@dataclass
class RecordingDiscord:
    """Discord's DMs as the sender sees them: `send_dm` is DiscordRest's, against a fake
    Discord that checks the bot token, answers with snowflake ids and Discord's shapes,
    refuses people in `closed_dms` (403, code 50007), answers 502 while `down`, and keeps
    one message per nonce (`enforce_nonce`). `sent` records (user id, content, nonce)."""

    sent: list[tuple[str, str, str | None]] = field(default_factory=list)
    closed_dms: set[str] = field(default_factory=set)
    down: bool = False
    requests: list[httpx.Request] = field(default_factory=list)
    _recipients: dict[str, str] = field(default_factory=dict)  # DM channel id -> user id
    _nonces: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1300000000000000100))
    _rest: DiscordRest = field(init=False)

    def __post_init__(self) -> None:
        clock = FakeClock()
        http = httpx.AsyncClient(transport=httpx.MockTransport(checked(self.handle)))
        self._rest = DiscordRest(
            http, token=DISCORD_TOKEN, limits=RateLimits(clock=clock, sleep=clock.sleep)
        )

    async def send_dm(self, discord_user_id: str, content: str, *, nonce: str | None = None) -> str:
        return await self._rest.send_dm(discord_user_id, content, nonce=nonce)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bot {DISCORD_TOKEN}":
            return error(401, 0, "401: Unauthorized")
        if self.down:
            return httpx.Response(502, text="502 Bad Gateway")
        body = json.loads(request.content)
        path = request.url.path.removeprefix("/api/v10")
        if request.method == "POST" and path == "/users/@me/channels":
            user_id = body["recipient_id"]
            channel_id = str(next(self._ids))
            self._recipients[channel_id] = user_id
            return httpx.Response(
                200, json=dm_channel_object(channel_id, user_object(user_id, "x"))
            )
        channel_id = path.split("/")[2]
        user_id = self._recipients.get(channel_id)
        if user_id is None:
            return error(404, 10003, "Unknown Channel")
        if user_id in self.closed_dms:
            return error(403, 50007, "Cannot send messages to this user")
        nonce = body.get("nonce")
        if body.get("enforce_nonce") and nonce in self._nonces:
            return httpx.Response(200, json=self._nonces[nonce])
        self.sent.append((user_id, body["content"], nonce))
        message = message_object(
            str(next(self._ids)), channel_id, body["content"], DISCORD_BOT_USER
        )
        if nonce is not None:
            message["nonce"] = nonce
            self._nonces[nonce] = message
        return httpx.Response(200, json=message)
