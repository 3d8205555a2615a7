"""What the cogs get from the bot process: settings, the database, HTTP, course content.

`LensBot` (client.py) builds one `BotServices` and hands it to each cog with the bot
itself, so the cogs never import client.py (which imports them: that would be a cycle).
Cogs reach discord.py's side (`.user`, `.latency`, `.get_guild`) through the
`commands.Bot` they are given, and everything of Lens's through this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.engine import unit_of_work
from lens.settings import Settings

if TYPE_CHECKING:
    from lens.content.parsed import ContentSet


@dataclass(frozen=True, slots=True)
class BotServices:
    """The parts of the app the bot's commands and listeners need."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    http_client: httpx.AsyncClient  # not `http`: on the bot that is discord.py's own client
    get_content: Callable[[], ContentSet | None]
    server_id: int  # DISCORD_SERVER_ID: the one server the bot serves

    @property
    def content(self) -> ContentSet | None:
        """The parsed course content this process serves (None before the first load)."""
        return self.get_content()

    def unit_of_work(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """One transaction per command: committed when the command ends normally."""
        return unit_of_work(self.sessionmaker)
