"""What every page shares (lens/web): the layout, health checks, error pages, request ids,
and one unit of work per request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import select

from lens.errors import Conflict, NotFound
from lens.users.models import User
from lens.users.service import create_user
from lens.web.state import DbSession


async def test_home_page_has_the_layout(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'class="skip-link" href="#main"' in html
    assert '<main id="main"' in html
    assert 'href="/privacy"' in html and 'href="/terms"' in html
    assert 'id="signin-slot"' in html
    assert 'name="viewport"' in html


async def test_healthz(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_part(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "job_runner": "not run by this process",
    }


async def test_readyz_is_503_when_the_job_runner_is_dead(app_client: httpx.AsyncClient) -> None:
    from lens.jobs.runner import JobRunner

    lens = app_client.app.state.lens  # type: ignore[attr-defined]
    lens.runner = JobRunner(lens.sessionmaker, settings=lens.settings)  # never started
    response = await app_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["job_runner"] == "not running"
    lens.runner = None


async def test_unknown_page_is_an_html_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not Found" in response.text
    assert 'href="/"' in response.text


async def test_unknown_api_path_is_a_json_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["status"] == 404
    assert body["error"]["request_id"] == response.headers["x-request-id"]


async def test_request_id_is_generated_or_kept(app_client: httpx.AsyncClient) -> None:
    first = await app_client.get("/healthz")
    second = await app_client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    kept = await app_client.get("/healthz", headers={"X-Request-ID": "lb-abc-12345678"})
    assert kept.headers["x-request-id"] == "lb-abc-12345678"
    junk = await app_client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert junk.headers["x-request-id"] != "<script>"


@pytest.fixture
def error_routes(app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/api/things/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, int]:
        raise NotFound(f"There is no thing {thing_id}.")

    @router.post("/things")
    async def make_thing() -> None:
        raise Conflict("That thing exists already.")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    @router.get("/api/boom")
    async def api_boom() -> None:
        raise RuntimeError("secret internal detail")

    app_client.app.include_router(router)  # type: ignore[attr-defined]
    return app_client


async def test_domain_errors_keep_their_status(error_routes: httpx.AsyncClient) -> None:
    api = await error_routes.get("/api/things/7")
    assert api.status_code == 404
    assert api.json()["error"]["message"] == "There is no thing 7."

    page = await error_routes.post("/things")
    assert page.status_code == 409
    assert "That thing exists already." in page.text
    assert "<html" in page.text

    htmx = await error_routes.post("/things", headers={"HX-Request": "true"})
    assert htmx.status_code == 409
    assert htmx.text == '<p class="error" role="alert">That thing exists already.</p>'


async def test_bad_input_says_what_to_fix(error_routes: httpx.AsyncClient) -> None:
    response = await error_routes.get("/api/things/seven")
    assert response.status_code == 422
    error = response.json()["error"]
    assert "thing_id" in error["message"]
    assert error["details"][0]["field"] == "thing_id"


async def test_bugs_are_500_without_details(error_routes: httpx.AsyncClient) -> None:
    page = await error_routes.get("/boom")
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.text
    assert "secret internal detail" not in page.text
    assert page.headers["x-request-id"] in page.text  # the reference to quote

    api = await error_routes.get("/api/boom")
    assert api.status_code == 500
    assert "secret internal detail" not in api.text
    assert api.json()["error"]["status"] == 500


async def test_a_request_is_one_unit_of_work(app_client: httpx.AsyncClient, db) -> None:
    router = APIRouter()

    @router.post("/api/test-users")
    async def add(session: DbSession, email: str, fail: bool = False) -> dict[str, int]:
        user = await create_user(session, email=email)
        if fail:
            raise Conflict("changed my mind")
        return {"id": user.id}

    app_client.app.include_router(router)  # type: ignore[attr-defined]
    ok = await app_client.post("/api/test-users", params={"email": "kept@example.org"})
    assert ok.status_code == 200
    failed = await app_client.post(
        "/api/test-users", params={"email": "gone@example.org", "fail": "true"}
    )
    assert failed.status_code == 409
    emails = set(await db.scalars(select(User.email)))
    assert "kept@example.org" in emails
    assert "gone@example.org" not in emails  # the failed request left nothing behind
