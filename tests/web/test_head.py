"""HEAD is answered wherever GET is, with GET's status and headers and no body."""

from __future__ import annotations


async def test_head_wherever_get(app_client, db) -> None:
    for path in ("/", "/healthz", "/privacy", "/static/lens.css", "/api/openapi.json"):
        got = await app_client.get(path)
        head = await app_client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
    assert (await app_client.head("/no-such-page")).status_code == 404
    # Only where GET is: a POST-only address still says so.
    assert (await app_client.head("/api/tutor/messages")).status_code == 405
    # Sign-in steps use up single-use state on GET: a link checker's HEAD must not.
    assert (await app_client.head("/auth/discord/callback?code=x&state=y")).status_code == 405


async def test_ids_too_large_for_any_column_are_not_found(app_client, db) -> None:
    from tests.fixtures.auth import sign_in
    from tests.fixtures.users import make_user

    sign_in(app_client, await make_user(db, is_admin=True))
    for n in (2**31, 2**63, 10**30):
        for path in (
            f"/groups/{n}",
            f"/groups/{n}/meetings/{n}/attendance",
            f"/admin/cohorts/{n}/completion",
            f"/admin/users/{n}",
        ):
            response = await app_client.get(path)
            assert response.status_code == 404, (path, response.status_code)
    assert (await app_client.get("/groups/5")).status_code == 404  # as for any missing id
