"""Making the server match the plan: the diff, applied step by step (see the package's
docstring for what Lens owns in Discord, how a failed step is handled, and how a run
after a crash adopts what an earlier one made).

One cohesive thing, longer than most modules: `_Realizer` holds the state of one run
(what the server has, what is mapped, what is wanted), and every step reads and
updates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, CohortStatus, Group, GroupStatus
from lens.db.base import utcnow
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.discord_groups.plan import (
    ARCHIVED_ALLOW,
    BOT_ALLOW,
    TEXT_ALLOW,
    VOICE_ALLOW,
    ChannelSpec,
    EventSpec,
    GroupPlan,
    channel_name,
    event_matches,
    event_name,
    fingerprint_of,
    group_url,
    load_plans,
    overwrites_to_set,
    sorted_overwrites,
    space_key,
    voice_name,
    welcome_text,
)
from lens.discord_groups.report import KIND_NAMES, RealizeReport, save_report
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
from lens.logging import get_logger
from lens.meetings.models import Meeting

log = get_logger("lens.discord_groups")

_ERRORS = (IntegrationUnavailable, IntegrationRejected)
REALIZE_LOCK = 0x4C454E5300000000  # "LENS" in the advisory lock's high bits
LIST_MEMBERS_ABOVE = 50  # more members to check than this: list the server instead


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
    await save_report(session, report, now=realizer.now)
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
        plans = await load_plans(self.session, self.cohort)
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

    async def _check_presence(self, plans: list[GroupPlan]) -> None:
        """Who of the members with a Discord account is in the server (one request each;
        True, False, or None when Discord could not say)."""
        unchecked: list[str] = []
        for plan in plans:
            for person in plan.with_access:
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
            for person in plan.with_access:
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
        key = space_key(SpaceKind.CATEGORY, "cohort", self.cohort.id)
        # A category is made once the cohort has groups, and never deleted by Lens:
        # deleting a category in Discord leaves its channels loose at the top.
        if not any_groups and key not in self.rows:
            return None
        self.wanted.add(key)
        spec = ChannelSpec(
            key=key,
            kind=SpaceKind.CATEGORY,
            type=GUILD_CATEGORY,
            name=self.cohort.name[:MAX_NAME],
            parent_id=None,
            topic=None,
            overwrites=sorted_overwrites(self._base_overwrites()),
        )
        return await self._ensure_channel(spec)

    async def _group(self, plan: GroupPlan, category: Channel | None) -> None:
        group = plan.group
        text_key = space_key(SpaceKind.TEXT, "group", group.id)
        voice_key = space_key(SpaceKind.VOICE, "group", group.id)
        welcome_key = space_key(SpaceKind.WELCOME, "group", group.id)
        archived = self.cohort.status == CohortStatus.FINISHED
        upcoming = [
            m
            for m in plan.meetings
            if m.status == "scheduled" and m.starts_at > self.now and not archived
        ]
        self.wanted |= {text_key, voice_key, welcome_key}
        self.wanted |= {space_key(SpaceKind.EVENT, "meeting", m.id) for m in upcoming}
        if category is None:
            self.report.failed.append(
                f"{plan.label}: channels not made, as the cohort's category is missing"
            )
            return
        present_ids = [
            p.discord_id
            for p in plan.with_access
            if p.discord_id and self.present.get(p.discord_id)
        ]
        undecided = frozenset(
            p.discord_id
            for p in plan.with_access
            if p.discord_id and self.present.get(p.discord_id) is None
        )

        def spec(key: str, kind: SpaceKind, type_: int, name: str, allow: int) -> ChannelSpec:
            members = [Overwrite(i, MEMBER, allow=allow) for i in dict.fromkeys(present_ids)]
            return ChannelSpec(
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
                overwrites=sorted_overwrites([*self._base_overwrites(), *members]),
                undecided=undecided,
                group_id=group.id,
            )

        text = await self._ensure_channel(
            spec(
                text_key,
                SpaceKind.TEXT,
                GUILD_TEXT,
                channel_name(group),
                ARCHIVED_ALLOW if archived else TEXT_ALLOW,
            )
        )
        voice = await self._ensure_channel(
            spec(
                voice_key,
                SpaceKind.VOICE,
                GUILD_VOICE,
                voice_name(group),
                ARCHIVED_ALLOW if archived else VOICE_ALLOW,
            )
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
                EventSpec(
                    key=space_key(SpaceKind.EVENT, "meeting", meeting.id),
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

    async def _ensure_channel(self, spec: ChannelSpec) -> Channel | None:
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
        overwrites = overwrites_to_set(actual, spec, everyone=self.guild.everyone_role_id)
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

    async def _adopt_channel(self, spec: ChannelSpec) -> Channel | None:
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

    async def _create_channel(self, spec: ChannelSpec) -> Channel | None:
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
        self, plan: GroupPlan, key: str, text: Channel, voice: Channel | None
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
        fingerprint = fingerprint_of(content)
        row = self.rows.get(key)
        step = f"the welcome message of {plan.label}"
        text_key = space_key(SpaceKind.TEXT, "group", plan.group.id)
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

    async def _adopt_welcome(self, plan: GroupPlan, text: Channel, step: str) -> Message | None:
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

    async def _ensure_event(self, spec: EventSpec) -> None:
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
        elif actual.status == EVENT_SCHEDULED and not event_matches(actual, spec):
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

    async def _adopt_event(self, spec: EventSpec) -> ScheduledEvent | None:
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


def _what(spec: ChannelSpec) -> str:
    one, _ = KIND_NAMES[spec.kind]
    return f"{one} {spec.name}"
