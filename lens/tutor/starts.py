"""Starting tutor replies together: the checks and writes before the model is asked, for
every learner who asked at about the same moment, in one transaction.

When a facilitator says "now ask the tutor", a whole cohort sends its first message
within a second. Each reply needs, before the model is asked: the learner's and (for a
visitor) their network's limits, the site's spending today, the conversation (created
the first time), its earlier turns, the course's base prompt, the student's message
saved, and the reply's budget hold (lens.tutor.service.hold_budget). Done one request at
a time that is about ten statements and a pool connection each, and the learners
queue behind each other's round trips.

`StartQueue` gathers the requests that arrive while a batch is being written and starts
them all with the next one (lens.db.batches): one transaction of a fixed number of
statements, whatever the batch's size (`start_replies`). The checks run in arrival order
in Python, under one lock (PostgreSQL: an advisory lock, held to the commit, shared by
every process; SQLite: its write lock, taken at BEGIN), so requests in one batch count
against each other exactly as requests one after the other would.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import (
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.base import utcnow
from lens.db.batches import Batches
from lens.db.engine import unit_of_work
from lens.db.outage import database_unavailable
from lens.errors import RateLimited
from lens.integrations.llm.client import ChatModel
from lens.logging import get_logger
from lens.settings import Settings
from lens.tutor.models import BudgetHold, Conversation, CoursePrompt, Message
from lens.tutor.prompt import ChatTarget, build_system_prompt
from lens.tutor.service import (
    BUDGET_LOCK,
    HISTORY_MESSAGES,
    holds_since,
    let_go,
    over_the_cap,
    reply_cost_ceiling,
    spent_today,
)

log = get_logger("lens.tutor")

# The tables themselves: Core inserts of many rows, without the ORM's per-row work.
CONVERSATIONS = cast(Table, Conversation.__table__)
MESSAGES = cast(Table, Message.__table__)
HOLDS = cast(Table, BudgetHold.__table__)


@dataclass(frozen=True)
class Ask:
    """A learner's message, checked for length already (lens.tutor.service.check_text)."""

    actor: str  # "u:<id>" or "a:<visitor id>"
    user_id: int | None
    client_net: str | None  # the visitor's network (ignored for a signed-in learner)
    target: ChatTarget
    module_key: str
    text: str
    prepare: bool = False  # open a vendor connection for it ahead (`ChatModel.prepare`)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.actor, self.module_key, self.target.section.content_id,
                self.target.segment_index)  # fmt: skip

    @property
    def network(self) -> str | None:
        """The network whose visitor limits this counts against (visitors only)."""
        return self.client_net if self.actor.startswith("a:") and self.client_net else None


@dataclass(frozen=True)
class Started:
    """What asking the model needs: the message is saved and the budget held."""

    conversation_id: int
    system: str
    turns: list[dict[str, str]]
    hold_id: int | None


