"""Job kinds and their handlers.

A feature declares its jobs in its own `tasks.py`:

    @job("content.sync")
    async def sync_content(ctx: JobContext, payload: dict[str, Any]) -> None: ...

and lists that module in lens/features.py, so every process (web or worker) knows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncSession

    from lens.settings import Settings


@dataclass
class JobContext:
    """What a handler gets: the transaction its work commits in, and shared clients."""

    session: AsyncSession
    job_id: int
    kind: str
    attempt: int
    settings: Settings
    http: httpx.AsyncClient | None = None
    extras: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    max_attempts: int = 5


class JobRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, name: str, handler: Handler, *, max_attempts: int = 5) -> None:
        existing = self._kinds.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"job kind {name!r} is registered twice")
        self._kinds[name] = JobKind(name, handler, max_attempts)

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        return sorted(self._kinds)


registry = JobRegistry()


def job(name: str, *, max_attempts: int = 5) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        registry.register(name, handler, max_attempts=max_attempts)
        return handler

    return decorate
