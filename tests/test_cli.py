"""The `lens` command (lens/cli.py): its assembly from each feature's sub-commands, and the
database commands it owns, run as a real process the way an operator runs it. Each
feature's own commands are tested in its folder (tests/app/test_cli.py for `lens serve`
and `lens config`, tests/cohorts/test_cohort_cli.py, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lens.cli import app
from tests.conftest import fresh_database
from tests.fixtures.cli import SECRET, Server, lens


def listed_commands(help_text: str) -> list[str]:
    """The command names in the Commands panel of typer's (rich) help, in order."""
    panel = help_text.split("Commands", 1)[1].split("╰", 1)[0]
    # A command's first line starts right after the border; wrapped descriptions do not.
    return re.findall(r"^│ (\S+) ", panel, re.MULTILINE)


@pytest.mark.parametrize(
    ("args", "commands"),
    [
        ([], {"serve", "worker", "bot", "db", "config", "user", "content", "cohort"}),
        (["cohort"], {"create", "list", "show", "group"}),
        (["db"], {"upgrade", "downgrade", "current", "revision"}),
    ],
    ids=["lens", "lens cohort", "lens db"],
)
def test_help_lists_every_features_commands(args: list[str], commands: set[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="lens")
    assert result.exit_code == 0, result.output
    assert f"Usage: lens {' '.join(args)}".rstrip() in result.output
    listed = listed_commands(result.output)
    assert sorted(listed) == sorted(commands), result.output


async def test_db_upgrade_then_production_serve(dialect: str, tmp_path: Path) -> None:
    async with fresh_database(dialect, tmp_path) as url:
        env = {"DATABASE_URL": url}
        assert "(empty)" in lens("db", "current", env=env, cwd=tmp_path).stdout
        up = lens("db", "upgrade", env=env, cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert "(current)" in up.stdout
        if dialect == "sqlite":
            return  # production refuses SQLite (tested above)
        server = Server(
            {
                **env,
                "ENVIRONMENT": "production",
                "JWT_SECRET": SECRET,
                "FRONTEND_URL": "https://lens.example.org",
            },
            tmp_path,
        )
        try:
            server.wait_ready()
            assert httpx.get(server.base + "/").status_code == 200
            ready = httpx.get(server.base + "/readyz")
            assert ready.status_code == 200, ready.text
            log_line = next(
                line for line in server.log.read_text().splitlines() if "app.started" in line
            )
            assert log_line.startswith("{")  # JSON logs in production
        finally:
            assert server.stop()


def test_db_command_on_a_missing_database_says_so_in_one_line(tmp_path: Path) -> None:
    result = lens(
        "db",
        "current",
        env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/lens_no_such_database"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("lens: database error:")
    assert "lens_no_such_database" in result.stderr
    assert "Traceback" not in result.stderr
