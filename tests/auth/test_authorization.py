"""Every protected route, for every kind of person, answers as its rule says.

Facilitator columns join this matrix when groups exist (cohorts issue).
"""

from __future__ import annotations

import pytest

from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.users import make_user

ROLES = ["anonymous", "student", "admin"]
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
    ("POST", "/admin/tutor/prompt", {"anonymous": 401, "student": 403, "admin": 422}),
    ("GET", "/admin/tutor/transcripts.json", {"anonymous": 401, "student": 403, "admin": 200}),
]


@pytest.mark.parametrize(
    "method,path,role,expected",
    [
        pytest.param(method, path, role, expected[role], id=f"{method} {path} as {role}")
        for method, path, expected in MATRIX
        for role in ROLES
    ],
)
async def test_authorization_matrix(app_client, db, method, path, role, expected) -> None:
    if role != "anonymous":
        sign_in(app_client, await make_user(db, is_admin=role == "admin"))
    response = await app_client.request(method, path, headers=ORIGIN)
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
    page = await app_client.get("/admin/content")
    assert "Every file is valid." in page.text
