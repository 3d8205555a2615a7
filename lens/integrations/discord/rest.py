"""Discord's HTTP API v10 with the bot token: DMs and channel posts from any process.

The gateway connection belongs to the one `lens bot` process; web and worker processes
send through this client instead.

Rate limits (ratelimit.py): every client of the process shares one `RateLimits`, so a
global 429, an exhausted bucket and the count of invalid answers hold for all of them. A
429 is waited out and retried (up to 3 tries) when Discord asks for at most `max_wait`
seconds, otherwise it becomes IntegrationUnavailable and the job runner retries later.
A person's messages (`send_dm`, `post_message`) are essential: they still go when the
process nears Discord's invalid-request ban, where requests that can wait are held.
"""

from __future__ import annotations

from typing import Any

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.ratelimit import RateLimits, Route, process_limits, retry_after
from lens.logging import get_logger

log = get_logger("lens.discord")

API_BASE = "https://discord.com/api/v10"
# Discord rejects bot requests whose User-Agent is not in this form.
USER_AGENT = "DiscordBot (https://github.com/lens-academy/lens, 0.1)"
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_NONCE = 25
_TRIES = 3
_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_DMS_CLOSED = 50007


class DiscordRest:
    """Sends messages as the bot.

    Content over 2000 characters raises ValueError instead of being split: a split
    reminder could cut a link or a Markdown block in two, so the caller that renders the
    message decides how to shorten it.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: str,
        base_url: str = API_BASE,
        max_wait: float = 10.0,
        limits: RateLimits | None = None,
    ) -> None:
        self.http = http
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.max_wait = max_wait
        # Shared by every client of the process unless a test gives its own.
        self.limits = limits if limits is not None else process_limits()
        # A user's DM channel never changes, and opening one costs a rate-limited call.
        self._dm_channels: dict[str, str] = {}
        # Discord bans an IP (via Cloudflare) after 10,000 401/403/429 answers in ten
        # minutes; a sweep of reminders with a revoked token would get there.
        self._token_rejected = False

    def __repr__(self) -> str:
        return f"DiscordRest(base_url={self.base_url!r})"

    async def send_dm(
        self,
        discord_user_id: str,
        content: str,
        *,
        embeds: list[dict[str, Any]] | None = None,
        nonce: str | None = None,
    ) -> str:
        """Send a direct message; returns the message id.

        With a nonce, Discord answers a repeat within a few minutes with the first
        message instead of posting a second one (enforce_nonce).
        """
        body = _message_body(content, embeds, nonce)
        channel_id = self._dm_channels.get(discord_user_id)
        if channel_id is None:
            channel = await self._request(
                "POST",
                "/users/@me/channels",
                {"recipient_id": discord_user_id},
                dm_user=discord_user_id,
            )
            channel_id = _id(channel)
            self._dm_channels[discord_user_id] = channel_id
        message = await self._request(
            "POST", f"/channels/{channel_id}/messages", body, dm_user=discord_user_id
        )
        message_id = _id(message)
        log.info("discord.dm.sent", discord_user_id=discord_user_id, message_id=message_id)
        return message_id

    async def post_message(
        self,
        channel_id: str,
        content: str,
        *,
        embeds: list[dict[str, Any]] | None = None,
        nonce: str | None = None,
    ) -> str:
        """Post in a server channel; returns the message id (nonce as for send_dm)."""
        body = _message_body(content, embeds, nonce)
        message = await self._request("POST", f"/channels/{channel_id}/messages", body)
        message_id = _id(message)
        log.info("discord.message.sent", channel_id=channel_id, message_id=message_id)
        return message_id

    # A person is waiting for these: they still go near the invalid-request limit.
    _messages_are_essential = True

    async def _request(
        self, method: str, path: str, body: dict[str, Any], *, dm_user: str | None = None
    ) -> dict[str, Any]:
        response = await self._send(method, path, body, essential=self._messages_are_essential)
        return self._result(response, dm_user=dm_user)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        essential: bool = False,
    ) -> httpx.Response:
        """One call, waiting out rate limits (up to `max_wait`, `_TRIES` tries); the
        first answer that is not a 429."""
        if self._token_rejected:
            raise _bad_token()
        route = Route.of(method, path)
        headers = {
            "Authorization": f"Bot {self._token}",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        for attempt in range(1, _TRIES + 1):
            await self.limits.acquire(route, max_wait=self.max_wait, essential=essential)
            try:
                response = await self.http.request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=_TIMEOUT,
                )
            except httpx.TransportError as exc:
                raise IntegrationUnavailable(f"Discord unreachable: {type(exc).__name__}") from exc
            self.limits.record(route, response)
            if response.status_code != 429:
                return response
            wait = retry_after(response)
            if wait is None:
                raise IntegrationUnavailable(
                    "Discord rate limited the bot without saying for how long"
                )
            if wait > self.max_wait:
                raise IntegrationUnavailable(f"Discord rate limited the bot for {wait:g} s")
            # The next attempt's acquire() waits: the bucket (or everything) is held.
            log.info(
                "discord.rate_limited",
                route=route.key,
                retry_after=wait,
                attempt=attempt,
                scope=response.headers.get("X-RateLimit-Scope"),
            )
        raise IntegrationUnavailable(f"Discord still rate limited the bot after {_TRIES} tries")

    def _result(self, response: httpx.Response, *, dm_user: str | None) -> dict[str, Any]:
        status = response.status_code
        if status in (200, 201):
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise IntegrationUnavailable("Discord answered with something unexpected")
            return data
        code, message = _error(response)
        if status == 401:
            self._token_rejected = True
            raise _bad_token()
        if code == _DMS_CLOSED:
            who = f"Discord user {dm_user}" if dm_user else "The recipient"
            raise IntegrationRejected(
                f"{who} has direct messages from server members turned off (code {code})"
            )
        if status >= 500:
            raise IntegrationUnavailable(f"Discord answered HTTP {status}")
        if 400 <= status < 500:
            # 404 is Unknown User (10013) or Unknown Channel (10003): asking again won't help.
            raise IntegrationRejected(f"Discord refused the request (HTTP {status}): {message}")
        raise IntegrationUnavailable(f"Discord answered HTTP {status}")


def _message_body(
    content: str, embeds: list[dict[str, Any]] | None, nonce: str | None
) -> dict[str, Any]:
    if len(content) > MAX_CONTENT:
        raise ValueError(f"Discord messages hold {MAX_CONTENT} characters, not {len(content)}")
    if not content and not embeds:
        raise ValueError("a Discord message needs content or an embed")
    if embeds and len(embeds) > MAX_EMBEDS:
        raise ValueError(f"a Discord message holds {MAX_EMBEDS} embeds, not {len(embeds)}")
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE:
        raise ValueError(f"a Discord nonce has 1 to {MAX_NONCE} characters, not {len(nonce)}")
    # No mentions ever ping: a name in a template must not become @everyone.
    body: dict[str, Any] = {"content": content, "allowed_mentions": {"parse": []}}
    if embeds:
        body["embeds"] = embeds
    if nonce is not None:
        body["nonce"] = nonce
        body["enforce_nonce"] = True
    return body


def _id(data: dict[str, Any]) -> str:
    if "id" not in data:
        raise IntegrationUnavailable("Discord answered without an id")
    return str(data["id"])


def _bad_token() -> IntegrationUnavailable:
    return IntegrationUnavailable("Discord rejected the bot token: check DISCORD_BOT_TOKEN")


def _error(response: httpx.Response) -> tuple[int | None, str]:
    """Discord's JSON error: {"code": 50007, "message": "Cannot send messages to this user"}."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, response.reason_phrase
    code = data.get("code")
    message = str(data.get("message") or response.reason_phrase)
    if isinstance(code, int):
        return code, f"{message} (code {code})"
    return None, message
