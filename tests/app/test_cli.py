"""`lens serve` and `lens config check` (lens/app/cli.py), run as real processes."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.conftest import fresh_database
from tests.fixtures.cli import SECRET, Server, lens


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


def test_config_check_live_asks_the_tutors_model(tmp_path: Path) -> None:
    """`--live` makes one real request: a keyless local OpenAI-compatible server answers;
    a failing one makes the check fail with the reason."""
    from tests.integrations.fake_openai import FakeOpenAI

    fake = FakeOpenAI(api_key=None)  # a local server that takes no key
    try:
        env = {"LLM_PROVIDER": "openai/fake-tutor", "LENS_LLM_API_BASE": fake.base}
        result = lens("config", "check", "--live", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "tutor: openai/fake-tutor answered in" in result.stdout
        assert fake.requests[0]["body"]["max_tokens"] == 1
        assert fake.requests[0]["auth"] is None  # no key set: none sent
        fake.script.extend([("status", 500)] * 3)
        broken = lens("config", "check", "--live", env=env, cwd=tmp_path)
        assert broken.returncode == 1
        assert "the tutor's model (openai/fake-tutor) did not answer" in broken.stderr
    finally:
        fake.close()
