from __future__ import annotations

from sqlalchemy import select

from lens.cohorts.models import Cohort
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import COURSE, make_cohort
from tests.fixtures.users import make_user

VALID = {
    "course_slug": COURSE,
    "name": "Spring 2027",
    "start_date": "2027-03-01",
    "meetings": "8",
    "meeting_minutes": "90",
    "min_group_size": "4",
    "max_group_size": "8",
    "needs_facilitator": "true",
    "enrollment_deadline": "2027-02-20",
}


async def test_an_admin_creates_a_cohort(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    created = await app_client.post("/admin/cohorts", data=VALID, headers=ORIGIN)
    assert created.status_code == 303
    cohort = await db.scalar(select(Cohort).where(Cohort.name == "Spring 2027"))
    assert (cohort.meetings, cohort.meeting_minutes, cohort.status) == (8, 90, "open")
    assert (
        cohort.needs_facilitator and cohort.enrollment_deadline.date().isoformat() == "2027-02-20"
    )
    page = await app_client.get(created.headers["location"])
    assert "Cohort created" in page.text and "/enroll/" in page.text
    listing = await app_client.get("/admin/cohorts")
    assert "Spring 2027" in listing.text


async def test_every_mistake_is_named_and_the_form_kept(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    bad = {
        **VALID,
        "name": " ",
        "meeting_minutes": "45",
        "min_group_size": "6",
        "max_group_size": "3",
        "enrollment_deadline": "2027-04-01",
        "course_slug": "nope",
    }
    response = await app_client.post("/admin/cohorts", data=bad, headers=ORIGIN)
    assert response.status_code == 422
    for fix in (
        "Give the cohort a name",
        "60, 90 or 120 minutes",
        "smaller than the smallest",
        "deadline falls after the start date",
        "There is no course &#39;nope&#39;",
    ):
        assert fix in response.text
    assert 'value="2027-04-01"' in response.text
    not_numbers = await app_client.post(
        "/admin/cohorts", data={**VALID, "meetings": "eight"}, headers=ORIGIN
    )
    assert "must be a whole number, not &#39;eight&#39;" in not_numbers.text
    assert await db.scalar(select(Cohort)) is None


async def test_status_changes_follow_the_cohort_life(app_client, db) -> None:
    cohort = await make_cohort(db)
    sign_in(app_client, await make_user(db, is_admin=True))
    closed = await app_client.post(
        f"/admin/cohorts/{cohort.id}/status", data={"status": "closed"}, headers=ORIGIN
    )
    assert closed.status_code == 303
    running = await app_client.post(
        f"/admin/cohorts/{cohort.id}/status", data={"status": "running"}, headers=ORIGIN
    )
    assert running.status_code == 409 and "approve groups" in running.text
    await db.refresh(cohort)
    assert cohort.status == "closed"


async def test_a_cohort_sets_its_own_completion_rule(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    too_many = {**VALID, "completion_meetings": "9", "completion_modules": "some"}
    refused = await app_client.post("/admin/cohorts", data=too_many, headers=ORIGIN)
    assert refused.status_code == 422
    assert "Meetings to attend for completion: 0 to 8" in refused.text
    assert "Modules for completion: required, all or none." in refused.text
    assert (
        'name="completion_meetings" type="number"' in refused.text and 'value="9"' in refused.text
    )
    made = await app_client.post(
        "/admin/cohorts",
        data={**VALID, "completion_meetings": "6", "completion_modules": "all"},
        headers=ORIGIN,
    )
    assert made.status_code == 303
    cohort = await db.scalar(select(Cohort))
    assert (cohort.completion_meetings, cohort.completion_modules) == (6, "all")
    plain = await app_client.post(
        f"/admin/cohorts/{cohort.id}",
        data={**VALID, "completion_meetings": "", "completion_modules": ""},
        headers=ORIGIN,
    )
    assert plain.status_code == 303
    await db.refresh(cohort)
    assert (cohort.completion_meetings, cohort.completion_modules) == (None, None)


async def test_finishing_a_cohort_asks_for_a_confirmation(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    cohort = await make_cohort(db, status="running")
    url = f"/admin/cohorts/{cohort.id}/status"
    page = await app_client.get(f"/admin/cohorts/{cohort.id}")
    assert "This cannot be undone." in page.text
    refused = await app_client.post(url, data={"status": "finished"}, headers=ORIGIN)
    assert refused.status_code == 422 and "Tick the box" in refused.text
    await db.refresh(cohort)
    assert cohort.status == "running"
    done = await app_client.post(url, data={"status": "finished", "confirm": "yes"}, headers=ORIGIN)
    assert done.status_code == 303
    await db.refresh(cohort)
    assert cohort.status == "finished"
