"""The admin's people pages: finding a person, what their page shows, and the roles an
admin gives there (lens/cohorts/people_pages.py, lens/users/admin.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.auth.visitors import user_actor
from lens.cohorts.models import Group, GroupMember, Signup
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key
from lens.db.base import utcnow
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import COURSE, make_cohort, make_signup
from tests.fixtures.notifications import make_delivery
from tests.fixtures.users import make_user


def _names(html: str, users: list[User]) -> list[str]:
    """Which of `users` a results page links to, in page order."""
    found = [(html.find(f'href="/admin/users/{u.id}"'), u.display_name) for u in users]
    return [name for at, name in sorted(found) if at >= 0]


async def _ada_and_bo(db) -> tuple[User, User, User]:
    ada = await make_user(
        db,
        nickname="Ada Lovelace",
        email="countess@analytical.example",
        discord_id="200000000000000001",
        discord_username="enchantress",
        discord_global_name="Augusta",
    )
    bo = await make_user(
        db, nickname="Bo", email="bo@example.org", discord_username="bo_b", discord_id=None
    )
    admin = await make_user(db, nickname="Root", email="root@example.org", is_admin=True)
    return ada, bo, admin


@pytest.mark.parametrize(
    "query",
    [
        "lovelace",  # the name, any case
        "ADA LOV",
        "COUNTESS@",  # the e-mail address
        "analytical.example",
        "enchant",  # the Discord user name
        "augusta",  # the Discord display name
        "200000000000000001",  # a Discord id, copied from Discord
    ],
)
async def test_search_finds_a_person_by_name_email_or_discord_name(
    app_client, db, query: str
) -> None:
    ada, bo, admin = await _ada_and_bo(db)
    sign_in(app_client, admin)
    page = await app_client.get("/admin/users", params={"q": query})
    assert page.status_code == 200
    assert _names(page.text, [ada, bo, admin]) == ["Ada Lovelace"]
    assert "1 person matching" in page.text


async def test_search_folds_case_beyond_ascii_and_takes_wildcards_literally(app_client, db) -> None:
    zoe = await make_user(db, nickname="ZOË Ünal", email="z@example.org")
    under = await make_user(db, nickname="Cy", email="a_b@example.org")
    other = await make_user(db, nickname="Di", email="axb@example.org")
    admin = await make_user(db, nickname="Root", is_admin=True)
    sign_in(app_client, admin)
    people = [zoe, under, other, admin]
    for query in ("zoë", "Zoë ünal", "ünal"):
        page = await app_client.get("/admin/users", params={"q": query})
        assert _names(page.text, people) == ["ZOË Ünal"], query
    underscore = await app_client.get("/admin/users", params={"q": "a_b"})
    assert _names(underscore.text, people) == ["Cy"]  # not "axb": _ is no wildcard
    percent = await app_client.get("/admin/users", params={"q": "%"})
    assert _names(percent.text, people) == [] and "Nobody's name" in percent.text


async def test_an_empty_search_lists_the_newest_fifty_a_page(app_client, db) -> None:
    admin = await make_user(db, nickname="Root", is_admin=True)
    people = [await make_user(db, nickname=f"Person {i:02}") for i in range(55)]
    sign_in(app_client, admin)
    first = await app_client.get("/admin/users")
    assert first.status_code == 200
    assert "Newest people (56 in all)" in first.text and "Page 1 of 2" in first.text
    shown = _names(first.text, [admin, *people])
    assert shown == [f"Person {i:02}" for i in range(54, 4, -1)]  # 50, newest first
    assert 'href="/admin/users?page=2"' in first.text
    second = await app_client.get("/admin/users", params={"page": "2"})
    assert _names(second.text, [admin, *people]) == [
        "Person 04", "Person 03", "Person 02", "Person 01", "Person 00", "Root",
    ]  # fmt: skip
    searched = await app_client.get("/admin/users", params={"q": "person", "page": "2"})
    assert "55 people matching" in searched.text
    assert 'href="/admin/users?q=person&amp;page=1"' in searched.text
    beyond = await app_client.get("/admin/users", params={"page": "9"})
    assert beyond.status_code == 200 and "no more people on page 9" in beyond.text


@pytest.mark.parametrize("page", ["0", "two", "-1"])
async def test_a_bad_page_number_is_named(app_client, db, page: str) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    response = await app_client.get("/admin/users", params={"page": page})
    assert response.status_code == 422
    assert "The page must be a whole number from 1" in response.text


async def test_a_too_long_search_is_refused_with_a_reason(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    response = await app_client.get("/admin/users", params={"q": "x" * 101})
    assert response.status_code == 422 and "Search for at most 100 characters" in response.text


async def test_results_show_email_discord_roles_and_since_when(app_client, db) -> None:
    ada, bo, admin = await _ada_and_bo(db)
    spring = await make_cohort(db, name="Spring 2027")
    autumn = await make_cohort(db, name="Autumn 2027")
    await make_signup(db, spring, user=ada, role="facilitator")
    await make_signup(db, autumn, user=ada, role="facilitator", approved=False)
    await make_signup(db, spring, user=bo)  # a participant: no role to show
    sign_in(app_client, admin)
    page = (await app_client.get("/admin/users", params={"q": "a"})).text
    assert "countess@analytical.example" in page
    assert "Discord: enchantress (Augusta)" in page and "no Discord" in page
    assert "facilitator, Spring 2027</span>" in page
    assert "facilitator, Autumn 2027 (not approved)" in page
    assert page.count('<span class="tag">admin</span>') == 1  # Root only
    assert f"since {ada.created_at:%Y-%m-%d}" in page


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/admin/users"),
        ("GET", "/admin/users/{id}"),
        ("POST", "/admin/users/{id}/admin"),
        ("POST", "/admin/users/{id}/signups/1/approve"),
    ],
)
async def test_people_pages_are_for_admins_only(app_client, db, method: str, path: str) -> None:
    student = await make_user(db)
    url = path.format(id=student.id)
    data = {"admin": "yes", "confirm": "yes"}
    anonymous = await app_client.request(method, url, headers=ORIGIN, data=data)
    assert anonymous.status_code == 401
    if method == "GET":
        assert f'href="/auth/signin?next={url}"' in anonymous.text
    sign_in(app_client, student)
    refused = await app_client.request(method, url, headers=ORIGIN, data=data)
    assert refused.status_code == 403 and "course administrators only" in refused.text
    await db.refresh(student)
    assert not student.is_admin


async def test_a_persons_page_shows_every_part_of_them(app_client, db) -> None:
    ada, _, admin = await _ada_and_bo(db)
    ada.email_verified_at = utcnow()
    ada.timezone = "Europe/Berlin"
    running = await make_cohort(db, name="Spring 2027", status="running")
    earlier = await make_cohort(db, name="Winter 2026", status="closed")
    grouped = await make_signup(db, running, user=ada, role="facilitator", status="grouped")
    await make_signup(db, earlier, user=ada, status="unplaced")
    unplaced = await db.scalar(select(Signup).where(Signup.cohort_id == earlier.id))
    unplaced.unplaced_reason = "no_shared_slot"
    group = Group(cohort_id=running.id, number=3, start_slot=84, status="active")
    db.add(group)
    await db.flush()
    db.add(GroupMember(group_id=group.id, signup_id=grouped.id, role="facilitator"))
    await make_delivery(db, ada, kind="welcome", status="failed", last_error="bad address")
    await make_delivery(db, ada, kind="group_assigned", status="sent", channel="discord")
    await db.flush()
    sign_in(app_client, admin)
    content = app_client.app.state.content.content
    course = content.courses[COURSE]
    first = course_modules(content, course)[0][1]
    required = sum(1 for item, _ in course_modules(content, course) if not item.optional)
    db.add(Progress(actor=user_actor(ada.id), user_id=ada.id, module_key=module_key(first),
                    content_id="", completed_at=utcnow(), seconds=600))  # fmt: skip
    await db.flush()

    page = await app_client.get(f"/admin/users/{ada.id}")
    assert page.status_code == 200
    text = page.text
    # Sign-in methods
    assert "countess@analytical.example (confirmed; signs in with an e-mailed link)" in text
    assert "linked: enchantress (Augusta), id 200000000000000001" in text
    # Roles
    assert "<dt>Admin</dt><dd>no</dd>" in text
    assert f'<a href="/admin/cohorts/{running.id}">Spring 2027</a></dd>' in text
    assert "Make admin" in text
    # Signups: cohort, role, status, why unplaced; the grouping link for a running cohort
    assert "facilitator" in text and "grouped" in text
    assert "unplaced: no time they can make is shared by enough other participants" in text
    link = f"/admin/cohorts/{running.id}/grouping?person={grouped.id}#person-{grouped.id}"
    assert f'href="{link}">Groups of this cohort…' in text  # a facilitator: swapped there
    assert f"/admin/cohorts/{earlier.id}/grouping" not in text  # not running
    # Groups
    assert f'<a href="/groups/{group.id}">Group 3</a><span>Spring 2027</span>' in text
    # Reading
    assert f"1 of {required} required modules completed; 1 started; 10 minutes" in text
    assert f"<li>{first.title}</li>" in text
    # Notifications (the notifications feature's panel)
    assert "<strong>welcome</strong>" in text and "<span>e-mail</span><span>failed</span>" in text
    assert '<span class="entry-error small">bad address</span>' in text
    assert "<strong>group_assigned</strong>" in text
    assert "<span>Discord message</span><span>sent</span>" in text


async def test_a_person_with_nothing_yet(app_client, db) -> None:
    _, bo, admin = await _ada_and_bo(db)
    sign_in(app_client, admin)
    text = (await app_client.get(f"/admin/users/{bo.id}")).text
    assert "<dt>Discord</dt><dd>not linked</dd>" in text and "(not confirmed)" in text
    for empty in ("No signups.", "In no active group.", "Has not read any course yet.",
                  "No notifications for Bo yet."):  # fmt: skip
        assert empty in text


async def test_the_latest_fifty_notifications_only(app_client, db) -> None:
    ada, _, admin = await _ada_and_bo(db)
    for i in range(52):
        await make_delivery(db, ada, status="sent", due_at=utcnow() - timedelta(hours=60 - i))
    sign_in(app_client, admin)
    text = (await app_client.get(f"/admin/users/{ada.id}")).text
    assert text.count("<strong>welcome</strong>") == 50


@pytest.mark.parametrize("user_id", ["999999", "abc", "99999999999"])
async def test_an_unknown_person_is_a_404_page(app_client, db, user_id: str) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    page = await app_client.get(f"/admin/users/{user_id}")
    assert page.status_code == 404 and "There is no person" in page.text
    post = await app_client.post(
        f"/admin/users/{user_id}/admin", data={"admin": "yes", "confirm": "yes"}, headers=ORIGIN
    )
    assert post.status_code == 404


async def test_an_admin_makes_someone_an_admin_and_takes_it_back(app_client, db) -> None:
    ada, _, admin = await _ada_and_bo(db)
    sign_in(app_client, admin)
    made = await app_client.post(
        f"/admin/users/{ada.id}/admin", data={"admin": "yes", "confirm": "yes"}, headers=ORIGIN
    )
    assert made.status_code == 303
    await db.refresh(ada)
    assert ada.is_admin
    page = await app_client.get(made.headers["location"])
    assert "Ada Lovelace is now an admin." in page.text and "Remove admin role" in page.text
    again = await app_client.post(
        f"/admin/users/{ada.id}/admin", data={"admin": "yes", "confirm": "yes"}, headers=ORIGIN
    )
    assert "already had that role" in (await app_client.get(again.headers["location"])).text
    removed = await app_client.post(
        f"/admin/users/{ada.id}/admin", data={"admin": "no", "confirm": "yes"}, headers=ORIGIN
    )
    assert removed.status_code == 303
    await db.refresh(ada)
    assert not ada.is_admin


@pytest.mark.parametrize(
    "form,status,message",
    [
        ({"admin": "yes"}, 422, "Tick the box to confirm"),
        ({"admin": "maybe", "confirm": "yes"}, 422, "Choose whether to make this person an admin"),
        ({}, 422, "Choose whether"),
    ],
)
async def test_a_role_change_without_a_clear_yes_changes_nothing(
    app_client, db, form: dict[str, str], status: int, message: str
) -> None:
    ada, _, admin = await _ada_and_bo(db)
    sign_in(app_client, admin)
    response = await app_client.post(f"/admin/users/{ada.id}/admin", data=form, headers=ORIGIN)
    assert response.status_code == status and message in response.text
    assert "<h1>Ada Lovelace</h1>" in response.text  # the page again, with the message
    await db.refresh(ada)
    assert not ada.is_admin


async def test_an_admin_cannot_remove_their_own_admin_role(app_client, db) -> None:
    _, _, admin = await _ada_and_bo(db)
    sign_in(app_client, admin)
    own = await app_client.get(f"/admin/users/{admin.id}")
    assert "You cannot remove your own admin role" in own.text
    assert "Remove admin role" not in own.text
    response = await app_client.post(
        f"/admin/users/{admin.id}/admin", data={"admin": "no", "confirm": "yes"}, headers=ORIGIN
    )
    assert response.status_code == 409
    assert "You cannot remove your own admin role; ask another admin" in response.text
    await db.refresh(admin)
    assert admin.is_admin


async def test_a_deleted_account_gets_no_role(app_client, db) -> None:
    admin = await make_user(db, is_admin=True)
    gone = await make_user(db, email=None, discord_id=None, deleted_at=utcnow())
    sign_in(app_client, admin)
    page = await app_client.get(f"/admin/users/{gone.id}")
    assert "This account was deleted" in page.text and "Make admin" not in page.text
    response = await app_client.post(
        f"/admin/users/{gone.id}/admin", data={"admin": "yes", "confirm": "yes"}, headers=ORIGIN
    )
    assert response.status_code == 409 and "This account was deleted" in response.text
    await db.refresh(gone)
    assert not gone.is_admin


async def test_an_admin_approves_a_facilitator_from_their_page(app_client, db) -> None:
    ada, _, admin = await _ada_and_bo(db)
    cohort = await make_cohort(db, name="Spring 2027")
    signup = await make_signup(db, cohort, user=ada, role="facilitator", approved=False)
    sign_in(app_client, admin)
    page = await app_client.get(f"/admin/users/{ada.id}")
    assert "Approve as facilitator for Spring 2027" in page.text
    assert "Spring 2027</a> (not approved yet)" in page.text
    url = f"/admin/users/{ada.id}/signups/{signup.id}/approve"
    unconfirmed = await app_client.post(url, headers=ORIGIN)
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm the approval" in unconfirmed.text
    await db.refresh(signup)
    assert signup.approved_at is None
    approved = await app_client.post(url, data={"confirm": "yes"}, headers=ORIGIN)
    assert approved.status_code == 303
    await db.refresh(signup)
    assert signup.approved_at is not None
    after = await app_client.get(approved.headers["location"])
    assert "Ada Lovelace is approved as a facilitator." in after.text
    assert "Approve as facilitator" not in after.text


async def test_approval_is_refused_for_what_needs_none(app_client, db) -> None:
    ada, bo, admin = await _ada_and_bo(db)
    cohort = await make_cohort(db, name="Spring 2027")
    participant = await make_signup(db, cohort, user=ada)
    later = await make_cohort(db, name="Autumn 2027")
    withdrawn = await make_signup(
        db, later, user=ada, role="facilitator", approved=False, status="withdrawn"
    )
    theirs = await make_signup(db, later, user=bo, role="facilitator", approved=False)
    sign_in(app_client, admin)
    yes = {"confirm": "yes"}
    as_participant = await app_client.post(
        f"/admin/users/{ada.id}/signups/{participant.id}/approve", data=yes, headers=ORIGIN
    )
    assert as_participant.status_code == 422 and "only facilitators need approval" in (
        as_participant.text
    )
    gone = await app_client.post(
        f"/admin/users/{ada.id}/signups/{withdrawn.id}/approve", data=yes, headers=ORIGIN
    )
    assert gone.status_code == 409 and "This signup is withdrawn" in gone.text
    not_hers = await app_client.post(
        f"/admin/users/{ada.id}/signups/{theirs.id}/approve", data=yes, headers=ORIGIN
    )
    assert not_hers.status_code == 404 and f"has no signup {theirs.id}" in not_hers.text
    nonsense = await app_client.post(
        f"/admin/users/{ada.id}/signups/x1/approve", data=yes, headers=ORIGIN
    )
    assert nonsense.status_code == 404
    for signup in (participant, withdrawn, theirs):
        await db.refresh(signup)
        assert signup.approved_at is None


async def test_the_admin_home_links_people_and_deliveries(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    home = await app_client.get("/admin")
    assert 'href="/admin/users"' in home.text and 'href="/admin/deliveries"' in home.text
