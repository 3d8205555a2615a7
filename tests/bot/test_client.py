"""The bot process: intents, command sync, the one error handler, starting and stopping."""

from __future__ import annotations

import asyncio
from unittest.mock import AsyncMock, MagicMock, patch

import discord
import pytest
from discord import app_commands

from lens.bot import client as bot_client
from lens.bot.client import SOMETHING_WENT_WRONG, LensBot, bot_intents, running
from lens.errors import Conflict, IntegrationUnavailable, NotFound
from tests.bot.conftest import TOKEN
from tests.bot.fakes import SERVER_ID, make_interaction, only_reply, replies


def test_intents_are_the_ones_the_bot_needs_and_no_more() -> None:
    intents = bot_intents()
    assert intents.guilds and intents.members and intents.voice_states
    assert not intents.message_content
    assert not intents.guild_messages and not intents.dm_messages
    assert not intents.presences  # privileged and unused
    assert {name for name, on in intents if on} == {"guilds", "members", "voice_states"}


def test_the_bot_needs_a_server(bot_settings, sessionmaker) -> None:
    settings = bot_settings.model_copy(update={"discord_server_id": None})
    with pytest.raises(ValueError, match="DISCORD_SERVER_ID"):
        LensBot(settings=settings, sessionmaker=sessionmaker, http=MagicMock(), content=dict)


async def test_setup_syncs_every_command_to_our_server_only(bot: LensBot) -> None:
    with patch.object(bot.tree, "sync", AsyncMock(return_value=[])) as sync:
        await bot.setup_hook()
    sync.assert_awaited_once()
    assert sync.await_args.kwargs["guild"].id == SERVER_ID
    server = discord.Object(id=SERVER_ID)
    names = {c.name for c in bot.tree.get_commands(guild=server)}
    assert names == {
        "signup",
        "availability",
        "profile",
        "course",
        "ping",
        "cohort",
        "schedule",
        "realize-groups",
        "sync-groups",
        "breakout",
        "breakout-end",
    }
    cohort = bot.tree.get_command("cohort", guild=server)
    assert isinstance(cohort, app_commands.Group)
    assert [c.name for c in cohort.commands] == ["list"]
    assert set(bot.cogs) == {"General", "Admin", "Members", "Breakout", "Presence"}


async def test_a_failed_sync_is_logged_and_the_bot_goes_on(bot: LensBot) -> None:
    refused = discord.Forbidden(MagicMock(status=403, reason="Forbidden"), "Missing Access")
    with (
        patch.object(bot.tree, "sync", AsyncMock(side_effect=refused)),
        patch.object(bot_client, "log") as log,
    ):
        await bot.sync_commands()
    assert log.error.call_args.args[0] == "bot.commands.sync_failed"
    assert "applications.commands" in log.error.call_args.kwargs["hint"]


# -- the error handler -------------------------------------------------------------------


def _invoke_error(exc: Exception) -> app_commands.CommandInvokeError:
    command = MagicMock(spec=app_commands.Command)
    command.name = "signup"
    return app_commands.CommandInvokeError(command, exc)


@pytest.mark.parametrize(
    "error", [NotFound("There is no cohort 9."), Conflict("Wait for the run to finish.")]
)
async def test_expected_errors_are_a_private_reply_with_their_message(bot, error) -> None:
    interaction = make_interaction()
    await bot.tree.on_error(interaction, _invoke_error(error))
    assert only_reply(interaction).text == error.message
    assert only_reply(interaction).ephemeral


async def test_after_a_deferral_the_message_comes_as_a_follow_up(bot) -> None:
    interaction = make_interaction()
    await interaction.response.defer(ephemeral=True)
    await bot.tree.on_error(interaction, _invoke_error(NotFound("There is no cohort 9.")))
    interaction.response.send_message.assert_not_awaited()
    interaction.followup.send.assert_awaited_once()
    assert replies(interaction)[0].text == "There is no cohort 9."
    assert replies(interaction)[0].ephemeral


async def test_unexpected_errors_are_logged_and_get_an_apology(bot) -> None:
    interaction = make_interaction()
    bug = ZeroDivisionError("division by zero")
    with (
        patch.object(bot_client, "log") as log,
        patch.object(bot_client.sentry_sdk, "capture_exception") as sentry,
    ):
        await bot.tree.on_error(interaction, _invoke_error(bug))
    sentry.assert_called_once_with(bug)
    assert only_reply(interaction).text == SOMETHING_WENT_WRONG
    assert only_reply(interaction).ephemeral
    assert "division" not in only_reply(interaction).text
    event, kwargs = log.error.call_args.args[0], log.error.call_args.kwargs
    assert event == "bot.command.failed"
    assert kwargs["exc_info"] is bug
    assert kwargs["discord_user_id"] == str(interaction.user.id)


async def test_an_unavailable_service_says_try_again(bot) -> None:
    interaction = make_interaction()
    await bot.tree.on_error(interaction, _invoke_error(IntegrationUnavailable("timeout")))
    assert "try again" in only_reply(interaction).text


