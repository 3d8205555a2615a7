from __future__ import annotations

from pathlib import Path

import pytest

from lens.settings import (
    ConfigError,
    Settings,
    integration_status,
    mask,
    normalize_database_url,
)

GOOD_SECRET = "k" * 40
ENV_NAMES = [
    "DATABASE_URL", "JWT_SECRET", "DISCORD_BOT_TOKEN", "DISCORD_CLIENT_ID",
    "DISCORD_CLIENT_SECRET", "DISCORD_SERVER_ID", "CONTENT_DIR", "CONTENT_REPO",
    "EDUCATIONAL_CONTENT_BRANCH", "GITHUB_TOKEN", "GITHUB_WEBHOOK_SECRET", "LLM_PROVIDER",
    "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY",
    "GOOGLE_CALENDAR_CREDENTIALS_FILE", "GOOGLE_CALENDAR_EMAIL", "SENDGRID_API_KEY",
    "FROM_EMAIL", "SENTRY_DSN", "VITE_SENTRY_DSN", "VITE_POSTHOG_KEY", "VITE_POSTHOG_HOST",
    "FRONTEND_URL", "ENVIRONMENT",
]  # fmt: skip


def test_every_documented_variable_is_read_by_its_exact_name(monkeypatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.setenv(name, f"value-of-{name}")
    settings = Settings(_env_file=None)
    read = {f.alias: getattr(settings, key) for key, f in Settings.model_fields.items()}
    for name in ENV_NAMES:
        assert read[name] == f"value-of-{name}", name


def test_defaults_are_the_documented_ones() -> None:
    s = Settings(_env_file=None)
    assert s.environment == "development"
    assert s.llm_provider == "anthropic/claude-sonnet-4-20250514"
    assert s.from_email == "team@lensacademy.org"
    assert s.public_url == "http://localhost:8000"
    assert s.sqlalchemy_url == "sqlite+aiosqlite:///var/lens.db"


def test_env_files_are_read_and_local_wins(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("FROM_EMAIL=base@example.org\nSENTRY_DSN=\nGITHUB_TOKEN=t1\n")
    (tmp_path / ".env.local").write_text("FROM_EMAIL=local@example.org\n")
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.from_email == "local@example.org"
    assert s.github_token == "t1"
    assert s.sentry_dsn is None  # blank means unset


def test_environment_beats_env_files(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("FROM_EMAIL=file@example.org\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FROM_EMAIL", "env@example.org")
    assert Settings().from_email == "env@example.org"


@pytest.mark.parametrize(
    "given,expected",
    [
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
    ],
)
def test_database_urls_map_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def _prod(**values: str) -> Settings:
    base = {
        "ENVIRONMENT": "production",
        "JWT_SECRET": GOOD_SECRET,
        "DATABASE_URL": "postgresql://lens@db/lens",
        "FRONTEND_URL": "https://lens.example.org",
    }
    base.update(values)
    return Settings(_env_file=None, **{k: v for k, v in base.items() if v is not None})


def test_complete_production_config_passes() -> None:
    _prod().check_production()


@pytest.mark.parametrize(
    "override,names",
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET"),
        ({"JWT_SECRET": "changeme"}, "JWT_SECRET"),
        ({"JWT_SECRET": "your-secret-here-please-change-it-now"}, "JWT_SECRET"),
        ({"JWT_SECRET": "short-but-random-3f9"}, "JWT_SECRET"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///prod.db"}, "DATABASE_URL"),
        ({"FRONTEND_URL": ""}, "FRONTEND_URL"),
    ],
)
def test_production_refuses_unsafe_config(override: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        _prod(**override).check_production()


def test_development_generates_the_jwt_secret_once(tmp_path: Path) -> None:
    s = Settings(_env_file=None, LENS_VAR_DIR=str(tmp_path / "var"))
    first = s.resolved_jwt_secret()
    again = Settings(_env_file=None, LENS_VAR_DIR=str(tmp_path / "var")).resolved_jwt_secret()
    assert first == again and len(first) >= 48
    assert (tmp_path / "var" / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_mask_never_shows_a_whole_secret() -> None:
    assert mask(None) == "(not set)"
    assert mask("abc") == "****"
    masked = mask("sk-ant-0123456789abcdef")
    assert "0123456789" not in masked and masked.startswith("sk-")


def test_integration_status_names_what_is_missing() -> None:
    s = Settings(_env_file=None, DISCORD_CLIENT_ID="123", SENDGRID_API_KEY="SG.x" * 10)
    status = {i.name: i for i in integration_status(s)}
    assert status["discord sign-in"].active is False
    assert status["discord sign-in"].missing == ("DISCORD_CLIENT_SECRET",)
    assert status["e-mail (SendGrid)"].active is True
    assert status["tutor model"].missing == ("ANTHROPIC_API_KEY",)
    assert status["content"].detail == "bundled example course"
