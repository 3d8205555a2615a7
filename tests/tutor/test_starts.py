"""Replies started in batches (lens.tutor.starts): the same limits, history and budget as
one at a time, one transaction for all who asked together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from lens.content.parsed import ChatSegment
from lens.content.parsing import load_content
from lens.content.sources import BUNDLED_COURSE, read_folder
from lens.courses.service import course_modules, module_key
from lens.errors import RateLimited
from lens.tutor.models import BudgetHold, Conversation, CoursePrompt, Message
from lens.tutor.prompt import ChatTarget, find_chat
from lens.tutor.starts import Ask, Started, StartQueue, start_replies
from tests.tutor.fake_model import FakeModel


def chat_targets() -> list[ChatTarget]:
    """Every chat segment of the bundled course."""
    content = load_content(read_folder(BUNDLED_COURSE))
    found = []
    for course in content.courses.values():
        for _, module in course_modules(content, course):
            for s, section in enumerate(module.sections):
                for g, segment in enumerate(section.segments):
                    if isinstance(segment, ChatSegment):
                        found.append(find_chat(course, module, s, g))
    assert len(found) >= 2, "the bundled course needs two chat segments for these tests"
    return found


TARGETS = chat_targets()


def ask(actor: str, text: str = "hi", *, net: str | None = None, at: int = 0) -> Ask:
    target = TARGETS[at]
    return Ask(
        actor=actor,
        user_id=None,
        client_net=net,
        target=target,
        module_key=module_key(target.module),
        text=text,
    )


async def start(sessionmaker: Any, asks: list[Ask], model: Any, settings: Any) -> list[Any]:
    async with sessionmaker() as session:
        outcomes = await start_replies(session, asks, model=model, settings=settings)
        await session.commit()
    return outcomes


async def test_asks_in_one_batch_count_against_each_other(sessionmaker, db, make_settings) -> None:
    settings = make_settings(LENS_TUTOR_MESSAGES_PER_MINUTE="2")
    outcomes = await start(
        sessionmaker,
        [ask("a:one", "first"), ask("a:one", "second"), ask("a:one", "third"), ask("a:two")],
        FakeModel(),
        settings,
    )
    first, second, third, other = outcomes
    assert isinstance(first, Started) and isinstance(second, Started)
    assert isinstance(third, RateLimited) and "Wait a minute" in str(third)
    assert isinstance(other, Started)
    # One conversation for the two, and the second sees the first's message.
    assert first.conversation_id == second.conversation_id != other.conversation_id
    assert [t["content"] for t in second.turns] == ["first", "second"]
    stored = (await db.scalars(select(Message.content).order_by(Message.id))).all()
    assert stored == ["first", "second", "hi"]  # the refused one is not stored
    assert await db.scalar(select(func.count()).select_from(Conversation)) == 2


async def test_history_base_prompt_and_existing_conversation(
    sessionmaker, db, make_settings
) -> None:
    target = TARGETS[0]
    assert target.course is not None
    talk = Conversation(actor="u:7", module_key=module_key(target.module),
                        content_id=target.section.content_id,
                        segment_index=target.segment_index)  # fmt: skip
    db.add(talk)
    db.add(CoursePrompt(course_slug=target.course.slug, prompt="BASE PROMPT OF THE COURSE"))
    await db.flush()
    for n in range(30):
        status = "error" if n == 25 else "complete"
        db.add(Message(conversation_id=talk.id, role="user" if n % 2 == 0 else "assistant",
                       content=f"m{n}", status=status))  # fmt: skip
    await db.commit()

    settings = make_settings(LENS_TUTOR_MESSAGES_PER_MINUTE="100")
    (started,) = await start(sessionmaker, [ask("u:7", "new")], FakeModel(), settings)
    assert isinstance(started, Started)
    assert started.conversation_id == talk.id
    # The last 20 messages with the new one (m11..m29, new), without the failed one.
    expected = [f"m{n}" for n in range(11, 30) if n != 25] + ["new"]
    assert [t["content"] for t in started.turns] == expected
    assert started.system.startswith("BASE PROMPT OF THE COURSE")


async def test_a_batch_holds_the_budget_in_order(sessionmaker, db, make_settings) -> None:
    settings = make_settings(LENS_TUTOR_DAILY_COST_CAP_USD="0.01")
    outcomes = await start(
        sessionmaker,
        [ask(f"a:{n}", net=f"198.51.100.{n}") for n in range(4)],
        FakeModel(ceiling_usd=0.004),
        settings,
    )
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Started", "Started", "RateLimited", "RateLimited"]
    assert "budget" in str(outcomes[2])
    holds = (await db.scalars(select(BudgetHold).order_by(BudgetHold.id))).all()
    assert [h.id for h in holds] == [outcomes[0].hold_id, outcomes[1].hold_id]
    assert [h.amount_usd for h in holds] == [0.004, 0.004]


async def test_a_free_model_holds_nothing(sessionmaker, db, make_settings) -> None:
    (started,) = await start(sessionmaker, [ask("a:x")], FakeModel(), make_settings())
    assert isinstance(started, Started) and started.hold_id is None
    assert await db.scalar(select(func.count()).select_from(BudgetHold)) == 0


class Counting:
    """A sessionmaker that counts the transactions opened through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened = 0

    def __call__(self) -> Any:
        self.opened += 1
        return self.inner()


