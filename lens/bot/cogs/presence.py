"""Who is in each group's call: every voice join and leave on the server is handed to
lens/discord_groups/presence.py (a breakout room counts as its main channel), so the
facilitator's attendance form can be pre-filled. On (re)connect the bot records what it
finds in the calls, as it cannot know what it missed."""

from __future__ import annotations

import asyncio

import discord
from discord.ext import commands

from lens.bot.rooms import parse_room_name
from lens.bot.services import BotServices
from lens.discord_groups.presence import voice_changed, voice_snapshot
from lens.logging import get_logger

log = get_logger("lens.bot.presence")


def main_channel_id(channel: discord.abc.GuildChannel | None) -> str | None:
    """The id of the call a voice channel belongs to: a breakout room's main channel."""
    if channel is None:
        return None
    parsed = parse_room_name(channel.name)
    return str(parsed[0] if parsed else channel.id)


class Presence(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices) -> None:
        self.bot = bot
        self.services = services
        # discord.py runs each event as its own task: one person's join and leave, a
        # moment apart, must be recorded in the order they came.
        self._locks: dict[int, asyncio.Lock] = {}

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        server = self.bot.get_guild(self.services.server_id)
        if server is None:
            return
        present = [
            (str(member.id), main)
            for channel in server.voice_channels
            if (main := main_channel_id(channel)) is not None
            for member in channel.members
            if not member.bot
        ]
        async with self.services.unit_of_work() as session:
            opened = await voice_snapshot(session, present=present)
        log.info("bot.presence.snapshot", in_calls=len(present), recorded=opened)

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        if member.bot or member.guild.id != self.services.server_id:
            return
        left, joined = main_channel_id(before.channel), main_channel_id(after.channel)
        if left == joined:
            return  # mute, deafen, a move between the call and its rooms
        lock = self._locks.setdefault(member.id, asyncio.Lock())
        async with lock, self.services.unit_of_work() as session:
            await voice_changed(
                session,
                discord_user_id=str(member.id),
                left_channel_id=left,
                joined_channel_id=joined,
            )
