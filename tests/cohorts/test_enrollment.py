"""The enrollment wizard and the person's own status page, over HTTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from lens.cohorts.models import Signup
from lens.db.base import utcnow
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort
from tests.fixtures.users import make_user


def slots(values: list[int]) -> str:
    return ",".join(map(str, values))


async def test_a_student_enrolls_step_by_step(app_client, db) -> None:
    cohort = await make_cohort(db, meeting_minutes=90)
    ada = await make_user(db, nickname=None, timezone=None)
    sign_in(app_client, ada)
    start = await app_client.get(f"/enroll/{cohort.id}")
    assert start.headers["location"] == f"/enroll/{cohort.id}/profile"

    bad = await app_client.post(
        f"/enroll/{cohort.id}/profile",
        data={"nickname": "", "timezone": "Mars/Olympus"},
        headers=ORIGIN,
    )
    assert bad.status_code == 422
    for fix in ("Choose a nickname", "not a time zone we know", "Accept the terms"):
        assert fix in bad.text
    assert 'value="Mars/Olympus"' in bad.text  # what was typed stays
    good = await app_client.post(
        f"/enroll/{cohort.id}/profile",
        data={"nickname": "Ada", "timezone": "Europe/Berlin", "terms": "true"},
        headers=ORIGIN,
    )
    assert good.headers["location"] == f"/enroll/{cohort.id}/role"

    too_many = await app_client.post(
        f"/enroll/{cohort.id}/role", data={"role": "facilitator", "max_groups": "9"}, headers=ORIGIN
    )
    assert too_many.status_code == 422 and "1 to 4 groups" in too_many.text
    role = await app_client.post(
        f"/enroll/{cohort.id}/role", data={"role": "participant"}, headers=ORIGIN
    )
    assert role.headers["location"] == f"/enroll/{cohort.id}/availability"

    page = await app_client.get(f"/enroll/{cohort.id}/availability")
    assert 'role="grid"' in page.text and 'value="Europe/Berlin"' in page.text
    short = await app_client.post(
        f"/enroll/{cohort.id}/availability",
        data={"timezone": "Europe/Berlin", "available": slots(evening(0, 19, 1))},
        headers=ORIGIN,
    )
    assert short.status_code == 422 and "stretch of 90 minutes" in short.text
    assert f'value="{slots(evening(0, 19, 1))}"' in short.text  # the painting is kept
    saved = await app_client.post(
        f"/enroll/{cohort.id}/availability",
        data={
            "timezone": "Europe/Berlin",
            "available": slots(evening(0, 19, 2)),
            "if_needed": slots(evening(2, 18, 1)),
        },
        headers=ORIGIN,
    )
    assert saved.headers["location"] == f"/enroll/{cohort.id}/confirm"
    confirm = await app_client.get(f"/enroll/{cohort.id}/confirm")
    assert "2.0 hours available, 1.0 if needed" in confirm.text
    done = await app_client.post(f"/enroll/{cohort.id}/confirm", headers=ORIGIN)
    assert done.headers["location"] == f"/cohorts/{cohort.id}?enrolled=1"
    status = await app_client.get(f"/cohorts/{cohort.id}?enrolled=1")
    assert "You are enrolled" in status.text and "Change availability" in status.text

    signup = await db.scalar(select(Signup).where(Signup.user_id == ada.id))
    assert signup.status == "enrolled" and signup.timezone == "Europe/Berlin"
    assert signup.availability == {
        "available": evening(0, 19, 2),
        "if_needed": evening(2, 18, 1),
    }
    # Going through /enroll again finds the same signup: one per person per cohort.
    again = await app_client.get(f"/enroll/{cohort.id}")
    assert again.headers["location"] == f"/cohorts/{cohort.id}"


async def test_changing_availability_and_withdrawing(app_client, db) -> None:
    cohort = await make_cohort(db)
    ada = await make_user(db, nickname="Ada", timezone="UTC", terms_accepted_at=utcnow())
    sign_in(app_client, ada)
    await app_client.get(f"/enroll/{cohort.id}")
    await app_client.post(f"/enroll/{cohort.id}/role", data={"role": "participant"}, headers=ORIGIN)
    data = {"timezone": "UTC", "available": slots(evening(1, 18, 3))}
    await app_client.post(f"/enroll/{cohort.id}/availability", data=data, headers=ORIGIN)
    await app_client.post(f"/enroll/{cohort.id}/confirm", headers=ORIGIN)

    data["available"] = slots(evening(3, 18, 2))
    changed = await app_client.post(f"/enroll/{cohort.id}/availability", data=data, headers=ORIGIN)
    assert changed.headers["location"] == f"/cohorts/{cohort.id}?saved=availability"
    unconfirmed = await app_client.post(f"/cohorts/{cohort.id}/withdraw", headers=ORIGIN)
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    gone = await app_client.post(
        f"/cohorts/{cohort.id}/withdraw", data={"confirm": "yes"}, headers=ORIGIN
    )
    assert gone.status_code == 303
    signup = await db.scalar(select(Signup).where(Signup.user_id == ada.id))
    assert signup.status == "withdrawn" and signup.availability["available"] == evening(3, 18, 2)


async def test_closed_and_past_deadline_cohorts_take_no_new_signups(app_client, db) -> None:
    late = await make_cohort(db, enrollment_deadline=utcnow() - timedelta(days=1))
    closed = await make_cohort(db, status="closed")
    sign_in(app_client, await make_user(db))
    for cohort in (late, closed):
        response = await app_client.get(f"/enroll/{cohort.id}")
        assert response.status_code == 409 and "not taking signups" in response.text
    listing = await app_client.get("/enroll")
    assert "not open yet" in listing.text


async def test_visitors_see_open_cohorts_and_a_sign_in_link(app_client, db) -> None:
    cohort = await make_cohort(db, name="Autumn cohort")
    page = await app_client.get("/enroll")
    assert "Autumn cohort" in page.text
    assert f"/auth/signin?next=/enroll/{cohort.id}" in page.text
    assert (await app_client.get(f"/enroll/{cohort.id}")).status_code == 401


async def test_new_facilitators_wait_for_approval_once(app_client, db) -> None:
    first, second = await make_cohort(db), await make_cohort(db, name="Summer")
    bea = await make_user(db, nickname="Bea", timezone="UTC", terms_accepted_at=utcnow())
    admin = await make_user(db, is_admin=True)
    sign_in(app_client, bea)
    await app_client.get(f"/enroll/{first.id}")
    await app_client.post(
        f"/enroll/{first.id}/role", data={"role": "facilitator", "max_groups": "2"}, headers=ORIGIN
    )
    signup = await db.scalar(select(Signup).where(Signup.cohort_id == first.id))
    assert signup.role == "facilitator" and signup.max_groups == 2 and signup.approved_at is None
    sign_in(app_client, admin)
    page = await app_client.get(f"/admin/cohorts/{first.id}")
    assert "Nobody has enrolled yet" in page.text  # a draft is not a signup yet
    signup.status = "enrolled"
    await db.flush()
    page = await app_client.get(f"/admin/cohorts/{first.id}")
    assert "Approve facilitator" in page.text
    approved = await app_client.post(
        f"/admin/cohorts/{first.id}/signups/{signup.id}/approve", headers=ORIGIN
    )
    assert approved.status_code == 303
    await db.refresh(signup)
    assert signup.approved_at is not None
    # Approved once: a later cohort does not ask again.
    sign_in(app_client, bea)
    await app_client.get(f"/enroll/{second.id}")
    await app_client.post(
        f"/enroll/{second.id}/role", data={"role": "facilitator", "max_groups": "1"}, headers=ORIGIN
    )
    later = await db.scalar(select(Signup).where(Signup.cohort_id == second.id))
    assert later.approved_at is not None
