from __future__ import annotations

import re
import time

import httpx
import jwt
import pytest

from lens.auth.service import safe_next
from lens.auth.sessions import (
    COOKIE,
    LIFETIME_SECONDS,
    MAX_SESSION_SECONDS,
    issue_token,
    read_token,
)
from lens.db.base import utcnow
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.users import make_user

SECRET = "s" * 48


def test_token_round_trip_and_rejections() -> None:
    token = issue_token(SECRET, user_id=7, version=2)
    claims = read_token(SECRET, token)
    assert claims is not None and (claims.user_id, claims.version) == (7, 2)
    assert read_token("another-secret-" * 4, token) is None  # wrong key
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert read_token(SECRET, tampered) is None
    old = issue_token(SECRET, user_id=7, version=2, now=time.time() - LIFETIME_SECONDS - 1)
    assert read_token(SECRET, old) is None  # expired
    none_alg = jwt.encode({"sub": "7", "iat": 1, "exp": 2**40}, key=None, algorithm="none")
    assert read_token(SECRET, none_alg) is None
    # A token's signature is checked once (lens.auth.sessions._verified); its expiry and
    # the longest sign-in still on every use.
    issued = time.time()
    fresh = issue_token(SECRET, user_id=8, version=0, now=issued)
    assert read_token(SECRET, fresh, now=issued + 60) is not None
    assert read_token(SECRET, fresh, now=issued + LIFETIME_SECONDS) is None  # expired since
    assert read_token("another-secret-" * 4, fresh, now=issued + 60) is None
    long_ago = issued - MAX_SESSION_SECONDS + 60  # signed in 30 days less a minute ago
    renewed = issue_token(SECRET, user_id=8, version=0, now=issued, signed_in_at=int(long_ago))
    assert read_token(SECRET, renewed, now=issued) is not None
    assert read_token(SECRET, renewed, now=issued + 120) is None  # past 30 days signed in
    for odd_expiry in ("soon", float("nan"), float("inf")):  # PyJWT refuses these too
        odd = jwt.encode({"sub": "7", "iat": 1, "exp": odd_expiry}, SECRET, algorithm="HS256")
        assert read_token(SECRET, odd) is None


async def whoami(client: httpx.AsyncClient) -> str:
    page = await client.get("/")
    return "signed in" if "Sign out" in page.text else "signed out"


