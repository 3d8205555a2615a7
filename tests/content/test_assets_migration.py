"""Migration 0012 on a database that already holds content: snapshots stored before
images were read are marked so, and going back down keeps every file."""

from __future__ import annotations

from sqlalchemy import text

from lens.db import migrate
from lens.db.engine import create_engine
from tests.conftest import fresh_database


async def test_existing_snapshots_are_marked_unlisted_and_downgrade_keeps_files(
    dialect: str, tmp_path
) -> None:
    async with fresh_database(dialect, tmp_path) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine, "0011")
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO content_snapshots (id, source, commit_sha, created_at,"
                        " file_count, invalid_count, sync_seconds, full_sync)"
                        " VALUES (1, 'folder:x', 'abc', CURRENT_TIMESTAMP, 1, 0, 0.1, true)"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO content_files (snapshot_id, path, text)"
                        " VALUES (1, 'modules/a.md', 'text')"
                    )
                )
                await conn.execute(text("UPDATE content_state SET snapshot_id = 1 WHERE id = 1"))

            await migrate.upgrade(engine)
            async with engine.connect() as conn:
                listed = await conn.scalar(text("SELECT assets_listed FROM content_snapshots"))
                assert listed in (False, 0)
                assert await conn.scalar(text("SELECT count(*) FROM content_assets")) == 0

            await migrate.downgrade(engine, "0011")
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM content_files")) == 1
                state = await conn.scalar(text("SELECT snapshot_id FROM content_state"))
                assert state == 1
        finally:
            await engine.dispose()
