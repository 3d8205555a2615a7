"""Sentry receives unhandled errors, at a local fake ingest endpoint, without cookies."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sentry_sdk
from fastapi import APIRouter

from lens.app import create_app


class FakeSentry:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[dict]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli  # type: ignore[import-not-found]

                    body = brotli.decompress(body)
                items = []
                for line in body.decode().splitlines():
                    try:
                        items.append(json.loads(line))
                    except ValueError:
                        items.append({"raw": line})
                fake.envelopes.append((self.path, items))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [i for _, items in self.envelopes for i in items if "exception" in i]


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    yield fake
    fake.server.shutdown()
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a disabled client for the other tests


async def test_unhandled_error_reaches_sentry_without_personal_data(
    fake_sentry: FakeSentry, database_url, sessionmaker, make_settings
) -> None:
    settings = make_settings(
        DATABASE_URL=database_url,
        LENS_RUN_WORKER="false",
        SENTRY_DSN=f"http://publickey@127.0.0.1:{fake_sentry.port}/42",
        ENVIRONMENT="staging",
    )
    app = create_app(settings, sessionmaker=sessionmaker, configure_logs=False)
    router = APIRouter()

    @router.get("/explode")
    async def explode() -> None:
        raise ZeroDivisionError("tutor budget arithmetic went wrong")

    app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
            response = await c.get(
                "/explode",
                headers={"Cookie": "session=eyJ-very-private-token", "Authorization": "Bearer x"},
            )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)

    assert fake_sentry.envelopes, "no envelope reached the fake Sentry"
    path, _ = fake_sentry.envelopes[0]
    assert path == "/api/42/envelope/"
    events = fake_sentry.events()
    assert len(events) == 1, events
    event = events[0]
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "tutor budget arithmetic went wrong"
    assert event["environment"] == "staging"
    raw = json.dumps(event)
    assert "very-private-token" not in raw
    assert "Bearer x" not in raw
    assert "user" not in event or not event["user"].get("ip_address")
