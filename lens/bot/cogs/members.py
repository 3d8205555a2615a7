"""Server members: access for people who join, nicknames changed on the server."""

from __future__ import annotations

import discord
from discord.ext import commands

from lens.bot.services import BotServices
from lens.discord_groups.tasks import request_member_access
from lens.logging import get_logger
from lens.users.nicknames import store_server_nickname

log = get_logger("lens.bot.members")


class Members(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices) -> None:
        self.bot = bot
        self.services = services

    def _ours(self, member: discord.Member) -> bool:
        return member.guild.id == self.services.server_id and not member.bot

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        """Someone already in a group joins the server: give them their group's roles.

        Safe to see twice (a replayed event after a reconnect): granting is idempotent.
        """
        if not self._ours(member):
            return
        # Queued: the worker opens their channels (REST calls off this event handler,
        # no database connection held while Discord answers).
        async with self.services.unit_of_work() as session:
            await request_member_access(session, discord_id=str(member.id))
        log.info("bot.member.joined", discord_user_id=str(member.id))

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if not self._ours(after) or before.nick == after.nick:
            return
        async with self.services.unit_of_work() as session:
            user = await store_server_nickname(
                session, discord_id=str(after.id), nickname=after.nick
            )
        if user is not None:
            log.info("bot.nickname.stored", user_id=user.id)
