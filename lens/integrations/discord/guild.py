"""One Discord server (guild) as the bot manages it over HTTP API v10: channels and
their permission overwrites, members, scheduled events, and the bot's own messages.

It is DiscordRest (rest.py) with more routes: the same bot token, User-Agent, rate-limit
handling (the process's shared RateLimits, ratelimit.py) and error classes
(IntegrationUnavailable = try later, IntegrationRejected = will not work). What this
client adds: bodiless requests (GET, DELETE), answers that are lists or empty (204), an
`X-Audit-Log-Reason` on every change so the server's audit log says why the bot did it,
`DiscordNotFound` for 404s, which callers read as "already gone", and the bot's own
server permissions compared with what Lens needs (`BOT_PERMISSIONS`, `lens config check`).
Its requests can wait: near Discord's invalid-request limit they are held (ratelimit.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.rest import (
    DiscordRest,
    _bad_token,
    _error,
    _id,
    _message_body,
)
from lens.logging import get_logger
from lens.settings import Settings

log = get_logger("lens.discord.guild")

# Channel types (https://discord.com/developers/docs/resources/channel#channel-object).
GUILD_TEXT = 0
GUILD_VOICE = 2
GUILD_CATEGORY = 4

# Permission overwrite target types.
ROLE = 0
MEMBER = 1

# Scheduled events: entity type VOICE, privacy GUILD_ONLY (the only one there is),
# statuses SCHEDULED 1, ACTIVE 2, COMPLETED 3, CANCELED 4.
EVENT_VOICE = 2
EVENT_GUILD_ONLY = 2
EVENT_SCHEDULED = 1

# JSON error codes that a 404 carries.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_MEMBER = 10007
UNKNOWN_USER = 10013
UNKNOWN_EVENT = 10070

MAX_NAME = 100  # channel and event names
MAX_TOPIC = 1024
MAX_EVENT_DESCRIPTION = 1000
MAX_AUDIT_REASON = 512


class Permission:
    """Permission bits as Discord documents them (topics/permissions)."""

    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28  # on a channel: "Manage Permissions", editing its overwrites
    MANAGE_EVENTS = 1 << 33  # editing and deleting events made by anyone
    # Creating events (and editing and deleting the bot's own). Since 2026-02-23 a bot
    # needs it to create an event: Manage Events alone no longer does.
    CREATE_EVENTS = 1 << 44


# Every permission, for the server owner and Administrator (Discord: "return ALL").
ALL_PERMISSIONS = (1 << 64) - 1

# The names Discord's app shows (its URL generator and role settings use these).
PERMISSION_NAMES = {
    Permission.ADMINISTRATOR: "Administrator",
    Permission.MANAGE_CHANNELS: "Manage Channels",
    Permission.ADD_REACTIONS: "Add Reactions",
    Permission.VIEW_CHANNEL: "View Channels",
    Permission.SEND_MESSAGES: "Send Messages",
    Permission.EMBED_LINKS: "Embed Links",
    Permission.ATTACH_FILES: "Attach Files",
    Permission.READ_MESSAGE_HISTORY: "Read Message History",
    Permission.CONNECT: "Connect",
    Permission.SPEAK: "Speak",
    Permission.MOVE_MEMBERS: "Move Members",
    Permission.USE_VAD: "Use Voice Activity",
    Permission.MANAGE_NICKNAMES: "Manage Nicknames",
    Permission.MANAGE_ROLES: "Manage Roles",
    Permission.MANAGE_EVENTS: "Manage Events",
    Permission.CREATE_EVENTS: "Create Events",
}

# What the bot is invited with: everything Lens does in the server (docs/discord.md lists
# why each is needed; its invite link carries this integer, which a test checks).
# Discord lets a bot allow in a channel overwrite only what it has itself, so the bits
# members get in their group's channels are here too. Manage Events stays beside Create
# Events: an event made by someone else (adopted by name) needs it to be edited.
BOT_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.EMBED_LINKS
    | Permission.MANAGE_CHANNELS
    | Permission.MANAGE_ROLES
    | Permission.ADD_REACTIONS
    | Permission.ATTACH_FILES
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.USE_VAD
    | Permission.MANAGE_EVENTS
    | Permission.CREATE_EVENTS
    | Permission.MOVE_MEMBERS
    | Permission.MANAGE_NICKNAMES
)
INVITE_SCOPES = "bot+applications.commands"


def invite_url(client_id: str, permissions: int = BOT_PERMISSIONS) -> str:
    """The link that adds the bot to a server with the permissions Lens needs."""
    return (
        f"https://discord.com/oauth2/authorize?client_id={client_id}"
        f"&scope={INVITE_SCOPES}&permissions={permissions}"
    )


def permission_names(bits: int) -> list[str]:
    """The permissions in `bits` by the names Discord's app shows, lowest bit first."""
    return [name for bit, name in sorted(PERMISSION_NAMES.items()) if bits & bit]


