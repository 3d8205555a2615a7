"""Reading tutor conversations back: the student's own, the research export, the
per-course base prompt an admin sets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.content.parsed import ContentSet, Module
from lens.courses.service import course_modules, module_key
from lens.errors import Invalid
from lens.tutor.models import Conversation, CoursePrompt, Message
from lens.users.models import User

MAX_BASE_PROMPT_CHARS = 8_000
_EXPORT_BATCH = 200  # conversations per query while streaming an export


# -- the base prompt per course ---------------------------------------------------------


async def get_base_prompt(session: AsyncSession, *, course_slug: str) -> str | None:
    row = await session.get(CoursePrompt, course_slug)
    return row.prompt if row is not None else None


async def list_base_prompts(session: AsyncSession) -> dict[str, CoursePrompt]:
    return {row.course_slug: row for row in await session.scalars(select(CoursePrompt))}


async def set_base_prompt(
    session: AsyncSession, *, course_slug: str, prompt: str, by: User
) -> None:
    """Store a course's base prompt; an empty prompt goes back to the default."""
    text = prompt.strip().replace("\r\n", "\n")
    row = await session.get(CoursePrompt, course_slug)
    if not text:
        if row is not None:
            await session.delete(row)
            await session.flush()
        return
    if len(text) > MAX_BASE_PROMPT_CHARS:
        raise Invalid(
            f"The prompt is {len(text)} characters; keep it under {MAX_BASE_PROMPT_CHARS} so "
            "the course material still fits beside it."
        )
    if row is None:
        session.add(CoursePrompt(course_slug=course_slug, prompt=text, updated_by=by.id))
    else:
        row.prompt, row.updated_by = text, by.id
    await session.flush()


# -- transcripts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    conversation: Conversation
    messages: list[Message]
    module: Module | None  # None when the module is no longer in the content
    course_slug: str | None  # a course the module is in, for a link back
    section_title: str | None
    section_number: int | None  # 1-based, for a link back to the page


_Index = dict[str, tuple[Module, str | None]]  # module key -> module, a course it is in


def _module_index(content: ContentSet | None) -> _Index:
    if content is None:
        return {}
    index: _Index = {module_key(m): (m, None) for m in content.modules.values()}
    for course in content.courses.values():
        for _, module in course_modules(content, course):
            key = module_key(module)
            if index[key][1] is None:
                index[key] = (module, course.slug)
    return index


def _transcript(index: _Index, conversation: Conversation, messages: list[Message]) -> Transcript:
    module, course_slug = index.get(conversation.module_key, (None, None))
    if module is not None:
        for number, section in enumerate(module.sections, start=1):
            if section.content_id == conversation.content_id:
                return Transcript(
                    conversation, messages, module, course_slug, section.title, number
                )
    return Transcript(conversation, messages, module, course_slug, None, None)


async def _messages_by_conversation(
    session: AsyncSession,
    ids: list[int],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[int, list[Message]]:
    query = select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.id)
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    out: dict[int, list[Message]] = {i: [] for i in ids}
    for message in await session.scalars(query):
        out[message.conversation_id].append(message)
    return out


async def list_transcripts(
    session: AsyncSession, *, user_id: int, content: ContentSet | None
) -> list[Transcript]:
    """A student's own conversations, the most recently active first."""
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.user_id == user_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        )
    )
    messages = await _messages_by_conversation(session, [c.id for c in conversations])
    index = _module_index(content)
    return [_transcript(index, c, messages[c.id]) for c in conversations if messages[c.id]]


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "cost_usd": message.cost_usd,
        "created_at": message.created_at.isoformat(),
    }


def transcript_json(transcript: Transcript) -> dict[str, Any]:
    conversation = transcript.conversation
    return {
        "conversation_id": conversation.id,
        "user_id": conversation.user_id,
        "anonymous": conversation.user_id is None,
        "module": {
            "key": conversation.module_key,
            "title": transcript.module.title if transcript.module else None,
        },
        "section": {"content_id": conversation.content_id, "title": transcript.section_title},
        "segment_index": conversation.segment_index,
        "started_at": conversation.created_at.isoformat(),
        "messages": [_message_json(m) for m in transcript.messages],
    }


@dataclass(frozen=True)
class ExportFilter:
    module_keys: Collection[str] | None = None  # a course's modules; None: every module
    user_ids: Collection[int] | None = None  # a cohort's people; None: everyone
    since: datetime | None = None
    until: datetime | None = None  # exclusive

    def check(self) -> None:
        if self.since and self.until and self.until <= self.since:
            raise Invalid("The end date must come after the start date.")


async def export_transcripts(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    content: ContentSet | None,
    where: ExportFilter,
    header: dict[str, Any],
) -> AsyncIterator[str]:
    """Stream a JSON document {"export": header, "conversations": [...]} in pieces.

    Conversations are read in batches by id, so an export of a large course never holds
    more than one batch in memory. Only messages inside the date range are included,
    and conversations with none are left out.
    """
    where.check()
    yield '{"export": ' + json.dumps(header) + ', "conversations": ['
    first, after = True, 0
    index = _module_index(content)
    while True:
        query = (
            select(Conversation)
            .where(Conversation.id > after)
            .order_by(Conversation.id)
            .limit(_EXPORT_BATCH)
        )
        if where.module_keys is not None:
            query = query.where(Conversation.module_key.in_(list(where.module_keys)))
        if where.user_ids is not None:
            query = query.where(Conversation.user_id.in_(list(where.user_ids)))
        async with sessionmaker() as session:
            batch = list(await session.scalars(query))
            if not batch:
                break
            messages = await _messages_by_conversation(
                session, [c.id for c in batch], since=where.since, until=where.until
            )
        after = batch[-1].id
        for conversation in batch:
            if not messages[conversation.id]:
                continue
            item = transcript_json(_transcript(index, conversation, messages[conversation.id]))
            yield ("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False)
            first = False
    yield "\n]}\n"


async def delete_user_transcripts(session: AsyncSession, *, user_id: int) -> int:
    """Account deletion: a person's words with the tutor go with them."""
    result = await session.execute(delete(Conversation).where(Conversation.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
