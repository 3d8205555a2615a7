"""What should exist in Discord for a cohort: its groups with their people and meetings,
as channel, message and event specifications; and how to tell whether what exists in
Discord matches them. Reading only: apply.py makes the changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember, GroupStatus, Role, Signup, SignupStatus
from lens.db.base import utcnow
from lens.discord_groups.models import SpaceKind
from lens.integrations.discord.guild import (
    MAX_NAME,
    MEMBER,
    ROLE,
    Channel,
    Overwrite,
    Permission,
    ScheduledEvent,
)
from lens.integrations.discord.rest import MAX_CONTENT
from lens.meetings.models import Meeting, MeetingGuest
from lens.users.models import User

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
# A finished cohort's channels stay, read-only: its people can read back, not post or
# meet there.
ARCHIVED_ALLOW = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY
# The bot keeps seeing and managing what it hid from @everyone. Discord lets a bot
# allow in an overwrite only what it has in the server, so the bot needs these as server
# permissions (all in BOT_PERMISSIONS, with Create Events for the meetings' events, which
# Discord checks with View Channel and Connect in the event's voice channel).
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


@dataclass(frozen=True)
class Person:
    user_id: int
    name: str  # as other members see it in the welcome message
    admin_name: str  # as the report names them
    discord_id: str | None
    role: str


@dataclass
class GroupPlan:
    group: Group
    people: list[Person]
    meetings: list[Meeting]  # every meeting of the group, by number
    # A stand-in facilitator or a guest from another group for a meeting in the coming
    # week: they get the channels until that meeting is over (not the welcome post).
    visitors: list[Person] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.group.name

    @property
    def with_access(self) -> list[Person]:
        return [*self.people, *self.visitors]


@dataclass(frozen=True)
class ChannelSpec:
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
        return fingerprint_of(
            {
                "type": self.type,
                "name": self.name,
                "parent": self.parent_id,
                "topic": self.topic,
                "overwrites": [o.to_json() for o in self.overwrites],
            }
        )


@dataclass(frozen=True)
class EventSpec:
    key: str
    meeting: Meeting
    group_id: int
    name: str
    description: str
    channel_id: str

    def fingerprint(self) -> str:
        return fingerprint_of(
            {
                "name": self.name,
                "description": self.description,
                "channel": self.channel_id,
                "start": self.meeting.starts_at.isoformat(),
                "end": self.meeting.ends_at.isoformat(),
            }
        )


def fingerprint_of(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def space_key(kind: SpaceKind, owner: str, owner_id: int) -> str:
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
    people: Sequence[Person],
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

    def who(person: Person) -> str:
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


async def load_plans(session: AsyncSession, cohort: Cohort) -> list[GroupPlan]:
    """The cohort's active groups, each with its people (facilitator first) and meetings."""
    groups = list(
        await session.scalars(
            select(Group)
            .where(Group.cohort_id == cohort.id, Group.status == GroupStatus.ACTIVE)
            .order_by(Group.number)
        )
    )
    ids = [g.id for g in groups]
    people: dict[int, list[Person]] = {g.id: [] for g in groups}
    meetings: dict[int, list[Meeting]] = {g.id: [] for g in groups}
    if ids:
        rows = await session.execute(
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
                Person(
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
        for meeting in await session.scalars(
            select(Meeting).where(Meeting.group_id.in_(ids)).order_by(Meeting.number)
        ):
            meetings[meeting.group_id].append(meeting)
    for members in people.values():
        members.sort(key=lambda p: p.role != Role.FACILITATOR)  # stable: facilitator first
    visitors = await _visitors(session, ids)
    return [GroupPlan(g, people[g.id], meetings[g.id], visitors.get(g.id, [])) for g in groups]


VISIT_AHEAD = timedelta(days=7)


async def _visitors(session: AsyncSession, group_ids: list[int]) -> dict[int, list[Person]]:
    """Per group, who visits or stands in at a meeting starting within a week."""
    if not group_ids:
        return {}
    now = utcnow()
    soon = (
        Meeting.group_id.in_(group_ids),
        Meeting.status == "scheduled",
        Meeting.ends_at > now,
        Meeting.starts_at < now + VISIT_AHEAD,
    )
    guests = (
        select(Meeting.group_id, MeetingGuest.signup_id, literal("guest"))
        .join(MeetingGuest, MeetingGuest.meeting_id == Meeting.id)
        .where(*soon)
    )
    stand_ins = select(Meeting.group_id, Meeting.substitute_signup_id, literal("stand-in")).where(
        *soon, Meeting.substitute_signup_id.is_not(None)
    )
    found: dict[int, dict[int, Person]] = {}
    for group_id, signup_id, role in (await session.execute(guests.union_all(stand_ins))).all():
        user = await session.scalar(
            select(User)
            .join(Signup, Signup.user_id == User.id)
            .where(Signup.id == signup_id, User.deleted_at.is_(None))
        )
        if user is not None:
            found.setdefault(group_id, {})[user.id] = Person(
                user_id=user.id,
                name=user.nickname or user.discord_username or f"Member {user.id}",
                admin_name=user.display_name,
                discord_id=user.discord_id,
                role=role,
            )
    return {group_id: list(people.values()) for group_id, people in found.items()}


def sorted_overwrites(overwrites: Iterable[Overwrite]) -> tuple[Overwrite, ...]:
    return tuple(sorted(overwrites, key=lambda o: (o.type, int(o.id))))


def overwrites_to_set(
    actual: Channel, spec: ChannelSpec, *, everyone: str
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
    desired = sorted_overwrites([*ours, *kept])
    if set(desired) == set(actual.overwrites) and len(desired) == len(actual.overwrites):
        return None
    return desired


def event_matches(actual: ScheduledEvent, spec: EventSpec) -> bool:
    return (
        actual.name == spec.name
        and (actual.description or "") == spec.description
        and actual.channel_id == spec.channel_id
        and actual.starts_at == spec.meeting.starts_at
        and actual.ends_at == spec.meeting.ends_at
    )
