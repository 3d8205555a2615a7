"""A finished tutor reply is never lost: the database goes away mid-reply (PostgreSQL, a
real server behind a proxy the test cuts), the learner still gets the whole reply, it
waits on disk, and once the database is back it is saved with its tokens counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lens.app import create_app
from lens.db import migrate
from lens.db.engine import create_engine, create_sessionmaker
from lens.tutor import service
from lens.tutor.models import BudgetHold, Message
from lens.tutor.spool import spool_for
from tests.fixtures.auth import ORIGIN
from tests.fixtures.db_proxy import Proxy, migrated_database_behind_proxy
from tests.tutor.fake_model import FakeModel
from tests.tutor.test_tutor_api import AT, events


class CutsTheDatabase(FakeModel):
    """Answers word by word; the database goes away after the first word."""

    proxy: Proxy | None = None

    async def stream(self, **kwargs):  # type: ignore[no-untyped-def]
        first = True
        async for event in super().stream(**kwargs):
            yield event
            if first and self.proxy is not None:
                first = False
                await self.proxy.cut()


async def test_a_reply_given_while_the_database_is_away_is_saved_later(
    tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SAVE_TRIES", (0.05, 0.1))
    async with migrated_database_behind_proxy(tmp_path) as (url, through, proxy):
        engine = create_engine(url)
        model = CutsTheDatabase(words=["The ", "whole ", "answer."], ceiling_usd=0.01)
        settings = make_settings(DATABASE_URL=through, LENS_RUN_WORKER="false")
        app = create_app(settings, chat_model=model, configure_logs=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                await c.get("/course/intro-to-ai-safety/welcome")  # the reader cookie
                model.proxy = proxy
                response = await c.post(
                    "/api/tutor/messages", json={**AT, "message": "Why?"}, headers=ORIGIN
                )
                got = events(response.text)
                # The learner saw all of it, and the end.
                text = "".join(d["text"] for kind, d in got if kind == "delta")
                assert text == "The whole answer." and got[-1][0] == "done"
                spool = spool_for(settings)
                assert len(spool.waiting()) == 1
                direct = create_sessionmaker(engine)  # not through the proxy
                async with direct() as session:
                    assert await session.scalar(select(func.count()).select_from(Message).where(
                        Message.role == "assistant")) == 0  # fmt: skip
                    # Its budget stays held meanwhile: the cap still counts it.
                    assert await session.scalar(select(func.count(BudgetHold.id))) == 1

                await proxy.restore()
                assert await spool.flush(app.state.lens.sessionmaker) == 1
                assert spool.waiting() == []
                async with direct() as session:
                    (saved,) = await session.scalars(
                        select(Message).where(Message.role == "assistant")
                    )
                assert saved.content == "The whole answer." and saved.status == "complete"
                assert (saved.prompt_tokens, saved.completion_tokens) == (100, 3)
                assert saved.cost_usd == pytest.approx(0.002)
                async with direct() as session:  # its own cost counts now, not the hold
                    assert await session.scalar(select(func.count(BudgetHold.id))) == 0
        await engine.dispose()


async def test_an_unreadable_file_is_set_aside_and_the_rest_saved(
    tmp_path: Path, make_settings, db
) -> None:
    from lens.tutor.models import Conversation

    spool = spool_for(make_settings(LENS_VAR_DIR=str(tmp_path / "var")))
    talk = Conversation(actor="a:x", module_key="m", content_id="c", segment_index=0)
    db.add(talk)
    await db.commit()  # (a savepoint: the records set aside roll back only their own)
    spool.put({"conversation_id": talk.id})  # a field missing: cannot be saved
    spool.directory.joinpath("0-bad.json").write_text("{not json")
    good = {"conversation_id": talk.id, "content": "Kept.", "status": "complete",
            "model": "m", "prompt_tokens": 1, "completion_tokens": 2, "cost_usd": 0.0,
            "created_at": "2026-12-03T10:00:00+00:00", "hold_id": None}  # fmt: skip
    spool.put(good)
    assert await spool.flush(_one(db)) == 1
    assert spool.waiting() == [] and len(list(spool.directory.glob("*.bad"))) == 2
    saved = await db.scalar(select(Message).where(Message.conversation_id == talk.id))
    assert saved.content == "Kept." and saved.completion_tokens == 2


def _one(db):
    """A sessionmaker handing out the test's own session (inside its transaction)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def maker():
        yield db

    return maker


