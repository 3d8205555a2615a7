"""What lens.features.load() puts together: every event a feature publishes has a reaction,
every job kind the code queues has a handler, and a change in a feature below reaches the
features above it, through the real services.

The reactions' own effects are tested where they live; already covered elsewhere:
confirming a signup sends the welcome (tests/notifications/test_delivery.py,
test_enrolling_sends_a_welcome), and a moved meeting's "meeting_changed" message
(test_change_and_cancellation_carry_calendar_updates, same file).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import typing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember
from lens.jobs.models import Job
from lens.meetings.service import create_meetings, member_user_ids, move_meetings
from lens.scheduling import service as scheduling
from lens.users.models import User
from lens.users.service import link_discord
from tests.fixtures.cli import ROOT
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.users import make_user

LENS = ROOT / "lens"

# Run in a fresh interpreter: in this one, test modules have imported reactions and
# tasks modules themselves, which would hide a module that load() forgets.
PROBE = """
import json
from lens import events, features
from lens.jobs.periodic import PERIODIC
from lens.jobs.registry import registry

def name(thing):
    return f"{thing.__module__}.{thing.__qualname__}"

before = {"reactions": sorted(map(name, events._reactions)), "jobs": registry.names()}
features.load()
print(json.dumps({
    "before": before,
    "reactions": {name(t): [name(r) for r in events.reactions_to(t)] for t in events._reactions},
    "jobs": registry.names(),
    "periodic": [p.kind for p in PERIODIC],
}))
"""


def loaded_in_a_fresh_process(tmp_path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _types_in(hint: Any) -> set[Any]:
    found = {hint}
    for arg in typing.get_args(hint):
        found |= _types_in(arg)
    return found


def event_types() -> dict[str, type]:
    """Every event defined in a feature's events.py: its dataclasses, except those that
    are only parts of another event (a MeetingMove inside MeetingsMoved)."""
    classes: dict[str, type] = {}
    for path in sorted(LENS.rglob("events.py")):
        if path.parent == LENS:
            continue  # lens/events.py: the mechanism, no events
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
            ):
                classes[f"{value.__module__}.{value.__qualname__}"] = value
    parts = {
        part
        for cls in classes.values()
        for hint in typing.get_type_hints(cls).values()
        for part in _types_in(hint)
    }
    return {name: cls for name, cls in classes.items() if cls not in parts}


def queued_job_kinds() -> set[str]:
    """The kinds passed to `enqueue(..., kind=...)` anywhere in lens/, as a string or a
    module constant. Kinds only known at run time (periodic jobs) are checked apart."""
    kinds: set[str] = set()
    for path in sorted(LENS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        module = None
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called != "enqueue":
                continue
            for keyword in node.keywords:
                if keyword.arg != "kind":
                    continue
                if isinstance(keyword.value, ast.Constant):
                    kinds.add(keyword.value.value)
                elif isinstance(keyword.value, ast.Name):
                    if module is None:
                        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                        module = importlib.import_module(dotted)
                    kinds.add(getattr(module, keyword.value.id))
    return kinds


# -- what load() registers ------------------------------------------------------------------


def test_every_event_type_has_a_reaction_once_the_features_are_loaded(tmp_path: Path) -> None:
    loaded = loaded_in_a_fresh_process(tmp_path)
    # Importing lens.features registers nothing; load() does all of it.
    assert loaded["before"] == {"reactions": [], "jobs": []}
    defined = event_types()
    assert defined, "no event types found in lens/*/events.py"
    unhandled = sorted(name for name in defined if not loaded["reactions"].get(name))
    assert unhandled == [], f"published but nobody reacts (a bug): {unhandled}"


def test_every_job_kind_the_code_queues_has_a_handler_once_the_features_are_loaded(
    tmp_path: Path,
) -> None:
    loaded = loaded_in_a_fresh_process(tmp_path)
    queued = queued_job_kinds()
    # The search itself finds the kinds it must (a constant, or a string).
    assert {
        "meetings.announce",
        "discord.realize",
        "discord.nickname",
        "content.sync",
        "scheduling.group",
    } <= queued
    missing = sorted((queued | set(loaded["periodic"])) - set(loaded["jobs"]))
    assert missing == [], f"queued but no process could run them: {missing}"


# -- a change below reaches the features above -----------------------------------------------


def a_monday_ahead(days: int = 60) -> date:
    day = datetime.now(UTC).date() + timedelta(days=days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


async def jobs(db: AsyncSession, kind: str) -> list[dict[str, Any]]:
    return [job.payload for job in await db.scalars(select(Job).where(Job.kind == kind))]


async def active_group(db: AsyncSession, *, discord_ids: bool = True) -> tuple[Cohort, Group]:
    """A running cohort with one active group of three, its meetings ahead."""
    cohort = await make_cohort(db, start_date=a_monday_ahead(), meetings=3, status="running")
    group = Group(cohort_id=cohort.id, number=1, start_slot=34, status="active")
    db.add(group)
    await db.flush()
    for role in ("facilitator", "participant", "participant"):
        user = await make_user(db, **({} if discord_ids else {"discord_id": None}))
        signup = await make_signup(db, cohort, user=user, role=role, status="grouped")
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=role))
    await db.flush()
    await create_meetings(db, cohort=cohort, group=group)
    return cohort, group


async def test_approving_groups_queues_their_announcements_and_a_discord_realization(
    db: AsyncSession,
) -> None:
    cohort = await make_cohort(
        db, start_date=a_monday_ahead(), meetings=3, min_group_size=2, max_group_size=3
    )
    for day in (1, 3):  # Tuesday and Thursday evenings: two groups
        await make_signup(db, cohort, role="facilitator", available=evening(day, 18, 2))
        for _ in range(2):
            await make_signup(db, cohort, available=evening(day, 18, 2))
    run = await scheduling.request_grouping(db, cohort=cohort, by=None)
    await scheduling.run_grouping(db, run=run)
    assert await jobs(db, "meetings.announce") == [] and await jobs(db, "discord.realize") == []

    await scheduling.approve(db, cohort=cohort, by=None)

    groups = list(await db.scalars(select(Group.id).where(Group.status == "active")))
    assert len(groups) == 2
    announced = await jobs(db, "meetings.announce")
    assert sorted(p["group_id"] for p in announced) == sorted(groups)
    assert all(p["user_ids"] is None for p in announced)  # the whole group, not newcomers
    assert await jobs(db, "discord.realize") == [{"cohort_id": cohort.id, "follow_up": 0}]


async def test_moving_a_meeting_queues_a_discord_realization(db: AsyncSession) -> None:
    cohort, group = await active_group(db)
    assert await jobs(db, "discord.realize") == []
    second = datetime.combine(a_monday_ahead() + timedelta(weeks=1), time(20), UTC)
    await move_meetings(db, group=group, number=2, new_start=second, all_future=False)
    assert await jobs(db, "discord.realize") == [{"cohort_id": cohort.id, "follow_up": 0}]


async def test_linking_discord_in_an_active_group_queues_a_discord_realization(
    db: AsyncSession,
) -> None:
    cohort, group = await active_group(db, discord_ids=False)
    stranger = await make_user(db, discord_id=None)
    await link_discord(db, user=stranger, discord_id="700000000000000001", username="stranger")
    assert await jobs(db, "discord.realize") == []  # in no group: no channels to open

    member = await db.get(User, (await member_user_ids(db, group_id=group.id))[0])
    assert member is not None
    await link_discord(db, user=member, discord_id="700000000000000002", username="member")
    assert await jobs(db, "discord.realize") == [{"cohort_id": cohort.id, "follow_up": 0}]
