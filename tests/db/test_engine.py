"""Engines for the database URLs operators are given (lens/db/engine.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fresh_database


async def test_postgres_urls_with_sslmode_reach_the_driver(tmp_path: Path) -> None:
    # The local test server has SSL off: `require` must then fail, `disable` connect.
    from sqlalchemy import text

    from lens.db.engine import create_engine

    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(f"{url}?sslmode=disable")
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()
        engine = create_engine(f"{url}?sslmode=require")
        try:
            with pytest.raises(Exception, match=r"rejected SSL upgrade"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()
