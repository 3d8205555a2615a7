"""Domain events (lens/events.py): a feature publishes, the features above react, in the
publisher's transaction.

These tests register reactions of their own to events of their own; the `own_reactions`
fixture gives each test an empty registry and puts the features' reactions (loaded by
tests/conftest.py for every other test) back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens import events
from lens.db.engine import unit_of_work
from lens.events import ReactionsNotLoaded, mark_loaded, publish, reaction, reactions_to
from lens.users.models import User


@dataclass(frozen=True)
class SomethingHappened:
    what: str
    fail: bool = False


@dataclass(frozen=True)
class NobodyCares:
    what: str


@pytest.fixture
def own_reactions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_reactions", {})
    monkeypatch.setattr(events, "_loaded", True)


@pytest.fixture
def session() -> AsyncSession:
    """A stand-in: these reactions only record which session they were handed."""
    return cast(AsyncSession, object())


async def test_every_reaction_runs_in_registration_order_with_the_session_and_event(
    own_reactions: None, session: AsyncSession
) -> None:
    calls: list[tuple[str, Any, Any]] = []

    @reaction(SomethingHappened)
    async def first(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(("first", session, event))

    @reaction(SomethingHappened)
    async def second(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(("second", session, event))

    @reaction(SomethingHappened)
    async def third(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(("third", session, event))

    event = SomethingHappened("a meeting moved")
    await publish(session, event)
    assert calls == [
        ("first", session, event),
        ("second", session, event),
        ("third", session, event),
    ]
    assert reactions_to(SomethingHappened) == [first, second, third]


async def test_a_reaction_registered_twice_runs_once(
    own_reactions: None, session: AsyncSession
) -> None:
    # A reactions module imported a second time (features.load() called again).
    calls: list[str] = []

    async def welcome(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(event.what)

    reaction(SomethingHappened)(welcome)
    reaction(SomethingHappened)(welcome)
    await publish(session, SomethingHappened("enrolled"))
    assert calls == ["enrolled"]


async def test_an_event_nobody_reacts_to_changes_nothing(
    own_reactions: None, session: AsyncSession
) -> None:
    calls: list[object] = []

    @reaction(SomethingHappened)
    async def record(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(event)

    await publish(session, NobodyCares("a visitor read a page"))
    assert calls == []
    assert reactions_to(NobodyCares) == []


async def test_publishing_before_the_reactions_are_loaded_is_refused(
    own_reactions: None, monkeypatch: pytest.MonkeyPatch, session: AsyncSession
) -> None:
    # A process that forgot lens.features.load(): an error, not a silently missed e-mail.
    monkeypatch.setattr(events, "_loaded", False)
    calls: list[object] = []

    @reaction(SomethingHappened)
    async def record(session: AsyncSession, event: SomethingHappened) -> None:
        calls.append(event)

    with pytest.raises(ReactionsNotLoaded, match=r"SomethingHappened.*lens\.features\.load\(\)"):
        await publish(session, SomethingHappened("too early"))
    assert calls == []
    mark_loaded()
    await publish(session, SomethingHappened("in time"))
    assert calls == [SomethingHappened("in time")]


class ReactionFailed(RuntimeError):
    pass


async def test_a_failing_reaction_rolls_back_what_the_publisher_wrote(
    own_reactions: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    @reaction(SomethingHappened)
    async def write_then_maybe_fail(session: AsyncSession, event: SomethingHappened) -> None:
        session.add(User(email=f"reaction-{event.what}@example.org"))
        await session.flush()
        if event.fail:
            raise ReactionFailed(event.what)

    async def change(what: str, *, fail: bool) -> None:
        async with unit_of_work(sessionmaker) as session:
            session.add(User(email=f"publisher-{what}@example.org"))
            await session.flush()
            await publish(session, SomethingHappened(what, fail=fail))

    await change("kept", fail=False)
    with pytest.raises(ReactionFailed, match="undone"):
        await change("undone", fail=True)

    async with sessionmaker() as session:
        emails = set(await session.scalars(select(User.email)))
    # Both commit together, or neither does.
    assert {"publisher-kept@example.org", "reaction-kept@example.org"} <= emails
    assert "publisher-undone@example.org" not in emails
    assert "reaction-undone@example.org" not in emails
