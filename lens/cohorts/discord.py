"""A cohort's active groups, realized in the Discord server over the REST API.

Per cohort a private category; per active group a text channel `group-N` and a voice
channel `Group N` in it, open to the group's members and facilitator through member
permission overwrites; a welcome message in the text channel; one scheduled event per
meeting ahead. `realize_cohort` is an explicit diff between what the database says
should exist and what exists (the `discord_spaces` mapping plus the server's channels
and events, read fresh each run): create what is missing, update what differs, delete
what no longer belongs. Running it twice changes nothing; after a partial failure, the
next run finishes the job.

What Lens owns, and so changes back when someone edits it by hand in Discord: on its
channels, the name, topic, parent category, the @everyone and bot overwrites and every
member overwrite; role overwrites other than @everyone are left as an admin set them
(a "Mentors" role given access, say). Channels and events deleted by hand are made
again. A welcome message deleted by hand is posted again the next time its text
changes (keeping Discord's copy unread saves a request per group and run).

Steps are independent where Discord allows: one failing (IntegrationRejected or
IntegrationUnavailable) is recorded in the report and the run goes on with the steps
that do not need its result (no group channels without the category, no events
without the voice channel).

Crash safety. Each thing created is mapped (a `discord_spaces` row, flushed at once),
but the rows commit with the caller's transaction. If that rolls back (the worker dies
mid-run), Discord keeps what was made and the mapping is lost. The next run therefore
adopts before it creates: an unmapped channel of the same type and name under the same
parent, an unmapped voice event of the same name, or the bot's own message in the
group's text channel that carries the group page link, is taken over instead of made
twice. "Unmapped" is checked against every cohort's rows, so two cohorts with the same
name never share a category.

Concurrency: the cohort row is locked (PostgreSQL) for the run, so two realizations of
one cohort wait for each other and the second sees the first's mapping.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.discord_models import DiscordRealization, DiscordSpace, SpaceKind
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
    SignupStatus,
)
from lens.db.base import utcnow
from lens.errors import IntegrationRejected, IntegrationUnavailable, NotFound
from lens.integrations.discord.guild import (
    EVENT_SCHEDULED,
    EVENT_VOICE,
    GUILD_CATEGORY,
    GUILD_TEXT,
    GUILD_VOICE,
    MAX_NAME,
    MEMBER,
    ROLE,
    Channel,
    DiscordGuild,
    DiscordNotFound,
    Message,
    Overwrite,
    Permission,
    ScheduledEvent,
)
from lens.integrations.discord.rest import MAX_CONTENT
from lens.jobs.service import coalesce, enqueue
from lens.logging import get_logger
from lens.meetings.models import Meeting
from lens.users.models import User

log = get_logger("lens.cohorts.discord")

REALIZE_KIND = "discord.realize"

# What a member gets on their group's channels. Voice channels have a text chat of
# their own, hence the message bits there too.
TEXT_ALLOW = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
)
VOICE_ALLOW = (
    Permission.VIEW_CHANNEL
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.USE_VAD
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
)
# The bot keeps seeing and managing what it hid from @everyone. Discord lets a bot
# allow in an overwrite only what it has in the server, so the bot needs these (and
# Manage Events, for the meetings' events) as server permissions.
# No MANAGE_ROLES here: only an Administrator may grant it in an overwrite (Discord
# refuses with 50013 otherwise); the bot's server-wide Manage Roles already lets it edit
# these channels' overwrites.
BOT_ALLOW = (
    Permission.VIEW_CHANNEL
    | Permission.MANAGE_CHANNELS
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.EMBED_LINKS
    | Permission.CONNECT
)
_ERRORS = (IntegrationUnavailable, IntegrationRejected)
REALIZE_LOCK = 0x4C454E5300000000  # "LENS" in the advisory lock's high bits
LIST_MEMBERS_ABOVE = 50  # more members to check than this: list the server instead
_CHANNEL_KINDS = (SpaceKind.CATEGORY, SpaceKind.TEXT, SpaceKind.VOICE)
_KIND_NAMES = {
    SpaceKind.CATEGORY: ("category", "categories"),
    SpaceKind.TEXT: ("text channel", "text channels"),
    SpaceKind.VOICE: ("voice channel", "voice channels"),
    SpaceKind.WELCOME: ("welcome message", "welcome messages"),
    SpaceKind.EVENT: ("event", "events"),
}


# -- the report ------------------------------------------------------------------------


@dataclass
class RealizeReport:
    """What one realization did, and what it skipped or could not do."""

    cohort_id: int
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Failures worth trying again later (Discord down, rate limited): a job re-runs.
    temporary_failures: int = 0

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def summary(self) -> str:
        """A few lines for the admin."""
        parts = []
        for verb, counts in (
            ("created", self.created),
            ("updated", self.updated),
            ("deleted", self.deleted),
        ):
            if counts:
                parts.append(f"{verb} " + ", ".join(_counted(k, n) for k, n in _ordered(counts)))
        lines = [
            f"Discord for cohort {self.cohort_id}: "
            + ("; ".join(parts) if parts else "nothing to change")
            + "."
        ]
        if self.skipped:
            lines.append(f"Skipped ({len(self.skipped)}):")
            lines += [f"- {line}" for line in self.skipped]
        if self.failed:
            lines.append(f"Failed ({len(self.failed)}):")
            lines += [f"- {line}" for line in self.failed]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": {str(k): n for k, n in self.created.items()},
            "updated": {str(k): n for k, n in self.updated.items()},
            "deleted": {str(k): n for k, n in self.deleted.items()},
            "skipped": list(self.skipped),
            "failed": list(self.failed),
            "temporary_failures": self.temporary_failures,
        }


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    order = list(_KIND_NAMES)
    return sorted(counts.items(), key=lambda kv: order.index(SpaceKind(kv[0])))


def _counted(kind: str, n: int) -> str:
    one, many = _KIND_NAMES[SpaceKind(kind)]
    return f"{n} {one if n == 1 else many}"


# -- what should exist -----------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    user_id: int
    name: str  # as other members see it in the welcome message
    admin_name: str  # as the report names them
    discord_id: str | None
    role: str


@dataclass
class _GroupPlan:
    group: Group
    people: list[_Person]
    meetings: list[Meeting]  # every meeting of the group, by number

    @property
    def label(self) -> str:
        return self.group.name


@dataclass(frozen=True)
class _ChannelSpec:
    key: str
    kind: SpaceKind
    type: int
    name: str
    parent_id: str | None
    topic: str | None
    overwrites: tuple[Overwrite, ...]  # the ones Lens owns
    # Members whose presence in the server could not be checked: whatever overwrite
    # they have is kept as it is, neither added nor taken away.
    undecided: frozenset[str] = frozenset()
    group_id: int | None = None

    def fingerprint(self) -> str:
        return _hash(
            {
                "type": self.type,
                "name": self.name,
                "parent": self.parent_id,
                "topic": self.topic,
                "overwrites": [o.to_json() for o in self.overwrites],
            }
        )


@dataclass(frozen=True)
class _EventSpec:
    key: str
    meeting: Meeting
    group_id: int
    name: str
    description: str
    channel_id: str

    def fingerprint(self) -> str:
        return _hash(
            {
                "name": self.name,
                "description": self.description,
                "channel": self.channel_id,
                "start": self.meeting.starts_at.isoformat(),
                "end": self.meeting.ends_at.isoformat(),
            }
        )


def _hash(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(kind: SpaceKind, owner: str, owner_id: int) -> str:
    return f"{kind.value}:{owner}:{owner_id}"


def channel_name(group: Group) -> str:
    return f"group-{group.number}"


def voice_name(group: Group) -> str:
    return group.name


def event_name(cohort: Cohort, group: Group, meeting: Meeting) -> str:
    return f"{cohort.name}: {group.name}, meeting {meeting.number}"[:MAX_NAME]


def group_url(base_url: str, group: Group) -> str:
    return f"{base_url.rstrip('/')}/groups/{group.id}"


def welcome_text(
    *,
    cohort: Cohort,
    group: Group,
    people: Sequence[_Person],
    present: dict[str, bool | None],
    meetings: Sequence[Meeting],
    voice_channel_id: str | None,
    base_url: str,
    now: datetime,
) -> str:
    """The group's welcome post. Mentions never ping (DiscordRest sends no allowed
    mentions); a member not in the server yet is named, as a mention of someone absent
    shows as "unknown user". Times are Discord timestamps, shown in each reader's zone."""
    base = base_url.rstrip("/")

    def who(person: _Person) -> str:
        # Someone whose presence could not be checked keeps their mention: most are in
        # the server, and the message should not flip between runs.
        name = (
            f"<@{person.discord_id}>"
            if person.discord_id and present.get(person.discord_id) is not False
            else person.name[:40]
        )
        return f"{name} (facilitator)" if person.role == Role.FACILITATOR else name

    voice = f"<#{voice_channel_id}>" if voice_channel_id else "your group's voice channel"
    ahead = [m for m in meetings if m.status == "scheduled" and m.ends_at > now]
    if ahead:
        start = int(ahead[0].starts_at.timestamp())
        when = (
            f"**Meetings:** weekly in {voice}. Next: meeting {ahead[0].number}, "
            f"<t:{start}:F> (<t:{start}:R>), shown in your own time zone."
        )
    else:
        when = "**Meetings:** none ahead."
    lines = [
        f"**Welcome to {group.name} of {cohort.name}!**",
        "",
        "**Members:** " + (", ".join(who(p) for p in people) or "none yet"),
        when,
        f"**Group page:** <{group_url(base, group)}>",
        f"**Calendar:** <{base}/account/calendar> (subscribe once; moved meetings follow)",
        "",
        "**First steps**",
        "1. Say hello here: who you are and what brings you to the course.",
        "2. Add the meetings to your calendar with the link above.",
        "3. Read the first module before the first meeting; the group page shows what is due.",
        f"4. At meeting time, join {voice}.",
    ]
    text = "\n".join(lines)
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


