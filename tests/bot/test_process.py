"""`lens bot`: refuses to start unconfigured, runs until SIGTERM, fails when the bot does."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from unittest.mock import patch

import discord

from lens.bot.cli import _run_bot
from lens.bot.client import LensBot
from tests.bot.conftest import TOKEN
from tests.bot.fakes import SERVER_ID
from tests.fixtures.cli import lens


def test_lens_bot_without_a_token_says_what_is_missing(tmp_path: Path) -> None:
    result = lens("bot", env={"LENS_VAR_DIR": str(tmp_path / "var")}, cwd=tmp_path)
    assert result.returncode == 2
    assert "DISCORD_BOT_TOKEN and DISCORD_SERVER_ID" in result.stderr
    assert "Traceback" not in result.stderr


def _settings(make_settings, tmp_path: Path):
    return make_settings(
        DISCORD_BOT_TOKEN=TOKEN,
        DISCORD_SERVER_ID=str(SERVER_ID),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        CONTENT_DIR=str(Path(__file__).parents[2] / "examples" / "course"),
    )


async def test_lens_bot_runs_until_sigterm_and_closes(make_settings, tmp_path: Path) -> None:
    started = asyncio.Event()
    closed = asyncio.Event()
    seen: dict[str, object] = {}

    async def login(self: LensBot, token: str) -> None:
        seen["token"] = token

    async def connect(self: LensBot, reconnect: bool) -> None:
        started.set()
        await closed.wait()

    async def close(self: LensBot) -> None:
        closed.set()

    async def terminate() -> None:
        await started.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    assert sys.platform != "win32"
    with (
        patch.object(LensBot, "login", login),
        patch.object(LensBot, "connect", connect),
        patch.object(LensBot, "close", close),
    ):
        killer = asyncio.create_task(terminate())
        ok = await asyncio.wait_for(_run_bot(_settings(make_settings, tmp_path)), 30)
        await killer
    assert ok is True
    assert closed.is_set()
    assert seen["token"] == TOKEN
    # The signal handlers are the process's own again.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_lens_bot_fails_when_the_bot_cannot_log_in(make_settings, tmp_path: Path) -> None:
    async def login(self: LensBot, token: str) -> None:
        raise discord.LoginFailure("Improper token has been passed.")

    async def close(self: LensBot) -> None:
        return None

    with patch.object(LensBot, "login", login), patch.object(LensBot, "close", close):
        ok = await asyncio.wait_for(_run_bot(_settings(make_settings, tmp_path)), 30)
    assert ok is False
