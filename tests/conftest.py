"""Shared fixtures: databases per dialect, rollback per test, the network guard.

Every test that asks for `db` (or anything built on it) runs once on SQLite and once on
PostgreSQL. PostgreSQL is used when reachable at LENS_TEST_POSTGRES_URL (default: the
local server); with CI=true an unreachable PostgreSQL or a missing Chromium is an error,
not a skip.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from lens import features
from lens.db import migrate
from lens.db.engine import create_engine
from lens.logging import configure_logging
from lens.schema import metadata
from lens.settings import Settings

# Browser fixtures (live_server, browser, open_page) for any test module.
pytest_plugins = ["tests.fixtures.browser"]

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "LENS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DIALECTS = ["sqlite", "postgresql"]

# The developer's own configuration must not leak into tests.
for _field in Settings.model_fields.values():
    if _field.alias:
        os.environ.pop(_field.alias, None)
os.environ.pop("LENS_RUN_WORKER", None)
os.environ.pop("LENS_RUN_BOT", None)

# Every feature's jobs and reactions, as each Lens process loads them at start-up.
features.load()


# -- the network guard ---------------------------------------------------------------


class OutboundNetworkBlocked(RuntimeError):
    pass


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {None, "localhost", "localhost.localdomain", ""}


def _is_local_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local_host(address[0]):
        raise OutboundNetworkBlocked(
            f"test tried to reach {address!r}; mock the vendor at the HTTP layer instead"
        )


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local_host(host):
        raise OutboundNetworkBlocked(
            f"test tried to resolve {host!r}; no test may use the internet"
        )
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    configure_logging(level="INFO", json=False)
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


# -- vendor contracts ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fakes_keep_to_the_vendors_contracts() -> Iterator[None]:
    """Every fake vendor checks what it receives and answers against the vendor's API
    description (tests/contracts); a violation fails the test even when the code under
    test caught the exception it raised."""
    from tests.contracts.validator import VIOLATIONS

    VIOLATIONS.clear()
    yield
    found = list(VIOLATIONS)
    VIOLATIONS.clear()
    assert not found, "a fake drifted from the vendor's contract:\n" + "\n".join(found)


# -- reporting -------------------------------------------------------------------------


def _waiting_tasks() -> str:
    """Where each unfinished asyncio task is waiting (found through the garbage collector,
    whichever loop it belongs to)."""
    import gc
    import io

    out = io.StringIO()
    for task in [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]:
        task.print_stack(limit=12, file=out)
    return out.getvalue() or "none"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test stopped by pytest-timeout (pyproject.toml) reports what it was waiting for:
    the signal lands in the event loop's select, which alone names no coroutine."""
    outcome = yield
    if call.excinfo is not None and "from pytest-timeout" in str(call.excinfo.value):
        outcome.get_result().sections.append(("asyncio tasks still waiting", _waiting_tasks()))


def _on_postgresql(nodeid: str) -> bool:
    """Whether a test ran with dialect=postgresql (its id holds the parameter). Read from
    the id, so the count also holds under pytest-xdist, where the controller collects
    nothing itself."""
    params = nodeid.rpartition("[")[2].rstrip("]")
    return "postgresql" in params.split("-") if "[" in nodeid else False


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = dict.fromkeys(("passed", "failed", "skipped"), 0)
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if _on_postgresql(report.nodeid) and (report.when == "call" or outcome != "passed"):
                counts[outcome] += 1
    terminalreporter.write_line(
        "PostgreSQL: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    )


# -- databases -------------------------------------------------------------------------


async def _postgres_reachable() -> str | None:
    engine = create_engine(POSTGRES_ADMIN_URL)
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(dialect: str, tmp_dir: Path) -> AsyncIterator[str]:
    """A brand-new empty database; dropped afterwards."""
    if dialect == "sqlite":
        path = tmp_dir / f"lens-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    problem = await _postgres_reachable()
    if problem:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({problem})"
        if IN_CI:
            pytest.fail(message + "; CI requires it")
        pytest.skip(message + "; set LENS_TEST_POSTGRES_URL or start PostgreSQL")
    name = f"lens_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(
    dialect: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One migrated database per dialect for the whole run."""
    async with fresh_database(dialect, tmp_path_factory.mktemp(dialect)) as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Commits inside the code under test release a savepoint; the outer transaction
    # still rolls everything back.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def committing_sessionmaker(
    engine: AsyncEngine,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """For tests of real concurrency (several runners): data is committed, then wiped."""
    yield async_sessionmaker(bind=engine, expire_on_commit=False)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())


# -- settings and app ----------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**values: Any) -> Settings:
        values.setdefault("LENS_VAR_DIR", str(tmp_path / "var"))
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def client_factory(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_settings: Callable[..., Settings],
) -> Callable[..., Any]:
    """Build the app with extra settings (and a fake vendor transport) on the test database.

    async with client_factory(DISCORD_CLIENT_ID="1", transport=fake) as client: ...
    """
    from lens.app import create_app

    @asynccontextmanager
    async def build(
        transport: httpx.AsyncBaseTransport | None = None,
        chat_model: Any = None,
        **values: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        values.setdefault("LENS_RUN_WORKER", "false")
        app = create_app(
            make_settings(DATABASE_URL=database_url, **values),
            sessionmaker=sessionmaker,
            http_transport=transport,
            chat_model=chat_model,
            configure_logs=False,
        )
        async with app.router.lifespan_context(app):
            # The content store's poller would use the test's one connection beside the
            # requests, and their savepoints interleave ("no such savepoint" at random
            # in a test longer than its 2 s period); tests refresh the store by hand.
            store = getattr(app.state, "content", None)
            if store is not None:
                await store.stop()
            asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=asgi, base_url="http://lens.test") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return build


@pytest.fixture
async def app_client(client_factory: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the test database, its requests inside the test's transaction."""
    async with client_factory() as client:
        yield client
