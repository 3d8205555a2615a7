"""The bot's permissions: what Lens asks for (BOT_PERMISSIONS, the invite in
docs/discord.md), what Discord requires (CREATE_EVENTS for events since 2026-02-23,
tests/contracts/discord/FACTS.md), what the bot's role has in the server (read from
Discord), and what `lens config check` says about it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from lens.app import cli as app_cli
from lens.errors import IntegrationRejected
from lens.integrations.discord.guild import (
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    PERMISSION_NAMES,
    Permission,
    invite_url,
    permission_names,
)
from tests.contracts.discord.checks import facts
from tests.fixtures.fake_discord import BOT_ID, GUILD_ID, FakeGuild, documented_invite_permissions

DOCS = Path(__file__).parents[2] / "docs" / "discord.md"
OLD_INVITE = 9046182992  # the invite before Create Events: Manage Events but no Create Events


def flag(name: str) -> int:
    return int(facts()["permissions"]["flags"][name]["value"])


# -- what Lens asks for ------------------------------------------------------------------


def test_the_invite_asks_for_what_discord_requires_to_create_voice_events() -> None:
    # "Starting on February 23, 2026, bots will need the CREATE_EVENTS permission to
    # create scheduled events. MANAGE_EVENTS alone will no longer be sufficient."
    voice = facts()["scheduled_event_permissions"]["VOICE"]
    for name in voice["create"]:
        assert BOT_PERMISSIONS & flag(name), name
    assert Permission.CREATE_EVENTS == flag("CREATE_EVENTS") == 1 << 44
    assert BOT_PERMISSIONS & Permission.MANAGE_EVENTS  # editing events someone else made
    assert not OLD_INVITE & Permission.CREATE_EVENTS


def test_the_documented_invite_is_the_one_constant_in_code() -> None:
    text = DOCS.read_text()
    assert re.findall(r"permissions integer `(\d+)`", text) == [str(BOT_PERMISSIONS)]
    assert documented_invite_permissions() == BOT_PERMISSIONS == 17601232227408
    assert invite_url("<DISCORD_CLIENT_ID>") in text
    # The table names every permission the integer holds, by the names Discord's app shows.
    table = text[text.index("| permission | for |") : text.index("That is permissions integer")]
    for name in permission_names(BOT_PERMISSIONS):
        assert name in table, name
    assert set(permission_names(BOT_PERMISSIONS)) <= set(PERMISSION_NAMES.values())


def test_names_are_read_lowest_bit_first() -> None:
    bits = Permission.CREATE_EVENTS | Permission.VIEW_CHANNEL | Permission.MOVE_MEMBERS
    assert permission_names(bits) == ["View Channels", "Move Members", "Create Events"]


# -- the fake server keeps Discord's rules -------------------------------------------------


async def test_the_fake_refuses_events_to_a_bot_with_only_manage_events() -> None:
    fake = FakeGuild(bot_permissions=OLD_INVITE)
    guild = fake.client()
    voice = await guild.create_channel(name="Group 1", type=2, reason="test")
    start = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(IntegrationRejected, match=r"HTTP 403.*Missing Permissions \(code 50013\)"):
        await guild.create_voice_event(
            channel_id=voice.id,
            name="Group 1, meeting 1",
            description="",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            reason="meeting",
        )
    assert fake.events == {}
    fake.bot_permissions = BOT_PERMISSIONS
    made = await guild.create_voice_event(
        channel_id=voice.id,
        name="Group 1, meeting 1",
        description="",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        reason="meeting",
    )
    assert list(fake.events) == [made.id]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({}, BOT_PERMISSIONS),
        ({"bot_permissions": 0, "everyone_permissions": BOT_PERMISSIONS}, BOT_PERMISSIONS),
        ({"bot_permissions": Permission.ADMINISTRATOR}, ALL_PERMISSIONS),
        ({"bot_permissions": 0, "owner_id": BOT_ID}, ALL_PERMISSIONS),
        ({"bot_permissions": OLD_INVITE}, OLD_INVITE),
    ],
    ids=["invited", "everyone", "administrator", "owner", "old invite"],
)
async def test_the_bots_permissions_are_read_from_the_server(
    setup: dict[str, Any], expected: int
) -> None:
    fake = FakeGuild(**setup)
    guild = fake.client()
    assert await guild.bot_permissions() == expected
    missing = await guild.missing_permissions()
    assert missing == (Permission.CREATE_EVENTS if expected == OLD_INVITE else 0)
    assert [r.url.path for r in fake.requests[:3]] == [
        "/api/v10/users/@me",
        f"/api/v10/guilds/{GUILD_ID}",
        f"/api/v10/guilds/{GUILD_ID}/members/{BOT_ID}",
    ]


async def test_a_bot_not_in_the_server_is_refused() -> None:
    fake = FakeGuild(bot_in_server=False)
    with pytest.raises(IntegrationRejected, match="not in the server"):
        await fake.client().bot_permissions()


# -- lens config check -------------------------------------------------------------------


@pytest.fixture
def config_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """`lens config check` in this process, its Discord requests answered by a fake."""
    monkeypatch.chdir(tmp_path)

    def run(fake: FakeGuild | None, **env: str) -> tuple[int, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if fake is not None:
            monkeypatch.setenv("DISCORD_BOT_TOKEN", fake.token)
            monkeypatch.setenv("DISCORD_SERVER_ID", fake.guild_id)
            monkeypatch.setattr(
                app_cli, "_discord_http", lambda: httpx.AsyncClient(transport=fake.transport())
            )
        code = 0
        try:
            app_cli.config_check()
        except typer.Exit as exc:
            code = exc.exit_code
        return code, capsys.readouterr().out

    yield run


def test_config_check_warns_when_the_bots_role_lacks_create_events(config_check) -> None:
    fake = FakeGuild(bot_permissions=OLD_INVITE)
    code, out = config_check(fake, DISCORD_CLIENT_ID="1234567890")
    assert code == 0
    assert (
        f"  warning: the bot's role in server {GUILD_ID} lacks permissions Lens needs:\n"
        "    - Create Events: creating meeting events\n"
        "    Give them to the bot's role in the server settings, or invite it again: "
        "https://discord.com/oauth2/authorize?client_id=1234567890"
        "&scope=bot+applications.commands&permissions=17601232227408\n"
    ) in out
    assert out.rstrip().endswith("configuration ok")
    assert fake.token not in out


def test_config_check_names_every_missing_permission(config_check) -> None:
    lacking = Permission.MOVE_MEMBERS | Permission.MANAGE_NICKNAMES | Permission.CREATE_EVENTS
    _, out = config_check(FakeGuild(bot_permissions=BOT_PERMISSIONS & ~lacking))
    assert "    - Move Members: breakout rooms\n" in out
    assert "    - Manage Nicknames: nicknames changed on Lens\n" in out
    assert "    - Create Events: creating meeting events\n" in out
    assert "client_id=<DISCORD_CLIENT_ID>" in out


@pytest.mark.parametrize(
    "setup",
    [{}, {"bot_permissions": Permission.ADMINISTRATOR}, {"bot_permissions": 0, "owner_id": BOT_ID}],
    ids=["invited", "administrator", "owner"],
)
def test_config_check_is_quiet_when_the_bot_has_everything(config_check, setup) -> None:
    _, out = config_check(FakeGuild(**setup))
    assert f"  discord bot permissions: every permission Lens needs, in server {GUILD_ID}\n" in out
    assert "warning" not in out


def test_config_check_says_when_it_cannot_read_the_server(config_check) -> None:
    fake = FakeGuild(bot_in_server=False)
    code, out = config_check(fake)
    assert code == 0
    assert (
        f"  warning: could not read the bot's permissions in server {GUILD_ID}: "
        f"the bot is not in the server {GUILD_ID}"
    ) in out


def test_config_check_asks_discord_nothing_without_a_bot(config_check, monkeypatch) -> None:
    def no_network() -> httpx.AsyncClient:
        raise AssertionError("config check asked Discord without a bot configured")

    monkeypatch.setattr(app_cli, "_discord_http", no_network)
    code, out = config_check(None)
    assert code == 0 and "discord bot permissions" not in out and "warning" not in out
