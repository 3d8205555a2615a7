"""`lens user ...` (lens/users/cli.py), run as a real process."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import fresh_database
from tests.fixtures.cli import lens


async def test_make_admin(dialect: str, tmp_path: Path) -> None:
    async with fresh_database(dialect, tmp_path) as url:
        env = {"DATABASE_URL": url}
        assert lens("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        missing = lens("user", "make-admin", "ada@example.org", env=env, cwd=tmp_path)
        assert missing.returncode == 1
        assert "--create" in missing.stderr
        made = lens("user", "make-admin", "Ada@Example.org", "--create", env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        assert "is now an admin" in made.stdout
        again = lens("user", "make-admin", "ada@example.org", env=env, cwd=tmp_path)
        assert again.returncode == 0 and "user 1 " in again.stdout
        bad = lens("user", "make-admin", "not-an-id", env=env, cwd=tmp_path)
        assert bad.returncode == 1
        assert "neither an e-mail address nor a Discord user id" in bad.stderr