# -- the realization ---------------------------------------------------------------------


async def realize_cohort(
    session: AsyncSession,
    *,
    cohort_id: int,
    guild: DiscordGuild,
    base_url: str,
    bot_user_id: str | None = None,
    now: datetime | None = None,
) -> RealizeReport:
    """Make the server match the cohort's active groups; see the module's docstring.

    `bot_user_id` adds the bot's own allow overwrite next to the @everyone deny; leave it
    out only for a bot with Administrator (it would hide the channels from itself).
    The report is also stored (`get_last_report`); the caller commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        # One realization of a cohort at a time, without locking the cohort row: that
        # would hold up approval and grouping for as long as Discord takes.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": REALIZE_LOCK + cohort_id}
        )
    cohort = await session.get(Cohort, cohort_id, populate_existing=True)
    if cohort is None:
        raise NotFound(f"No cohort {cohort_id}.")
    realizer = _Realizer(
        session,
        cohort=cohort,
        guild=guild,
        base_url=base_url,
        bot_user_id=bot_user_id,
        now=now or utcnow(),
    )
    await realizer.run()
    report = realizer.report
    await _save_report(session, report, now=realizer.now)
    log.info(
        "discord.realized",
        cohort=cohort_id,
        created=sum(report.created.values()),
        updated=sum(report.updated.values()),
        deleted=sum(report.deleted.values()),
        skipped=len(report.skipped),
        failed=len(report.failed),
    )
    return report


class _Realizer:
    def __init__(
        self,
        session: AsyncSession,
        *,
        cohort: Cohort,
        guild: DiscordGuild,
        base_url: str,
        bot_user_id: str | None,
        now: datetime,
    ) -> None:
        self.session = session
        self.cohort = cohort
        self.guild = guild
        self.base_url = base_url.rstrip("/")
        self.bot_user_id = bot_user_id
        self.now = now
        self.report = RealizeReport(cohort_id=cohort.id)
        self.rows: dict[str, DiscordSpace] = {}
        self.channels: dict[str, Channel] = {}
        self.events: dict[str, ScheduledEvent] = {}
        self.wanted: set[str] = set()
        self.made_now: set[str] = set()  # keys of channels created in this run
        self.present: dict[str, bool | None] = {}

    # -- the run -------------------------------------------------------------------------

    async def run(self) -> None:
        plans = await self._plans()
        rows = await self.session.scalars(
            select(DiscordSpace).where(DiscordSpace.cohort_id == self.cohort.id)
        )
        self.rows = {row.key: row for row in rows}
        try:
            self.channels = {c.id: c for c in await self.guild.list_channels()}
            self.events = {e.id: e for e in await self.guild.list_scheduled_events()}
        except _ERRORS as exc:
            # Without knowing what exists, any change could duplicate or delete wrongly.
            self._fail("reading the server's channels and events", exc)
            return
        await self._check_presence(plans)
        category = await self._category(any_groups=bool(plans))
        for plan in plans:
            await self._group(plan, category)
        await self._delete_unwanted()

    async def _plans(self) -> list[_GroupPlan]:
        groups = list(
            await self.session.scalars(
                select(Group)
                .where(Group.cohort_id == self.cohort.id, Group.status == GroupStatus.ACTIVE)
                .order_by(Group.number)
            )
        )
        ids = [g.id for g in groups]
        people: dict[int, list[_Person]] = {g.id: [] for g in groups}
        meetings: dict[int, list[Meeting]] = {g.id: [] for g in groups}
        if ids:
            rows = await self.session.execute(
                select(GroupMember.group_id, GroupMember.role, User)
                .join(Signup, Signup.id == GroupMember.signup_id)
                .join(User, User.id == Signup.user_id)
                .where(
                    GroupMember.group_id.in_(ids),
                    Signup.status != SignupStatus.WITHDRAWN,
                    User.deleted_at.is_(None),
                )
                .order_by(GroupMember.group_id, User.id)
            )
            for group_id, role, user in rows:
                people[group_id].append(
                    _Person(
                        user_id=user.id,
                        # Never the e-mail address, which display_name may fall back to.
                        name=user.nickname
                        or user.discord_global_name
                        or user.discord_username
                        or f"Member {user.id}",
                        admin_name=user.display_name,
                        discord_id=user.discord_id,
                        role=role,
                    )
                )
            for meeting in await self.session.scalars(
                select(Meeting).where(Meeting.group_id.in_(ids)).order_by(Meeting.number)
            ):
                meetings[meeting.group_id].append(meeting)
        for members in people.values():
            members.sort(key=lambda p: p.role != Role.FACILITATOR)  # stable: facilitator first
        return [_GroupPlan(g, people[g.id], meetings[g.id]) for g in groups]

    async def _check_presence(self, plans: list[_GroupPlan]) -> None:
        """Who of the members with a Discord account is in the server (one request each;
        True, False, or None when Discord could not say)."""
        unchecked: list[str] = []
        for plan in plans:
            for person in plan.people:
                if person.discord_id is None:
                    self.report.skipped.append(
                        f"{person.admin_name} ({plan.label}): no Discord account linked"
                    )
                    continue
                if person.discord_id not in self.present:
                    self.present[person.discord_id] = None
                    unchecked.append(person.discord_id)
        if len(unchecked) > LIST_MEMBERS_ABOVE:
            # A large cohort: one request per 1,000 people in the server instead of one
            # per member (which would run into Discord's rate limit).
            try:
                everyone = await self.guild.list_member_ids()
            except _ERRORS as exc:
                self._fail(f"listing the server's members ({len(unchecked)} unchecked)", exc)
            else:
                for discord_id in unchecked:
                    self.present[discord_id] = discord_id in everyone
            unchecked = []
        for n, discord_id in enumerate(unchecked):
            try:
                member = await self.guild.get_member(discord_id)
            except IntegrationUnavailable as exc:
                # Rate limited or down: asking about the rest would fail the same way.
                self._fail(f"checking who is in the server ({len(unchecked) - n} unchecked)", exc)
                break
            except IntegrationRejected as exc:
                self._fail(f"checking whether Discord user {discord_id} is in the server", exc)
                continue
            self.present[discord_id] = member is not None
        for plan in plans:
            for person in plan.people:
                if person.discord_id and self.present.get(person.discord_id) is False:
                    self.report.skipped.append(
                        f"{person.admin_name} ({plan.label}): not in the Discord server yet; "
                        "gets access on joining"
                    )

    # -- the category and the groups -------------------------------------------------------

    def _base_overwrites(self) -> list[Overwrite]:
        overwrites = [
            Overwrite(self.guild.everyone_role_id, ROLE, deny=Permission.VIEW_CHANNEL),
        ]
        if self.bot_user_id:
            overwrites.append(Overwrite(self.bot_user_id, MEMBER, allow=BOT_ALLOW))
        return overwrites

    async def _category(self, *, any_groups: bool) -> Channel | None:
        key = _key(SpaceKind.CATEGORY, "cohort", self.cohort.id)
        # A category is made once the cohort has groups, and never deleted by Lens:
        # deleting a category in Discord leaves its channels loose at the top.
        if not any_groups and key not in self.rows:
            return None
        self.wanted.add(key)
        spec = _ChannelSpec(
            key=key,
            kind=SpaceKind.CATEGORY,
            type=GUILD_CATEGORY,
            name=self.cohort.name[:MAX_NAME],
            parent_id=None,
            topic=None,
            overwrites=_sorted(self._base_overwrites()),
        )
        return await self._ensure_channel(spec)

    async def _group(self, plan: _GroupPlan, category: Channel | None) -> None:
        group = plan.group
        text_key = _key(SpaceKind.TEXT, "group", group.id)
        voice_key = _key(SpaceKind.VOICE, "group", group.id)
        welcome_key = _key(SpaceKind.WELCOME, "group", group.id)
        upcoming = [m for m in plan.meetings if m.status == "scheduled" and m.starts_at > self.now]
        self.wanted |= {text_key, voice_key, welcome_key}
        self.wanted |= {_key(SpaceKind.EVENT, "meeting", m.id) for m in upcoming}
        if category is None:
            self.report.failed.append(
                f"{plan.label}: channels not made, as the cohort's category is missing"
            )
            return
        present_ids = [
            p.discord_id for p in plan.people if p.discord_id and self.present.get(p.discord_id)
        ]
        undecided = frozenset(
            p.discord_id
            for p in plan.people
            if p.discord_id and self.present.get(p.discord_id) is None
        )

        def spec(key: str, kind: SpaceKind, type_: int, name: str, allow: int) -> _ChannelSpec:
            members = [Overwrite(i, MEMBER, allow=allow) for i in dict.fromkeys(present_ids)]
            return _ChannelSpec(
                key=key,
                kind=kind,
                type=type_,
                name=name,
                parent_id=category.id,
                topic=(
                    f"{group.name} of {self.cohort.name}: {group_url(self.base_url, group)}"
                    if type_ == GUILD_TEXT
                    else None
                ),
                overwrites=_sorted([*self._base_overwrites(), *members]),
                undecided=undecided,
                group_id=group.id,
            )

        text = await self._ensure_channel(
            spec(text_key, SpaceKind.TEXT, GUILD_TEXT, channel_name(group), TEXT_ALLOW)
        )
        voice = await self._ensure_channel(
            spec(voice_key, SpaceKind.VOICE, GUILD_VOICE, voice_name(group), VOICE_ALLOW)
        )
        if text is not None:
            await self._ensure_welcome(plan, welcome_key, text, voice)
        if voice is None:
            if upcoming:
                self.report.failed.append(
                    f"{plan.label}: {len(upcoming)} meeting events not made, "
                    "as the voice channel is missing"
                )
            return
        for meeting in upcoming:
            await self._ensure_event(
                _EventSpec(
                    key=_key(SpaceKind.EVENT, "meeting", meeting.id),
                    meeting=meeting,
                    group_id=group.id,
                    name=event_name(self.cohort, group, meeting),
                    description=(
                        f"{group.name} of {self.cohort.name}, meeting {meeting.number}. "
                        f"Group page: {group_url(self.base_url, group)}"
                    ),
                    channel_id=voice.id,
                )
            )

    # -- channels ------------------------------------------------------------------------

    async def _ensure_channel(self, spec: _ChannelSpec) -> Channel | None:
        row = self.rows.get(spec.key)
        actual = self.channels.get(row.discord_id) if row else None
        if actual is not None and actual.type != spec.type:
            actual = None
        if actual is None:
            actual = await self._adopt_channel(spec)
        if actual is None:
            return await self._create_channel(spec)
        # Mapped before any change, so an adopted channel stays ours if the change fails.
        await self._map(
            spec.key, spec.kind, actual.id, row.fingerprint if row else "", group_id=spec.group_id
        )
        changes: dict[str, Any] = {}
        if actual.name != spec.name:
            changes["name"] = spec.name
        if spec.topic is not None and actual.topic != spec.topic:
            changes["topic"] = spec.topic
        if spec.parent_id is not None and actual.parent_id != spec.parent_id:
            changes["parent_id"] = spec.parent_id
        overwrites = _overwrites_to_set(actual, spec, everyone=self.guild.everyone_role_id)
        if overwrites is not None:
            changes["overwrites"] = overwrites
        if changes:
            try:
                actual = await self.guild.modify_channel(
                    actual.id, **changes, reason=self._reason(f"keep {spec.name} as set up")
                )
            except _ERRORS as exc:
                self._fail(f"updating {_what(spec)}", exc)
                return actual
            self.channels[actual.id] = actual
            self.report.updated[spec.kind] += 1
        await self._map(spec.key, spec.kind, actual.id, spec.fingerprint(), group_id=spec.group_id)
        return actual

    async def _adopt_channel(self, spec: _ChannelSpec) -> Channel | None:
        candidates = sorted(
            (
                c
                for c in self.channels.values()
                if c.type == spec.type and c.name == spec.name and c.parent_id == spec.parent_id
            ),
            key=lambda c: int(c.id),
        )
        for channel in candidates:
            if await self._unmapped(channel.id):
                log.info("discord.channel.adopted", key=spec.key, channel_id=channel.id)
                return channel
        return None

    async def _create_channel(self, spec: _ChannelSpec) -> Channel | None:
        try:
            channel = await self.guild.create_channel(
                name=spec.name,
                type=spec.type,
                parent_id=spec.parent_id,
                topic=spec.topic,
                overwrites=spec.overwrites,
                reason=self._reason(f"{_what(spec)} for {self.cohort.name}"),
            )
        except _ERRORS as exc:
            self._fail(f"creating {_what(spec)}", exc)
            return None
        self.channels[channel.id] = channel
        self.made_now.add(spec.key)
        self.report.created[spec.kind] += 1
        await self._map(spec.key, spec.kind, channel.id, spec.fingerprint(), group_id=spec.group_id)
        return channel

    # -- the welcome message ---------------------------------------------------------------

    async def _ensure_welcome(
        self, plan: _GroupPlan, key: str, text: Channel, voice: Channel | None
    ) -> None:
        content = welcome_text(
            cohort=self.cohort,
            group=plan.group,
            people=plan.people,
            present=self.present,
            meetings=plan.meetings,
            voice_channel_id=voice.id if voice else None,
            base_url=self.base_url,
            now=self.now,
        )
        fingerprint = _hash(content)
        row = self.rows.get(key)
        step = f"the welcome message of {plan.label}"
        text_key = _key(SpaceKind.TEXT, "group", plan.group.id)
        message_id: str | None = None
        if text_key in self.made_now:
            message_id = None  # a new channel: any earlier message went with the old one
        elif row is not None:
            if row.fingerprint == fingerprint:
                return
            message_id = row.discord_id
        elif self.bot_user_id is not None:
            found = await self._adopt_welcome(plan, text, step)
            if found is not None and found.content == content:
                await self._map(
                    key, SpaceKind.WELCOME, found.id, fingerprint, group_id=plan.group.id
                )
                return
            message_id = found.id if found is not None else None
        if message_id is not None:
            try:
                await self.guild.edit_message(text.id, message_id, content)
            except DiscordNotFound:
                pass  # deleted by hand: posted again below
            except _ERRORS as exc:
                self._fail(f"updating {step}", exc)
                return
            else:
                self.report.updated[SpaceKind.WELCOME] += 1
                await self._map(
                    key, SpaceKind.WELCOME, message_id, fingerprint, group_id=plan.group.id
                )
                return
        try:
            message_id = await self.guild.post_message(text.id, content)
        except _ERRORS as exc:
            self._fail(f"posting {step}", exc)
            return
        self.report.created[SpaceKind.WELCOME] += 1
        await self._map(key, SpaceKind.WELCOME, message_id, fingerprint, group_id=plan.group.id)

    async def _adopt_welcome(self, plan: _GroupPlan, text: Channel, step: str) -> Message | None:
        """The bot's own earlier welcome in the channel, when the mapping was lost."""
        marker = group_url(self.base_url, plan.group)
        try:
            messages = await self.guild.list_messages(text.id, limit=50)
        except _ERRORS as exc:
            self._fail(f"looking for {step}", exc)
            return None
        for message in reversed(messages):  # oldest first
            if message.author_id == self.bot_user_id and marker in message.content:
                log.info("discord.welcome.adopted", group=plan.group.id, message_id=message.id)
                return message
        return None

    # -- events ----------------------------------------------------------------------------

    async def _ensure_event(self, spec: _EventSpec) -> None:
        row = self.rows.get(spec.key)
        actual = self.events.get(row.discord_id) if row else None
        if actual is None:
            actual = await self._adopt_event(spec)
        meeting = spec.meeting
        step = f"the event {spec.name!r}"
        if actual is None:
            try:
                actual = await self.guild.create_voice_event(
                    channel_id=spec.channel_id,
                    name=spec.name,
                    description=spec.description,
                    starts_at=meeting.starts_at,
                    ends_at=meeting.ends_at,
                    reason=self._reason(f"meeting {meeting.number} of group {spec.group_id}"),
                )
            except _ERRORS as exc:
                self._fail(f"creating {step}", exc)
                return
            self.events[actual.id] = actual
            self.report.created[SpaceKind.EVENT] += 1
        elif actual.status == EVENT_SCHEDULED and not _event_matches(actual, spec):
            await self._map(
                spec.key,
                SpaceKind.EVENT,
                actual.id,
                row.fingerprint if row else "",
                group_id=spec.group_id,
                meeting_id=meeting.id,
            )
            try:
                actual = await self.guild.modify_voice_event(
                    actual.id,
                    channel_id=spec.channel_id,
                    name=spec.name,
                    description=spec.description,
                    starts_at=meeting.starts_at,
                    ends_at=meeting.ends_at,
                    reason=self._reason(f"meeting {meeting.number} of group {spec.group_id}"),
                )
            except _ERRORS as exc:
                self._fail(f"updating {step}", exc)
                return
            self.events[actual.id] = actual
            self.report.updated[SpaceKind.EVENT] += 1
        # An event already started (ACTIVE) is left alone: Discord refuses to move it.
        await self._map(
            spec.key,
            SpaceKind.EVENT,
            actual.id,
            spec.fingerprint(),
            group_id=spec.group_id,
            meeting_id=meeting.id,
        )

    async def _adopt_event(self, spec: _EventSpec) -> ScheduledEvent | None:
        candidates = sorted(
            (
                e
                for e in self.events.values()
                if e.entity_type == EVENT_VOICE and e.name == spec.name
            ),
            key=lambda e: int(e.id),
        )
        for event in candidates:
            if await self._unmapped(event.id):
                log.info("discord.event.adopted", key=spec.key, event_id=event.id)
                return event
        return None

    # -- deletions -------------------------------------------------------------------------

    async def _delete_unwanted(self) -> None:
        unwanted = [row for key, row in self.rows.items() if key not in self.wanted]
        if not unwanted:
            return
        meeting_ids = [r.meeting_id for r in unwanted if r.meeting_id is not None]
        meetings: dict[int, tuple[Meeting, str]] = {}
        if meeting_ids:
            found = await self.session.execute(
                select(Meeting, Group.status)
                .join(Group, Group.id == Meeting.group_id)
                .where(Meeting.id.in_(meeting_ids))
            )
            meetings = {m.id: (m, status) for m, status in found}
        order = [SpaceKind.EVENT, SpaceKind.WELCOME, SpaceKind.TEXT, SpaceKind.VOICE]
        for kind in order:
            for row in (r for r in unwanted if r.kind == kind):
                if kind == SpaceKind.EVENT:
                    await self._delete_event(row, meetings.get(row.meeting_id or 0))
                elif kind == SpaceKind.WELCOME:
                    # The message goes with its channel (deleted next, as its group is).
                    await self._unmap(row)
                else:
                    await self._delete_channel(row)

    async def _delete_event(self, row: DiscordSpace, meeting: tuple[Meeting, str] | None) -> None:
        if meeting is not None:
            m, group_status = meeting
            if (
                m.status == "scheduled"
                and group_status == GroupStatus.ACTIVE
                and m.starts_at <= self.now
            ):
                # A meeting under way or over: its event is Discord's to start and end.
                if row.discord_id not in self.events:
                    await self._unmap(row)
                return
        if row.discord_id in self.events:
            try:
                await self.guild.delete_scheduled_event(
                    row.discord_id, reason=self._reason("the meeting is cancelled or gone")
                )
            except DiscordNotFound:
                pass
            except _ERRORS as exc:
                self._fail(f"deleting event {row.discord_id} ({row.key})", exc)
                return
            else:
                self.report.deleted[SpaceKind.EVENT] += 1
            del self.events[row.discord_id]
        await self._unmap(row)

    async def _delete_channel(self, row: DiscordSpace) -> None:
        channel = self.channels.get(row.discord_id)
        if channel is not None:
            try:
                await self.guild.delete_channel(
                    channel.id, reason=self._reason("the group is no longer active")
                )
            except DiscordNotFound:
                pass
            except _ERRORS as exc:
                self._fail(f"deleting channel {channel.name} ({row.key})", exc)
                return
            else:
                self.report.deleted[row.kind] += 1
            del self.channels[channel.id]
        await self._unmap(row)

    # -- bookkeeping -----------------------------------------------------------------------

    async def _map(
        self,
        key: str,
        kind: SpaceKind,
        discord_id: str,
        fingerprint: str,
        *,
        group_id: int | None = None,
        meeting_id: int | None = None,
    ) -> None:
        """Record (at once, so a later step's failure cannot lose it) what a key is."""
        row = self.rows.get(key)
        if row is None:
            row = DiscordSpace(key=key, kind=kind, cohort_id=self.cohort.id)
            self.session.add(row)
            self.rows[key] = row
        if (
            row.discord_id == discord_id
            and row.fingerprint == fingerprint
            and row.group_id == group_id
            and row.meeting_id == meeting_id
        ):
            return
        row.discord_id = discord_id
        row.fingerprint = fingerprint
        row.group_id = group_id
        row.meeting_id = meeting_id
        await self.session.flush()

    async def _unmap(self, row: DiscordSpace) -> None:
        await self.session.delete(row)
        self.rows.pop(row.key, None)
        await self.session.flush()

    async def _unmapped(self, discord_id: str) -> bool:
        if any(row.discord_id == discord_id for row in self.rows.values()):
            return False
        taken = await self.session.scalar(
            select(DiscordSpace.id).where(DiscordSpace.discord_id == discord_id).limit(1)
        )
        return taken is None

    def _fail(self, step: str, exc: Exception) -> None:
        if isinstance(exc, IntegrationUnavailable):
            self.report.temporary_failures += 1
        self.report.failed.append(f"{step}: {exc}")
        log.warning("discord.realize.step_failed", cohort=self.cohort.id, step=step, error=str(exc))

    def _reason(self, why: str) -> str:
        return f"Lens: {why} (cohort {self.cohort.id})"


