from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from lens.tutor.models import Message
from tests.fixtures.auth import ORIGIN
from tests.tutor.fake_model import FakeModel

AT = {"course": "intro-to-ai-safety", "module": "welcome", "section": 1, "segment": 1}


def events(body: str) -> list[tuple[str, dict]]:
    out = []
    for raw in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in raw.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


async def ask(client: httpx.AsyncClient, text: str, **at) -> httpx.Response:
    return await client.post(
        "/api/tutor/messages", json={**AT, **at, "message": text}, headers=ORIGIN
    )


async def test_a_reply_streams_and_is_kept(client_factory, db) -> None:
    model = FakeModel()
    async with client_factory(chat_model=model) as client:
        page = await client.get("/course/intro-to-ai-safety/welcome")
        assert 'class="tutor card"' in page.text
        response = await ask(client, "Why does this matter?")
        assert response.headers["content-type"].startswith("text/event-stream")
        got = events(response.text)
        assert [e for e, _ in got] == ["delta", "delta", "delta", "done"]
        assert "".join(d["text"] for e, d in got if e == "delta") == "Good question!"
        assert got[-1][1]["html"] == "<p>Good question!</p>\n"
        history = await client.get("/api/tutor/history", params=AT)
    messages = history.json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    # The model got the section's instructions and the student's words, never shown to them.
    assert model.prepared == 1  # told before the budget check, to connect meanwhile
    call = model.calls[0]
    assert "Welcome the student warmly" in call["system"]
    assert call["messages"] == [{"role": "user", "content": "Why does this matter?"}]
    assert "Welcome the student warmly" not in history.text
    stored = list(await db.scalars(select(Message).order_by(Message.id)))
    assert stored[-1].prompt_tokens == 100 and stored[-1].cost_usd == 0.002


async def test_history_is_sent_back_to_the_model(client_factory) -> None:
    model = FakeModel()
    async with client_factory(chat_model=model) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        await ask(client, "First")
        await ask(client, "Second")
    assert model.calls[1]["messages"] == [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "Good question!"},
        {"role": "user", "content": "Second"},
    ]


async def test_an_error_before_the_first_token(client_factory, db) -> None:
    async with client_factory(chat_model=FakeModel(fail_after=0)) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        got = events((await ask(client, "Hello?")).text)
    assert got == [
        (
            "error",
            {
                "message": "The tutor could not answer just now. Try again in a moment.",
                "retry": True,
            },
        )
    ]
    roles = [m.role for m in await db.scalars(select(Message))]
    assert roles == ["user"]  # the question is kept; no empty reply stored


async def test_an_error_after_the_first_token_keeps_the_partial_reply(client_factory, db) -> None:
    async with client_factory(chat_model=FakeModel(fail_after=2)) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        got = events((await ask(client, "Hello?")).text)
    assert [e for e, _ in got] == ["delta", "delta", "error"]
    assert "part-way" in got[-1][1]["message"]
    reply = await db.scalar(select(Message).where(Message.role == "assistant"))
    assert (reply.content, reply.status) == ("Good question", "partial")


async def test_limits(client_factory) -> None:
    async with client_factory(
        chat_model=FakeModel(),
        LENS_TUTOR_MESSAGES_PER_MINUTE="2",
        LENS_TUTOR_MAX_MESSAGE_CHARS="50",
    ) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        too_long = await ask(client, "x" * 51)
        assert too_long.status_code == 422 and "at most 50" in too_long.json()["error"]["message"]
        assert (await ask(client, "one")).status_code == 200
        assert (await ask(client, "two")).status_code == 200
        third = await ask(client, "three")
        assert third.status_code == 429 and "Wait a minute" in third.json()["error"]["message"]


