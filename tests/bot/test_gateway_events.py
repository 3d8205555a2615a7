"""The gateway events the bot handles, as Discord sends them, through discord.py's own
parsing (ConnectionState's parse_* methods and dispatch) into the cogs' listeners.

The payloads are tests/contracts/discord/gateway/*.json (composed from Discord's
documented fields and examples; gateway/SOURCE.md says how). REST calls discord.py makes
in reaction (deleting breakout rooms) go to the fake server, checked against Discord's
description like every other Discord fake.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, patch
from urllib.parse import quote

import discord
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.bot.client import LensBot
from lens.content.parsed import ContentSet
from lens.jobs.models import Job
from lens.settings import Settings
from tests.fixtures.fake_discord import FakeGuild
from tests.fixtures.users import make_user

GATEWAY = Path(__file__).parents[1] / "contracts" / "discord" / "gateway"
TOKEN = "bot-token-for-gateway-tests"


def payload(name: str) -> dict[str, Any]:
    event = json.loads((GATEWAY / f"{name}.json").read_text())
    assert event["op"] == 0 and event["t"] == name.upper()
    return dict(event["d"])


GUILD = payload("guild_create")
SERVER_ID = GUILD["id"]
MAIN, ROOM_1, ROOM_2 = "155101607195836416", "155101607195836417", "155101607195836418"
NELLY = payload("guild_member_add")["user"]["id"]
IN_VOICE = "82198898841029460"


@dataclass
class Gateway:
    """A LensBot with its cogs, fed gateway payloads; discord.py's REST calls go to
    `server`. `failures` holds what a listener raised (discord.py would only log it)."""

    bot: LensBot
    server: FakeGuild
    failures: list[BaseException] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.bot._connection

    async def receive(self, name: str) -> None:
        """Parse one event as the gateway connection does, then let the listeners run."""
        before = asyncio.all_tasks()
        getattr(self.state, f"parse_{name}")(payload(name))
        await self.settle(before)

    async def dispatch(self, event: str) -> None:
        before = asyncio.all_tasks()
        self.bot.dispatch(event)
        await self.settle(before)

    async def settle(self, before: set[asyncio.Task[Any]]) -> None:
        """Wait for the listeners this event started (discord.py runs each as a task)."""
        started = [
            t for t in asyncio.all_tasks() - before if t.get_name().startswith("discord.py: on_")
        ]
        async with asyncio.timeout(10):
            await asyncio.gather(*started)
        assert not self.failures, self.failures


def discord_py_http(bot: LensBot, server: FakeGuild) -> Callable[..., Any]:
    """discord.py's HTTPClient.request, answered by the fake server: the request as
    discord.py builds it (its headers, JSON body and audit log reason), the answer as
    discord.py reads it (JSON, or its HTTPException subclasses)."""

    async def request(route: discord.http.Route, *, files: Any = None, form: Any = None,
                      **kwargs: Any) -> Any:  # fmt: skip
        assert files is None and form is None, "the bot uploads nothing"
        headers = {"User-Agent": bot.http.user_agent, "Authorization": f"Bot {bot.http.token}"}
        reason = kwargs.pop("reason", None)
        if reason:
            headers["X-Audit-Log-Reason"] = quote(reason, safe="/ ")
        sent = httpx.Request(
            route.method,
            route.url,
            params=kwargs.pop("params", None),
            json=kwargs.pop("json", None),
            headers=headers,
        )
        assert not kwargs, kwargs
        answer = server.handle(sent)
        data: Any = answer.json() if answer.content else ""
        if 200 <= answer.status_code < 300:
            return data
        response = SimpleNamespace(status=answer.status_code, reason=answer.reason_phrase)
        error = {403: discord.Forbidden, 404: discord.NotFound}.get(answer.status_code)
        raise (error or discord.HTTPException)(response, data)

    return request


@pytest.fixture
async def gateway(
    make_settings: Callable[..., Settings],
    sessionmaker: async_sessionmaker[AsyncSession],
    example_content: ContentSet,
) -> AsyncIterator[Gateway]:
    settings = make_settings(
        DISCORD_BOT_TOKEN=TOKEN, DISCORD_SERVER_ID=SERVER_ID, FRONTEND_URL="https://lens.test"
    )
    server = FakeGuild(guild_id=SERVER_ID, token=TOKEN)
    for channel in GUILD["channels"]:
        # Discord's channel examples leave out `flags`, which its description requires.
        server.channels[channel["id"]] = {"flags": 0, **channel}
    async with httpx.AsyncClient(transport=server.transport()) as http:
        bot = LensBot(
            settings=settings, sessionmaker=sessionmaker, http=http, content=lambda: example_content
        )
        await bot._async_setup_hook()  # what login() does first: the loop, asyncio objects
        with patch.object(bot.tree, "sync", AsyncMock(return_value=[])):
            await bot.setup_hook()  # the cogs and their listeners
        bot.http.token = TOKEN
        gateway = Gateway(bot, server)

        async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
            gateway.failures.append(sys.exc_info()[1] or RuntimeError(event))

        bot.on_error = on_error  # type: ignore[method-assign]
        state = bot._connection
        state._chunk_guilds = False  # no gateway to ask for member chunks
        state.user = discord.ClientUser(state=state, data=payload("ready")["user"])
        with patch.object(bot.http, "request", discord_py_http(bot, server)):
            await gateway.receive("guild_create")
            yield gateway
        await bot.close()


async def test_guild_create_is_the_server_the_bot_serves(gateway: Gateway) -> None:
    server = gateway.bot.server
    assert server is not None and server.id == int(SERVER_ID)
    assert [c.name for c in server.voice_channels] == [
        "ROCKET CHEESE",
        "breakout-155101607195836416-1",
        "breakout-155101607195836416-2",
    ]
    room = server.get_channel(int(ROOM_1))
    assert isinstance(room, discord.VoiceChannel)
    assert [m.id for m in room.members] == [int(IN_VOICE)]
    me = server.me
    assert me.guild_permissions.create_events and me.guild_permissions.manage_events


async def test_a_member_joining_gets_their_groups_channels_through_a_job(
    gateway: Gateway, db: AsyncSession
) -> None:
    await make_user(db, discord_id=NELLY, nickname="Nelly")

    await gateway.receive("guild_member_add")

    (job,) = await db.scalars(select(Job).where(Job.kind == "discord.grant_access"))
    assert job.payload == {"discord_id": NELLY}
    assert gateway.bot.server is not None
    assert gateway.bot.server.get_member(int(NELLY)) is not None


async def test_a_nickname_changed_on_the_server_reaches_lens(
    gateway: Gateway, db: AsyncSession
) -> None:
    nelly = await make_user(db, discord_id=NELLY, nickname="NOT API SUPPORT")
    await gateway.receive("guild_member_add")

    await gateway.receive("guild_member_update")

    await db.refresh(nelly)
    assert nelly.nickname == "Nelly the Tester"


async def test_the_last_person_leaving_the_call_closes_the_breakout_rooms(
    gateway: Gateway,
) -> None:
    mark = gateway.server.mark()

    await gateway.receive("voice_state_update")

    assert gateway.server.changes_since(mark) == ["DELETE /channels/{id}", "DELETE /channels/{id}"]
    assert sorted(gateway.server.channels) == sorted(
        c["id"] for c in GUILD["channels"] if c["id"] not in (ROOM_1, ROOM_2)
    )
    assert gateway.server.reasons[-2:] == ["Breakout rooms left empty"] * 2
    # discord.py sends the User-Agent Discord documents ("DiscordBot ($url, $versionNumber)").
    assert all(
        r.headers["User-Agent"].startswith("DiscordBot (https://github.com/lens-academy/lens, ")
        for r in gateway.server.requests
    )


async def test_on_ready_deletes_only_the_empty_leftover_rooms(gateway: Gateway) -> None:
    mark = gateway.server.mark()

    await gateway.dispatch("ready")

    assert [r.url.path for r in gateway.server.requests[mark:]] == [f"/api/v10/channels/{ROOM_2}"]
    assert ROOM_1 in gateway.server.channels and MAIN in gateway.server.channels
    # A reconnect before Discord's CHANNEL_DELETE arrived: the room is asked for again,
    # Discord answers 404 (Unknown Channel), and the bot takes that as done.
    await gateway.dispatch("ready")
    assert gateway.server.answers[-1] == 404
    assert [r.url.path for r in gateway.server.requests[mark:]] == [
        f"/api/v10/channels/{ROOM_2}"
    ] * 2
