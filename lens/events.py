"""Domain events: how a feature reacts to something that happened in a feature below it.

The layers (docs/architecture.md) let a package import only the packages below it. When
something a lower feature does matters to one above it (meetings moved, groups approved,
a visitor signed in), the lower feature publishes an event, a frozen dataclass it
defines in its own `events.py`:

    await publish(session, MeetingsMoved(group_id=group.id, ...))

and the feature above reacts, in its own `reactions.py`:

    @reaction(MeetingsMoved)
    async def tell_the_members(session: AsyncSession, event: MeetingsMoved) -> None: ...

Reactions run at once, inside the publisher's transaction: what they write commits or
rolls back with the change that caused it, as if the publisher had called them. They
run in the order their modules were loaded (`lens/features.py` loads every feature's
reactions and jobs); no reaction may depend on another having run. A reaction does
little: slow or remote work (Discord, e-mail, calendars) it hands to a job.

A process loads the reactions before it publishes anything; `publish` refuses to run
before that, so a forgotten `lens.features.load()` is an error, not a silently missed
e-mail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
Reaction = Callable[["AsyncSession", Any], Awaitable[None]]

_reactions: dict[type, list[Reaction]] = {}
_loaded = False


class ReactionsNotLoaded(RuntimeError):
    """An event was published before the process loaded the features' reactions."""


def reaction(
    event_type: type[E],
) -> Callable[
    [Callable[[AsyncSession, E], Awaitable[None]]], Callable[[AsyncSession, E], Awaitable[None]]
]:
    """Register the decorated coroutine to run whenever an `event_type` is published."""

    def register(
        handler: Callable[[AsyncSession, E], Awaitable[None]],
    ) -> Callable[[AsyncSession, E], Awaitable[None]]:
        handlers = _reactions.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)
        return handler

    return register


def mark_loaded() -> None:
    """Called by lens.features.load() once every feature's reactions are registered."""
    global _loaded
    _loaded = True


def reactions_to(event_type: type) -> list[Reaction]:
    """The reactions registered for an event type, in the order they run."""
    return list(_reactions.get(event_type, ()))


async def publish(session: AsyncSession, event: object) -> None:
    """Run every reaction to `event`, in order, in the caller's transaction.

    A reaction's exception propagates: the caller's unit of work rolls back, exactly as
    if the reaction's code had been written inline.
    """
    if not _loaded:
        raise ReactionsNotLoaded(
            f"{type(event).__name__} published before the reactions were loaded; "
            "call lens.features.load() when the process starts"
        )
    for handler in _reactions.get(type(event), ()):
        await handler(session, event)