async def start_replies(
    session: AsyncSession, asks: list[Ask], *, model: ChatModel, settings: Settings
) -> list[Started | RateLimited]:
    """Check and record `asks` in order, in `session`'s transaction (commit it after):
    each one either Started (conversation, message and budget hold written) or refused
    (RateLimited, nothing written for it)."""
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        # One at a time across processes, to the commit: the counts below stay true.
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(BUDGET_LOCK))))
    else:
        await session.execute(select(literal(1)))  # SQLite: BEGIN IMMEDIATE, the write lock
    now = utcnow()  # once the lock is held: the times written follow the lock's order
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    minute_ago = now - timedelta(minutes=1)
    actors = sorted({a.actor for a in asks})
    networks = sorted({n for a in asks if (n := a.network) is not None})
    recent, tokens = await _usage_by(
        session, Conversation.actor, actors, minute_ago=minute_ago, day_start=day_start, pg=pg
    )
    net_recent, net_tokens = await _usage_by(
        session,
        Conversation.client_net,
        networks,
        minute_ago=minute_ago,
        day_start=day_start,
        visitors_only=True,
        pg=pg,
    )
    spent = float(
        await session.scalar(select(spent_today(day_start, holds_since=holds_since(now, settings))))
        or 0.0
    )
    conversations = await _conversations(session, {a.key for a in asks}, pg=pg)
    earlier = await _earlier_turns(session, list(conversations.values()))
    slugs = sorted({a.target.course.slug for a in asks if a.target.course})
    prompts = await _base_prompts(session, slugs)

    outcomes: list[Started | RateLimited | None] = []
    admitted: list[tuple[int, Ask, list[dict[str, str]], str, float]] = []
    by_key: dict[tuple[str, str, str, int], list[tuple[str, str, str]]] = {}
    for index, ask in enumerate(asks):
        refusal = _refusal(
            ask,
            recent=recent[ask.actor],
            tokens=tokens[ask.actor],
            net_recent=net_recent[ask.network] if ask.network else 0,
            net_tokens=net_tokens[ask.network] if ask.network else 0,
            spent=spent,
            settings=settings,
        )
        if refusal is not None:
            outcomes.append(refusal)
            continue
        conversation_id = conversations.get(ask.key)
        history = by_key.get(ask.key)
        if history is None:
            history = list(earlier.get(conversation_id, [])) if conversation_id else []
        history = [*history, ("user", ask.text, "complete")]
        turns = [
            {"role": role, "content": content}
            for role, content, status in history[-HISTORY_MESSAGES:]
            if content and status != "error"
        ]
        slug = ask.target.course.slug if ask.target.course else None
        system = build_system_prompt(ask.target, base_prompt=prompts.get(slug) if slug else None)
        amount = reply_cost_ceiling(
            model, system=system, history=turns, max_tokens=settings.tutor_max_tokens
        )
        if amount > 0 and spent + amount > settings.tutor_daily_cost_cap_usd:
            outcomes.append(over_the_cap())
            continue
        spent += max(amount, 0.0)
        recent[ask.actor] += 1
        if ask.network:
            net_recent[ask.network] += 1
        by_key[ask.key] = history
        admitted.append((index, ask, turns, system, amount))
        outcomes.append(None)

    if admitted:
        await _create_conversations(session, conversations, [a for _, a, *_ in admitted], pg=pg)
        ids = [conversations[ask.key] for _, ask, *_ in admitted]
        texts = [ask.text for _, ask, *_ in admitted]
        if pg:  # two array parameters, however many messages (see `_among`)
            await session.execute(
                text(
                    f"INSERT INTO {MESSAGES.name} (conversation_id, role, content, status, "  # noqa: S608 - a table name of ours
                    "model, prompt_tokens, completion_tokens, cost_usd, created_at) "
                    "SELECT c, 'user', t, 'complete', NULL, 0, 0, 0, :now FROM "
                    "unnest(CAST(:ids AS bigint[]), CAST(:texts AS text[])) "
                    "WITH ORDINALITY AS x(c, t, n) ORDER BY n"
                ),
                {"ids": ids, "texts": texts, "now": now},
            )
        else:
            await session.execute(
                insert(MESSAGES),
                [
                    {"conversation_id": id_, "role": "user", "content": text_,
                     "status": "complete", "created_at": now}
                    for id_, text_ in zip(ids, texts, strict=True)
                ],
            )  # fmt: skip
        holds = await _hold(session, [amount for *_, amount in admitted], now=now)
        for (index, ask, turns, system, _), hold_id in zip(admitted, holds, strict=True):
            outcomes[index] = Started(conversations[ask.key], system, turns, hold_id)
    return [o for o in outcomes if o is not None]


def _refusal(
    ask: Ask,
    *,
    recent: int,
    tokens: int,
    net_recent: int,
    net_tokens: int,
    spent: float,
    settings: Settings,
) -> RateLimited | None:
    if net_recent >= settings.tutor_network_messages_per_minute:
        return RateLimited(
            "Many people without an account are writing to the tutor from your network. "
            "Wait a minute, or sign in for your own allowance."
        )
    if net_tokens >= settings.tutor_network_daily_tokens:
        return RateLimited(
            "Today's tutor allowance for visitors from your network is used up. Sign in for "
            "your own allowance; it renews at midnight UTC."
        )
    if recent >= settings.tutor_messages_per_minute:
        return RateLimited("You are writing faster than the tutor can keep up. Wait a minute.")
    if tokens >= settings.tutor_daily_tokens:
        return RateLimited(
            "You have used today's tutor allowance. It renews at midnight UTC; your "
            "conversation is kept."
        )
    if spent >= settings.tutor_daily_cost_cap_usd:
        return over_the_cap()
    return None


async def _usage_by(
    session: AsyncSession,
    column: Any,
    keys: list[str],
    *,
    minute_ago: Any,
    day_start: Any,
    visitors_only: bool = False,
    pg: bool = False,
) -> tuple[defaultdict[str, int], defaultdict[str, int]]:
    """Per key (an actor, or a network): messages sent in the last minute, tokens used
    today."""
    recent: defaultdict[str, int] = defaultdict(int)
    tokens: defaultdict[str, int] = defaultdict(int)
    if not keys:
        return recent, tokens
    sent = and_(Message.role == "user", Message.created_at > minute_ago)
    today = Message.created_at >= day_start
    statement = (
        select(
            column,
            func.sum(case((sent, 1), else_=0)),
            func.sum(case((today, Message.prompt_tokens + Message.completion_tokens), else_=0)),
        )
        .select_from(Conversation)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(_among(column, keys, pg), Message.created_at >= min(minute_ago, day_start))
        .group_by(column)
    )
    if visitors_only:
        statement = statement.where(Conversation.user_id.is_(None))
    for key, in_minute, in_day in await session.execute(statement):
        recent[key], tokens[key] = int(in_minute or 0), int(in_day or 0)
    return recent, tokens


