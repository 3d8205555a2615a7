from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from lens.tutor.models import Message
from lens.tutor.prompt import DEFAULT_BASE_PROMPT
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.users import make_user
from tests.tutor.fake_model import FakeModel
from tests.tutor.test_tutor_api import ask

COURSE = "intro-to-ai-safety"


async def test_an_admins_base_prompt_leads_the_system_prompt(client_factory, db) -> None:
    model = FakeModel()
    admin = await make_user(db, is_admin=True)
    async with client_factory(chat_model=model) as client:
        sign_in(client, admin)
        saved = await client.post(
            "/admin/tutor/prompt",
            data={"course": COURSE, "prompt": "You are a Socratic tutor for AI safety."},
            headers=ORIGIN,
        )
        assert saved.status_code == 303
        page = await client.get("/admin/tutor")
        assert "You are a Socratic tutor for AI safety.</textarea>" in page.text
        await ask(client, "Hi")
        # Emptying the field goes back to the default.
        await client.post(
            "/admin/tutor/prompt", data={"course": COURSE, "prompt": "  "}, headers=ORIGIN
        )
        await ask(client, "Again")
    assert model.calls[0]["system"].startswith("You are a Socratic tutor for AI safety.\n\n")
    assert DEFAULT_BASE_PROMPT not in model.calls[0]["system"]
    assert model.calls[1]["system"].startswith(DEFAULT_BASE_PROMPT)


async def test_a_too_long_prompt_is_refused_and_kept_in_the_form(client_factory, db) -> None:
    admin = await make_user(db, is_admin=True)
    async with client_factory() as client:
        sign_in(client, admin)
        draft = "Be kind. " * 1000
        response = await client.post(
            "/admin/tutor/prompt", data={"course": COURSE, "prompt": draft}, headers=ORIGIN
        )
        unknown = await client.post(
            "/admin/tutor/prompt", data={"course": "nope", "prompt": "x"}, headers=ORIGIN
        )
    assert response.status_code == 422
    assert "keep it under 8000" in response.text
    assert draft.strip() in response.text  # nothing the admin typed is lost
    assert unknown.status_code == 422 and "There is no course" in unknown.text


async def test_students_read_their_own_transcripts_only(client_factory, db) -> None:
    ada, bob = await make_user(db, nickname="Ada"), await make_user(db, nickname="Bob")
    async with client_factory(chat_model=FakeModel()) as client:
        sign_in(client, ada)
        await ask(client, "What is **alignment**?")
        mine = await client.get("/account/transcripts")
        sign_in(client, bob)
        theirs = await client.get("/account/transcripts")
    assert mine.status_code == 200
    assert "<strong>alignment</strong>" in mine.text and "Good question!" in mine.text
    assert "Welcome to the course" in mine.text  # the module title
    assert f"/course/{COURSE}/welcome?s=1" in mine.text
    assert "alignment" not in theirs.text
    assert "You have not talked with the tutor yet" in theirs.text


async def _export(client, **params) -> dict:
    response = await client.get("/admin/tutor/transcripts.json", params=params)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    return json.loads(response.text)


async def test_admins_export_transcripts_by_course_and_date(client_factory, db) -> None:
    ada = await make_user(db)
    admin = await make_user(db, is_admin=True)
    async with client_factory(chat_model=FakeModel()) as client:
        sign_in(client, ada)
        await ask(client, "First question")
        # Move that exchange ten days into the past.
        await db.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(days=10)))
        await ask(client, "Second question")
        sign_in(client, admin)
        everything = await _export(client)
        by_course = await _export(client, course=COURSE)
        recent = await _export(
            client, since=(datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        )
        old = await _export(
            client, until=(datetime.now(UTC) - timedelta(days=5)).date().isoformat()
        )
        backwards = await client.get(
            "/admin/tutor/transcripts.json", params={"since": "2026-02-01", "until": "2026-01-01"}
        )
        not_a_date = await client.get("/admin/tutor/transcripts.json", params={"since": "May"})
        no_course = await client.get("/admin/tutor/transcripts.json", params={"course": "x"})
    (conversation,) = everything["conversations"]
    assert conversation["user_id"] == ada.id and conversation["anonymous"] is False
    assert conversation["module"]["title"] == "Welcome to the course"
    assert [m["content"] for m in conversation["messages"]] == [
        "First question",
        "Good question!",
        "Second question",
        "Good question!",
    ]
    assert conversation["messages"][1]["prompt_tokens"] == 100
    assert by_course["conversations"] == everything["conversations"]
    assert by_course["export"]["course"] == COURSE
    assert [m["content"] for m in recent["conversations"][0]["messages"]] == [
        "Second question",
        "Good question!",
    ]
    assert [m["content"] for m in old["conversations"][0]["messages"]] == [
        "First question",
        "Good question!",
    ]
    assert backwards.status_code == 422 and "must come after" in backwards.text
    assert not_a_date.status_code == 422 and "use YYYY-MM-DD" in not_a_date.text
    assert no_course.status_code == 404


async def test_an_export_spans_several_batches(client_factory, db, monkeypatch) -> None:
    from lens.tutor import transcripts

    monkeypatch.setattr(transcripts, "_EXPORT_BATCH", 2)
    admin = await make_user(db, is_admin=True)
    async with client_factory(chat_model=FakeModel()) as client:
        for segment_section in range(5):
            sign_in(client, await make_user(db))
            await ask(client, f"Question {segment_section}")
        sign_in(client, admin)
        data = await _export(client)
    questions = [c["messages"][0]["content"] for c in data["conversations"]]
    assert questions == [f"Question {i}" for i in range(5)]