def _what(spec: _ChannelSpec) -> str:
    one, _ = _KIND_NAMES[spec.kind]
    return f"{one} {spec.name}"


def _sorted(overwrites: Iterable[Overwrite]) -> tuple[Overwrite, ...]:
    return tuple(sorted(overwrites, key=lambda o: (o.type, int(o.id))))


def _overwrites_to_set(
    actual: Channel, spec: _ChannelSpec, *, everyone: str
) -> tuple[Overwrite, ...] | None:
    """The channel's whole new overwrite list, or None when it is already right.

    Lens owns the @everyone overwrite and every member overwrite; other role overwrites
    stay as they are, and so does the overwrite of a member whose presence is unknown.
    """
    kept = [
        o
        for o in actual.overwrites
        if (o.type == ROLE and o.id != everyone) or (o.type == MEMBER and o.id in spec.undecided)
    ]
    ours = [o for o in spec.overwrites if o.id not in spec.undecided]
    desired = _sorted([*ours, *kept])
    if set(desired) == set(actual.overwrites) and len(desired) == len(actual.overwrites):
        return None
    return desired


def _event_matches(actual: ScheduledEvent, spec: _EventSpec) -> bool:
    return (
        actual.name == spec.name
        and (actual.description or "") == spec.description
        and actual.channel_id == spec.channel_id
        and actual.starts_at == spec.meeting.starts_at
        and actual.ends_at == spec.meeting.ends_at
    )


