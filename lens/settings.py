"""The one Settings object.

Variable names are kept from the original deployment (docs/operations.md, Configuration), so
an existing `.env` works unchanged. Values come from the environment, then `.env.local`,
then `.env`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LLM_PROVIDER = "anthropic/claude-sonnet-4-20250514"
DEFAULT_FROM_EMAIL = "team@lensacademy.org"
DEFAULT_FRONTEND_URL = "http://localhost:8000"

# Values people leave in a copied `.env.example`; treated as "not set" in production.
_PLACEHOLDERS = {
    "",
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "your-secret",
    "your_secret",
    "your-secret-here",
    "jwt-secret",
    "placeholder",
    "xxx",
    "todo",
    "dev",
    "development",
    "test",
}
MIN_SECRET_LENGTH = 32
# LLM_PROVIDER's vendor prefix -> the variable with its API key.
_PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "openai": "OPENAI_API_KEY",
}


class ConfigError(Exception):
    """A setting that makes start-up impossible; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"),  # later files win
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    environment: str = Field("development", alias="ENVIRONMENT")
    frontend_url: str | None = Field(None, alias="FRONTEND_URL")
    # Who runs the courses: named on certificates as their issuer.
    site_name: str = Field("Lens", alias="SITE_NAME")

    database_url: str | None = Field(None, alias="DATABASE_URL")
    jwt_secret: str | None = Field(None, alias="JWT_SECRET")

    discord_bot_token: str | None = Field(None, alias="DISCORD_BOT_TOKEN")
    discord_client_id: str | None = Field(None, alias="DISCORD_CLIENT_ID")
    discord_client_secret: str | None = Field(None, alias="DISCORD_CLIENT_SECRET")
    discord_server_id: str | None = Field(None, alias="DISCORD_SERVER_ID")

    content_dir: str | None = Field(None, alias="CONTENT_DIR")
    content_repo: str | None = Field(None, alias="CONTENT_REPO")
    # Read CONTENT_DIR as a git checkout at this ref instead of its files on disk.
    content_ref: str | None = Field(None, alias="LENS_CONTENT_REF")
    educational_content_branch: str = Field("main", alias="EDUCATIONAL_CONTENT_BRANCH")
    github_token: str | None = Field(None, alias="GITHUB_TOKEN")
    github_webhook_secret: str | None = Field(None, alias="GITHUB_WEBHOOK_SECRET")

    # PostgreSQL through a pooler in transaction mode (PgBouncer before 1.21, Supabase's
    # pooler): no prepared statements kept. None: assumed on ports 6432 and 6543.
    db_pgbouncer: bool | None = Field(None, alias="LENS_DB_PGBOUNCER")
    # PostgreSQL connections each `lens serve` (and `lens worker`) process keeps open; a
    # request waits for a free one. Processes x this must stay under the server's
    # max_connections (100 by default).
    db_pool_size: int = Field(20, ge=1, le=1000, alias="LENS_DB_POOL_SIZE")
    llm_provider: str = Field(DEFAULT_LLM_PROVIDER, alias="LLM_PROVIDER")
    anthropic_api_key: str | None = Field(None, alias="ANTHROPIC_API_KEY")
    gemini_api_key: str | None = Field(None, alias="GEMINI_API_KEY")
    openai_api_key: str | None = Field(None, alias="OPENAI_API_KEY")
    llm_api_base: str | None = Field(None, alias="LENS_LLM_API_BASE")  # a local server
    llm_fallback: str | None = Field(None, alias="LENS_LLM_FALLBACK")
    # The site's own model prices, USD per million tokens: {"model": [input, output]}
    # (lens/integrations/llm/prices.py; they win over Lens's table).
    llm_prices: dict[str, tuple[float, float]] | None = Field(None, alias="LENS_LLM_PRICES")
    tutor_max_tokens: int = Field(1024, alias="LENS_TUTOR_MAX_TOKENS")
    tutor_max_message_chars: int = Field(4000, alias="LENS_TUTOR_MAX_MESSAGE_CHARS")
    tutor_messages_per_minute: int = Field(6, alias="LENS_TUTOR_MESSAGES_PER_MINUTE")
    tutor_daily_tokens: int = Field(100_000, alias="LENS_TUTOR_DAILY_TOKENS")
    tutor_daily_cost_cap_usd: float = Field(50.0, alias="LENS_TUTOR_DAILY_COST_CAP_USD")
    # How long a learner may wait for the first words (every retry and the fallback
    # together), and for a whole reply.
    tutor_first_token_seconds: float = Field(20.0, gt=0, alias="LENS_TUTOR_FIRST_TOKEN_SECONDS")
    tutor_reply_seconds: float = Field(180.0, gt=0, alias="LENS_TUTOR_REPLY_SECONDS")
    # Report (log `loop.stall`, with the stack) whenever the event loop is held up longer
    # than this many milliseconds; 0 is off. For benches and debugging.
    loop_stall_ms: int = Field(0, ge=0, alias="LENS_LOOP_STALL_MS")
    # Visitors without an account, together per network (IPv4 address, IPv6 /64): a
    # classroom behind one address shares these; signed-in people have their own.
    tutor_network_messages_per_minute: int = Field(
        20, ge=1, alias="LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE"
    )
    tutor_network_daily_tokens: int = Field(300_000, ge=1, alias="LENS_TUTOR_NETWORK_DAILY_TOKENS")
    # Speech input (the microphone button) uses OpenAI's transcription API when
    # OPENAI_API_KEY is set, whatever model the tutor itself uses.
    transcription_model: str = Field("whisper-1", alias="LENS_TRANSCRIPTION_MODEL")
    transcription_api_base: str = Field(
        "https://api.openai.com/v1", alias="LENS_TRANSCRIPTION_API_BASE"
    )

    google_calendar_credentials_file: str | None = Field(
        None, alias="GOOGLE_CALENDAR_CREDENTIALS_FILE"
    )
    google_calendar_email: str | None = Field(None, alias="GOOGLE_CALENDAR_EMAIL")

    sendgrid_api_key: str | None = Field(None, alias="SENDGRID_API_KEY")
    from_email: str = Field(DEFAULT_FROM_EMAIL, alias="FROM_EMAIL")
    # SMTP, when SendGrid is not used (SendGrid wins when both are set).
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    smtp_port: int = Field(587, alias="SMTP_PORT")
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: str | None = Field(None, alias="SMTP_PASSWORD")
    smtp_security: Literal["starttls", "tls", "none"] = Field("starttls", alias="SMTP_SECURITY")

    sentry_dsn: str | None = Field(None, alias="SENTRY_DSN")
    vite_sentry_dsn: str | None = Field(None, alias="VITE_SENTRY_DSN")
    vite_posthog_key: str | None = Field(None, alias="VITE_POSTHOG_KEY")
    vite_posthog_host: str | None = Field(None, alias="VITE_POSTHOG_HOST")

    # Lens's own knobs (not from the original deployment).
    cookie_domain: str | None = Field(None, alias="LENS_COOKIE_DOMAIN")
    # The largest request body accepted (uploads and GitHub's webhook have their own).
    max_body_bytes: int = Field(1024 * 1024, ge=1024, alias="LENS_MAX_BODY_BYTES")
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses). Only the
    # load balancer's own address belongs here; "*" lets any client pick its IP.
    forwarded_allow_ips: str = Field("", alias="LENS_FORWARDED_ALLOW_IPS")
    var_dir: Path = Field(Path("var"), alias="LENS_VAR_DIR")
    log_level: str = Field("INFO", alias="LENS_LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field("auto", alias="LENS_LOG_FORMAT")
    run_worker: bool = Field(True, validation_alias=AliasChoices("LENS_RUN_WORKER", "run_worker"))
    run_bot: bool = Field(True, validation_alias=AliasChoices("LENS_RUN_BOT", "run_bot"))
    job_poll_seconds: float = Field(1.0, alias="LENS_JOB_POLL_SECONDS")
    job_concurrency: int = Field(4, alias="LENS_JOB_CONCURRENCY")
    job_lease_seconds: float = Field(60.0, alias="LENS_JOB_LEASE_SECONDS")
    delivery_concurrency: int = Field(8, alias="LENS_DELIVERY_CONCURRENCY")
    delivery_lease_seconds: float = Field(120.0, alias="LENS_DELIVERY_LEASE_SECONDS")
    delivery_poll_seconds: float = Field(2.0, alias="LENS_DELIVERY_POLL_SECONDS")
    # Vendor API addresses: only for a proxy or a test double.
    sendgrid_api_base: str = Field("https://api.sendgrid.com", alias="LENS_SENDGRID_API_BASE")
    discord_api_base: str = Field("https://discord.com/api/v10", alias="LENS_DISCORD_API_BASE")
    shutdown_grace_seconds: float = Field(25.0, alias="LENS_SHUTDOWN_GRACE_SECONDS")

    @field_validator(
        "frontend_url",
        "database_url",
        "jwt_secret",
        "discord_bot_token",
        "discord_client_id",
        "discord_client_secret",
        "discord_server_id",
        "content_dir",
        "content_repo",
        "content_ref",
        "cookie_domain",
        "github_token",
        "github_webhook_secret",
        "anthropic_api_key",
        "gemini_api_key",
        "openai_api_key",
        "llm_api_base",
        "llm_fallback",
        "google_calendar_credentials_file",
        "google_calendar_email",
        "sendgrid_api_key",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        "sentry_dsn",
        "vite_sentry_dsn",
        "vite_posthog_key",
        "vite_posthog_host",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `FOO=` in a .env file means "not set", not "set to the empty string".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    # -- derived values -------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.environment.lower() == "production"

    @property
    def public_url(self) -> str:
        return (self.frontend_url or DEFAULT_FRONTEND_URL).rstrip("/")

    @property
    def discord_login_enabled(self) -> bool:
        return bool(self.discord_client_id and self.discord_client_secret)

    @property
    def tutor_key_variable(self) -> str | None:
        """The variable holding LLM_PROVIDER's key; None when no key is needed (a local
        OpenAI-compatible server at LENS_LLM_API_BASE, or Ollama)."""
        if self.llm_api_base:
            return None
        return _PROVIDER_KEYS.get(self.llm_provider.split("/", 1)[0].lower())

    @property
    def tutor_model_key(self) -> str | None:
        """The API key for LLM_PROVIDER's vendor, or None when none is needed or set."""
        provider = self.llm_provider.split("/", 1)[0].lower()
        name = _PROVIDER_KEYS.get(provider)
        value = getattr(self, name.lower()) if name else None
        return value if isinstance(value, str) else None

    @property
    def tutor_configured(self) -> bool:
        if self.tutor_key_variable is not None:
            return bool(self.tutor_model_key)
        return bool(self.llm_provider)

    @property
    def is_development(self) -> bool:
        return self.environment.lower() == "development"

    @property
    def dev_outbox_enabled(self) -> bool:
        """E-mail goes to the development outbox page: only in development, because the
        page shows every sign-in link to anyone who opens it."""
        return not self.sendgrid_api_key and not self.smtp_host and self.is_development

    @property
    def secure_cookies(self) -> bool:
        return self.is_production or self.public_url.startswith("https://")

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "lens.db"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with its async driver (asyncpg or aiosqlite)."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.sqlite_path}"
        return normalize_database_url(self.database_url)

    @property
    def uses_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse a production start-up that would be insecure or lose data."""
        if not self.is_production:
            return
        if not self.jwt_secret or is_placeholder(self.jwt_secret):
            raise ConfigError(
                "JWT_SECRET is missing or a placeholder; production needs a random value "
                f"of at least {MIN_SECRET_LENGTH} characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.uses_sqlite:
            raise ConfigError(
                "DATABASE_URL must point to PostgreSQL in production (SQLite is for "
                "development only)"
            )
        if not self.frontend_url:
            raise ConfigError(
                "FRONTEND_URL is missing; production needs the public base URL, "
                "e.g. https://lens.example.org"
            )

    def resolved_jwt_secret(self) -> str:
        """The secret that signs session cookies.

        In development a missing secret is generated once and kept under `var/`, so
        sessions survive restarts; in production `check_production` has already
        refused to start without one.
        """
        if self.jwt_secret:
            return self.jwt_secret
        if self.is_production:
            raise ConfigError("JWT_SECRET is required in production")
        path = self.var_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value + "\n")
        path.chmod(0o600)
        return value


def is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return (
        lowered in _PLACEHOLDERS
        or lowered.startswith(("changeme", "change-me", "your-", "your_", "<"))
        or len(lowered) < MIN_SECRET_LENGTH
    )


def normalize_database_url(url: str) -> str:
    """Map the URL spellings hosting providers hand out to SQLAlchemy's async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def mask(value: str | None) -> str:
    """Show that a secret is set without showing it."""
    if not value:
        return "(not set)"
    if len(value) <= 8:
        return "****"
    return f"{value[:3]}…{value[-2:]} ({len(value)} chars)"


@dataclass(frozen=True)
class IntegrationStatus:
    name: str
    active: bool
    detail: str
    missing: tuple[str, ...] = ()


def integration_status(settings: Settings) -> list[IntegrationStatus]:
    """What `lens config check` reports: which integrations are on and what is missing."""
    s = settings
    out: list[IntegrationStatus] = []

    def group(name: str, values: dict[str, str | None], detail_on: str, detail_off: str) -> None:
        missing = tuple(k for k, v in values.items() if not v)
        detail = detail_off if missing else detail_on
        out.append(IntegrationStatus(name, not missing, detail, missing))

    db = "PostgreSQL" if not s.uses_sqlite else f"SQLite at {s.sqlite_path}"
    out.append(IntegrationStatus("database", True, db))
    group(
        "discord bot",
        {"DISCORD_BOT_TOKEN": s.discord_bot_token, "DISCORD_SERVER_ID": s.discord_server_id},
        f"token {mask(s.discord_bot_token)}, server {s.discord_server_id}",
        "off (no bot)",
    )
    group(
        "discord sign-in",
        {
            "DISCORD_CLIENT_ID": s.discord_client_id,
            "DISCORD_CLIENT_SECRET": s.discord_client_secret,
        },
        f"client {s.discord_client_id}, secret {mask(s.discord_client_secret)}",
        "off (Discord login hidden)",
    )
    if s.content_dir:
        out.append(IntegrationStatus("content", True, f"local folder {s.content_dir}"))
    elif s.content_repo:
        token = mask(s.github_token) if s.github_token else "no token (public repo, low limit)"
        webhook = "webhook on" if s.github_webhook_secret else "webhook off"
        out.append(
            IntegrationStatus(
                "content",
                True,
                f"GitHub {s.content_repo}@{s.educational_content_branch}, {token}, {webhook}",
                () if s.github_webhook_secret else ("GITHUB_WEBHOOK_SECRET",),
            )
        )
    else:
        out.append(IntegrationStatus("content", True, "bundled example course"))
    key_variable = s.tutor_key_variable
    if key_variable is None:
        out.append(IntegrationStatus("tutor model", True, f"{s.llm_provider} (no key needed)"))
    else:
        group(
            "tutor model",
            {key_variable: s.tutor_model_key},
            f"{s.llm_provider}, key {mask(s.tutor_model_key)}",
            f"{s.llm_provider}: not configured (tutor says so)",
        )
    group(
        "speech input",
        {"OPENAI_API_KEY": s.openai_api_key},
        f"{s.transcription_model}, key {mask(s.openai_api_key)}",
        "off (no microphone button)",
    )
    group(
        "google calendar",
        {
            "GOOGLE_CALENDAR_CREDENTIALS_FILE": s.google_calendar_credentials_file,
            "GOOGLE_CALENDAR_EMAIL": s.google_calendar_email,
        },
        f"as {s.google_calendar_email}",
        "off (iCal attachments and feeds only)",
    )
    group(
        "e-mail (SendGrid)",
        {"SENDGRID_API_KEY": s.sendgrid_api_key},
        f"key {mask(s.sendgrid_api_key)}, from {s.from_email}",
        "off (console and development outbox)",
    )
    if not s.sendgrid_api_key:
        group(
            "e-mail (SMTP)",
            {"SMTP_HOST": s.smtp_host},
            f"{s.smtp_host}:{s.smtp_port} ({s.smtp_security}), from {s.from_email}",
            "off",
        )
    group("sentry", {"SENTRY_DSN": s.sentry_dsn}, "on", "off")
    group(
        "analytics (browser)",
        {"VITE_POSTHOG_KEY": s.vite_posthog_key, "VITE_POSTHOG_HOST": s.vite_posthog_host},
        f"PostHog at {s.vite_posthog_host}",
        "off",
    )
    return out