async def test_daily_budget_and_global_cap(client_factory) -> None:
    async with client_factory(chat_model=FakeModel(), LENS_TUTOR_DAILY_TOKENS="50") as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        assert (await ask(client, "one")).status_code == 200  # uses 103 tokens
        over = await ask(client, "two")
        assert over.status_code == 429 and "allowance" in over.json()["error"]["message"]
    async with client_factory(
        chat_model=FakeModel(), LENS_TUTOR_DAILY_COST_CAP_USD="0.001"
    ) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        await ask(client, "one")
        capped = await ask(client, "two")
        assert capped.status_code == 429 and "budget" in capped.json()["error"]["message"]


async def test_replies_started_together_cannot_pass_the_cost_cap(
    dialect, tmp_path, make_settings
) -> None:
    """Each reply may cost at most $0.003 (its hold) and costs $0.002; the cap is $0.010.
    Eight visitors from eight networks ask at once: three holds fit, so three replies
    stream and five are refused before the model is asked. Afterwards their real cost
    counts instead of the holds, and one more reply fits. (A database of its own: the
    requests run at the same time, on their own connections, committing.)"""
    import asyncio

    from lens.app import create_app
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.tutor.models import BudgetHold
    from tests.conftest import fresh_database

    model = FakeModel(delay=0.05, ceiling_usd=0.003)
    async with fresh_database(dialect, tmp_path) as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        settings = make_settings(
            DATABASE_URL=url, LENS_RUN_WORKER="false", LENS_TUTOR_DAILY_COST_CAP_USD="0.01"
        )
        app = create_app(settings, chat_model=model, configure_logs=False)
        async with app.router.lifespan_context(app):
            answers = await asyncio.gather(
                *(_visitor_asks(app, f"198.51.100.{n}") for n in range(1, 9))
            )
            codes = sorted(a.status_code for a in answers)
            assert codes == [200] * 3 + [429] * 5
            assert len(model.calls) == 3
            async with create_sessionmaker(engine)() as db:
                assert (await db.scalars(select(BudgetHold))).all() == []
                spent = await db.scalar(select(func.sum(Message.cost_usd)))
            assert spent == pytest.approx(0.006)
            assert (await _visitor_asks(app, "203.0.113.50")).status_code == 200  # 0.009
            refused = await _visitor_asks(app, "203.0.113.51")  # 0.008 + 0.003 > 0.010
            assert refused.status_code == 429 and "budget" in refused.json()["error"]["message"]
        await engine.dispose()


def test_the_cost_ceiling_bounds_the_prompt_by_its_bytes() -> None:
    from lens.tutor.service import reply_cost_ceiling

    class Priced:
        def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
            return prompt_tokens * 1.0 + completion_tokens * 10.0

    history = [{"role": "user", "content": "héllo"}]  # "é" is two bytes
    # system 3 bytes + history 6 bytes + 8 per message (2 messages) = 25 prompt tokens
    assert reply_cost_ceiling(Priced(), system="abc", history=history, max_tokens=7) == 95.0


async def test_no_model_configured(app_client) -> None:
    page = await app_client.get("/course/intro-to-ai-safety/welcome")
    assert "The tutor is not set up on this site" in page.text
    response = await ask(app_client, "hello")
    assert response.status_code == 404
    assert (await app_client.get("/api/tutor/history", params=AT)).json()["configured"] is False


async def test_not_a_chat_segment(client_factory) -> None:
    async with client_factory(chat_model=FakeModel()) as client:
        response = await ask(client, "hi", segment=0)  # the text segment
    assert response.status_code == 404


async def test_a_visitors_conversation_follows_them_on_sign_in(client_factory, db) -> None:
    from lens.auth.service import create_bot_code

    async with client_factory(chat_model=FakeModel()) as client:
        await client.get("/course/intro-to-ai-safety/welcome")
        await ask(client, "Asked before signing in")
        code = await create_bot_code(db, discord_id="623456789012345678")
        signed = await client.post("/auth/code", data={"code": code}, headers=ORIGIN)
        assert signed.status_code == 303
        history = (await client.get("/api/tutor/history", params=AT)).json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "Asked before signing in" in history[0]["html"]