def base_permissions(guild: dict[str, Any], member: dict[str, Any]) -> int:
    """A member's server-wide permissions, as Discord's permissions topic computes them:
    everything for the owner; else @everyone's and each of the member's roles' bits,
    everything if that includes Administrator."""
    user_id = str((member.get("user") or {}).get("id", ""))
    if user_id and str(guild.get("owner_id")) == user_id:
        return ALL_PERMISSIONS
    roles = {str(r["id"]): int(r.get("permissions") or 0) for r in guild.get("roles") or []}
    bits = roles.get(str(guild.get("id")), 0)  # @everyone has the server's id
    for role_id in member.get("roles") or []:
        bits |= roles.get(str(role_id), 0)
    return ALL_PERMISSIONS if bits & Permission.ADMINISTRATOR else bits


class DiscordNotFound(IntegrationRejected):
    """Discord answered 404: the channel, message, member or event does not exist."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Overwrite:
    """A channel's permission overwrite for a role (the server's id is @everyone) or a
    member. Discord sends the bit sets as decimal strings (they exceed 2**53)."""

    id: str
    type: int
    allow: int = 0
    deny: int = 0

    def to_json(self) -> dict[str, Any]:
        """As Discord answers with it (bit sets as strings)."""
        return {"id": self.id, "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}

    def to_request(self) -> dict[str, Any]:
        """As a request sends it. Discord's OpenAPI description types a request's `allow`
        and `deny` as integers (its docs call them strings and accept both); every bit
        Discord defines is below 2**53, so the number is exact in any JSON reader."""
        return {"id": self.id, "type": self.type, "allow": self.allow, "deny": self.deny}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Overwrite:
        return cls(
            id=str(data["id"]),
            type=int(data.get("type", ROLE)),
            allow=int(data.get("allow") or 0),
            deny=int(data.get("deny") or 0),
        )


@dataclass(frozen=True)
class Channel:
    id: str
    type: int
    name: str
    parent_id: str | None
    topic: str | None
    overwrites: tuple[Overwrite, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        parent = data.get("parent_id")
        return cls(
            id=_id(data),
            type=int(data.get("type", GUILD_TEXT)),
            name=str(data.get("name") or ""),
            parent_id=str(parent) if parent else None,
            topic=data.get("topic") or None,
            overwrites=tuple(
                Overwrite.from_json(o) for o in data.get("permission_overwrites") or []
            ),
        )


@dataclass(frozen=True)
class ScheduledEvent:
    id: str
    name: str
    description: str | None
    channel_id: str | None
    starts_at: datetime
    ends_at: datetime | None
    status: int
    entity_type: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduledEvent:
        end = data.get("scheduled_end_time")
        channel = data.get("channel_id")
        return cls(
            id=_id(data),
            name=str(data.get("name") or ""),
            description=data.get("description") or None,
            channel_id=str(channel) if channel else None,
            starts_at=parse_time(str(data["scheduled_start_time"])),
            ends_at=parse_time(str(end)) if end else None,
            status=int(data.get("status", EVENT_SCHEDULED)),
            entity_type=int(data.get("entity_type", EVENT_VOICE)),
        )


@dataclass(frozen=True)
class Message:
    id: str
    channel_id: str
    author_id: str | None
    content: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        author = data.get("author") or {}
        return cls(
            id=_id(data),
            channel_id=str(data.get("channel_id") or ""),
            author_id=str(author["id"]) if "id" in author else None,
            content=str(data.get("content") or ""),
        )


def parse_time(value: str) -> datetime:
    """Discord's ISO 8601 timestamps, as aware UTC datetimes."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to Discord; use an aware UTC value")
    return value.astimezone(UTC).isoformat()