async def test_library_checks_and_bad_values_are_explained(bot) -> None:
    interaction = make_interaction()
    await bot.tree.on_error(interaction, app_commands.NoPrivateMessage())
    assert "direct message" in only_reply(interaction).text

    interaction = make_interaction()
    transformer = MagicMock(spec=app_commands.Transformer)
    integer = discord.AppCommandOptionType.integer
    await bot.tree.on_error(interaction, app_commands.TransformerError("x", integer, transformer))
    assert only_reply(interaction).text.startswith("I could not understand 'x'")


async def test_a_reply_that_cannot_be_sent_is_logged_not_raised(bot) -> None:
    interaction = make_interaction()
    expired = discord.NotFound(MagicMock(status=404, reason="Not Found"), "Unknown interaction")
    interaction.response.send_message.side_effect = expired
    with patch.object(bot_client, "log") as log:
        await bot.tree.on_error(interaction, _invoke_error(NotFound("gone")))
    assert log.warning.call_args.args[0] == "bot.reply.failed"


async def test_a_failing_listener_is_logged(bot) -> None:
    with patch.object(bot_client, "log") as log:
        try:
            raise RuntimeError("listener bug")
        except RuntimeError:
            await bot.on_error("on_member_join")
    log.exception.assert_called_once_with("bot.event.failed", listener="on_member_join")


# -- running ------------------------------------------------------------------------------


async def test_running_starts_with_the_token_and_closes_on_exit(bot) -> None:
    closed = asyncio.Event()

    async def login(token: str) -> None:
        assert token == TOKEN

    async def connect(reconnect: bool) -> None:
        await closed.wait()

    async def close() -> None:
        closed.set()

    with (
        patch.object(bot, "login", side_effect=login),
        patch.object(bot, "connect", side_effect=connect),
        patch.object(bot, "close", side_effect=close),
    ):
        async with running(bot, TOKEN) as task:
            await asyncio.sleep(0)
            assert not task.done()
        assert task.done() and not task.cancelled()
    assert closed.is_set()


async def test_a_bot_that_cannot_log_in_says_why_and_the_process_goes_on(bot) -> None:
    async def login(token: str) -> None:
        raise discord.LoginFailure("Improper token has been passed.")

    with (
        patch.object(bot, "login", side_effect=login),
        patch.object(bot, "close", AsyncMock()),
        patch.object(bot_client, "log") as log,
    ):
        async with running(bot, TOKEN) as task:
            await asyncio.wait({task})
    events = [c.args[0] for c in log.error.call_args_list]
    assert events == ["bot.login_failed"]
    assert "DISCORD_BOT_TOKEN" in log.error.call_args.kwargs["hint"]


# -- inside `lens serve` --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "starts"),
    [
        ({"DISCORD_BOT_TOKEN": TOKEN, "DISCORD_SERVER_ID": str(SERVER_ID)}, True),
        (
            {
                "DISCORD_BOT_TOKEN": TOKEN,
                "DISCORD_SERVER_ID": str(SERVER_ID),
                "LENS_RUN_BOT": "false",
            },
            False,
        ),
        ({"DISCORD_BOT_TOKEN": TOKEN}, False),
        ({}, False),
    ],
    ids=["configured", "no-bot", "no-server", "zero-config"],
)
async def test_serve_runs_the_bot_when_configured(client_factory, values, starts) -> None:
    started: list[LensBot] = []
    stopped = asyncio.Event()

    async def login(self: LensBot, token: str) -> None:
        started.append(self)

    async def connect(self: LensBot, reconnect: bool) -> None:
        await stopped.wait()

    async def close(self: LensBot) -> None:
        stopped.set()

    with (
        patch.object(LensBot, "login", login),
        patch.object(LensBot, "connect", connect),
        patch.object(LensBot, "close", close),
    ):
        async with client_factory(**values) as client:
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(0)
            assert len(started) == (1 if starts else 0)
            if starts:
                assert not stopped.is_set()
    assert stopped.is_set() == starts
    if starts:
        assert started[0].server_id == SERVER_ID


async def test_a_discord_unreachable_at_start_up_is_tried_again() -> None:
    from unittest.mock import AsyncMock, MagicMock

    import aiohttp

    from lens.bot.client import start_with_retries

    bot = MagicMock()
    bot.login = AsyncMock(side_effect=[aiohttp.ClientConnectionError("down"), OSError("dns"), None])
    bot.connect = AsyncMock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    await start_with_retries(bot, "token", sleep=sleep)
    assert waits == [5.0, 10.0]
    bot.connect.assert_awaited_once_with(reconnect=True)


async def test_a_refused_token_is_not_retried() -> None:
    from unittest.mock import AsyncMock, MagicMock

    import discord
    import pytest

    from lens.bot.client import start_with_retries

    bot = MagicMock()
    bot.login = AsyncMock(side_effect=discord.LoginFailure("Improper token"))
    with pytest.raises(discord.LoginFailure):
        await start_with_retries(bot, "token", sleep=AsyncMock())
    assert bot.login.await_count == 1
