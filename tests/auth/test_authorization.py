"""Every protected route, for every kind of person, answers as its rule says.

Facilitator rights are per group: "facilitator" leads the group a path names,
"other facilitator" leads another group of the same cohort. Where a row gives no
facilitator columns they are treated as students.
"""

from __future__ import annotations

import pytest

from lens.cohorts.models import Group, GroupMember
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.users import make_user


async def _two_groups(db) -> dict:
    """A running cohort with two active groups, each with a facilitator and a member."""
    cohort = await make_cohort(db, status="running", min_group_size=1)
    ids: dict = {"cohort": cohort.id}
    for number, who in ((1, "facilitator"), (2, "other facilitator")):
        lead = await make_signup(db, cohort, role="facilitator", available=evening(1, 18, 2))
        member = await make_signup(db, cohort, available=evening(1, 18, 2))
        group = Group(cohort_id=cohort.id, number=number, start_slot=84, status="active")
        db.add(group)
        await db.flush()
        db.add_all(
            [
                GroupMember(group_id=group.id, signup_id=lead.id, role="facilitator"),
                GroupMember(group_id=group.id, signup_id=member.id, role="participant"),
            ]
        )
        await db.flush()
        ids[who] = await db.get(User, lead.user_id)
        if number == 1:
            ids["group"], ids["member"] = group.id, member.id
    return ids


ROLES = ["anonymous", "student", "other facilitator", "facilitator", "admin"]
GROUP_RULE = {
    "anonymous": 401, "student": 403, "other facilitator": 403, "facilitator": 200, "admin": 200
}  # fmt: skip
# (method, path, {role: expected status})
MATRIX = [
    ("POST", "/auth/signout-everywhere", {"anonymous": 401, "student": 303, "admin": 303}),
    ("POST", "/api/content/refresh", {"anonymous": 401, "student": 403, "admin": 202}),
    ("GET", "/api/content/status", {"anonymous": 401, "student": 403, "admin": 200}),
    ("GET", "/admin/content", {"anonymous": 401, "student": 403, "admin": 200}),
    ("POST", "/admin/content/refresh", {"anonymous": 401, "student": 403, "admin": 303}),
    ("GET", "/account", {"anonymous": 401, "student": 200, "admin": 200}),
    ("POST", "/account", {"anonymous": 401, "student": 303, "admin": 303}),
    ("POST", "/account/email", {"anonymous": 401, "student": 422, "admin": 422}),
    ("POST", "/account/discord/unlink", {"anonymous": 401, "student": 422, "admin": 422}),
    ("GET", "/account/data.json", {"anonymous": 401, "student": 200, "admin": 200}),
    ("GET", "/account/delete", {"anonymous": 401, "student": 200, "admin": 200}),
    ("POST", "/account/delete", {"anonymous": 401, "student": 422, "admin": 422}),
    ("GET", "/api/me", {"anonymous": 401, "student": 200, "admin": 200}),
    ("GET", "/account/transcripts", {"anonymous": 401, "student": 200, "admin": 200}),
    ("GET", "/admin", {"anonymous": 401, "student": 403, "admin": 200}),
    ("GET", "/admin/tutor", {"anonymous": 401, "student": 403, "admin": 200}),
    ("GET", "/admin/deliveries", {"anonymous": 401, "student": 403, "admin": 200}),
    ("POST", "/admin/deliveries/retry", {"anonymous": 401, "student": 403, "admin": 422}),
    ("POST", "/admin/deliveries/0/retry", {"anonymous": 401, "student": 403, "admin": 404}),
    ("GET", "/admin/users", {"anonymous": 401, "student": 403, "admin": 200}),
    ("GET", "/admin/users/0", {"anonymous": 401, "student": 403, "admin": 404}),
    ("POST", "/admin/users/0/admin", {"anonymous": 401, "student": 403, "admin": 404}),
    (
        "POST",
        "/admin/users/0/signups/{member}/approve",
        {"anonymous": 401, "student": 403, "admin": 404},
    ),
    ("POST", "/admin/cohorts/{cohort}/discord", {"anonymous": 401, "student": 403, "admin": 303}),
    ("POST", "/admin/tutor/prompt", {"anonymous": 401, "student": 403, "admin": 422}),
    ("GET", "/admin/tutor/transcripts.json", {"anonymous": 401, "student": 403, "admin": 200}),
    ("GET", "/enroll", {"anonymous": 200, "student": 303, "admin": 303}),  # one cohort: to it
    ("GET", "/groups", {"anonymous": 401, "student": 200, "admin": 200}),
    ("GET", "/admin/cohorts", {"anonymous": 401, "student": 403, "admin": 200}),
    ("POST", "/admin/cohorts", {"anonymous": 401, "student": 403, "admin": 422}),
    ("GET", "/admin/cohorts/{cohort}", {"anonymous": 401, "student": 403, "admin": 200}),
    ("POST", "/admin/cohorts/{cohort}", {"anonymous": 401, "student": 403, "admin": 422}),
    ("GET", "/admin/cohorts/{cohort}/grouping", {"anonymous": 401, "student": 403, "admin": 200}),
    (
        "POST",
        "/admin/cohorts/{cohort}/grouping/split",
        {"anonymous": 401, "student": 403, "admin": 422},
    ),
    (
        "POST",
        "/admin/cohorts/{cohort}/signups/{member}/approve",
        {"anonymous": 401, "student": 403, "admin": 422},
    ),
    ("GET", "/account/calendar", {"anonymous": 401, "student": 200, "admin": 200}),
    ("POST", "/account/calendar/revoke", {"anonymous": 401, "student": 200, "admin": 200}),
    ("GET", "/account/notifications", {"anonymous": 401, "student": 200, "admin": 200}),
    ("POST", "/account/notifications", {"anonymous": 401, "student": 303, "admin": 303}),
    ("GET", "/calendar/not-a-token.ics", {"anonymous": 404, "student": 404, "admin": 404}),
    ("GET", "/groups/{group}", GROUP_RULE),
    ("GET", "/groups/{group}/members/{member}/transcripts", GROUP_RULE),
    ("GET", "/groups/{group}/meetings/1", {**GROUP_RULE, "facilitator": 404, "admin": 404}),
    ("POST", "/groups/{group}/meetings/1/cancel", {**GROUP_RULE, "facilitator": 404, "admin": 404}),
    # Members answer for themselves: an admin outside the group may not.
    ("POST", "/groups/{group}/meetings/1/rsvp", {**GROUP_RULE, "facilitator": 404, "admin": 403}),
    # Where the group meets: its facilitator or an admin (nothing sent: nothing changes).
    ("POST", "/groups/{group}/place", {**GROUP_RULE, "facilitator": 303, "admin": 303}),
    (
        "GET",
        "/cohorts/{cohort}",
        {
            "anonymous": 401,
            "student": 303,
            "other facilitator": 200,
            "facilitator": 200,
            "admin": 303,
        },
    ),
]


