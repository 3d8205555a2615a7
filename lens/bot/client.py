"""The bot process: one gateway connection, slash commands on one server, one error handler.

`lens serve` starts it inside the app's lifespan when DISCORD_BOT_TOKEN and
DISCORD_SERVER_ID are set (and not `--no-bot`); `lens bot` runs it alone. Run exactly one
per server: two gateway connections would both answer every event.

Reconnects are discord.py's: after a dropped connection it resumes, or identifies
again and fires `on_ready` once more. Nothing here does work there that must happen
once: commands are synced in `setup_hook` (once per start), and `on_ready` only does
clean-up that is safe to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import httpx
import sentry_sdk
from discord import app_commands
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.bot.common import reply
from lens.bot.services import BotServices
from lens.errors import IntegrationRejected, IntegrationUnavailable, LensError
from lens.integrations.discord.rest import USER_AGENT
from lens.logging import get_logger
from lens.settings import Settings

if TYPE_CHECKING:
    from lens.content.parsed import ContentSet

log = get_logger("lens.bot")

SOMETHING_WENT_WRONG = "Something went wrong; the team has been told."
UNAVAILABLE = "Discord or another service is not answering right now; please try again soon."


def bot_intents() -> discord.Intents:
    """What the bot needs from the gateway, and no more.

    - guilds: the server, its channels and roles (breakout rooms, clean-up).
    - members (privileged: enable "Server Members Intent" in the developer portal):
      member joins (access to cohort channels) and nickname changes.
    - voice_states: who is in which voice channel (breakout rooms, attendance).
    Not message_content: the bot reads no messages; slash commands arrive anyway.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.voice_states = True
    return intents


class LensTree(app_commands.CommandTree["LensBot"]):
    """The command tree with the one error handler for every slash command."""

    async def on_error(
        self, interaction: discord.Interaction[LensBot], error: app_commands.AppCommandError, /
    ) -> None:
        await handle_command_error(interaction, error)


async def handle_command_error(
    interaction: discord.Interaction[Any], error: app_commands.AppCommandError
) -> None:
    """Expected outcomes become a private reply saying why; bugs are logged and get an
    apology (the same split as the web: LensError or a 500)."""
    original: BaseException = (
        error.original if isinstance(error, app_commands.CommandInvokeError) else error
    )
    command = interaction.command.qualified_name if interaction.command else None
    fields = {"command": command, "discord_user_id": str(interaction.user.id)}
    if isinstance(original, LensError):
        text = original.message
        log.info("bot.command.refused", status=original.status_code, reason=text, **fields)
    elif isinstance(original, IntegrationUnavailable):
        text = UNAVAILABLE
        log.warning("bot.command.unavailable", error=str(original), **fields)
    elif isinstance(original, app_commands.TransformerError):
        text = f"I could not understand {original.value!r} there; check it and try again."
        log.info("bot.command.bad_argument", **fields)
    elif isinstance(original, app_commands.CheckFailure):
        # e.g. a server-only command used in a direct message
        text = str(original) or "You cannot use this command here."
        log.info("bot.command.check_failed", reason=text, **fields)
    elif isinstance(original, discord.Forbidden | IntegrationRejected):
        text = (
            "Discord did not let me do that: the bot's role may be missing a permission. "
            "The team has been told."
        )
        log.error("bot.command.discord_refused", exc_info=original, **fields)
    else:
        text = SOMETHING_WENT_WRONG
        log.error("bot.command.failed", exc_info=original, **fields)
        sentry_sdk.capture_exception(original)  # a no-op without SENTRY_DSN
    try:
        await reply(interaction, text)
    except discord.HTTPException as exc:
        # The interaction expired (15 minutes) or was answered elsewhere: nothing to tell.
        log.warning("bot.reply.failed", error=str(exc), **fields)


