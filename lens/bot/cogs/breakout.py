"""Breakout rooms in a meeting's voice channel, opened and closed by its facilitator.

The rooms are ordinary voice channels named `breakout-<main channel id>-<k>` (see
lens/bot/rooms.py) in the main channel's category, with its permissions, so only the
group can see them. Nothing is kept in the bot's memory: after a restart
/breakout-end still finds the rooms, empty leftovers are deleted when the bot is ready,
and the rest once the whole group has left the call.
"""

from __future__ import annotations

import asyncio
import contextlib

import discord
from discord import app_commands
from discord.ext import commands

from lens.bot.common import lens_user, reply
from lens.bot.rooms import parse_room_name, plan_rooms, room_name
from lens.bot.services import BotServices
from lens.cohorts.groups import get_group_to_lead
from lens.discord_groups.service import group_for_voice_channel
from lens.errors import Conflict, Forbidden, Invalid
from lens.logging import get_logger

Interaction = discord.Interaction[commands.Bot]
log = get_logger("lens.bot.breakout")

ONLY_FACILITATOR = "Only this group's facilitator can open and close breakout rooms."


class Breakout(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices) -> None:
        self.bot = bot
        self.services = services
        # One open or close at a time per voice channel: two quick /breakout calls
        # would otherwise both find no rooms and both create them.
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self, channel_id: int) -> asyncio.Lock:
        return self._locks.setdefault(channel_id, asyncio.Lock())

    @app_commands.command(
        name="breakout", description="Split the people in your voice channel into rooms."
    )
    @app_commands.describe(size="How many people per room")
    @app_commands.guild_only()
    async def breakout(
        self, interaction: Interaction, size: app_commands.Range[int, 2, 25]
    ) -> None:
        facilitator, main = _caller_in_voice(interaction)
        if parse_room_name(main.name) is not None:
            raise Conflict("You are in a breakout room; go back to the main channel first.")
        await self._check_leads(interaction, main)
        lock = self._lock(main.id)
        if lock.locked():
            raise Conflict("Breakout rooms are being opened or closed here; wait a moment.")
        async with lock:
            await self._open(interaction, facilitator, main, size)

    async def _open(
        self,
        interaction: Interaction,
        facilitator: discord.Member,
        main: discord.VoiceChannel,
        size: int,
    ) -> None:
        if rooms_of(main.guild, main.id):
            raise Conflict("Breakout rooms are already open here; use /breakout-end first.")
        people = [m for m in main.members if not m.bot and m.id != facilitator.id]
        if not people:
            raise Invalid("Nobody else is in this voice channel.")
        plan = plan_rooms(people, size)
        await interaction.response.defer(thinking=True)
        reason = f"Breakout rooms for {main.name}, opened by {facilitator.display_name}"
        lines = []
        for number, members in enumerate(plan, start=1):
            room = await main.guild.create_voice_channel(
                room_name(main.id, number),
                category=main.category,
                overwrites=main.overwrites,
                reason=reason,
            )
            moved = [m for m in members if await _move(m, room, reason)]
            lines.append(
                f"Room {number} ({room.mention}): " + ", ".join(m.display_name for m in moved)
            )
        log.info("bot.breakout.opened", channel=str(main.id), rooms=len(plan), people=len(people))
        await reply(
            interaction,
            f"{len(plan)} rooms of up to {size}:\n"
            + "\n".join(lines)
            + "\nUse /breakout-end to bring everyone back.",
            ephemeral=False,
        )

    @app_commands.command(
        name="breakout-end", description="Bring everyone back from the breakout rooms."
    )
    @app_commands.guild_only()
    async def breakout_end(self, interaction: Interaction) -> None:
        _, channel = _caller_in_voice(interaction)
        parsed = parse_room_name(channel.name)
        main = channel
        if parsed is not None:
            found = channel.guild.get_channel(parsed[0])
            if not isinstance(found, discord.VoiceChannel):
                raise Invalid("The main voice channel of these rooms is gone.")
            main = found
        await self._check_leads(interaction, main)
        rooms = rooms_of(main.guild, main.id)
        if not rooms:
            raise Conflict("There are no breakout rooms open for this channel.")
        await interaction.response.defer(thinking=True)
        reason = f"Breakout rooms of {main.name} closed"
        for room in rooms:
            for member in list(room.members):
                await _move(member, main, reason)
            await _delete(room, reason)
        log.info("bot.breakout.closed", channel=str(main.id), rooms=len(rooms))
        await reply(
            interaction,
            f"Closed {len(rooms)} breakout rooms; everyone is back in {main.mention}.",
            ephemeral=False,
        )

    async def _check_leads(self, interaction: Interaction, main: discord.VoiceChannel) -> None:
        """The caller leads the group meeting in this channel (Lens admins may anywhere)."""
        async with self.services.unit_of_work() as session:
            user = await lens_user(session, interaction)
            if user is None:
                raise Forbidden(ONLY_FACILITATOR)
            group_id = await group_for_voice_channel(session, channel_id=str(main.id))
            if group_id is None:
                if user.is_admin:
                    return
                raise Forbidden(f"This is not a group's meeting channel. {ONLY_FACILITATOR}")
            try:
                await get_group_to_lead(session, group_id=group_id, viewer=user)
            except Forbidden:
                raise Forbidden(ONLY_FACILITATOR) from None

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Delete breakout rooms left empty by a restart (safe to repeat on reconnect)."""
        server = self.bot.get_guild(self.services.server_id)
        if server is None:
            return
        for channel in server.voice_channels:
            if parse_room_name(channel.name) is not None and not channel.members:
                await _delete(channel, "Leftover breakout room")

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Once everyone has left the main channel and its rooms, the rooms go too."""
        left = before.channel
        if left is None or left == after.channel or left.guild.id != self.services.server_id:
            return
        parsed = parse_room_name(left.name)
        main_id = parsed[0] if parsed else left.id
        rooms = rooms_of(left.guild, main_id)
        if not rooms:
            return
        main = left.guild.get_channel(main_id)
        if isinstance(main, discord.VoiceChannel) and main.members:
            return
        if any(room.members for room in rooms):
            return
        for room in rooms:
            await _delete(room, "Breakout rooms left empty")
        log.info("bot.breakout.tidied", channel=str(main_id), rooms=len(rooms))


