"""The `lens` command, run as a real process the way an operator runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database

ROOT = Path(__file__).parent.parent
SECRET = "s3cr3t-" + "x" * 40


def lens(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "lens", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.log = cwd / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lens", "serve", "--port", str(self.port), *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            cwd=cwd,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"lens serve exited:\n{self.log.read_text()}")
            try:
                return httpx.get(self.base + "/healthz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"lens serve never answered:\n{self.log.read_text()}")

    def stop(self) -> bool:
        """SIGTERM, as an orchestrator sends; True when the shutdown was graceful."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is normal.
        return code in (0, -signal.SIGTERM) and "app.stopped" in self.log.read_text()


def test_production_serve_without_jwt_secret_exits_naming_it(tmp_path: Path) -> None:
    result = lens(
        "serve",
        env={
            "ENVIRONMENT": "production",
            "DATABASE_URL": "postgresql://lens@127.0.0.1/lens",
            "FRONTEND_URL": "https://lens.example.org",
        },
        cwd=tmp_path,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET" in lines[0]


def test_production_refuses_sqlite(tmp_path: Path) -> None:
    result = lens("serve", env={"ENVIRONMENT": "production", "JWT_SECRET": SECRET}, cwd=tmp_path)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    result = lens(
        "config",
        "check",
        env={"SENDGRID_API_KEY": "SG.verysecretvalue1234567890", "DISCORD_CLIENT_ID": "42"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "verysecretvalue" not in out
    assert "[on ] e-mail (SendGrid)" in out
    assert "missing: DISCORD_CLIENT_SECRET" in out
    assert "configuration ok" in out


def test_zero_config_serve_answers_home_and_readyz(tmp_path: Path) -> None:
    server = Server({}, tmp_path)
    try:
        server.wait_ready()
        assert httpx.get(server.base + "/").status_code == 200
        ready = httpx.get(server.base + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["job_runner"] == "ok"
    finally:
        assert server.stop()
    assert (tmp_path / "var" / "lens.db").exists()
    assert (tmp_path / "var" / "jwt_secret").exists()


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


async def test_production_serve_on_an_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    # Production runs on PostgreSQL only, and does not migrate by itself.
    async with fresh_database("postgresql", tmp_path) as url:
        server = Server(
            {
                "DATABASE_URL": url,
                "ENVIRONMENT": "production",
                "JWT_SECRET": SECRET,
                "FRONTEND_URL": "https://lens.example.org",
            },
            tmp_path,
            "--no-worker",
        )
        try:
            server.wait_ready()
            ready = httpx.get(server.base + "/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["migrations"].startswith("not current")
        finally:
            server.stop()


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


def test_worker_runs_periodic_jobs_and_stops_gracefully(tmp_path: Path) -> None:
    import sqlite3

    proc = subprocess.Popen(
        [sys.executable, "-m", "lens", "worker"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "LENS_JOB_POLL_SECONDS": "0.1"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = tmp_path / "var" / "lens.db"
    status = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status != "succeeded":
            time.sleep(0.2)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        row = conn.execute(
                            "SELECT status FROM jobs WHERE kind = 'jobs.prune'"
                        ).fetchone()
                    except sqlite3.OperationalError:
                        row = None  # migrations still running
                status = row[0] if row else None
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert status == "succeeded", output
    assert proc.returncode == 0, output
    assert "jobs.runner.stopped" in output


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


def test_serve_with_two_web_processes(tmp_path: Path) -> None:
    server = Server({}, tmp_path, "--workers", "2", "--no-worker")
    try:
        server.wait_ready()
        for _ in range(4):
            assert httpx.get(server.base + "/course/intro-to-ai-safety").status_code == 200
        assert httpx.get(server.base + "/readyz").status_code == 200
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
    assert server.log.read_text().count("app.started") == 2