class LensBot(commands.Bot):
    """The bot, holding the parts of the app its commands need."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        content: Callable[[], ContentSet | None],
    ) -> None:
        if not settings.discord_server_id:
            raise ValueError("the bot needs DISCORD_SERVER_ID")
        super().__init__(
            # No message content intent, so no prefix commands: only a mention would work,
            # and the bot defines none.
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=bot_intents(),
            tree_cls=LensTree,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,  # reads no messages: keep no message cache
        )
        # Discord asks every API client for "DiscordBot ($url, $versionNumber)" and may
        # block others; discord.py's own has no comma after the URL. More may follow.
        self.http.user_agent = f"{USER_AGENT} discord.py/{discord.__version__}"
        # Built once; each cog gets it with the bot (the cogs do not import this module).
        self.services = BotServices(
            settings=settings,
            sessionmaker=sessionmaker,
            http_client=http,  # `http` is discord.py's own client
            get_content=content,
            server_id=int(settings.discord_server_id),
        )

    # Shortcuts to the services, for this module and tests.

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.services.sessionmaker

    @property
    def http_client(self) -> httpx.AsyncClient:
        return self.services.http_client

    @property
    def server_id(self) -> int:
        return self.services.server_id

    @property
    def content(self) -> ContentSet | None:
        """The parsed course content this process serves (None before the first load)."""
        return self.services.content

    def unit_of_work(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """One transaction per command: committed when the command ends normally."""
        return self.services.unit_of_work()

    @property
    def server(self) -> discord.Guild | None:
        return self.get_guild(self.server_id)

    async def setup_hook(self) -> None:
        from lens.bot.cogs import admin, breakout, general, members, presence

        for cog in (
            general.General(self, self.services),
            admin.Admin(self, self.services),
            members.Members(self, self.services),
            breakout.Breakout(self, self.services),
            presence.Presence(self, self.services),
        ):
            await self.add_cog(cog)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register the slash commands on our server only: server commands appear at once
        (global ones take up to an hour) and are not offered anywhere else."""
        server = discord.Object(id=self.server_id)
        self.tree.copy_global_to(guild=server)
        try:
            synced = await self.tree.sync(guild=server)
        except discord.HTTPException as exc:
            # The bot still handles member events; the commands are missing until the
            # bot is invited with the applications.commands scope and restarted.
            log.error(
                "bot.commands.sync_failed",
                server=str(self.server_id),
                error=str(exc),
                hint="invite the bot with the scopes 'bot applications.commands'",
            )
            return
        log.info("bot.commands.synced", server=str(self.server_id), commands=len(synced))

    async def on_ready(self) -> None:
        log.info("bot.ready", bot=str(self.user), servers=len(self.guilds))
        if self.server is None:
            log.error(
                "bot.server.missing",
                server=str(self.server_id),
                hint="invite the bot to DISCORD_SERVER_ID",
            )

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # Called from inside the failed listener's except block.
        log.exception("bot.event.failed", listener=event_method)
        sentry_sdk.capture_exception()


@asynccontextmanager
async def running(bot: LensBot, token: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run the bot in the background for the block; close it cleanly afterwards.

    A bot that cannot log in (a revoked token, Discord down for long) logs why and stops;
    the process around it goes on without it.
    """
    task = asyncio.create_task(start_with_retries(bot, token), name="lens-discord-bot")
    task.add_done_callback(_report_exit)
    log.info("bot.starting", server=str(bot.server_id))
    try:
        yield task
    finally:
        await bot.close()
        # Exceptions were logged by _report_exit; asyncio.wait does not raise them.
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        log.info("bot.stopped")


LOGIN_RETRY_FIRST, LOGIN_RETRY_MAX = 5.0, 300.0


async def start_with_retries(
    bot: LensBot, token: str, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """`bot.start`, but a Discord that cannot be reached at start-up is tried again
    (5 s, 10 s, ... up to 5 minutes apart) instead of leaving the process without a bot.
    A refused token or intent stops at once. Once connected, discord.py reconnects by
    itself."""
    delay = LOGIN_RETRY_FIRST
    while True:
        try:
            await bot.login(token)
            break
        except (aiohttp.ClientError, OSError, discord.DiscordServerError) as exc:
            log.warning("bot.login_retry", error=f"{type(exc).__name__}: {exc}", in_seconds=delay)
            await sleep(delay)
            delay = min(LOGIN_RETRY_MAX, delay * 2)
    await bot.connect(reconnect=True)


def _report_exit(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, discord.LoginFailure):
        log.error("bot.login_failed", error=str(exc), hint="check DISCORD_BOT_TOKEN")
    elif isinstance(exc, discord.PrivilegedIntentsRequired):
        log.error(
            "bot.intents_refused",
            error=str(exc),
            hint="enable the Server Members Intent in the Discord developer portal",
        )
    elif exc is not None:
        log.error("bot.crashed", exc_info=exc)
