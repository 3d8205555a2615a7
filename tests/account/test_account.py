"""The account page, a download of one's data, and deleting the account (lens/account)."""

from __future__ import annotations

import re

from sqlalchemy import select

from lens.integrations.email.models import OutboxEmail
from lens.tutor.models import Conversation, Message
from lens.users.models import User
from tests.auth.test_discord import CLIENT, FakeDiscord
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.users import make_user
from tests.tutor.fake_model import FakeModel
from tests.tutor.test_tutor_api import ask


async def test_profile_is_saved(app_client, db) -> None:
    user = await make_user(db, nickname="Old")
    sign_in(app_client, user)
    page = await app_client.get("/account")
    assert page.status_code == 200 and 'value="Old"' in page.text
    assert "Europe/Berlin" in page.text  # the zone list
    response = await app_client.post(
        "/account",
        data={
            "nickname": "  Ada   L. ",
            "timezone": "America/Sao_Paulo",
            "email_notifications": "true",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 303 and response.headers["location"] == "/account?saved=profile"
    await db.refresh(user)
    assert (user.nickname, user.timezone) == ("Ada L.", "America/Sao_Paulo")
    assert user.email_notifications is True and user.dm_notifications is False


async def test_bad_timezone_is_explained_and_input_kept(app_client, db) -> None:
    user = await make_user(db, nickname="Keep", timezone="Europe/Paris")
    sign_in(app_client, user)
    response = await app_client.post(
        "/account", data={"nickname": "New name", "timezone": "Mars/Olympus"}, headers=ORIGIN
    )
    assert response.status_code == 422
    assert "&#39;Mars/Olympus&#39; is not a time zone we know" in response.text
    assert 'value="New name"' in response.text and 'value="Mars/Olympus"' in response.text
    await db.refresh(user)
    assert (user.nickname, user.timezone) == ("Keep", "Europe/Paris")  # nothing lost


async def test_changed_email_must_be_confirmed(app_client, db) -> None:
    user = await make_user(db, email="before@example.org")
    sign_in(app_client, user)
    sent = await app_client.post(
        "/account/email", data={"email": "after@example.org"}, headers=ORIGIN
    )
    assert "We sent a confirmation link to after@example.org" in sent.text
    await db.refresh(user)
    assert user.email == "before@example.org"  # unchanged until confirmed
    mail = await db.scalar(select(OutboxEmail).where(OutboxEmail.to == "after@example.org"))
    token = re.search(r"token=([\w-]+)", mail.text).group(1)
    confirmed = await app_client.post(
        "/account/email/confirm", data={"token": token}, headers=ORIGIN
    )
    assert confirmed.status_code == 303
    await db.refresh(user)
    assert user.email == "after@example.org" and user.email_verified_at is not None


async def test_email_taken_by_another_account(app_client, db) -> None:
    await make_user(db, email="taken@example.org")
    sign_in(app_client, await make_user(db))
    response = await app_client.post(
        "/account/email", data={"email": "taken@example.org"}, headers=ORIGIN
    )
    assert response.status_code == 409
    assert "Another account uses that address" in response.text


async def test_link_and_unlink_discord(client_factory, db) -> None:
    user = await make_user(db, discord_id=None, email="solo@example.org")
    async with client_factory(transport=FakeDiscord().transport(), **CLIENT) as client:
        sign_in(client, user)
        start = await client.get("/auth/discord", params={"link": "1", "next": "/account"})
        state = re.search(r"state=([^&]+)", start.headers["location"]).group(1)
        done = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
        assert done.headers["location"] == "/account?linked=1"
        await db.refresh(user)
        assert user.discord_id == "80351110224678912"
        # Without a confirmed e-mail, unlinking would lock them out.
        refused = await client.post("/account/discord/unlink", headers=ORIGIN)
        assert refused.status_code == 422 and "confirm an e-mail address first" in refused.text
        user.email_verified_at = user.created_at
        await db.flush()
        unlinked = await client.post("/account/discord/unlink", headers=ORIGIN)
        assert unlinked.status_code == 303
        await db.refresh(user)
        assert user.discord_id is None


async def test_linking_a_discord_account_used_elsewhere_is_refused(client_factory, db) -> None:
    await make_user(db, discord_id="80351110224678912")
    me = await make_user(db, discord_id=None)
    async with client_factory(transport=FakeDiscord().transport(), **CLIENT) as client:
        sign_in(client, me)
        start = await client.get("/auth/discord", params={"link": "1"})
        state = re.search(r"state=([^&]+)", start.headers["location"]).group(1)
        done = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert done.status_code == 400 and "already linked to another Lens account" in done.text


async def test_download_my_data(app_client, db) -> None:
    user = await make_user(db, nickname="Data", timezone="Asia/Tokyo")
    sign_in(app_client, user)
    response = await app_client.get("/account/data.json")
    assert response.headers["content-disposition"].startswith("attachment")
    data = response.json()
    assert data["account"]["nickname"] == "Data" and data["account"]["timezone"] == "Asia/Tokyo"
    me = await app_client.get("/api/me")
    assert me.json()["id"] == user.id


async def test_delete_needs_confirmation_then_removes_personal_data(app_client, db) -> None:
    user = await make_user(db, nickname="Gone", email="gone@example.org", timezone="Europe/Oslo")
    sign_in(app_client, user)
    page = await app_client.get("/account/delete")
    assert "cannot be undone" in page.text
    wrong = await app_client.post("/account/delete", data={"confirm": "yes"}, headers=ORIGIN)
    assert wrong.status_code == 422 and "Nothing was deleted" in wrong.text
    await db.refresh(user)
    assert user.deleted_at is None
    done = await app_client.post("/account/delete", data={"confirm": "DELETE"}, headers=ORIGIN)
    assert done.status_code == 200 and "Your account is deleted" in done.text
    assert "Max-Age=0" in done.headers["set-cookie"]
    await db.refresh(user)
    assert user.deleted_at is not None
    assert (user.email, user.nickname, user.discord_id, user.timezone) == (None, None, None, None)
    assert await db.scalar(select(User.id).where(User.id == user.id)) == user.id  # row kept
    # The old cookie no longer signs anyone in.
    assert (await app_client.get("/account")).status_code == 401


async def test_export_includes_reading_progress(app_client, db) -> None:
    user = await make_user(db)
    sign_in(app_client, user)
    page = await app_client.get("/course/intro-to-ai-safety/welcome")
    cid = re.search(r'name="content_id" value="([^"]+)"', page.text).group(1)
    await app_client.post(
        "/course/intro-to-ai-safety/welcome/complete",
        data={"content_id": cid, "s": "1"},
        headers=ORIGIN,
    )
    data = (await app_client.get("/account/data.json")).json()
    assert [p["section"] for p in data["reading_progress"]] == [cid]


async def test_deletion_removes_sign_in_links_sent_to_the_address(app_client, db) -> None:
    from lens.auth.models import SignInToken

    user = await make_user(db, email="bye@example.org")
    await app_client.post("/auth/email", data={"email": "bye@example.org"}, headers=ORIGIN)
    sign_in(app_client, user)
    await app_client.post("/account/delete", data={"confirm": "delete"}, headers=ORIGIN)
    assert (
        await db.scalar(select(SignInToken).where(SignInToken.email == "bye@example.org")) is None
    )


async def test_my_data_has_my_transcripts_and_deleting_removes_them(client_factory, db) -> None:
    ada = await make_user(db)
    async with client_factory(chat_model=FakeModel()) as client:
        sign_in(client, ada)
        await ask(client, "Remember me")
        data = (await client.get("/account/data.json")).json()
        deleted = await client.post("/account/delete", data={"confirm": "delete"}, headers=ORIGIN)
    assert data["tutor_conversations"][0]["messages"][0]["content"] == "Remember me"
    assert deleted.status_code == 200 and "Account deleted" in deleted.text
    assert (await db.scalar(select(Conversation).where(Conversation.user_id == ada.id))) is None
    assert list(await db.scalars(select(Message))) == []
