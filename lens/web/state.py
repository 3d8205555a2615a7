"""What the app's lifespan builds and request handlers share (app.state.lens).

Platform things only: settings, the database, the shared HTTP client and the vendor
clients. A feature that keeps per-process state of its own (the content store) puts it
on `app.state` under its own name and gives a dependency to read it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from lens.db.engine import read_rows
from lens.db.hot import HotReads
from lens.settings import Settings

if TYPE_CHECKING:
    from lens.integrations.email.client import EmailSender
    from lens.integrations.llm.client import ChatModel
    from lens.integrations.llm.transcription import Transcriber
    from lens.jobs.periodic import PeriodicTriggers
    from lens.jobs.runner import JobRunner


@dataclass
class Lens:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    jwt_secret: str
    email: EmailSender
    chat_model: ChatModel | None = None
    transcriber: Transcriber | None = None
    # Sessions on lens.db.engine.read_only(engine): see `reads`.
    # None: the sessionmaker (tests bind it to one rolled-back connection).
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # Connections of their own for `read_rows` (PostgreSQL; lens.db.hot).
    hot: HotReads | None = None
    runner: JobRunner | None = None
    triggers: PeriodicTriggers | None = None

    async def read_rows(self, statement: Any, **params: Any) -> list[Any]:
        """A hot read-only select (one on every page view), by column name:
        `row["column"]`. On PostgreSQL straight through the driver
        (lens.db.engine.read_rows, on `hot`'s connections); otherwise, and in tests bound
        to one connection, in a read session."""
        if self.read_sessionmaker is not None and self.engine.dialect.name == "postgresql":
            return await read_rows(self.engine, statement, params, hot=self.hot)
        async with self.reads() as session:
            return [row._mapping for row in await session.execute(statement, params)]

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for statements that only read (the reader's pages): on PostgreSQL each
        statement is its own transaction; on SQLite the write lock is not taken."""
        return self.read_sessionmaker or self.sessionmaker


def get_lens(request: Request) -> Lens:
    lens: Lens = request.app.state.lens
    return lens


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed before the response goes out."""
    async with get_lens(request).sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