@pytest.mark.parametrize(
    "method,path,role,expected",
    [
        pytest.param(
            method,
            path,
            role,
            expected.get(role, expected["student"]),
            id=f"{method} {path} as {role}",
        )
        for method, path, expected in MATRIX
        for role in ROLES
    ],
)
async def test_authorization_matrix(app_client, db, method, path, role, expected) -> None:
    ids = await _two_groups(db)
    if role in ("other facilitator", "facilitator"):
        sign_in(app_client, ids[role])
    elif role != "anonymous":
        sign_in(app_client, await make_user(db, is_admin=role == "admin"))
    response = await app_client.request(method, path.format(**ids), headers=ORIGIN)
    assert response.status_code == expected, response.text[:300]


async def test_a_page_asks_anonymous_visitors_to_sign_in(app_client) -> None:
    response = await app_client.get("/admin/content")
    assert response.status_code == 401
    assert 'href="/auth/signin?next=/admin/content"' in response.text


async def test_admin_sees_invalid_files_with_their_messages(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    status = (await app_client.get("/api/content/status")).json()
    assert status["source"].startswith("folder:") and status["source"].endswith("examples/course")
    assert status["files"] == 15 and status["modules"] == 5 and status["invalid_files"] == []
    assert status["files_with_warnings"] == []
    page = await app_client.get("/admin/content")
    assert "Every file can be served." in page.text and "No warnings." in page.text
