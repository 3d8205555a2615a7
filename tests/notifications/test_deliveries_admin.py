"""The admin's deliveries page: who each message is for, filters, and sending failed
ones again (lens/notifications/pages.py, lens/notifications/admin.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.db.base import utcnow
from lens.notifications.models import Delivery
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.notifications import make_delivery
from tests.fixtures.users import make_user
from tests.notifications.fakes import RecordingEmail
from tests.notifications.test_delivery import sender


async def _fresh(db, delivery: Delivery) -> Delivery:
    """The row as the database has it now (the page changed it in its own session)."""
    row = await db.scalar(
        select(Delivery).where(Delivery.id == delivery.id).execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def _admin(app_client, db):
    admin = await make_user(db, nickname="Root", is_admin=True)
    sign_in(app_client, admin)
    return admin


async def test_each_delivery_names_its_person_with_a_link(app_client, db) -> None:
    ada = await make_user(db, nickname="Ada")
    await make_delivery(db, ada, last_error="SendGrid refused: bad address")
    await _admin(app_client, db)
    page = await app_client.get("/admin/deliveries")
    assert page.status_code == 200
    assert f'<a href="/admin/users/{ada.id}">Ada</a>' in page.text
    assert f"user {ada.id}" not in page.text
    assert "SendGrid refused: bad address" in page.text


async def test_filters_by_status_and_by_kind(app_client, db) -> None:
    ada = await make_user(db, nickname="Ada")
    failed_welcome = await make_delivery(db, ada, kind="welcome", last_error="welcome broke")
    await make_delivery(db, ada, kind="group_assigned", last_error="group broke")
    await make_delivery(db, ada, kind="welcome", status="sent")
    await make_delivery(db, ada, kind="meeting_changed", status="dropped", last_error="moved")
    await _admin(app_client, db)

    both = await app_client.get("/admin/deliveries", params={"status": "failed", "kind": "welcome"})
    assert both.status_code == 200
    assert "welcome broke" in both.text and "group broke" not in both.text
    assert f'id="delivery-{failed_welcome.id}"' in both.text and both.text.count("<li id=") == 1
    assert '<option value="welcome" selected>' in both.text
    assert '<option value="failed" selected>' in both.text

    kind_only = await app_client.get("/admin/deliveries", params={"kind": "group_assigned"})
    assert "group broke" in kind_only.text and "welcome broke" not in kind_only.text

    dropped = await app_client.get("/admin/deliveries", params={"status": "dropped"})
    assert "moved" in dropped.text and dropped.text.count("<li id=") == 1

    default = await app_client.get("/admin/deliveries")
    assert default.text.count("<li id=") == 2  # failed and waiting: the two failures
    assert "Failed and waiting" in default.text
    # The counts follow the kind chosen, and their links keep it.
    assert 'href="/admin/deliveries?status=sent&amp;kind=welcome"' in both.text
    assert ">sent: 1</a>" in both.text and ">dropped: 0</a>" in both.text


@pytest.mark.parametrize(
    "params,message",
    [
        ({"status": "lost"}, "&#39;lost&#39; is not a delivery status"),
        ({"kind": "postcard"}, "&#39;postcard&#39; is not a kind of notification"),
    ],
)
async def test_an_unknown_filter_is_named(app_client, db, params, message) -> None:
    await _admin(app_client, db)
    page = await app_client.get("/admin/deliveries", params=params)
    assert page.status_code == 422 and message in page.text


async def test_retry_sends_a_failed_delivery_again(app_client, db, sessionmaker) -> None:
    cohort = await make_cohort(db, name="Spring 2027")
    signup = await make_signup(db, cohort)
    failed = await make_delivery(
        db,
        await db.get(User, signup.user_id),
        kind="welcome",
        context={"signup_id": signup.id},
        attempts=6,
    )
    await _admin(app_client, db)
    page = await app_client.get("/admin/deliveries", params={"status": "failed"})
    assert f'action="/admin/deliveries/{failed.id}/retry"' in page.text

    before = utcnow()
    response = await app_client.post(
        f"/admin/deliveries/{failed.id}/retry", data={"status": "failed"}, headers=ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/admin/deliveries?status=failed&retried=1&late=0&skipped=0"
    )
    row = await _fresh(db, failed)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
    assert (row.locked_by, row.locked_until) == (None, None)
    assert before - timedelta(seconds=1) <= row.send_at <= utcnow()
    notice = await app_client.get(response.headers["location"])
    assert "Retried 1 delivery: it is waiting to be sent again." in notice.text

    # Retrying again (a second click) changes nothing and says so.
    again = await app_client.post(f"/admin/deliveries/{failed.id}/retry", headers=ORIGIN)
    assert again.status_code == 303 and "retried=0" in again.headers["location"]
    assert (await _fresh(db, failed)).send_at == row.send_at
    said = await app_client.get(again.headers["location"])
    assert "1 was not failed (any more) and was left as it was." in said.text

    # The sender takes it like any waiting delivery, with a fresh set of attempts.
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    sent = await _fresh(db, failed)
    assert sent.status == "sent" and sent.attempts == 1
    assert len(email.sent) == 1 and "Spring 2027" in email.sent[0].text


@pytest.mark.parametrize("status", ["sent", "dropped"])
async def test_only_failed_deliveries_can_be_retried(app_client, db, status: str) -> None:
    ada = await make_user(db, nickname="Ada")
    done = await make_delivery(db, ada, status=status, attempts=1)
    await _admin(app_client, db)
    response = await app_client.post(f"/admin/deliveries/{done.id}/retry", headers=ORIGIN)
    assert response.status_code == 409
    assert f"Only failed deliveries can be retried; delivery {done.id} was {status}" in (
        response.text
    )
    row = await _fresh(db, done)
    assert (row.status, row.attempts) == (status, 1)
    page = await app_client.get("/admin/deliveries", params={"status": status})
    assert f"/admin/deliveries/{done.id}/retry" not in page.text  # no button for it


@pytest.mark.parametrize("delivery_id", ["999999", "x", "1" * 30])
async def test_retrying_an_unknown_delivery_is_a_404(app_client, db, delivery_id: str) -> None:
    await _admin(app_client, db)
    response = await app_client.post(f"/admin/deliveries/{delivery_id}/retry", headers=ORIGIN)
    assert response.status_code == 404 and "There is no delivery" in response.text


async def test_a_reminder_past_its_limit_says_a_retry_is_dropped(
    app_client, db, sessionmaker
) -> None:
    ada = await make_user(db, nickname="Ada")
    # The hour-before reminder may be 30 minutes late; this one was due 2 hours ago.
    stale = await make_delivery(
        db, ada, kind="meeting_reminder_1h", due_at=utcnow() - timedelta(hours=2),
        context={"meeting_id": 1, "starts_at": utcnow().isoformat()},
    )  # fmt: skip
    fresh = await make_delivery(
        db, ada, kind="meeting_reminder_1h", due_at=utcnow() - timedelta(minutes=5),
        context={"meeting_id": 1, "starts_at": utcnow().isoformat()},
    )  # fmt: skip
    await _admin(app_client, db)
    page = await app_client.get("/admin/deliveries", params={"status": "failed"})
    row_html = page.text.split(f'id="delivery-{stale.id}"')[1].split("</li>")[0]
    assert "Past its time limit: a retry will be dropped, not sent." in row_html
    other_html = page.text.split(f'id="delivery-{fresh.id}"')[1].split("</li>")[0]
    assert "Past its time limit" not in other_html
    assert "(1 past its time limit will be dropped)" in page.text

    response = await app_client.post(f"/admin/deliveries/{stale.id}/retry", headers=ORIGIN)
    notice = await app_client.get(response.headers["location"])
    assert "1 is a reminder past its time limit: the sender will drop it" in notice.text
    assert (await _fresh(db, stale)).status == "pending"
    await sender(sessionmaker).run_once()
    dropped = await _fresh(db, stale)
    assert dropped.status == "dropped" and dropped.last_error.startswith("too late: due 12")


async def test_retry_all_failed_shown_after_a_confirmation(app_client, db) -> None:
    ada = await make_user(db, nickname="Ada")
    failed = [await make_delivery(db, ada, kind="welcome") for _ in range(3)]
    other_kind = await make_delivery(db, ada, kind="group_assigned")
    sent = await make_delivery(db, ada, kind="welcome", status="sent", attempts=1)
    await _admin(app_client, db)
    page = await app_client.get("/admin/deliveries", params={"status": "failed", "kind": "welcome"})
    assert "Retry all failed shown (3)" in page.text
    shown = [f'name="ids" value="{d.id}"' for d in failed]
    assert all(s in page.text for s in shown)
    assert f'name="ids" value="{other_kind.id}"' not in page.text

    form = {"status": "failed", "kind": "welcome", "ids": [str(d.id) for d in failed]}
    unconfirmed = await app_client.post("/admin/deliveries/retry", data=form, headers=ORIGIN)
    assert unconfirmed.status_code == 422 and "Tick the box to confirm" in unconfirmed.text
    assert {(await _fresh(db, d)).status for d in failed} == {"failed"}

    # A row that is no longer failed (here: sent) is left alone, and counted.
    form |= {"confirm": "yes", "ids": [*form["ids"], str(sent.id)]}
    done = await app_client.post("/admin/deliveries/retry", data=form, headers=ORIGIN)
    assert done.status_code == 303
    assert done.headers["location"] == (
        "/admin/deliveries?status=failed&kind=welcome&retried=3&late=0&skipped=1"
    )
    assert {(await _fresh(db, d)).status for d in failed} == {"pending"}
    assert (await _fresh(db, other_kind)).status == "failed"  # not shown, not retried
    assert (await _fresh(db, sent)).status == "sent"
    notice = await app_client.get(done.headers["location"])
    assert "Retried 3 deliveries" in notice.text and "1 was not failed" in notice.text

    twice = await app_client.post("/admin/deliveries/retry", data=form, headers=ORIGIN)
    assert "retried=0" in twice.headers["location"] and "skipped=4" in twice.headers["location"]


@pytest.mark.parametrize(
    "ids,message",
    [
        ([], "nothing to retry"),
        (["12", "x"], "was not understood"),
        ([str(i) for i in range(1, 102)], "was not understood"),
    ],
)
async def test_retry_all_refuses_a_list_it_cannot_read(app_client, db, ids, message) -> None:
    ada = await make_user(db, nickname="Ada")
    failed = await make_delivery(db, ada)
    await _admin(app_client, db)
    response = await app_client.post(
        "/admin/deliveries/retry", data={"confirm": "yes", "ids": ids}, headers=ORIGIN
    )
    assert response.status_code == 422 and message in response.text
    assert (await _fresh(db, failed)).status == "failed"