async def test_the_database_server_stopped_during_a_reply(
    tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real server (a private one) is stopped, as in a crash, after the reply's first
    word. The learner gets the whole reply, /readyz says 503 and the next request a 503
    with a retry hint; the server starts again, the same app serves again without a
    restart, the reply is saved and its tokens count against the learner's allowance."""
    import tempfile

    from lens.db import spool as db_spool
    from tests.conftest import IN_CI
    from tests.fixtures.pg_server import PrivateServer, why_not_available

    problem = why_not_available()
    if problem:
        if IN_CI:
            pytest.fail(problem + "; CI requires it")
        pytest.skip(problem)
    monkeypatch.setattr(service, "SAVE_TRIES", (0.05, 0.1))
    monkeypatch.setattr(db_spool, "SAVE_TRIES", (0.05, 0.1))
    server = PrivateServer(Path(tempfile.mkdtemp(prefix="lens-pg-")))
    try:
        await asyncio.to_thread(server.init)
        await server.astart()
        engine = create_engine(server.url)
        await migrate.upgrade(engine)
        await engine.dispose()

        class StopsTheServer(FakeModel):
            """Stops the server after the first word of its first reply."""

            stopped = False

            async def stream(self, **kwargs):  # type: ignore[no-untyped-def]
                async for event in super().stream(**kwargs):
                    yield event
                    if not self.stopped:
                        self.stopped = True
                        await server.astop("immediate")

        model = StopsTheServer(words=["All ", "of ", "it."])
        settings = make_settings(
            DATABASE_URL=server.url, LENS_RUN_WORKER="false", LENS_TUTOR_DAILY_TOKENS="150"
        )
        app = create_app(settings, chat_model=model, configure_logs=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                await c.get("/course/intro-to-ai-safety/welcome")
                got = events((await c.post(
                    "/api/tutor/messages", json={**AT, "message": "Why?"}, headers=ORIGIN
                )).text)  # fmt: skip
                assert "".join(d["text"] for k, d in got if k == "delta") == "All of it."
                assert got[-1][0] == "done"
                assert len(spool_for(settings).waiting()) == 1
                assert (await c.get("/readyz")).status_code == 503
                busy = await c.get("/course/intro-to-ai-safety/welcome")
                assert busy.status_code == 503 and busy.headers["retry-after"] == "30"
                # A message sent now is refused the same way (its batch could not be
                # written), and the tutor starts again once the database is back.
                asked = await c.post(
                    "/api/tutor/messages", json={**AT, "message": "Now?"}, headers=ORIGIN
                )
                assert asked.status_code == 503 and asked.headers["retry-after"] == "30"

                await server.astart()
                assert (await c.get("/readyz")).status_code == 200  # no restart needed
                assert await spool_for(settings).flush(app.state.lens.sessionmaker) == 1
                # 100 prompt + 3 completion tokens counted: 150 a day leaves room for
                # one more message, and that one's 103 make the next one over.
                ok = await c.post(
                    "/api/tutor/messages", json={**AT, "message": "And?"}, headers=ORIGIN
                )
                assert ok.status_code == 200
                over = await c.post(
                    "/api/tutor/messages", json={**AT, "message": "More?"}, headers=ORIGIN
                )
                assert over.status_code == 429 and "allowance" in over.json()["error"]["message"]
                async with create_sessionmaker(create_engine(server.url))() as session:
                    saved = list(await session.scalars(
                        select(Message).where(Message.role == "assistant").order_by(Message.id)
                    ))  # fmt: skip
                assert [m.content for m in saved] == ["All of it.", "All of it."]
    finally:
        await asyncio.to_thread(server.cleanup)
