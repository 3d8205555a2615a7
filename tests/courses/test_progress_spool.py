"""Reading progress Lens acknowledged is never lost: with the database gone (PostgreSQL,
a real server behind a proxy the test cuts), a section marked read and a heartbeat are
answered 202 and kept on disk; once the database is back they are saved as they were
acknowledged (the time, the module completed and its event)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from lens.app import create_app
from lens.courses.models import Progress
from lens.courses.spool import progress_spool
from lens.db import spool
from lens.db.engine import create_engine, create_sessionmaker
from tests.fixtures.auth import ORIGIN
from tests.fixtures.db_proxy import migrated_database_behind_proxy

COURSE = "intro-to-ai-safety"
MODULE_KEY = "0a7e6a52-4a0b-4d8e-8f21-6c0d1e2f3a01"  # welcome
SECTION = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e801"


async def test_progress_given_while_the_database_is_away_is_saved_later(
    tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "SAVE_TRIES", (0.05, 0.1))
    async with migrated_database_behind_proxy(tmp_path) as (url, through, proxy):
        engine = create_engine(url)
        settings = make_settings(DATABASE_URL=through, LENS_RUN_WORKER="false")
        app = create_app(settings, configure_logs=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                await c.get(f"/course/{COURSE}/welcome")  # the reader cookie
                await proxy.cut()
                down = await c.get("/readyz")
                assert down.status_code == 503
                marked = await c.post(
                    "/api/progress/complete",
                    json={"course": COURSE, "module": "welcome", "content_id": SECTION},
                    headers=ORIGIN,
                )
                assert marked.status_code == 202 and marked.json()["saved_later"] is True
                beat = await c.post(
                    "/api/progress/heartbeat",
                    json={"course": COURSE, "module_key": MODULE_KEY, "content_id": SECTION},
                    headers=ORIGIN,
                )
                assert beat.status_code == 202 and beat.json()["saved_later"] is True
                # A mistake is still a mistake, database or not: not kept, told at once.
                wrong = await c.post(
                    "/api/progress/complete",
                    json={"course": COURSE, "module": "welcome", "content_id": "nope"},
                    headers=ORIGIN,
                )
                assert wrong.status_code == 404
                waiting = progress_spool(settings)
                assert len(waiting.waiting()) == 2

                await proxy.restore()
                assert await waiting.flush(app.state.lens.sessionmaker) == 2
                assert waiting.waiting() == []
                async with create_sessionmaker(engine)() as session:
                    rows = {
                        r.content_id: r
                        for r in await session.scalars(
                            select(Progress).where(Progress.module_key == MODULE_KEY)
                        )
                    }
                assert rows[SECTION].completed_at is not None
                assert rows[SECTION].seconds == 30
                # Saved as of when it was acknowledged, not when the database came back.
                ok = await c.post(
                    "/api/progress/heartbeat",
                    json={"course": COURSE, "module_key": MODULE_KEY, "content_id": SECTION},
                    headers=ORIGIN,
                )
                assert ok.status_code == 200 and ok.json()["counted_seconds"] == 0  # too soon
        await engine.dispose()
