"""Request bodies have a size limit, checked before anything reads them: a declared
length over it is refused at once, a chunked body is cut off at the limit; the speech
upload and GitHub's webhook have their own."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from lens.web.limits import BodyLimitMiddleware

READ: list[int] = []


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    READ.append(len(body))
    return JSONResponse({"read": len(body)})


def _app(limit: int = 1000, **overrides: int) -> BodyLimitMiddleware:
    # A bare router: what the limit raises while the handler reads reaches it, as in the
    # app, where it is the innermost middleware.
    inner = Router(routes=[Route("/{path:path}", _echo, methods=["POST", "GET"])])
    return BodyLimitMiddleware(
        inner, limit=limit, overrides={f"/{k}": v for k, v in overrides.items()}
    )


async def _post(app, path: str, content) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return await client.post(path, content=content)


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    READ.clear()
    refused = await _post(_app(), "/api/x", b"x" * 1001)
    assert refused.status_code == 413 and READ == []
    assert "larger than this address accepts" in refused.json()["error"]["message"]
    assert (await _post(_app(), "/api/x", b"x" * 1000)).json() == {"read": 1000}


async def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    READ.clear()
    sent = []

    async def chunks():
        for _ in range(50):
            sent.append(1)
            yield b"y" * 100

    refused = await _post(_app(), "/api/x", chunks())
    assert refused.status_code == 413 and READ == []
    assert len(sent) < 50  # stopped reading near the limit, not after all of it


async def test_routes_with_their_own_limit() -> None:
    app = _app(**{"api/upload": 5000})
    assert (await _post(app, "/api/upload", b"z" * 4000)).status_code == 200
    assert (await _post(app, "/api/other", b"z" * 4000)).status_code == 413


async def test_the_app_refuses_a_large_json_body_and_a_large_webhook(client_factory) -> None:
    async with client_factory(GITHUB_WEBHOOK_SECRET="s" * 32) as client:
        big = b'{"message": "' + b"a" * (2 * 1024 * 1024) + b'"}'
        response = await client.post(
            "/api/tutor/messages", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413

        async def chunked():
            for _ in range(40):
                yield b"a" * 65536

        # Without a length: cut off while the handler reads, still a 413 (not a 500).
        response = await client.post(
            "/api/tutor/messages", content=chunked(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413, response.text
        # A page's form: the site's own error page, saying what to do.
        page = await client.post("/account/profile", content=big)
        assert page.status_code == 413 and "send less" in page.text
        assert page.headers["content-type"].startswith("text/html")
        hook = await client.post(
            "/api/content/webhook",
            content=b"x" * (26 * 1024 * 1024),
            headers={"x-github-event": "push", "x-hub-signature-256": "sha256=00"},
        )
        assert hook.status_code == 413
