"""Conversations, limits and the streaming exchange with the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.auth.visitors import user_actor, visitor_actor
from lens.db.base import utcnow
from lens.db.batches import Batches
from lens.db.engine import unit_of_work
from lens.db.outage import database_unavailable
from lens.db.spool import Spool, save_or_spool
from lens.errors import Invalid, RateLimited
from lens.integrations.llm import direct
from lens.integrations.llm.client import (
    ChatModel,
    Delta,
    DirectModel,
    LiteLLMModel,
    SentAhead,
    Usage,
)
from lens.integrations.llm.transcription import OpenAITranscriber, Transcriber
from lens.logging import get_logger
from lens.settings import Settings
from lens.tutor.models import BudgetHold, Conversation, Message, Transcription
from lens.tutor.spool import release_hold, write_replies, write_reply

log = get_logger("lens.tutor")

HISTORY_MESSAGES = 20  # earlier turns sent back to the model
# Taken (PostgreSQL) by whatever counts the site's spending and sets budget aside.
BUDGET_LOCK = "lens.tutor.budget"


def model_from_settings(settings: Settings) -> ChatModel | None:
    if not settings.tutor_configured:
        return None
    options: dict[str, Any] = {
        "model": settings.llm_provider,
        "api_key": settings.tutor_model_key,
        "api_base": settings.llm_api_base,
        "fallback": settings.llm_fallback,
        "first_token_timeout": settings.tutor_first_token_seconds,
        "reply_timeout": settings.tutor_reply_seconds,
        "prices": settings.llm_prices,
    }
    if direct.route_for(settings.llm_provider, api_key=None, api_base=None) is None:
        return LiteLLMModel(**options)  # a model string only litellm knows
    keys = {
        "anthropic": settings.anthropic_api_key,
        "openai": settings.openai_api_key,
        "gemini": settings.gemini_api_key,
    }
    return DirectModel(keys=keys, **options)


def transcriber_from_settings(settings: Settings, http: httpx.AsyncClient) -> Transcriber | None:
    if not settings.openai_api_key:
        return None
    return OpenAITranscriber(
        http,
        api_key=settings.openai_api_key,
        model=settings.transcription_model,
        base_url=settings.transcription_api_base,
    )


# A chat's messages, oldest first (lens.web.state.Lens.read_rows: one read).
HISTORY = (
    select(Message.id, Message.role, Message.content, Message.status)
    .join(Conversation, Conversation.id == Message.conversation_id)
    .where(
        Conversation.actor == bindparam("actor"),
        Conversation.module_key == bindparam("module_key"),
        Conversation.content_id == bindparam("content_id"),
        Conversation.segment_index == bindparam("segment_index"),
    )
    .order_by(Message.id)
)


def check_text(text: str, *, settings: Settings) -> None:
    """Raise with a message the student can act on when the message cannot be sent as
    it is (the limits that need the database are lens.tutor.starts')."""
    if not text.strip():
        raise Invalid("Write a message first.")
    if len(text) > settings.tutor_max_message_chars:
        raise Invalid(
            f"That message is {len(text)} characters; the tutor takes at most "
            f"{settings.tutor_max_message_chars}. Shorten it, or split it in two."
        )


def spent_today(day_start: datetime, *, holds_since: datetime) -> Any:
    """The site's spending today: replies, speech input, and what replies being given
    now may still cost (their holds)."""
    replies = (
        select(func.coalesce(func.sum(Message.cost_usd), 0.0))
        .where(Message.created_at >= day_start)
        .scalar_subquery()
    )
    speech = (
        select(func.coalesce(func.sum(Transcription.cost_usd), 0.0))
        .where(Transcription.created_at >= day_start)
        .scalar_subquery()
    )
    held = (
        select(func.coalesce(func.sum(BudgetHold.amount_usd), 0.0))
        .where(BudgetHold.created_at >= max(day_start, holds_since))
        .scalar_subquery()
    )
    return (replies + speech + held).label("spent")


def holds_since(now: datetime, settings: Settings) -> datetime:
    """Holds younger than the longest a reply can take (waiting for its first token,
    streaming, saving) still count; an older one was left by a process that died."""
    return now - timedelta(
        seconds=settings.tutor_first_token_seconds + settings.tutor_reply_seconds + 60
    )


def reply_cost_ceiling(
    model: ChatModel, *, system: str, history: list[dict[str, str]], max_tokens: int
) -> float:
    """The most one reply can cost. A token is at least one byte of text, so the prompt's
    UTF-8 bytes (and a few tokens per message for the roles) bound its prompt tokens."""
    prompt_tokens = sum(len(t.encode()) for t in (system, *(m["content"] for m in history)))
    prompt_tokens += 8 * (len(history) + 1)
    return model.cost_ceiling(prompt_tokens=prompt_tokens, completion_tokens=max_tokens)


def _check_cost_cap(spent: float, *, settings: Settings) -> None:
    if spent >= settings.tutor_daily_cost_cap_usd:
        raise over_the_cap()


def over_the_cap() -> RateLimited:
    return RateLimited(
        "The tutor has reached this site's budget for today and is resting until "
        "midnight UTC. Your conversation is kept."
    )


async def _one_at_a_time_per_network(session: AsyncSession, client_net: str) -> None:
    """On PostgreSQL, visitors' requests from one network are counted one after the
    other (until the transaction ends), so requests sent together cannot all pass the
    count. SQLite's write transactions are one at a time already."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext("lens.tutor.net:" + client_net)))
        )


async def start_transcription(
    session: AsyncSession,
    *,
    actor: str,
    settings: Settings,
    audio_bytes: int,
    client_net: str | None = None,
) -> Transcription:
    """Check the limits and record the recording before it is sent to the provider (so
    recordings sent together count against each other); `finish_transcription` adds
    what it cost."""
    now = utcnow()
    anonymous = actor.startswith("a:") and client_net is not None
    if anonymous:
        assert client_net is not None
        await _one_at_a_time_per_network(session, client_net)
    recent = await session.scalar(
        select(func.count())
        .select_from(Transcription)
        .where(Transcription.actor == actor, Transcription.created_at > now - timedelta(minutes=1))
    )
    if (recent or 0) >= settings.tutor_messages_per_minute:
        raise RateLimited("You are recording faster than the tutor can keep up. Wait a minute.")
    if anonymous:
        from_net = await session.scalar(
            select(func.count())
            .select_from(Transcription)
            .where(
                Transcription.client_net == client_net,
                Transcription.created_at > now - timedelta(minutes=1),
            )
        )
        if (from_net or 0) >= settings.tutor_network_messages_per_minute:
            raise RateLimited(
                "Many people without an account are using speech input from your network. "
                "Wait a minute, or sign in for your own allowance."
            )
    spent = await session.scalar(
        select(
            spent_today(
                now.replace(hour=0, minute=0, second=0, microsecond=0),
                holds_since=holds_since(now, settings),
            )
        )
    )
    _check_cost_cap(float(spent or 0.0), settings=settings)
    row = Transcription(
        actor=actor,
        audio_bytes=audio_bytes,
        client_net=client_net if actor.startswith("a:") else None,
    )
    session.add(row)
    await session.flush()
    return row


async def finish_transcription(
    session: AsyncSession, *, transcription_id: int, seconds: float | None, cost_usd: float
) -> None:
    row = await session.get(Transcription, transcription_id)
    if row is not None:
        row.seconds, row.cost_usd = seconds, cost_usd
        await session.flush()


@dataclass
class Reply:
    text: str = ""
    status: str = "complete"
    usage: Usage | None = None
    message_id: int | None = None
    hold_id: int | None = None  # the budget set aside for it (hold_budget), let go on save


async def stream_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    model: ChatModel,
    conversation_id: int,
    system: str,
    history: list[dict[str, str]],
    max_tokens: int,
    reply: Reply,
    spool: Spool | None = None,
    saves: ReplySaves | None = None,
    ahead: SentAhead | None = None,
) -> AsyncIterator[str]:
    """Yield the reply's text as it arrives; store it when it ends, however it ends.

    A reply cut short (provider error, or the student's browser went away) is stored
    with status "partial" so the transcript shows what the student saw. When the database
    cannot take it (after retries), it waits in `spool` until the database is back.
    """
    try:
        async for event in model.stream(
            system=system, messages=history, max_tokens=max_tokens, ahead=ahead
        ):
            if isinstance(event, Delta):
                reply.text += event.text
                yield event.text
            else:
                reply.usage = event
    except BaseException:
        reply.status = "partial" if reply.text else "error"
        raise
    finally:
        if ahead is not None:  # unread when the stream never reached it (idempotent)
            await ahead.aclose()
        # Shielded: a disconnect cancels this generator, and the transcript must still
        # be written.
        await asyncio.shield(
            _store_reply(sessionmaker, conversation_id, model.name, reply, spool=spool, saves=saves)
        )


SAVE_TRIES = (0.5, 1.0, 2.0)  # seconds before each retry of a reply's save


async def _store_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    conversation_id: int,
    model: str,
    reply: Reply,
    *,
    spool: Spool | None = None,
    saves: ReplySaves | None = None,
) -> None:
    if not reply.text and reply.usage is None and reply.status == "error":
        await let_go(sessionmaker, reply.hold_id)
        return
    usage = reply.usage or Usage(0, 0, 0.0)
    record = {
        "conversation_id": conversation_id,
        "content": reply.text,
        "status": reply.status,
        # The model that answered and was paid for (the fallback, when it did).
        "model": usage.model or model,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": usage.cost_usd,
        "created_at": utcnow().isoformat(),
        "hold_id": reply.hold_id,
    }
    # Any failure is retried and then spooled, not only an outage: the learner has the
    # reply and the tokens were paid, so it must never be dropped.
    if saves is not None:
        saved, message_id = await saves.save(record)
    else:
        saved, message_id = await save_or_spool(
            sessionmaker, write_reply, record, spool=spool, tries=SAVE_TRIES, outage=lambda _: True
        )
    if not saved:
        log.error("tutor.reply.spooled", tokens=usage.prompt_tokens + usage.completion_tokens)
        return
    reply.message_id = message_id
    log.info(
        "tutor.reply.stored",
        status=reply.status,
        tokens=usage.prompt_tokens + usage.completion_tokens,
        cost_usd=round(usage.cost_usd, 6),
    )


class ReplySaves:
    """Replies that end together are saved together (lens.db.batches): one transaction
    for the batch; when it fails, each is saved on its own, retried, and spooled."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, spool: Spool | None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.spool = spool
        self._batches: Batches[dict[str, Any], tuple[bool, Any]] = Batches(self._run)

    async def save(self, record: dict[str, Any]) -> tuple[bool, Any]:
        """(saved now, the message's id), or (False, None) when it was spooled."""
        return await self._batches.submit(record)

    async def _run(self, records: list[dict[str, Any]]) -> list[tuple[bool, Any] | BaseException]:
        # The whole batch, retried while the database is away (as one reply was); still
        # away after the last try: every reply waits on disk at once, not one by one.
        for attempt, pause in enumerate((*SAVE_TRIES, None)):
            try:
                async with unit_of_work(self.sessionmaker) as session:
                    ids = await write_replies(session, records)
                return [(True, id_) for id_ in ids]
            except Exception as exc:
                if not database_unavailable(exc):
                    log.warning("tutor.reply.batch_failed", replies=len(records), error=repr(exc))
                    break
                if pause is not None:
                    log.warning("tutor.reply.save_retry", attempt=attempt + 1, error=repr(exc))
                    await asyncio.sleep(pause)
                    continue
                if self.spool is None:
                    raise
                for record in records:
                    self.spool.put(record)
                log.error("spool.kept", kind=self.spool.kind, records=len(records),
                          error=repr(exc))  # fmt: skip
                return [(False, None)] * len(records)
        # Not the database being away: one reply's trouble, so one by one, each retried
        # and then spooled; after one had to be spooled, the rest get one try each.
        outcomes: list[tuple[bool, Any] | BaseException] = []
        tries: tuple[float, ...] = SAVE_TRIES
        for record in records:
            try:
                outcome = await save_or_spool(
                    self.sessionmaker,
                    write_reply,
                    record,
                    spool=self.spool,
                    tries=tries,
                    outage=lambda _: True,
                )
            except Exception as exc:  # no spool to keep it in
                outcomes.append(exc)
                tries = ()
                continue
            outcomes.append(outcome)
            if not outcome[0]:
                tries = ()
        return outcomes


async def let_go(sessionmaker: async_sessionmaker[AsyncSession], hold_id: int | None) -> None:
    """Release the budget of a reply that cost nothing (no answer came). Best effort: a
    hold that stays stops counting once the longest reply would be over."""
    if hold_id is None:
        return
    try:
        async with unit_of_work(sessionmaker) as session:
            await release_hold(session, hold_id)
    except Exception as exc:
        log.warning("tutor.budget.release_failed", error=repr(exc))


async def merge_anonymous_conversations(
    session: AsyncSession, *, anon_id: str, user_id: int
) -> int:
    """A visitor signed in: their conversations follow them (unless they already have one)."""
    source, target = visitor_actor(anon_id), user_actor(user_id)
    taken = select(
        Conversation.module_key, Conversation.content_id, Conversation.segment_index
    ).where(Conversation.actor == target)
    existing = {tuple(row) for row in (await session.execute(taken)).all()}
    moved = 0
    for conversation in await session.scalars(
        select(Conversation).where(Conversation.actor == source)
    ):
        key = (conversation.module_key, conversation.content_id, conversation.segment_index)
        if key in existing:
            continue  # both had one: keep the account's, the visitor's stays anonymous
        conversation.actor, conversation.user_id = target, user_id
        moved += 1
    await session.flush()

    return moved