async def test_asks_arriving_together_share_transactions(sessionmaker, db, make_settings) -> None:
    counting = Counting(sessionmaker)
    queue = StartQueue(counting, model=FakeModel(), settings=make_settings())  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*(queue.start(ask(f"a:{n}")) for n in range(40)))
    assert all(isinstance(o, Started) for o in outcomes)
    assert counting.opened <= 2  # the first alone, then everyone who came meanwhile
    assert await db.scalar(select(func.count()).select_from(Message)) == 40


async def test_one_failing_ask_does_not_fail_the_others(
    sessionmaker, db, make_settings, monkeypatch
) -> None:
    import lens.tutor.starts as starts

    real = starts.build_system_prompt

    def broken(target: ChatTarget, *, base_prompt: str | None = None) -> str:
        if target is TARGETS[1]:
            raise RuntimeError("this chat's prompt cannot be built")
        return real(target, base_prompt=base_prompt)

    monkeypatch.setattr(starts, "build_system_prompt", broken)
    queue = StartQueue(sessionmaker, model=FakeModel(), settings=make_settings())
    outcomes = await asyncio.gather(
        *(queue.start(ask(f"a:{n}", at=1 if n == 3 else 0)) for n in range(6)),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == ["Started"] * 3 + ["RuntimeError"] + [
        "Started"
    ] * 2
    assert await db.scalar(select(func.count()).select_from(Message)) == 5


async def test_a_learner_gone_before_the_start_gives_the_hold_back(
    committing_sessionmaker, make_settings
) -> None:
    queue = StartQueue(
        committing_sessionmaker, model=FakeModel(ceiling_usd=0.001), settings=make_settings()
    )
    first = asyncio.ensure_future(queue.start(ask("a:stays")))
    gone = asyncio.ensure_future(queue.start(ask("a:goes")))
    await asyncio.sleep(0)
    gone.cancel()
    started = await first
    holds: list[int] = []
    for _ in range(100):  # the hold is let go in a task of its own
        async with committing_sessionmaker() as session:
            holds = list((await session.scalars(select(BudgetHold.id))).all())
        if holds == [started.hold_id]:
            break
        await asyncio.sleep(0.02)
    assert holds == [started.hold_id]
    async with committing_sessionmaker() as session:  # the message itself is kept
        assert await session.scalar(select(func.count()).select_from(Message)) == 2


async def test_visitors_writing_at_once_from_one_network_are_counted(
    committing_sessionmaker, make_settings
) -> None:
    """Eight new visitors from one network send at the same moment through two processes'
    queues, with room for three: three get through (on PostgreSQL the processes' batches
    take one lock, one after the other; SQLite's write lock is taken at BEGIN)."""
    settings = make_settings(LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE="3")
    queues = [
        StartQueue(committing_sessionmaker, model=FakeModel(), settings=settings) for _ in range(2)
    ]

    async def visitor(n: int) -> bool:
        try:
            await queues[n % 2].start(ask(f"a:v{n}", net="192.0.2.1"))
            return True
        except RateLimited:
            return False

    results = await asyncio.gather(*(visitor(n) for n in range(8)))
    assert sum(results) == 3
    async with committing_sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 3


@pytest.mark.parametrize("limit", ["LENS_TUTOR_DAILY_TOKENS", "LENS_TUTOR_NETWORK_DAILY_TOKENS"])
async def test_tokens_used_today_refuse(sessionmaker, db, make_settings, limit) -> None:
    talk = Conversation(actor="a:busy", module_key="m", content_id="c", segment_index=0,
                        client_net="203.0.113.0")  # fmt: skip
    db.add(talk)
    await db.flush()
    db.add(Message(conversation_id=talk.id, role="assistant", content="x", prompt_tokens=90,
                   completion_tokens=20))  # fmt: skip
    await db.commit()
    settings = make_settings(**{limit: "100"})
    actor = "a:busy" if limit == "LENS_TUTOR_DAILY_TOKENS" else "a:neighbour"
    (refused,) = await start(sessionmaker, [ask(actor, net="203.0.113.0")], FakeModel(), settings)
    assert isinstance(refused, RateLimited) and "allowance" in str(refused)


async def test_each_ask_finds_its_own_conversation_among_the_asker_s_others(
    sessionmaker, db, make_settings
) -> None:
    # One learner talks in two chat segments, another in the first: in one batch each ask
    # goes on its own conversation, never a neighbour's with the same actor or module.
    first, second = TARGETS[0], TARGETS[1]
    talks = {}
    for actor, target in [("u:1", first), ("u:1", second), ("u:2", first)]:
        talk = Conversation(actor=actor, module_key=module_key(target.module),
                            content_id=target.section.content_id,
                            segment_index=target.segment_index)  # fmt: skip
        db.add(talk)
        await db.flush()
        said = f"{actor} {target.segment_index} {target.section.content_id}"
        db.add(Message(conversation_id=talk.id, role="user", content=said, status="complete"))
        talks[(actor, target.section.content_id, target.segment_index)] = talk.id
    await db.commit()

    settings = make_settings(LENS_TUTOR_MESSAGES_PER_MINUTE="100")
    asks = [ask("u:1", "a", at=1), ask("u:2", "b", at=0), ask("u:1", "c", at=0), ask("u:3", "d")]
    outcomes = await start(sessionmaker, asks, FakeModel(), settings)
    assert all(isinstance(o, Started) for o in outcomes)
    for one, outcome in zip(asks, outcomes, strict=True):
        key = (one.actor, one.target.section.content_id, one.target.segment_index)
        if one.actor == "u:3":  # no conversation yet: a new one
            assert outcome.conversation_id not in talks.values()
            assert [t["content"] for t in outcome.turns] == ["d"]
            continue
        assert outcome.conversation_id == talks[key]
        earlier = f"{one.actor} {one.target.segment_index} {one.target.section.content_id}"
        assert [t["content"] for t in outcome.turns] == [earlier, one.text]


async def test_a_batch_s_statements_do_not_change_with_its_size(
    sessionmaker, db, make_settings
) -> None:
    """On PostgreSQL a batch's keys go as arrays (`= ANY`, `unnest`): the statements are
    the same for 3 asks as for 40, so asyncpg prepares each once, and no statement binds
    a parameter per ask. SQLite keeps IN lists and one row per insert."""
    from sqlalchemy import event

    engine = sessionmaker.kw["bind"].sync_engine
    seen: list[tuple[str, int]] = []

    def statement(conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "INSERT")):  # not the test's savepoints
            count = len(parameters) if isinstance(parameters, (tuple, list, dict)) else 0
            seen.append((sql, count))

    event.listen(engine, "before_cursor_execute", statement)
    try:
        settings = make_settings()
        by_size = []
        for size in (3, 40):
            seen.clear()
            asks = [ask(f"a:{size}-{n}", f"hello {n}", net=f"10.0.{n}.0/24") for n in range(size)]
            outcomes = await start(sessionmaker, asks, FakeModel(), settings)
            assert all(isinstance(o, Started) for o in outcomes)
            by_size.append(list(seen))
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    stored = await db.scalars(select(Message.content).where(Message.content.like("hello %")))
    assert len(stored.all()) == 43
    if db.get_bind().dialect.name != "postgresql":
        return
    small, large = ([sql for sql, _ in size] for size in by_size)
    assert small == large
    assert max(count for size in by_size for _, count in size) <= 8  # no parameter per ask
