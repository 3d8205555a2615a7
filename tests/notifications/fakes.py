"""Recording fakes for the two channels, at the interface the sender uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.email.client import EmailMessage


@dataclass
class RecordingEmail:
    sent: list[EmailMessage] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send(self, session: AsyncSession, message: EmailMessage) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if m.to == address]


@dataclass
class RecordingDiscord:
    sent: list[tuple[str, str, str | None]] = field(default_factory=list)
    closed_dms: set[str] = field(default_factory=set)
    down: bool = False

    async def send_dm(self, discord_user_id: str, content: str, *, nonce: str | None = None) -> str:
        if self.down:
            raise IntegrationUnavailable("Discord answered HTTP 502")
        if discord_user_id in self.closed_dms:
            raise IntegrationRejected("has direct messages from server members turned off")
        self.sent.append((discord_user_id, content, nonce))
        return str(len(self.sent))