async def _visitor_asks(app, ip: str, text: str = "hello") -> httpx.Response:
    """A new visitor (no cookie yet) from `ip`: opens the module, then asks."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as visitor:
        await visitor.get("/course/intro-to-ai-safety/welcome")
        return await ask(visitor, text)


def test_what_counts_as_one_network() -> None:
    from lens.web.network import client_network

    assert client_network("203.0.113.7") == "203.0.113.7"
    assert client_network("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_network("2001:db8:1:2::5") == client_network("2001:db8:1:2:ffff::9")
    assert client_network("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::5") != client_network("2001:db8:1:2::5")
    assert client_network("not an address") is None and client_network(None) is None


async def test_a_new_cookie_is_no_new_allowance(client_factory, db) -> None:
    async with client_factory(
        chat_model=FakeModel(), LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE="3"
    ) as client:
        app = client.app
        codes = [(await _visitor_asks(app, "203.0.113.7")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        refused = await _visitor_asks(app, "203.0.113.7")
        assert "from your network" in refused.json()["error"]["message"]
        # IPv6: one /64 is one network, whatever address in it a visitor takes.
        six = [(await _visitor_asks(app, f"2001:db8:1:2::{n:x}")).status_code for n in range(1, 6)]
        assert six == [200, 200, 200, 429, 429]
        assert (await _visitor_asks(app, "2001:db8:1:3::1")).status_code == 200
        assert (await _visitor_asks(app, "198.51.100.1")).status_code == 200
        # Someone signed in from the busy network has their own allowance.
        from tests.fixtures.auth import sign_in
        from tests.fixtures.users import make_user

        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as person:
            person.app = app  # type: ignore[attr-defined]
            sign_in(person, await make_user(db))
            assert (await ask(person, "hello")).status_code == 200
    async with client_factory(
        chat_model=FakeModel(), LENS_TUTOR_NETWORK_DAILY_TOKENS="150"
    ) as client:
        assert (await _visitor_asks(client.app, "192.0.2.9")).status_code == 200  # 103 tokens
        assert (await _visitor_asks(client.app, "192.0.2.9")).status_code == 200  # 206 now
        over = await _visitor_asks(client.app, "192.0.2.9")
        assert over.status_code == 429 and "your network" in over.json()["error"]["message"]


async def test_connections_opened_ahead_are_counted_per_network(
    client_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flood from one network opens only so many vendor connections ahead of its asks;
    # another network still gets its own, and every ask is answered either way.
    from lens.tutor.starts import Ahead

    monkeypatch.setattr(Ahead, "PER_NETWORK", 2)
    model = FakeModel()
    async with client_factory(chat_model=model, LENS_TUTOR_MESSAGES_PER_MINUTE="100") as client:
        app = client.app
        codes = [(await _visitor_asks(app, "203.0.113.9")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 200]
        assert model.prepared == 2
        assert (await _visitor_asks(app, "198.51.100.9")).status_code == 200
        assert model.prepared == 3


def test_a_network_s_window_of_connections_ahead_starts_again() -> None:
    from lens.tutor.starts import Ahead

    ahead = Ahead()
    assert all(ahead.allow("203.0.113.1", 0.0) for _ in range(Ahead.PER_NETWORK))
    assert not ahead.allow("203.0.113.1", 1.0)
    assert ahead.allow("198.51.100.1", 1.0)
    assert ahead.allow("203.0.113.1", Ahead.WINDOW)  # a new window
    # When there are too many networks, those whose window is over are forgotten, and then
    # the oldest: memory stays bounded in a flood from many networks.
    ahead.NETWORKS = 4
    for n in range(20):
        ahead.allow(f"10.0.0.{n}", 2 * Ahead.WINDOW + n * 0.01)
        assert len(ahead._windows) <= 5
    assert "10.0.0.19" in ahead._windows and "203.0.113.1" not in ahead._windows
