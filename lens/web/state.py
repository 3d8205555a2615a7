"""What the app's lifespan builds and request handlers share (app.state.lens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from lens.settings import Settings

if TYPE_CHECKING:
    from lens.content.parsed import ContentSet
    from lens.content.store import ContentStore
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
    runner: JobRunner | None = None
    triggers: PeriodicTriggers | None = None
    content: ContentStore | None = None

    @property
    def loaded_content(self) -> ContentSet | None:
        """The parsed content this process serves, or None before the first load."""
        return self.content.loaded if self.content is not None else None


def get_lens(request: Request) -> Lens:
    lens: Lens = request.app.state.lens
    return lens