def rooms_of(guild: discord.Guild, main_channel_id: int) -> list[discord.VoiceChannel]:
    """The open breakout rooms of a voice channel, in room order."""
    found = []
    for channel in guild.voice_channels:
        parsed = parse_room_name(channel.name)
        if parsed is not None and parsed[0] == main_channel_id:
            found.append((parsed[1], channel))
    return [channel for _, channel in sorted(found, key=lambda pair: pair[0])]


def _caller_in_voice(interaction: Interaction) -> tuple[discord.Member, discord.VoiceChannel]:
    member = interaction.user
    if not isinstance(member, discord.Member):
        raise Invalid("Use this command on the server, not in a direct message.")
    channel = member.voice.channel if member.voice else None
    if not isinstance(channel, discord.VoiceChannel):
        raise Invalid("Join your group's voice channel first.")
    return member, channel


async def _move(member: discord.Member, room: discord.VoiceChannel, reason: str) -> bool:
    try:
        await member.move_to(room, reason=reason)
    except discord.HTTPException as exc:
        # They left the call in the meantime (Discord: "Target user is not connected").
        log.info("bot.breakout.move_skipped", discord_user_id=str(member.id), error=str(exc))
        return False
    return True


async def _delete(channel: discord.VoiceChannel, reason: str) -> None:
    # NotFound: deleted already (two events racing, or by hand).
    with contextlib.suppress(discord.NotFound):
        await channel.delete(reason=reason)