class DiscordGuild(DiscordRest):
    """The bot's view of one server. Every method is one HTTP request (but
    `bot_permissions`, which reads three)."""

    # Welcome posts are part of a realization, which the job runner retries.
    _messages_are_essential = False

    def __init__(self, http: httpx.AsyncClient, *, token: str, guild_id: str, **kwargs: Any):
        super().__init__(http, token=token, **kwargs)
        self.guild_id = guild_id

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> DiscordGuild:
        """The server named by DISCORD_SERVER_ID, with the bot's own token."""
        if not settings.discord_bot_token or not settings.discord_server_id:
            raise ValueError("DISCORD_BOT_TOKEN and DISCORD_SERVER_ID are needed")
        return cls(
            http,
            token=settings.discord_bot_token,
            guild_id=settings.discord_server_id,
            base_url=settings.discord_api_base,
        )

    def __repr__(self) -> str:
        return f"DiscordGuild(guild_id={self.guild_id!r}, base_url={self.base_url!r})"

    @property
    def everyone_role_id(self) -> str:
        # The @everyone role has the server's own id.
        return self.guild_id

    # -- the bot ---------------------------------------------------------------------

    async def bot_user_id(self) -> str:
        return _id(await self._call("GET", "/users/@me"))

    async def bot_permissions(self) -> int:
        """The bot's server-wide permissions (its roles, @everyone's, Administrator and
        ownership), read from the server: what `lens config check` compares with
        BOT_PERMISSIONS. IntegrationRejected when the bot is not in the server."""
        bot_id = await self.bot_user_id()
        guild = _dict(await self._call("GET", f"/guilds/{self.guild_id}"))
        member = await self.get_member(bot_id)
        if member is None:
            raise IntegrationRejected(f"the bot is not in the server {self.guild_id}")
        return base_permissions(guild, member)

    async def missing_permissions(self) -> int:
        """The bits of BOT_PERMISSIONS the bot does not have in the server."""
        return BOT_PERMISSIONS & ~await self.bot_permissions()

    # -- channels ----------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        data = await self._call("GET", f"/guilds/{self.guild_id}/channels")
        return [Channel.from_json(c) for c in _list(data)]

    async def create_channel(
        self,
        *,
        name: str,
        type: int,
        parent_id: str | None = None,
        topic: str | None = None,
        overwrites: list[Overwrite] | tuple[Overwrite, ...] = (),
        reason: str,
    ) -> Channel:
        body: dict[str, Any] = {
            "name": _name(name),
            "type": type,
            "permission_overwrites": [o.to_request() for o in overwrites],
        }
        if parent_id is not None:
            body["parent_id"] = parent_id
        if topic is not None:
            body["topic"] = topic[:MAX_TOPIC]
        data = await self._call("POST", f"/guilds/{self.guild_id}/channels", body, reason=reason)
        channel = Channel.from_json(_dict(data))
        log.info("discord.channel.created", channel_id=channel.id, type=type)
        return channel

    async def modify_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        topic: str | None = None,
        parent_id: str | None = None,
        overwrites: list[Overwrite] | tuple[Overwrite, ...] | None = None,
        reason: str,
    ) -> Channel:
        """Change what is given; `overwrites` replaces the channel's whole list."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = _name(name)
        if topic is not None:
            body["topic"] = topic[:MAX_TOPIC]
        if parent_id is not None:
            body["parent_id"] = parent_id
        if overwrites is not None:
            body["permission_overwrites"] = [o.to_request() for o in overwrites]
        if not body:
            raise ValueError("nothing to change")
        data = await self._call("PATCH", f"/channels/{channel_id}", body, reason=reason)
        return Channel.from_json(_dict(data))

    async def delete_channel(self, channel_id: str, *, reason: str) -> None:
        await self._call("DELETE", f"/channels/{channel_id}", reason=reason)
        log.info("discord.channel.deleted", channel_id=channel_id)

    async def set_overwrite(self, channel_id: str, overwrite: Overwrite, *, reason: str) -> None:
        """Add or replace one overwrite, leaving the channel's others alone."""
        body = {"type": overwrite.type, "allow": overwrite.allow, "deny": overwrite.deny}
        await self._call(
            "PUT", f"/channels/{channel_id}/permissions/{overwrite.id}", body, reason=reason
        )

    async def delete_overwrite(self, channel_id: str, overwrite_id: str, *, reason: str) -> None:
        await self._call(
            "DELETE", f"/channels/{channel_id}/permissions/{overwrite_id}", reason=reason
        )

    # -- members -----------------------------------------------------------------------

    async def get_member(self, user_id: str) -> dict[str, Any] | None:
        """The member object, or None when the user is not in the server."""
        try:
            data = await self._call("GET", f"/guilds/{self.guild_id}/members/{user_id}")
        except DiscordNotFound:
            return None
        return _dict(data)

    async def list_member_ids(self) -> set[str]:
        """Everyone in the server, 1,000 per request (needs the Server Members intent
        enabled for the application)."""
        ids: set[str] = set()
        after = "0"
        while True:
            page = await self._call(
                "GET", f"/guilds/{self.guild_id}/members", params={"limit": 1000, "after": after}
            )
            if not isinstance(page, list):
                raise IntegrationUnavailable("Discord answered the member list with no list")
            batch = [str(m["user"]["id"]) for m in page if isinstance(m, dict) and "user" in m]
            ids.update(batch)
            if len(page) < 1000 or not batch:
                return ids
            after = max(batch, key=int)

    async def set_nickname(self, user_id: str, nickname: str | None, *, reason: str) -> None:
        """The member's server nickname (None clears it). Discord refuses to rename the
        server's owner and members above the bot's highest role (403)."""
        nick = nickname[:32] if nickname else None  # Discord's limit for nicknames
        await self._call(
            "PATCH", f"/guilds/{self.guild_id}/members/{user_id}", {"nick": nick}, reason=reason
        )

    # -- scheduled events --------------------------------------------------------------

    async def list_scheduled_events(self) -> list[ScheduledEvent]:
        data = await self._call("GET", f"/guilds/{self.guild_id}/scheduled-events")
        return [ScheduledEvent.from_json(e) for e in _list(data)]

    async def create_voice_event(
        self,
        *,
        channel_id: str,
        name: str,
        description: str,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> ScheduledEvent:
        """An event in a voice channel. Discord refuses a start time in the past."""
        body = {
            "channel_id": channel_id,
            "entity_type": EVENT_VOICE,
            "privacy_level": EVENT_GUILD_ONLY,
            "name": _name(name),
            "description": description[:MAX_EVENT_DESCRIPTION],
            "scheduled_start_time": format_time(starts_at),
            "scheduled_end_time": format_time(ends_at),
        }
        data = await self._call(
            "POST", f"/guilds/{self.guild_id}/scheduled-events", body, reason=reason
        )
        event = ScheduledEvent.from_json(_dict(data))
        log.info("discord.event.created", event_id=event.id, channel_id=channel_id)
        return event

    async def modify_voice_event(
        self,
        event_id: str,
        *,
        channel_id: str,
        name: str,
        description: str,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> ScheduledEvent:
        body = {
            "channel_id": channel_id,
            "entity_type": EVENT_VOICE,
            "name": _name(name),
            "description": description[:MAX_EVENT_DESCRIPTION],
            "scheduled_start_time": format_time(starts_at),
            "scheduled_end_time": format_time(ends_at),
        }
        data = await self._call(
            "PATCH", f"/guilds/{self.guild_id}/scheduled-events/{event_id}", body, reason=reason
        )
        return ScheduledEvent.from_json(_dict(data))

    async def delete_scheduled_event(self, event_id: str, *, reason: str) -> None:
        await self._call(
            "DELETE", f"/guilds/{self.guild_id}/scheduled-events/{event_id}", reason=reason
        )
        log.info("discord.event.deleted", event_id=event_id)

    # -- messages ----------------------------------------------------------------------

    async def edit_message(self, channel_id: str, message_id: str, content: str) -> str:
        """Replace a message's content (the bot's own messages only); mentions never ping."""
        body = _message_body(content, None, None)
        data = await self._call("PATCH", f"/channels/{channel_id}/messages/{message_id}", body)
        return _id(_dict(data))

    async def list_messages(self, channel_id: str, *, limit: int = 50) -> list[Message]:
        """The channel's latest messages, newest first (at most 100)."""
        data = await self._call(
            "GET", f"/channels/{channel_id}/messages", params={"limit": min(max(limit, 1), 100)}
        )
        return [Message.from_json(m) for m in _list(data)]

    # -- the request -------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> Any:
        """DiscordRest's call for any route: optional body, JSON list or 204 answers."""
        headers = {}
        if reason:
            # Header values are ASCII: Discord documents URL-encoding the reason.
            headers["X-Audit-Log-Reason"] = quote(reason[:MAX_AUDIT_REASON], safe=" ")
        response = await self._send(method, path, body, params=params, headers=headers)
        return self._answer(f"{method} {path}", response)

    def _answer(self, route: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 204:
            return None
        if status in (200, 201):
            try:
                return response.json()
            except ValueError:
                raise IntegrationUnavailable("Discord answered with something unexpected") from None
        code, message = _error(response)
        if status == 401:
            self._token_rejected = True
            raise _bad_token()
        if status == 404:
            raise DiscordNotFound(f"Discord: not found ({route}): {message}", code)
        if status >= 500:
            raise IntegrationUnavailable(f"Discord answered HTTP {status}")
        if 400 <= status < 500:
            # 403 Missing Permissions (50013) is a server setting to fix, not a retry.
            raise IntegrationRejected(f"Discord refused {route} (HTTP {status}): {message}")
        raise IntegrationUnavailable(f"Discord answered HTTP {status}")


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("a Discord channel or event needs a name")
    return name[:MAX_NAME]


def _dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise IntegrationUnavailable("Discord answered with something unexpected")
    return data


def _list(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise IntegrationUnavailable("Discord answered with something unexpected")
    return data
