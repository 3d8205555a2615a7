"""The content a web process serves, for request handlers.

The app's lifespan opens one ContentStore per process and keeps it on
`app.state.content`; pages read it through these two functions.
"""

from __future__ import annotations

from fastapi import Request

from lens.content.parsed import ContentSet
from lens.content.store import ContentStore


def content_store(request: Request) -> ContentStore | None:
    """The process's content store; None only before the lifespan has opened it."""
    store: ContentStore | None = getattr(request.app.state, "content", None)
    return store


def loaded_content(request: Request) -> ContentSet | None:
    """The parsed content this process serves, or None before the first load."""
    store = content_store(request)
    return store.loaded if store is not None else None


def course_titles(request: Request) -> dict[str, str]:
    """Course slug -> title, for pages that name a cohort's course."""
    content = loaded_content(request)
    return {slug: c.title for slug, c in content.courses.items()} if content else {}
