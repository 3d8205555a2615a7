"""The tutor over HTTP: history as JSON, replies as server-sent events.

Protocol of POST /api/tutor/messages (text/event-stream), see lens/tutor/README.md:
    event: delta   data: {"text": "..."}                  a piece of the reply
    event: done    data: {"message_id": 7, "html": "..."}  the whole reply, sanitised HTML
    event: error   data: {"message": "...", "retry": true}   (retry false: the site's
                   model account needs an admin, asking again will not help)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from lens.auth.deps import OptionalUser
from lens.auth.visitors import Reader
from lens.courses.pages import current_content
from lens.courses.service import get_course, get_module, module_key
from lens.db.engine import unit_of_work
from lens.errors import IntegrationRejected, IntegrationUnavailable, Invalid, LensError, NotFound
from lens.integrations.llm.client import ChatModel
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.logging import get_logger
from lens.tutor.prompt import ChatTarget, find_chat
from lens.tutor.service import (
    HISTORY,
    Reply,
    ReplySaves,
    check_text,
    finish_transcription,
    let_go,
    start_transcription,
    stream_reply,
)
from lens.tutor.spool import spool_for
from lens.tutor.starts import Ahead, Ask, StartQueue
from lens.web.markdown import render_markdown
from lens.web.network import client_network
from lens.web.state import Lens, get_lens

log = get_logger("lens.tutor")
router = APIRouter(prefix="/api/tutor", tags=["tutor"])
speech = APIRouter(prefix="/api", tags=["tutor"])

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the transcription API's own limit
# What browsers record (webm/ogg from Chromium and Firefox, mp4 from Safari) and what
# the transcription API reads.
AUDIO_SUFFIXES = {
    ".flac",
    ".m4a",
    ".mp3",
    ".mp4",
    ".mpeg",
    ".mpga",
    ".oga",
    ".ogg",
    ".wav",
    ".webm",
}
AUDIO_TYPES = {  # content type -> the file suffix the transcription API goes by
    "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/m4a": ".m4a", "audio/x-m4a": ".m4a",
    "audio/mp4": ".m4a", "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/ogg": ".ogg",
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/webm": ".webm",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/mpeg": ".mpeg",
}  # fmt: skip


class ChatAt(BaseModel):
    course: str = ""  # empty: the module on its own (/module/<slug>)
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
    course = None
    if at.course:
        course = get_course(content, at.course)
        _, module = get_module(content, course, at.module)
    else:
        found = content.module_by_slug(at.module)
        if found is None:
            raise NotFound(f"There is no module {at.module!r}.")
        module = found
    try:
        return find_chat(course, module, at.section - 1, at.segment)
    except ValueError as exc:
        raise NotFound(f"There is no tutor chat there ({exc}).") from exc


@router.get("/history", response_model=HistoryOut)
async def history(
    request: Request, viewer: OptionalUser, course: str, module: str, section: int, segment: int
) -> Response:
    """A chat's earlier messages (each chat on a page asks when the page opens): one
    read, and the JSON written directly (HistoryOut is what it holds)."""
    target = _target(
        request, ChatAt(course=course, module=module, section=section, segment=segment)
    )
    reader = Reader(request, viewer)
    lens = get_lens(request)
    rows: list[Any] = []
    if reader.actor and not reader.new_cookie:
        rows = await lens.read_rows(
            HISTORY,
            actor=reader.actor,
            module_key=module_key(target.module),
            content_id=target.section.content_id,
            segment_index=target.segment_index,
        )
    messages = [
        {
            "id": row["id"],
            "role": row["role"],
            "html": render_markdown(row["content"]),
            "status": row["status"],
        }
        for row in rows
    ]
    return JSONResponse({"configured": lens.chat_model is not None, "messages": messages})


def _starts(request: Request, lens: Lens, model: ChatModel) -> StartQueue:
    """This app's queue of replies being started (lens.tutor.starts), made on first use."""
    queue: StartQueue | None = getattr(request.app.state, "tutor_starts", None)
    if queue is None or queue.model is not model or queue.sessionmaker is not lens.sessionmaker:
        queue = StartQueue(lens.sessionmaker, model=model, settings=lens.settings)
        request.app.state.tutor_starts = queue
    return queue


def _ahead(request: Request) -> Ahead:
    """This app's count of vendor connections opened ahead per network (starts.Ahead)."""
    ahead: Ahead | None = getattr(request.app.state, "tutor_ahead", None)
    if ahead is None:
        ahead = request.app.state.tutor_ahead = Ahead()
    return ahead