def _among(column: Any, keys: list[str], pg: bool) -> Any:
    """`column IN keys`. On PostgreSQL as `= ANY` of one array parameter: the statement
    is then the same whatever the number of keys (asyncpg prepares it once, and binding
    one array is cheap), where an IN list of a burst's 200 keys is a new statement, with
    200 parameters, for every size of burst."""
    if pg:
        return column == any_(bindparam(None, list(keys), type_=ARRAY(String)))
    return column.in_(keys)


async def _conversations(
    session: AsyncSession, keys: set[tuple[str, str, str, int]], *, pg: bool = False
) -> dict[tuple[str, str, str, int], int]:
    columns = (Conversation.actor, Conversation.module_key, Conversation.content_id,
               Conversation.segment_index)  # fmt: skip
    # By actor and module, the exact keys picked out here: a tuple IN of a whole burst's
    # keys binds four parameters per key, and binding them cost more than the query.
    actors = sorted({actor for actor, *_ in keys})
    modules = sorted({module for _, module, *_ in keys})
    rows = await session.execute(
        select(Conversation.id, *columns).where(
            _among(Conversation.actor, actors, pg), _among(Conversation.module_key, modules, pg)
        )
    )
    found = {
        (actor, module, content, segment): id_ for id_, actor, module, content, segment in rows
    }
    return {key: id_ for key, id_ in found.items() if key in keys}


async def _earlier_turns(
    session: AsyncSession, conversation_ids: list[int]
) -> dict[int, list[tuple[str, str, str]]]:
    """The last turns of each conversation (enough for HISTORY_MESSAGES with the new one),
    oldest first: (role, content, status)."""
    out: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    if not conversation_ids:
        return out
    latest = (
        func.row_number()
        .over(partition_by=Message.conversation_id, order_by=Message.id.desc())
        .label("latest")
    )
    ranked = (
        select(
            Message.conversation_id,
            Message.id,
            Message.role,
            Message.content,
            Message.status,
            latest,
        )
        .where(Message.conversation_id.in_(conversation_ids))
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.conversation_id, ranked.c.role, ranked.c.content, ranked.c.status)
        .where(ranked.c.latest < HISTORY_MESSAGES)
        .order_by(ranked.c.conversation_id, ranked.c.id)
    )
    for conversation_id, role, content, status in rows:
        out[conversation_id].append((role, content, status))
    return out


async def _base_prompts(session: AsyncSession, slugs: list[str]) -> dict[str, str]:
    if not slugs:
        return {}
    rows = await session.execute(
        select(CoursePrompt.course_slug, CoursePrompt.prompt).where(
            CoursePrompt.course_slug.in_(slugs)
        )
    )
    return {slug: prompt for slug, prompt in rows}


async def _create_conversations(
    session: AsyncSession,
    conversations: dict[tuple[str, str, str, int], int],
    asks: list[Ask],
    *,
    pg: bool = False,
) -> None:
    """Create the conversations `asks` need that do not exist yet (adding their ids)."""
    new: dict[tuple[str, str, str, int], Ask] = {}
    for ask in asks:
        if ask.key not in conversations:
            new.setdefault(ask.key, ask)
    if not new:
        return
    now = utcnow()
    table = CONVERSATIONS
    if pg:  # one array parameter per column, however many conversations (see `_among`)
        rows = await session.execute(
            text(
                f"INSERT INTO {table.name} (actor, user_id, module_key, content_id, "  # noqa: S608 - a table name of ours
                "segment_index, client_net, created_at, updated_at) "
                "SELECT a, u, m, c, s, n, :now, :now FROM unnest(CAST(:a AS varchar[]), "
                "CAST(:u AS bigint[]), CAST(:m AS varchar[]), CAST(:c AS varchar[]), "
                "CAST(:s AS integer[]), CAST(:n AS varchar[])) AS x(a, u, m, c, s, n) "
                "RETURNING id, actor, module_key, content_id, segment_index"
            ),
            {
                "a": [ask.actor for ask in new.values()],
                "u": [ask.user_id for ask in new.values()],
                "m": [ask.module_key for ask in new.values()],
                "c": [ask.target.section.content_id for ask in new.values()],
                "s": [ask.target.segment_index for ask in new.values()],
                "n": [ask.client_net if ask.user_id is None else None for ask in new.values()],
                "now": now,
            },
        )
        for id_, actor, module, content, segment in rows:
            conversations[(actor, module, content, segment)] = id_
        return
    rows = await session.execute(
        insert(table).returning(
            table.c.id, table.c.actor, table.c.module_key, table.c.content_id, table.c.segment_index
        ),
        [
            {
                "actor": ask.actor,
                "user_id": ask.user_id,
                "module_key": ask.module_key,
                "content_id": ask.target.section.content_id,
                "segment_index": ask.target.segment_index,
                "client_net": ask.client_net if ask.user_id is None else None,
                "created_at": now,
                "updated_at": now,
            }
            for ask in new.values()
        ],
    )
    for id_, actor, module, content, segment in rows:
        conversations[(actor, module, content, segment)] = id_