async def test_cookie_signs_in_and_tampering_signs_out(app_client, db) -> None:
    user = await make_user(db, nickname="Ada")
    sign_in(app_client, user)
    assert await whoami(app_client) == "signed in"
    app_client.cookies.set(COOKIE, "garbage.token.value", domain="lens.test")
    response = await app_client.get("/")
    assert "Sign out" not in response.text
    assert (
        'session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )


async def test_cookie_is_renewed_after_half_its_life(app_client, db) -> None:
    user = await make_user(db)
    secret = app_client.app.state.lens.jwt_secret
    old = issue_token(secret, user_id=user.id, version=0, now=time.time() - 13 * 3600)
    app_client.cookies.set(COOKIE, old, domain="lens.test")
    response = await app_client.get("/")
    assert "Sign out" in response.text
    renewed = response.headers["set-cookie"].split(";")[0].removeprefix("session=")
    assert read_token(secret, renewed).issued_at > time.time() - 60
    fresh = issue_token(secret, user_id=user.id, version=0)
    app_client.cookies.set(COOKIE, fresh, domain="lens.test")
    assert "set-cookie" not in (await app_client.get("/")).headers


async def test_sign_out_everywhere_revokes_other_sessions(client_factory, db) -> None:
    user = await make_user(db)
    async with client_factory() as laptop, client_factory() as phone:
        sign_in(laptop, user)
        sign_in(phone, user)
        assert await whoami(phone) == "signed in"
        response = await laptop.post("/auth/signout-everywhere", headers=ORIGIN)
        assert response.status_code == 303
        assert await whoami(phone) == "signed out"
        assert await whoami(laptop) == "signed out"


async def test_sign_out(app_client, db) -> None:
    sign_in(app_client, await make_user(db))
    response = await app_client.post("/auth/signout", headers=ORIGIN)
    assert response.status_code == 303
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_signing_out_revokes_that_session_and_only_it(client_factory, db) -> None:
    from lens.auth.models import RevokedSession

    user = await make_user(db)
    async with client_factory() as laptop, client_factory() as phone:
        sign_in(laptop, user)
        sign_in(phone, user)
        copied = laptop.cookies.get(COOKIE)  # taken before signing out (a stolen cookie)
        renewed_id = read_token(laptop.app.state.lens.jwt_secret, copied).session_id
        assert (
            renewed_id
            and renewed_id
            != read_token(phone.app.state.lens.jwt_secret, phone.cookies.get(COOKIE)).session_id
        )
        assert (await laptop.post("/auth/signout", headers=ORIGIN)).status_code == 303
        assert await whoami(laptop) == "signed out"
        laptop.cookies.set(COOKIE, copied, domain="lens.test")
        assert await whoami(laptop) == "signed out"  # the copy no longer works
        assert await whoami(phone) == "signed in"  # the other device stays signed in
        row = await db.get(RevokedSession, renewed_id)
        assert row is not None and row.expires_at > utcnow()


async def test_a_renewed_cookie_keeps_its_session_id(app_client, db) -> None:
    user = await make_user(db)
    secret = app_client.app.state.lens.jwt_secret
    old = issue_token(secret, user_id=user.id, version=0, now=time.time() - 13 * 3600)
    app_client.cookies.set(COOKIE, old, domain="lens.test")
    response = await app_client.get("/")
    renewed = response.headers["set-cookie"].split(";")[0].removeprefix("session=")
    assert read_token(secret, renewed).session_id == read_token(secret, old).session_id


async def test_production_cookie_is_secure_with_its_domain(client_factory, db, dialect) -> None:
    from lens.auth.service import create_bot_code

    if dialect == "sqlite":
        pytest.skip("production refuses SQLite; this runs on PostgreSQL")

    code = await create_bot_code(db, discord_id="123456789012345678")
    async with client_factory(
        ENVIRONMENT="production",
        JWT_SECRET="p" * 48,
        FRONTEND_URL="https://lens.example.org",
        LENS_COOKIE_DOMAIN="lens.example.org",
    ) as client:
        response = await client.post(
            "/auth/code", data={"code": code}, headers={"Origin": "https://lens.example.org"}
        )
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "Domain=lens.example.org" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize(
    "given",
    [
        "//evil.example",
        "https://evil.example",
        "http://evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "%2F%2Fevil.example",
        "%252F%252Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
        "",
    ],
)
def test_next_only_goes_to_this_site(given: str) -> None:
    assert safe_next(given) == "/"


@pytest.mark.parametrize("given", ["/", "/modules/intro?step=2", "/account#email"])
def test_next_keeps_local_paths(given: str) -> None:
    assert safe_next(given) == given


@pytest.mark.parametrize(
    "evil", ["//evil.example", "https://evil.example", "/\\evil.example", "%2F%2Fevil.example"]
)
async def test_open_redirects_end_on_this_site(app_client, db, evil: str) -> None:
    from lens.auth.service import create_bot_code

    code = await create_bot_code(db, discord_id="223456789012345678")
    response = await app_client.post(
        "/auth/code", data={"code": code, "next": evil}, headers=ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_cross_site_post_is_refused(app_client, db) -> None:
    sign_in(app_client, await make_user(db))
    evil = await app_client.post("/auth/signout", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    referer = await app_client.post("/auth/signout", headers={"Referer": "https://evil.example/x"})
    assert referer.status_code == 403
    blank = await app_client.post("/auth/signout")  # cookie but no Origin or Referer
    assert blank.status_code == 403
    ok = await app_client.post("/auth/signout", headers=ORIGIN)
    assert ok.status_code == 303


async def test_cross_site_api_post_gets_json(app_client, db) -> None:
    sign_in(app_client, await make_user(db, is_admin=True))
    response = await app_client.post(
        "/api/content/refresh", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "another site" in response.json()["error"]["message"]


def test_renewal_never_stretches_a_sign_in_past_30_days() -> None:
    now = time.time()
    renewed = issue_token(SECRET, user_id=1, version=0, now=now, signed_in_at=int(now) - 31 * 86400)
    assert read_token(SECRET, renewed) is None
    recent = issue_token(SECRET, user_id=1, version=0, now=now, signed_in_at=int(now) - 29 * 86400)
    assert read_token(SECRET, recent) is not None


async def test_a_malformed_cookie_from_elsewhere_does_not_sign_out(app_client, db) -> None:
    user = await make_user(db)
    token = issue_token(app_client.app.state.lens.jwt_secret, user_id=user.id, version=0)
    response = await app_client.get(
        "/", headers={"Cookie": f'other={{"k":1}}; broken; session={token}'}
    )
    assert "Sign out" in response.text


async def test_the_outbox_exists_only_in_development(client_factory) -> None:
    async with client_factory(ENVIRONMENT="staging") as client:
        assert (await client.get("/dev/outbox")).status_code == 404
    async with client_factory() as client:
        assert (await client.get("/dev/outbox")).status_code == 200


async def test_csrf_exemption_is_for_the_exact_webhook_path(app_client, db) -> None:
    sign_in(app_client, await make_user(db))
    response = await app_client.post(
        "/api/content/webhookXYZ", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


async def test_signing_out_revokes_a_cookie_from_before_session_ids(client_factory, db) -> None:
    user = await make_user(db)
    async with client_factory() as browser:
        secret = browser.app.state.lens.jwt_secret
        now = int(time.time())
        old = jwt.encode(  # as issued before cookies carried a session id
            {"sub": str(user.id), "sv": 0, "iat": now, "exp": now + 3600, "auth_time": now},
            secret,
            algorithm="HS256",
        )
        browser.cookies.set(COOKIE, old, domain="lens.test")
        assert await whoami(browser) == "signed in"
        assert (await browser.post("/auth/signout", headers=ORIGIN)).status_code == 303
        browser.cookies.set(COOKIE, old, domain="lens.test")  # a copy kept elsewhere
        assert await whoami(browser) == "signed out"


async def test_signed_in_on_a_served_database(dialect, tmp_path, make_settings) -> None:
    """`load_user` as deployed (on PostgreSQL straight through the driver): the person's
    page, a user that acts like one loaded by a closed session, and a signed-out cookie
    refused and cleared."""
    import httpx
    from sqlalchemy import inspect

    from lens.app import create_app
    from lens.auth.deps import load_user
    from lens.auth.sessions import COOKIE, issue_token
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.users.models import User
    from tests.conftest import fresh_database

    async with fresh_database(dialect, tmp_path) as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        async with create_sessionmaker(engine)() as session:
            ada = User(nickname="Ada Lovelace", email="ada@example.org")
            session.add(ada)
            await session.commit()
        await engine.dispose()
        settings = make_settings(DATABASE_URL=url, LENS_RUN_WORKER="false")
        app = create_app(settings, configure_logs=False)
        async with app.router.lifespan_context(app):
            lens = app.state.lens
            token = issue_token(lens.jwt_secret, user_id=ada.id, version=0)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                c.cookies.set(COOKIE, token, domain="lens.test")
                page = await c.get("/course/intro-to-ai-safety/welcome")
                assert page.status_code == 200 and "Ada Lovelace" in page.text
                # Her marks come with her user row (one read): none, one, then two.
                assert 'aria-label="done"' not in page.text
                for s in (1, 2):
                    step = await c.get(f"/course/intro-to-ai-safety/welcome?s={s}")
                    content_id = re.search(r'name="content_id" value="([^"]+)"', step.text)
                    assert content_id is not None
                    marked = await c.post(
                        "/course/intro-to-ai-safety/welcome/complete",
                        data={"content_id": content_id.group(1), "s": str(s)},
                        headers={"origin": "http://lens.test"},
                    )
                    assert marked.status_code == 303
                    again = await c.get("/course/intro-to-ai-safety/welcome?s=1")
                    assert again.text.count('aria-label="done"') == s
                    assert "Ada Lovelace" in again.text

                class Asked:  # what load_user reads of a request
                    def __init__(self) -> None:
                        from starlette.datastructures import State

                        self.state = State({"session": None})
                        self.app = app

                asked = Asked()
                from lens.auth.sessions import read_token

                asked.state.session = read_token(lens.jwt_secret, token)
                user = await load_user(asked)  # type: ignore[arg-type]
                assert user is not None and user.id == ada.id and user.email == "ada@example.org"
                assert inspect(user).detached  # as if loaded by a session now closed
                async with lens.sessionmaker() as session:  # and changed through another
                    session.add(user)
                    user.nickname = "Ada"
                    await session.commit()
                assert "Ada Lovelace" not in (await c.get("/course/intro-to-ai-safety")).text

                signed_out = await c.post("/auth/signout", headers={"origin": "http://lens.test"})
                assert signed_out.status_code in (303, 200)
                c.cookies.set(COOKIE, token, domain="lens.test")  # the old cookie, kept
                again = await c.get("/course/intro-to-ai-safety/welcome")
                assert again.status_code == 200 and "Sign in" in again.text
                assert f"{COOKIE}=" in again.headers.get("set-cookie", "")  # cleared