# -- the report, stored ---------------------------------------------------------------------


async def _save_report(session: AsyncSession, report: RealizeReport, *, now: datetime) -> None:
    row = await session.get(DiscordRealization, report.cohort_id)
    if row is None:
        row = DiscordRealization(cohort_id=report.cohort_id)
        session.add(row)
    row.ran_at = now
    row.summary = report.summary()
    row.report = report.to_json()
    row.failed_steps = len(report.failed)
    await session.flush()


async def get_last_report(session: AsyncSession, *, cohort_id: int) -> DiscordRealization | None:
    """The last realization of the cohort in Discord (summary, counts, skipped, failed)."""
    return await session.get(DiscordRealization, cohort_id, populate_existing=True)


async def record_not_configured(session: AsyncSession, *, cohort_id: int, reason: str) -> None:
    """Say in the cohort's report why nothing was done in Discord."""
    report = RealizeReport(cohort_id=cohort_id)
    report.failed.append(reason)
    await _save_report(session, report, now=utcnow())


# -- later joiners and requests ---------------------------------------------------------------


async def grant_member_access(
    session: AsyncSession, *, discord_id: str, guild: DiscordGuild
) -> int:
    """Someone joined the server: open their active groups' channels to them (the bot
    calls this from on_member_join). Returns how many channels they were given.

    Also asks for a realization of each of their cohorts, which names them by mention in
    the welcome message and retries any channel that could not be opened here.
    """
    user = await session.scalar(
        select(User).where(User.discord_id == discord_id, User.deleted_at.is_(None))
    )
    if user is None:
        return 0
    spaces = await session.scalars(
        select(DiscordSpace)
        .join(Group, Group.id == DiscordSpace.group_id)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .where(
            Signup.user_id == user.id,
            Signup.status != SignupStatus.WITHDRAWN,
            Group.status == GroupStatus.ACTIVE,
            DiscordSpace.kind.in_([SpaceKind.TEXT, SpaceKind.VOICE]),
        )
        .order_by(DiscordSpace.id)
    )
    granted = 0
    cohorts: set[int] = set()
    for space in spaces:
        cohorts.add(space.cohort_id)
        allow = TEXT_ALLOW if space.kind == SpaceKind.TEXT else VOICE_ALLOW
        try:
            await guild.set_overwrite(
                space.discord_id,
                Overwrite(discord_id, MEMBER, allow=allow),
                reason=f"Lens: {user.display_name} joined the server ({space.key})",
            )
        except _ERRORS as exc:
            log.warning(
                "discord.access.failed", user=user.id, channel=space.discord_id, error=str(exc)
            )
            continue
        granted += 1
    for cohort_id in sorted(cohorts):
        await request_realization(session, cohort_id=cohort_id)
    log.info("discord.access.granted", user=user.id, channels=granted)
    return granted