async def _hold(session: AsyncSession, amounts: list[float], *, now: Any) -> list[int | None]:
    """A budget hold per priced reply (lens.tutor.models.BudgetHold); None for free ones."""
    priced = [amount for amount in amounts if amount > 0]
    if not priced:
        return [None] * len(amounts)
    table = HOLDS
    rows = await session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [{"amount_usd": amount, "created_at": now} for amount in priced],
    )
    ids = iter([int(row[0]) for row in rows])
    return [next(ids) if amount > 0 else None for amount in amounts]


class Ahead:
    """How many vendor connections each network may have opened ahead of its asks
    (`ChatModel.prepare`) in a window of WINDOW seconds: asks refused by their limits open
    nothing for long, but a flood of them from one network would make Lens open and drop
    connections to the vendor as fast as it sends them. Over the count, an ask's
    connection is opened when it is sent, as without `prepare`."""

    WINDOW = 5.0
    PER_NETWORK = 50  # a classroom behind one address, all asking at once
    NETWORKS = 10_000  # networks remembered at most (the oldest windows go first)

    def __init__(self) -> None:
        self._windows: dict[str | None, tuple[float, int]] = {}

    def allow(self, network: str | None, now: float) -> bool:
        started, count = self._windows.get(network, (now, 0))
        if now - started >= self.WINDOW:
            started, count = now, 0
        if count >= self.PER_NETWORK:
            return False
        self._windows[network] = (started, count + 1)
        if len(self._windows) > self.NETWORKS:
            current = [(k, w) for k, w in self._windows.items() if now - w[0] < self.WINDOW]
            # Still too many (a flood from many networks at once): the newest half stays;
            # a network forgotten may open ahead again, within the pool's own cap.
            self._windows = dict(current[-(self.NETWORKS // 2) :])
        return True


class StartQueue:
    """Asks submitted while a batch is written go together in the next (lens.db.batches):
    one transaction per batch, one batch at a time per process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        model: ChatModel,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.model = model
        self.settings = settings
        self._batches: Batches[Ask, Started] = Batches(self._batch, abandoned=self._abandoned)
        self._letting_go: set[asyncio.Task[None]] = set()

    async def start(self, ask: Ask) -> Started:
        """Check, record and hold the budget for one reply; raises RateLimited when a
        limit refuses it (or the database's error when it could not be written)."""
        return await self._batches.submit(ask)

    async def _batch(self, asks: list[Ask]) -> list[Started | BaseException]:
        """One batch: the vendor connections its asks need are opened while it is written.
        Told here rather than as each request arrives, their connects run while the loop
        waits for the database instead of delaying the rest of a burst's requests (each
        connect is about 0.07 ms of the loop's time; a burst has 200)."""
        for ask in asks:
            if ask.prepare:
                self.model.prepare()
        return await self._run(asks)

    async def _run(self, asks: list[Ask]) -> list[Started | BaseException]:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                return list(
                    await start_replies(session, asks, model=self.model, settings=self.settings)
                )
        except Exception as exc:
            if len(asks) == 1 or database_unavailable(exc):
                raise
            # Not the database being away: one ask's trouble must not fail the others.
            log.warning("tutor.start.batch_failed", asks=len(asks), error=repr(exc))
            outcomes: list[Started | BaseException] = []
            for ask in asks:
                try:
                    outcomes.extend(await self._run([ask]))
                except Exception as one:
                    outcomes.append(one)
                    if database_unavailable(one):  # away now: the rest would fail alike
                        outcomes.extend([one] * (len(asks) - len(outcomes)))
                        break
            return outcomes

    def _abandoned(self, ask: Ask, outcome: Started | BaseException) -> None:
        """The learner went away while their start was written: give the hold back (the
        message itself is kept, like any the student sent)."""
        if isinstance(outcome, Started) and outcome.hold_id is not None:
            task = asyncio.get_running_loop().create_task(
                let_go(self.sessionmaker, outcome.hold_id)
            )
            self._letting_go.add(task)
            task.add_done_callback(self._letting_go.discard)
