"""create_app(settings): the web app and everything its lifespan owns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens import __version__, features
from lens.account import pages as account_pages
from lens.app import pages
from lens.auth import pages as auth_pages
from lens.auth.csrf import CSRFMiddleware
from lens.auth.sessions import SessionMiddleware
from lens.cohorts import admin_pages as cohort_admin_pages
from lens.cohorts import pages as cohort_pages
from lens.cohorts import people_pages
from lens.completion import certificate_pages
from lens.completion import pages as completion_pages
from lens.content import api as content_api
from lens.content import pages as content_pages
from lens.content.service import sync_content
from lens.content.sources import GitHubSource, source_from_settings
from lens.content.store import ContentStore
from lens.content.tasks import request_sync
from lens.courses import api as courses_api
from lens.courses import pages as course_pages
from lens.courses.spool import progress_spool
from lens.db import migrate
from lens.db.engine import (
    create_engine,
    create_sessionmaker,
    hot_reads,
    read_only,
    unit_of_work,
)
from lens.db.spool import keep_flushing
from lens.discord_groups import pages as discord_pages
from lens.integrations.email.factory import email_sender_from_settings
from lens.integrations.llm.client import ChatModel
from lens.integrations.llm.transcription import Transcriber
from lens.integrations.sentry import init_sentry
from lens.jobs.periodic import PeriodicTriggers
from lens.jobs.runner import JobRunner
from lens.logging import configure_logging, get_logger
from lens.meetings import attendance_pages
from lens.meetings import pages as meeting_pages
from lens.notifications import pages as notification_pages
from lens.notifications.sender import DiscordMessenger, sender_from_settings
from lens.scheduling import pages as grouping_pages
from lens.scheduling import running_pages, self_pages
from lens.settings import Settings
from lens.tutor import api as tutor_api
from lens.tutor import pages as tutor_pages
from lens.tutor.service import model_from_settings, transcriber_from_settings
from lens.tutor.spool import spool_for
from lens.web import health
from lens.web.api_docs import add_api_docs
from lens.web.errors import UnhandledErrorMiddleware, install_error_handlers
from lens.web.limits import MB, BodyLimitMiddleware
from lens.web.loopwatch import LoopWatch
from lens.web.middleware import HeadAsGetMiddleware, RequestContextMiddleware
from lens.web.panels import add_panel
from lens.web.security import SecurityHeadersMiddleware
from lens.web.state import Lens
from lens.web.templating import STATIC, compile_templates, templates

log = get_logger("lens.app")


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    chat_model: ChatModel | None = None,
    transcriber: Transcriber | None = None,
    discord: DiscordMessenger | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the app. Nothing connects until the lifespan starts.

    Tests pass `sessionmaker` (bound to a rolled-back connection) and `http_transport`
    (an httpx.MockTransport), and keep their own logging set-up.
    """
    settings = settings or Settings()
    settings.check_production()
    if configure_logs:
        json_logs = settings.log_format == "json" or (
            settings.log_format == "auto" and settings.is_production
        )
        configure_logging(level=settings.log_level, json=json_logs)
    init_sentry(settings)
    features.load()
    jwt_secret = settings.resolved_jwt_secret()
    # Outside development, templates never change under a running process: skip the
    # per-render file checks.
    templates.env.auto_reload = settings.is_development

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything started is stopped again, in reverse order, also when a later
        # start-up step fails.
        async with AsyncExitStack() as stack:
            if settings.loop_stall_ms:
                watch = LoopWatch(threshold=settings.loop_stall_ms / 1000)
                await watch.start()
                stack.push_async_callback(watch.stop)
                app.state.loopwatch = watch
            engine = create_engine(
                settings.sqlalchemy_url,
                pgbouncer=settings.db_pgbouncer,
                pool_size=settings.db_pool_size,
            )
            stack.push_async_callback(engine.dispose)
            # The reader's per-page reads: half the pool again, of their own.
            hot = hot_reads(engine, size=max(2, settings.db_pool_size // 2))
            if hot is not None:
                stack.push_async_callback(hot.close)
            if not settings.is_production and sessionmaker is None:
                # Development applies migrations itself; production runs `lens db
                # upgrade` as a release step, so two processes never race to migrate.
                await migrate.upgrade(engine)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=http_transport,
                    timeout=httpx.Timeout(20.0, connect=5.0),
                    headers={"User-Agent": f"Lens/{__version__}"},
                    follow_redirects=False,
                )
            )
            maker = sessionmaker or create_sessionmaker(engine)
            lens = Lens(
                settings=settings,
                engine=engine,
                sessionmaker=maker,
                read_sessionmaker=None
                if sessionmaker is not None
                else create_sessionmaker(read_only(engine)),
                hot=hot,
                http=http,
                jwt_secret=jwt_secret,
                email=email_sender_from_settings(settings, http),
                chat_model=chat_model or model_from_settings(settings),
                transcriber=transcriber or transcriber_from_settings(settings, http),
            )
            close_model = getattr(lens.chat_model, "aclose", None)
            if close_model is not None:
                stack.push_async_callback(close_model)
            warm = getattr(lens.chat_model, "warm", None)
            if warm is not None:
                # The model client set up (and litellm imported, if a model needs it) in
                # the background, off the loop, before the first learner asks. Stopped
                # before the client is closed (callbacks run in reverse).
                warming = asyncio.create_task(warm(), name="tutor-model-warm-up")
                stack.push_async_callback(_stop_task, warming)
            # Acknowledged work the database could not take (tutor replies, reading
            # progress) waits on disk until it is back.
            flusher = asyncio.create_task(
                keep_flushing([spool_for(settings), progress_spool(settings)], maker),
                name="spool-flusher",
            )
            stack.push_async_callback(_stop_task, flusher)
            if settings.run_worker:
                runner = JobRunner(maker, settings=settings, http=http)
                await runner.start()
                stack.push_async_callback(runner.stop)
                triggers = PeriodicTriggers(maker)
                triggers.start()
                stack.callback(triggers.stop)
                lens.runner, lens.triggers = runner, triggers
            store = await _start_content(lens, stack)
            if settings.run_worker:
                sender = sender_from_settings(
                    settings,
                    maker,
                    http,
                    email=lens.email,
                    secret=jwt_secret,
                    content=lambda: store.loaded,
                    discord=discord,
                )
                sender.start()
                stack.push_async_callback(sender.stop)
            if settings.run_bot and settings.discord_bot_token and settings.discord_server_id:
                # Imported here: discord.py is loaded only by a process that runs the bot.
                from lens.bot.client import LensBot, running

                bot = LensBot(
                    settings=settings,
                    sessionmaker=maker,
                    http=http,
                    content=lambda: store.loaded,
                )
                await stack.enter_async_context(running(bot, settings.discord_bot_token))
            app.state.lens = lens
            app.state.content = store
            if settings.is_production:
                await asyncio.to_thread(compile_templates)
                _settle_heap()
                if settings.public_url.startswith("https://") and not (
                    settings.forwarded_allow_ips.strip()
                ):
                    # Behind a TLS-terminating proxy, every visitor would look like the
                    # proxy: one network for the visitors' limits and sign-in limits.
                    log.warning(
                        "app.no_trusted_proxy",
                        hint="set LENS_FORWARDED_ALLOW_IPS to your proxy's address",
                    )
            log.info(
                "app.started",
                environment=settings.environment,
                database="sqlite" if settings.uses_sqlite else "postgresql",
                worker=settings.run_worker,
            )
            yield
        log.info("app.stopped")

    app = FastAPI(
        title="Lens",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by lens/web/api_docs.py, from Lens itself
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added innermost first: the request id must exist before an error page is drawn.
    # The body limit is innermost: what it raises while a handler reads is its to answer.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        overrides={
            "/api/transcribe": tutor_api.MAX_AUDIO_BYTES + 64 * 1024,
            "/api/content/webhook": 25 * MB,  # GitHub's own cap on a delivery
        },
    )
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret=lambda: jwt_secret,
        secure=settings.secure_cookies,
        domain=settings.cookie_domain,
    )
    app.add_middleware(CSRFMiddleware, allowed_origins={settings.public_url})
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=settings.is_production and settings.public_url.startswith("https://"),
    )
    app.mount("/static", STATIC, name="static")
    add_api_docs(app)
    # Routes are tried in order, each costing a few microseconds to rule out: the ones a
    # live cohort hits at once (a tutor reply, the module page, its progress) come first.
    # No two routers share a path, so the order changes nothing else.
    app.include_router(tutor_api.router)
    app.include_router(course_pages.router)
    app.include_router(courses_api.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(tutor_api.speech)
    app.include_router(tutor_pages.router)
    app.include_router(cohort_pages.router)
    app.include_router(cohort_admin_pages.router)
    app.include_router(people_pages.router)
    app.include_router(running_pages.router)
    app.include_router(self_pages.router)
    app.include_router(grouping_pages.router)
    app.include_router(meeting_pages.router)
    app.include_router(meeting_pages.feed)
    app.include_router(attendance_pages.router)
    app.include_router(completion_pages.router)
    app.include_router(certificate_pages.router)
    app.include_router(notification_pages.router)
    app.include_router(content_api.router)
    app.include_router(content_pages.router)
    app.include_router(content_pages.assets)
    app.include_router(auth_pages.router)
    app.include_router(account_pages.router)
    app.include_router(account_pages.api)
    app.include_router(discord_pages.router)
    # Parts of pages below that features above fill in (lens/web/panels.py).
    add_panel(app, "admin.cohort", discord_pages.cohort_panel)
    add_panel(app, "admin.cohort", completion_pages.cohort_panel)
    add_panel(app, "group.page", discord_pages.group_panel)
    add_panel(app, "group.page", self_pages.switch_requests_panel)
    add_panel(app, "group.page", completion_pages.group_panel)
    add_panel(app, "admin.user", notification_pages.person_panel)
    add_panel(app, "landing", completion_pages.landing_panel)
    return app


async def _stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _settle_heap() -> None:
    """Keep the garbage collector's full passes off the request path.

    What start-up built (modules, templates, the parsed course) lives as long as the
    process; a full collection walked all of it again and again, pausing every request
    in flight: bench/reader measured p99 165 ms before, 70-90 ms after (p50 unchanged).
    Frozen objects are never scanned; the larger first threshold makes collections of
    short-lived request objects rarer. Production only: a test run builds hundreds
    of apps in one process, and frozen garbage is never collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 20, 20)


async def _start_content(lens: Lens, stack: AsyncExitStack) -> ContentStore:
    """Serve the stored snapshot at once; bring it up to date without blocking on GitHub.

    A local source is read in place (fast, and picks up edits); GitHub is synced by the
    job runner, so start-up never needs the network when a snapshot exists.
    """
    source = source_from_settings(lens.settings, lens.http)
    try:
        async with unit_of_work(lens.sessionmaker) as session:
            if isinstance(source, GitHubSource):
                await request_sync(session)
            else:
                await sync_content(session, source=source)
    except Exception as exc:
        log.error("content.startup_sync.failed", error=f"{type(exc).__name__}: {exc}")
    store = await ContentStore(lens.sessionmaker, prepare=course_pages.prerender).open()
    stack.push_async_callback(store.stop)
    return store


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (used by `lens serve --reload`)."""
    return create_app()
