"""Specced mocks of discord.py objects: interactions, members, a server with voice channels.

Every mock is built with `spec=` the real class, so using an attribute discord.py does
not have fails the test instead of passing silently.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
from discord import app_commands

SERVER_ID = 4242
_ids = itertools.count(900_000_000_000_000_001)


def snowflake() -> int:
    return next(_ids)


def make_member(
    user_id: int | None = None,
    *,
    name: str = "ada",
    bot: bool = False,
    guild: Any = None,
    nick: str | None = None,
) -> MagicMock:
    member = MagicMock(spec=discord.Member)
    member.id = user_id if user_id is not None else snowflake()
    member.name = name
    member.display_name = nick or name
    member.nick = nick
    member.bot = bot
    member.mention = f"<@{member.id}>"
    member.voice = None
    if guild is not None:
        member.guild = guild
    else:
        member.guild = MagicMock(spec=discord.Guild)
        member.guild.id = SERVER_ID
    member.move_to = AsyncMock()
    return member


def make_interaction(user: Any = None, *, user_id: int | None = None) -> MagicMock:
    """A slash command interaction whose replies are recorded (see `replies`)."""
    interaction = MagicMock(spec=discord.Interaction)
    interaction.user = user if user is not None else make_member(user_id)
    interaction.guild_id = SERVER_ID
    interaction.command = None
    state = {"done": False}

    def answered(*args: Any, **kwargs: Any) -> None:
        if state["done"]:
            raise discord.InteractionResponded(interaction)
        state["done"] = True

    response = MagicMock(spec=discord.InteractionResponse)
    response.is_done = MagicMock(side_effect=lambda: state["done"])
    response.send_message = AsyncMock(side_effect=answered)
    response.defer = AsyncMock(side_effect=answered)
    interaction.response = response
    interaction.followup = MagicMock(spec=discord.Webhook)
    interaction.followup.send = AsyncMock()
    return interaction


@dataclass
class Reply:
    text: str
    ephemeral: bool


def replies(interaction: MagicMock) -> list[Reply]:
    """What the person saw: the direct answer and any follow-ups, in order."""
    out = []
    for call in (
        interaction.response.send_message.await_args_list
        + interaction.followup.send.await_args_list
    ):
        out.append(Reply(call.args[0], bool(call.kwargs.get("ephemeral", False))))
    return out


def only_reply(interaction: MagicMock) -> Reply:
    seen = replies(interaction)
    assert len(seen) == 1, seen
    return seen[0]


async def invoke(command: Any, cog: Any, interaction: MagicMock, **arguments: Any) -> None:
    """Run a slash command as the command tree does: the callback, and on an exception the
    tree's error handler with discord.py's CommandInvokeError around it."""
    try:
        await command.callback(cog, interaction, **arguments)
    except app_commands.AppCommandError as exc:
        await cog.bot.tree.on_error(interaction, exc)
    except Exception as exc:
        await cog.bot.tree.on_error(interaction, app_commands.CommandInvokeError(command, exc))


# -- a server with voice channels ------------------------------------------------------


@dataclass
class FakeServer:
    """A guild whose voice channels and members' voice states stay consistent."""

    guild: MagicMock = field(default_factory=lambda: MagicMock(spec=discord.Guild))
    channels: list[MagicMock] = field(default_factory=list)
    category: MagicMock = field(default_factory=lambda: MagicMock(spec=discord.CategoryChannel))

    def __post_init__(self) -> None:
        self.guild.id = SERVER_ID
        type(self.guild).voice_channels = property(lambda _: list(self.channels))
        self.guild.get_channel = MagicMock(side_effect=self.find)
        self.guild.create_voice_channel = AsyncMock(side_effect=self._create)

    def find(self, channel_id: int) -> MagicMock | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def voice_channel(self, name: str, *, overwrites: Any = None) -> MagicMock:
        channel = MagicMock(spec=discord.VoiceChannel)
        channel.id = snowflake()
        channel.name = name
        channel.guild = self.guild
        channel.category = self.category
        channel.overwrites = overwrites if overwrites is not None else {"group role": "can see"}
        channel.members = []
        channel.mention = f"<#{channel.id}>"

        async def delete(*, reason: str | None = None) -> None:
            if channel not in self.channels:
                raise discord.NotFound(MagicMock(status=404), "Unknown Channel")
            self.channels.remove(channel)

        channel.delete = AsyncMock(side_effect=delete)
        self.channels.append(channel)
        return channel

    async def _create(self, name: str, **options: Any) -> MagicMock:
        channel = self.voice_channel(name, overwrites=options.get("overwrites"))
        channel.category = options.get("category")
        return channel

    def member(self, name: str, *, bot: bool = False, user_id: int | None = None) -> MagicMock:
        member = make_member(user_id, name=name, bot=bot, guild=self.guild)

        async def move_to(channel: Any, *, reason: str | None = None) -> None:
            self.place(member, channel)

        member.move_to = AsyncMock(side_effect=move_to)
        return member

    def place(self, member: MagicMock, channel: MagicMock | None) -> None:
        """Put a member in a voice channel (None: out of voice), as Discord would."""
        for c in self.channels:
            if member in c.members:
                c.members.remove(member)
        if channel is None:
            member.voice = None
            return
        channel.members.append(member)
        voice = MagicMock(spec=discord.VoiceState)
        voice.channel = channel
        member.voice = voice

    def names(self) -> list[str]:
        return [c.name for c in self.channels]
