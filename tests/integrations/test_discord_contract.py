"""The Discord fakes keep to Discord's description, and the checks that hold them to it
(tests/contracts/discord/checks.py) catch what Discord would refuse or never answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from lens.integrations.discord.guild import MEMBER, Overwrite
from tests.auth.test_discord import FakeDiscord as FakeOAuthDiscord
from tests.contracts.discord import checks
from tests.contracts.validator import VIOLATIONS, ContractViolation
from tests.fixtures.fake_discord import (
    BOT_ID,
    GUILD_ID,
    FakeGuild,
    error,
    message_object,
    rate_limited,
    user_object,
)
from tests.notifications.fake_providers import ProviderServer
from tests.notifications.fakes import DISCORD_TOKEN, RecordingDiscord

API = "https://discord.com/api/v10"
UA = {"User-Agent": "DiscordBot (https://github.com/lens-academy/lens, 0.1)"}
BOT = {"Authorization": "Bot t", **UA}
TOKEN_URL = "https://discord.com/api/oauth2/token"


def violates(check: Callable[[], Any], match: str) -> None:
    """`check` raises ContractViolation matching `match`; the violation it recorded is
    taken back, as it was meant (the autouse fixture fails a test on any left)."""
    with pytest.raises(ContractViolation, match=match) as caught:
        check()
    VIOLATIONS.remove(str(caught.value))


def through(handler: Callable[[httpx.Request], httpx.Response], request: httpx.Request) -> None:
    checks.checked(handler)(request)


# -- the fakes -------------------------------------------------------------------------------


async def test_the_token_fake_answers_oauth_errors_as_json() -> None:
    # Discord's token endpoint answers errors as RFC 6749 does, not as plain text.
    fake = FakeOAuthDiscord(token_status=400)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        response = await http.post(
            TOKEN_URL,
            content="grant_type=authorization_code&code=the-code"
            "&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fauth%2Fdiscord%2Fcallback"
            "&client_id=1234567890&client_secret=client-secret-xyz",
            headers={"Content-Type": "application/x-www-form-urlencoded", **UA},
        )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": 'Invalid "code" in request.',
    }


async def test_the_notification_fake_checks_the_token_and_answers_with_snowflakes() -> None:
    fake = RecordingDiscord()
    # Without the bot's token Discord answers 401, whatever the request.
    refused = fake.handle(
        httpx.Request(
            "POST",
            f"{API}/users/@me/channels",
            json={"recipient_id": "100000000000000001"},
            headers={"Authorization": "Bot wrong", **UA},
        )
    )
    assert refused.status_code == 401 and refused.json() == {
        "message": "401: Unauthorized",
        "code": 0,
    }
    message_id = await fake.send_dm("100000000000000001", "Your group meets on Monday")
    assert message_id.isdigit() and len(message_id) >= 17
    opened, posted = fake.requests[-2:]
    assert opened.headers["Authorization"] == f"Bot {DISCORD_TOKEN}"
    channel_id = posted.url.path.split("/")[4]
    assert channel_id.isdigit() and len(channel_id) >= 17


def test_the_worker_processes_fake_checks_the_token_and_answers_with_snowflakes() -> None:
    with ProviderServer() as server:
        api = server.url + "/api/v10"
        refused = httpx.post(
            f"{api}/users/@me/channels",
            json={"recipient_id": "100000000000000001"},
            headers={"Authorization": "Bot wrong", **UA},
        )
        opened = httpx.post(
            f"{api}/users/@me/channels",
            json={"recipient_id": "100000000000000001"},
            headers={"Authorization": "Bot bot-test", **UA},
        )
        channel = opened.json()["id"]
        posted = httpx.post(
            f"{api}/channels/{channel}/messages",
            json={"content": "hello", "allowed_mentions": {"parse": []}, "nonce": "n1"},
            headers={"Authorization": "Bot bot-test", **UA},
        )
    assert refused.status_code == 401 and refused.json()["code"] == 0
    assert opened.status_code == 200 and channel.isdigit() and len(channel) >= 17
    assert opened.json()["recipients"][0]["id"] == "100000000000000001"
    assert posted.status_code == 200
    message = posted.json()
    assert message["id"].isdigit() and message["channel_id"] == channel
    assert {"author", "timestamp", "mention_everyone", "tts", "flags"} <= set(message)


async def test_every_answer_of_the_server_fake_has_the_fields_discord_requires() -> None:
    # Each call below is checked against the description (member objects with `pending`
    # and `flags`, users with `discriminator`, messages with `mention_everyone` ...).
    fake = FakeGuild()
    fake.members.add("100000000000000001")
    guild = fake.client()
    category = await guild.create_channel(name="Spring", type=4, reason="r")
    voice = await guild.create_channel(
        name="Group 1",
        type=2,
        parent_id=category.id,
        overwrites=[Overwrite(BOT_ID, MEMBER, allow=1 << 10 | 1 << 20)],
        reason="r",
    )
    text = await guild.create_channel(name="group-1", type=0, topic="t", reason="r")
    start = datetime.now(UTC) + timedelta(days=2)
    event = await guild.create_voice_event(
        channel_id=voice.id,
        name="Meeting 1",
        description="d",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        reason="r",
    )
    message_id = await guild.post_message(text.id, "Welcome")
    await guild.edit_message(text.id, message_id, "Welcome!")
    assert [m.id for m in await guild.list_messages(text.id)] == [message_id]
    assert await guild.get_member("100000000000000001") is not None
    assert await guild.list_member_ids() == {"100000000000000001", BOT_ID}
    assert [e.id for e in await guild.list_scheduled_events()] == [event.id]
    await guild.set_nickname("100000000000000001", "Ada", reason="r")
    await guild.delete_scheduled_event(event.id, reason="r")
    await guild.delete_channel(text.id, reason="r")
    assert await guild.bot_permissions() > 0
    assert set(fake.answers) <= {200, 201, 204}


async def test_the_server_fake_refuses_a_wrong_token_as_discord_does() -> None:
    fake = FakeGuild(token="right")
    http = httpx.AsyncClient(transport=fake.transport())
    response = await http.get(f"{API}/guilds/{GUILD_ID}/channels", headers={**UA, **BOT})
    assert response.status_code == 401
    assert response.json() == {"message": "401: Unauthorized", "code": 0}


# -- the checks ------------------------------------------------------------------------------


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


def test_a_request_without_the_bots_token_or_user_agent_is_caught() -> None:
    url = f"{API}/guilds/{GUILD_ID}/channels"
    violates(lambda: through(ok, httpx.Request("GET", url, headers=UA)), "Authorization")
    violates(
        lambda: through(ok, httpx.Request("GET", url, headers={"Authorization": "Bot t"})),
        "User-Agent",
    )
    violates(
        lambda: through(ok, httpx.Request("GET", url, headers={"Authorization": "Bearer t", **UA})),
        "Authorization",
    )
    through(ok, httpx.Request("GET", url, headers=BOT))


def test_ids_that_are_not_snowflakes_are_caught_in_paths_and_answers() -> None:
    violates(
        lambda: through(
            lambda r: httpx.Response(
                200, json=message_object("1", "1", "x", user_object("1", "a"))
            ),
            httpx.Request(
                "POST",
                f"{API}/channels/dm123/messages",
                json={"content": "x"},
                headers=BOT,
            ),
        ),
        "path parameter channel_id='dm123'",
    )
    violates(
        lambda: through(
            lambda r: httpx.Response(200, json={"id": "dm1", "type": 1}),
            httpx.Request(
                "POST", f"{API}/users/@me/channels", json={"recipient_id": "1"}, headers=BOT
            ),
        ),
        "answer 200",
    )


def test_objects_missing_required_fields_are_caught() -> None:
    partial = {"user": {"id": "1"}, "roles": [], "nick": None}  # no joined_at, pending ...
    violates(
        lambda: through(
            lambda r: httpx.Response(200, json=partial),
            httpx.Request("GET", f"{API}/guilds/{GUILD_ID}/members/1", headers=BOT),
        ),
        "answer 200",
    )


@pytest.mark.parametrize(
    "example", checks.facts()["rate_limits"]["examples"], ids=lambda e: e["name"]
)
def test_discords_own_429_examples_pass(example: dict[str, Any]) -> None:
    response = httpx.Response(429, json=example["body"], headers=example["headers"])
    checks.check_rate_limited("example", response)
    checks.check_rate_limit_headers("example", response)


def test_429s_are_held_to_the_rate_limit_topic_not_the_4xx_schema() -> None:
    request = httpx.Request("GET", f"{API}/guilds/{GUILD_ID}/channels", headers=BOT)
    through(lambda r: rate_limited(1.5), request)  # no `code`: fine for a 429
    violates(
        lambda: through(
            lambda r: httpx.Response(429, json={"message": "slow down", "global": False}), request
        ),
        "lacks 'retry_after'",
    )
    violates(
        lambda: through(lambda r: httpx.Response(429, text="<html>1015</html>"), request),
        "JSON body",
    )
    violates(
        lambda: through(
            lambda r: httpx.Response(
                429,
                json={"message": "m", "retry_after": 1.0, "global": True},
                headers={"X-RateLimit-Scope": "user"},
            ),
            request,
        ),
        "disagree",
    )


def test_rate_limit_headers_come_together_and_scope_only_on_429s() -> None:
    request = httpx.Request("GET", f"{API}/guilds/{GUILD_ID}/channels", headers=BOT)
    violates(
        lambda: through(
            lambda r: httpx.Response(200, json=[], headers={"X-RateLimit-Remaining": "0"}),
            request,
        ),
        "come without",
    )
    violates(
        lambda: through(
            lambda r: httpx.Response(200, json=[], headers={"X-RateLimit-Scope": "user"}),
            request,
        ),
        "only on HTTP 429",
    )


def test_server_errors_are_documented_by_status_only() -> None:
    request = httpx.Request("GET", f"{API}/guilds/{GUILD_ID}/channels", headers=BOT)
    through(lambda r: httpx.Response(502, text="Bad Gateway"), request)
    through(lambda r: error(503, 0, "upstream connect error"), request)


FORM = (
    "grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fx%2Fcb"
    "&client_id=1&client_secret=s&code_verifier=" + "v" * 43
)


def token_request(content: str, **headers: str) -> httpx.Request:
    return httpx.Request(
        "POST",
        TOKEN_URL,
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded", **UA, **headers},
    )


def token_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": "a",
            "token_type": "Bearer",
            "expires_in": 604800,
            "scope": "identify",
        },
    )


def test_the_token_endpoint_is_held_to_discords_oauth_description() -> None:
    through(token_ok, token_request(FORM))
    violates(
        lambda: through(token_ok, httpx.Request("POST", TOKEN_URL, json={"code": "c"}, headers=UA)),
        "only application/x-www-form-urlencoded",
    )
    violates(
        lambda: through(token_ok, token_request(FORM.replace("v" * 43, "v" * 42))),
        "code_verifier",
    )
    violates(
        lambda: through(token_ok, token_request(FORM.replace("&client_secret=s", ""))),
        "client authentication",
    )
    violates(
        lambda: through(
            lambda r: httpx.Response(400, text="upstream trouble"), token_request(FORM)
        ),
        "content type",
    )
    violates(
        lambda: through(
            lambda r: httpx.Response(400, json={"message": "bad", "code": 0}), token_request(FORM)
        ),
        "'error' must be a string",
    )
    through(lambda r: httpx.Response(400, json={"error": "invalid_grant"}), token_request(FORM))


def test_discords_token_example_passes() -> None:
    example = checks.http_facts()["oauth2_token"]["response"]["example"]
    checks.check_token_response(httpx.Response(200, json=example))
    for documented in checks.http_facts()["oauth2_token"]["error"]["examples"]:
        checks.check_token_response(httpx.Response(documented["status"], json=documented["body"]))


# -- the gateway payloads (tests/contracts/discord/gateway) ----------------------------------


GATEWAY = Path(__file__).parents[1] / "contracts" / "discord" / "gateway"


def schema_errors(value: Any, schema: str) -> list[str]:
    contract = checks.contract()
    validator = Draft202012Validator(
        {"$ref": f"urn:lens:contract:discord#/components/schemas/{schema}"},
        registry=contract.registry,
    )
    return [e.message for e in validator.iter_errors(value)]


def test_the_gateway_payloads_objects_fit_the_rest_descriptions_schemas() -> None:
    # Members and roles are the same objects the REST API returns.
    def event(name: str) -> dict[str, Any]:
        return dict(json.loads((GATEWAY / f"{name}.json").read_text())["d"])

    guild = event("guild_create")
    members = [
        *guild["members"],
        {k: v for k, v in event("guild_member_add").items() if k != "guild_id"},
        event("voice_state_update")["member"],
    ]
    for member in members:
        assert schema_errors(member, "GuildMemberResponse") == [], member["user"]["id"]
    for role in guild["roles"]:
        assert schema_errors(role, "GuildRoleResponse") == [], role["id"]
    assert schema_errors(event("ready")["user"], "UserResponse") == []
