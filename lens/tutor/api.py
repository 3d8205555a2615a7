"""The tutor over HTTP: history as JSON, replies as server-sent events.

Protocol of POST /api/tutor/messages (text/event-stream), see lens/tutor/README.md:
    event: delta   data: {"text": "..."}                  a piece of the reply
    event: done    data: {"message_id": 7, "html": "..."}  the whole reply, sanitised HTML
    event: error   data: {"message": "...", "retry": true}
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from lens.app_state import get_lens
from lens.auth.deps import OptionalUser
from lens.courses.pages import Reader, current_content
from lens.courses.service import get_course, get_module, module_key
from lens.db.engine import unit_of_work
from lens.errors import IntegrationRejected, IntegrationUnavailable, NotFound
from lens.logging import get_logger
from lens.tutor.models import Message
from lens.tutor.prompt import ChatTarget, build_system_prompt, find_chat
from lens.tutor.service import (
    HISTORY_MESSAGES,
    Reply,
    check_limits,
    get_conversation,
    list_messages,
    stream_reply,
)
from lens.tutor.transcripts import get_base_prompt
from lens.web.markdown import render_markdown

log = get_logger("lens.tutor")
router = APIRouter(prefix="/api/tutor", tags=["tutor"])


class ChatAt(BaseModel):
    course: str
    module: str
    section: int  # 1-based, as in the page address
    segment: int  # 0-based within the section


class NewMessage(ChatAt):
    message: str


class MessageOut(BaseModel):
    id: int
    role: str
    html: str
    status: str


class HistoryOut(BaseModel):
    configured: bool
    messages: list[MessageOut]


def _target(request: Request, at: ChatAt) -> ChatTarget:
    content = current_content(request)
    course = get_course(content, at.course)
    _, module = get_module(content, course, at.module)
    try:
        return find_chat(course, module, at.section - 1, at.segment)
    except ValueError as exc:
        raise NotFound(f"There is no tutor chat there ({exc}).") from exc


def _out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        role=message.role,
        html=render_markdown(message.content),
        status=message.status,
    )


@router.get("/history", response_model=HistoryOut)
async def history(
    request: Request, viewer: OptionalUser, course: str, module: str, section: int, segment: int
) -> HistoryOut:
    target = _target(
        request, ChatAt(course=course, module=module, section=section, segment=segment)
    )
    reader = Reader(request, viewer)
    lens = get_lens(request)
    messages: list[Message] = []
    if reader.actor and not reader.new_cookie:
        async with lens.sessionmaker() as session:
            conversation = await get_conversation(
                session,
                actor=reader.actor,
                user_id=reader.user_id,
                module_key=module_key(target.module),
                content_id=target.section.content_id,
                segment_index=target.segment_index,
                create=False,
            )
            if conversation is not None:
                messages = await list_messages(session, conversation_id=conversation.id)
    return HistoryOut(configured=lens.chat_model is not None, messages=[_out(m) for m in messages])


def _event(name: str, data: dict[str, object]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.post("/messages")
async def send(request: Request, body: NewMessage, viewer: OptionalUser) -> StreamingResponse:
    lens = get_lens(request)
    if lens.chat_model is None:
        raise NotFound("The tutor is not set up on this site.")
    model = lens.chat_model
    target = _target(request, body)
    reader = Reader(request, viewer)
    actor = reader.actor or ""
    async with unit_of_work(lens.sessionmaker) as session:
        await check_limits(session, actor=actor, text=body.message, settings=lens.settings)
        conversation = await get_conversation(
            session,
            actor=actor,
            user_id=reader.user_id,
            module_key=module_key(target.module),
            content_id=target.section.content_id,
            segment_index=target.segment_index,
            create=True,
        )
        assert conversation is not None
        base_prompt = await get_base_prompt(session, course_slug=target.course.slug)
        # Saved before the model is called: the student's words are never lost.
        session.add(Message(conversation_id=conversation.id, role="user", content=body.message))
        await session.flush()
        earlier = await list_messages(session, conversation_id=conversation.id)
    turns = [
        {"role": m.role, "content": m.content}
        for m in earlier[-HISTORY_MESSAGES:]
        if m.content and m.status != "error"
    ]
    system = build_system_prompt(target, base_prompt=base_prompt)
    reply = Reply()

    async def events() -> AsyncIterator[str]:
        try:
            async for text in stream_reply(
                lens.sessionmaker,
                model=model,
                conversation_id=conversation.id,
                system=system,
                history=turns,
                max_tokens=lens.settings.tutor_max_tokens,
                reply=reply,
            ):
                yield _event("delta", {"text": text})
        except (IntegrationUnavailable, IntegrationRejected) as exc:
            log.warning("tutor.reply.failed", error=str(exc))
            message = (
                "The tutor stopped answering part-way. Try again."
                if reply.text
                else "The tutor could not answer just now. Try again in a moment."
            )
            yield _event("error", {"message": message, "retry": True})
            return
        yield _event("done", {"message_id": reply.message_id, "html": render_markdown(reply.text)})

    response = StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    reader.apply(request, response)
    return response
