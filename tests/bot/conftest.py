"""A LensBot on the test database: built for real, never connected (nothing calls start)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.bot.client import LensBot
from lens.content.files import read_folder
from lens.content.parsed import ContentSet
from lens.content.parsing import load_content
from lens.settings import Settings
from tests.bot.fakes import SERVER_ID

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"
BASE_URL = "https://lens.test"
TOKEN = "bot-token-for-tests"


@pytest.fixture(scope="session")
def example_content() -> ContentSet:
    return load_content(read_folder(EXAMPLE))


@pytest.fixture
def bot_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        DISCORD_BOT_TOKEN=TOKEN, DISCORD_SERVER_ID=str(SERVER_ID), FRONTEND_URL=BASE_URL
    )


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request {request.method} {request.url}")


@pytest.fixture
async def bot(
    bot_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    example_content: ContentSet,
) -> AsyncIterator[LensBot]:
    holder: dict[str, Any] = {"content": example_content}
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as http:
        bot = LensBot(
            settings=bot_settings,
            sessionmaker=sessionmaker,
            http=http,
            content=lambda: holder["content"],
        )
        bot.test_content = holder  # type: ignore[attr-defined]  # tests swap the content
        yield bot
