"""The database goes away and comes back (PostgreSQL, a real server, through a TCP proxy
the test can cut): pages and the API answer 503 with Retry-After meanwhile, /readyz says
not ready, and the same process serves again once the database is back."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from lens.app import create_app
from lens.db import migrate
from lens.db.engine import create_engine
from lens.web.errors import database_unavailable
from tests.conftest import fresh_database
from tests.fixtures.db_proxy import Proxy


async def test_an_outage_is_a_503_and_the_process_recovers(tmp_path: Path, make_settings) -> None:
    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        real = make_url(url)
        proxy = Proxy(real.host or "127.0.0.1", real.port or 5432)
        await proxy.restore()
        through = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = create_app(
            make_settings(DATABASE_URL=through, LENS_RUN_WORKER="false"), configure_logs=False
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                page, api = "/certificates/" + "a" * 22, "/api/content/status"
                assert (await c.get(page)).status_code == 404  # read from the database
                assert (await c.get("/readyz")).status_code == 200

                await proxy.cut()
                down = await c.get(page)
                assert down.status_code == 503, down.text
                assert down.headers["retry-after"] == "30"
                assert "cannot reach its database" in down.text
                assert (await c.get(api)).status_code in (401, 503)  # JSON, no 500
                ready = await c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"].startswith("unreachable")

                await proxy.restore()
                assert (await c.get(page)).status_code == 404  # no restart needed
                assert (await c.get("/readyz")).status_code == 200
        await proxy.cut()


def test_what_counts_as_the_database_being_away() -> None:
    import httpx as vendor
    from sqlalchemy.exc import OperationalError

    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert not database_unavailable(OperationalError("x", {}, Exception("no such table: users")))
    # A vendor's connection refused is not the database's.
    try:
        raise vendor.ConnectError("refused") from ConnectionRefusedError(111, "refused")
    except vendor.ConnectError as exc:
        assert not database_unavailable(exc)