def _saves(request: Request, lens: Lens) -> ReplySaves:
    """This app's replies being saved (lens.tutor.service.ReplySaves), made on first use."""
    saves: ReplySaves | None = getattr(request.app.state, "tutor_saves", None)
    if saves is None or saves.sessionmaker is not lens.sessionmaker:
        saves = ReplySaves(lens.sessionmaker, spool=spool_for(lens.settings))
        request.app.state.tutor_saves = saves
    return saves


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
    check_text(body.message, settings=lens.settings)
    network = client_network(request.client.host if request.client else None)
    started = await _starts(request, lens, model).start(
        Ask(
            # The vendor connection opens while the budget is checked (StartQueue).
            prepare=_ahead(request).allow(network, time.monotonic()),
            actor=reader.actor or "",
            user_id=reader.user_id,
            client_net=network,
            target=target,
            module_key=module_key(target.module),
            text=body.message,
        )
    )
    conversation_id, system, turns = started.conversation_id, started.system, started.turns
    reply = Reply(hold_id=started.hold_id)
    # Before this response's head is written: with a cohort asking at once, every request
    # reaches the vendor before Lens writes the first of the 200 heads (issue 20).
    ahead = await model.send_ahead(
        system=system, messages=turns, max_tokens=lens.settings.tutor_max_tokens
    )
    if ahead is not None:
        # The others started in the same batch send theirs before this one goes on to
        # its response (sending rarely waits, so nothing else would let them in first).
        await asyncio.sleep(0)

    begun = False

    async def events() -> AsyncIterator[str]:
        nonlocal begun
        begun = True
        try:
            async for text in stream_reply(
                lens.sessionmaker,
                model=model,
                conversation_id=conversation_id,
                system=system,
                history=turns,
                max_tokens=lens.settings.tutor_max_tokens,
                reply=reply,
                spool=spool_for(lens.settings),
                saves=_saves(request, lens),
                ahead=ahead,
            ):
                yield _event("delta", {"text": text})
        except ProviderAccountProblem as exc:
            # The site's account with the model vendor (key, quota, billing): asking again
            # will not help until an admin acts. An error in the logs (and Sentry) for
            # them; the student hears that it is the site's problem, not the vendor's words.
            log.error("tutor.reply.account_problem", model=model.name, error=str(exc))
            yield _event(
                "error",
                {
                    "message": "The tutor is not available on this site at the moment. "
                    "The site's team has been told; your message is kept.",
                    "retry": False,
                },
            )
            return
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

    async def unused_hold() -> None:
        """The learner left before the reply began (Starlette stops the response before
        `events` runs, and `stream_reply` never sees it): the budget goes back now, not
        when the hold expires. Their message stays, as any they sent."""
        if not begun:
            if ahead is not None:
                await ahead.aclose()  # the request sent for it: its connection goes
            await let_go(lens.sessionmaker, reply.hold_id)

    response = StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(unused_hold),
    )
    reader.apply(request, response)
    return response


class TranscriptOut(BaseModel):
    text: str


@speech.post("/transcribe", response_model=TranscriptOut)
async def transcribe(request: Request, viewer: OptionalUser) -> TranscriptOut:
    """Speech to text for the chat box: multipart/form-data with one file, `audio`."""
    lens = get_lens(request)
    if lens.transcriber is None:
        raise NotFound("Speech input is not set up on this site; type your message instead.")
    length = request.headers.get("content-length")
    if length is None:
        raise LensError("Send the recording with its length (Content-Length).", 411)
    if int(length) > MAX_AUDIO_BYTES + 64 * 1024:
        raise LensError("The recording is over 25 MB; record a shorter message.", 413)
    form = await request.form(max_files=1, max_fields=2)
    upload = form.get("audio")
    if not isinstance(upload, UploadFile):
        raise Invalid("Attach the recording as the form field 'audio'.")
    audio = await upload.read(MAX_AUDIO_BYTES + 1)
    if len(audio) > MAX_AUDIO_BYTES:
        raise LensError("The recording is over 25 MB; record a shorter message.", 413)
    if not audio:
        raise Invalid("The recording is empty; try again and speak after pressing the button.")
    filename = upload.filename or "speech.webm"
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if PurePosixPath(filename).suffix.lower() not in AUDIO_SUFFIXES:
        if content_type not in AUDIO_TYPES:
            raise Invalid(
                "That file is not a recording Lens can read; use webm, ogg, mp3, mp4, m4a, "
                "wav or flac."
            )
        filename = "speech" + AUDIO_TYPES[content_type]
    actor = Reader(request, viewer).actor or ""
    async with unit_of_work(lens.sessionmaker) as session:
        started = await start_transcription(
            session,
            actor=actor,
            settings=lens.settings,
            audio_bytes=len(audio),
            client_net=client_network(request.client.host if request.client else None),
        )
    try:
        result = await lens.transcriber.transcribe(
            audio=audio, filename=filename, content_type=content_type or "application/octet-stream"
        )
    except ProviderAccountProblem as exc:
        # The site's OpenAI account (key, quota, billing), not this recording: an admin
        # has to act, so it is an error in the logs (and Sentry), and the student is told
        # to type without the vendor's details.
        log.error("tutor.transcribe.account_problem", error=str(exc))
        raise LensError(
            "Speech input is not available on this site at the moment; type your message "
            "instead. The site's team has been told.",
            503,
        ) from exc
    except IntegrationUnavailable as exc:
        log.warning("tutor.transcribe.failed", error=str(exc))
        raise LensError(
            "Speech input is unavailable just now; type your message, or try again soon.", 503
        ) from exc
    except IntegrationRejected as exc:
        log.warning("tutor.transcribe.refused", error=str(exc))
        raise Invalid("The recording could not be understood; try again, or type instead.") from exc
    async with unit_of_work(lens.sessionmaker) as session:
        await finish_transcription(
            session, transcription_id=started.id, seconds=result.seconds, cost_usd=result.cost_usd
        )
    if not result.text:
        raise Invalid("No speech was heard in the recording; try again a little closer.")
    return TranscriptOut(text=result.text)