async def request_realization(
    session: AsyncSession,
    *,
    cohort_id: int,
    run_at: datetime | None = None,
    follow_up: int = 0,
) -> int | None:
    """Queue a realization of the cohort (merged with one already waiting).

    Follow-ups after temporary failures wait in a queue of their own, so a request for
    a change (a meeting moved) never waits behind a retry's back-off.
    """
    name = f"{REALIZE_KIND}:{cohort_id}" + (":retry" if follow_up else "")
    return await enqueue(
        session,
        kind=REALIZE_KIND,
        payload={"cohort_id": cohort_id, "follow_up": follow_up},
        run_at=run_at,
        dedupe_key=coalesce(name),
    )


async def group_for_voice_channel(session: AsyncSession, *, channel_id: str) -> int | None:
    """The group whose voice channel this is (as realize_cohort mapped it), if any."""
    return await session.scalar(
        select(DiscordSpace.group_id).where(
            DiscordSpace.kind == SpaceKind.VOICE, DiscordSpace.discord_id == channel_id
        )
    )


async def cohorts_with_active_groups(session: AsyncSession) -> list[int]:
    """Running cohorts with groups: a finished cohort's channels are left as they are,
    and the daily sweep does not keep asking Discord about its members."""
    rows = await session.scalars(
        select(Cohort.id)
        .join(Group, Group.cohort_id == Cohort.id)
        .where(Group.status == GroupStatus.ACTIVE, Cohort.status == CohortStatus.RUNNING)
        .distinct()
        .order_by(Cohort.id)
    )
    return list(rows)


def channel_url(guild_id: str | None, channel_id: str | None) -> str | None:
    if not guild_id or not channel_id:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}"


async def group_text_channel(session: AsyncSession, *, group_id: int) -> str | None:
    """The Discord id of the group's text channel, once realized."""
    return await session.scalar(
        select(DiscordSpace.discord_id).where(
            DiscordSpace.key == _key(SpaceKind.TEXT, "group", group_id)
        )
    )


async def request_realization_for_user(session: AsyncSession, *, user_id: int) -> int:
    """Someone linked their Discord account: realize the cohorts of their groups, so
    they get access to their channels. Returns how many cohorts were queued."""
    cohort_ids = list(
        await session.scalars(
            select(Group.cohort_id)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .join(Signup, Signup.id == GroupMember.signup_id)
            .where(Signup.user_id == user_id, Group.status == GroupStatus.ACTIVE)
            .distinct()
        )
    )
    for cohort_id in cohort_ids:
        await request_realization(session, cohort_id=cohort_id)
    return len(cohort_ids)
