"""The `lens` command."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from lens.settings import ConfigError, Settings, integration_status

app = typer.Typer(help="Lens: cohort-based courses with an AI tutor.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
content_app = typer.Typer(help="Course content.", no_args_is_help=True)
cohort_app = typer.Typer(help="Cohorts and grouping.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(user_app, name="user")
app.add_typer(content_app, name="content")
app.add_typer(cohort_app, name="cohort")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"lens: {message}", err=True)
    return typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _settings(*, production_check: bool = True) -> Settings:
    try:
        settings = Settings()
        if production_check:
            settings.check_production()
    except ConfigError as exc:
        raise _fail(f"configuration error: {exc}") from None
    except Exception as exc:  # pydantic validation of a malformed value
        raise _fail(f"configuration error: {exc}") from None
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run jobs here.")] = False,
    no_bot: Annotated[bool, typer.Option("--no-bot", help="Do not run the Discord bot.")] = False,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes.")] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Web processes (each with its own pool of 5+10).")
    ] = 1,
) -> None:
    """Serve the web app (with the job runner and bot unless told otherwise)."""
    import uvicorn

    # Passed through the environment so `--reload`'s fresh process sees them too.
    if no_worker:
        os.environ["LENS_RUN_WORKER"] = "false"
    if no_bot:
        os.environ["LENS_RUN_BOT"] = "false"
    settings = _settings()
    if reload:
        if settings.is_production:
            raise _fail("--reload is a development tool; it is refused in production")
        uvicorn.run(
            "lens.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            reload=True,
            reload_dirs=[str(Path(__file__).parent)],
            log_config=None,
        )
        return
    if workers > 1:
        # Separate processes each build their app from the environment. One bot only:
        # N gateway connections would answer every command N times.
        if settings.run_bot and settings.discord_bot_token:
            typer.echo("--workers > 1: the Discord bot does not run here; start `lens bot`.")
        os.environ["LENS_RUN_BOT"] = "false"
        uvicorn.run(
            "lens.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        )
        return
    from lens.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
    )


@app.command()
def worker() -> None:
    """Run jobs and periodic triggers only (no web)."""
    settings = _settings()
    from lens.logging import configure_logging

    configure_logging(
        level=settings.log_level,
        json=settings.log_format == "json"
        or (settings.log_format == "auto" and settings.is_production),
    )
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    import httpx

    from lens import __version__
    from lens.content.store import ContentStore
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.integrations.email.factory import email_sender_from_settings
    from lens.integrations.sentry import init_sentry
    from lens.jobs.periodic import PeriodicTriggers
    from lens.jobs.registry import load_task_modules
    from lens.jobs.runner import JobRunner
    from lens.notifications.sender import sender_from_settings

    init_sentry(settings)
    load_task_modules()
    engine = create_engine(settings.sqlalchemy_url)
    if not settings.is_production:
        await migrate.upgrade(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(
        headers={"User-Agent": f"Lens/{__version__}"}, timeout=httpx.Timeout(20.0, connect=5.0)
    ) as http:
        maker = create_sessionmaker(engine)
        runner = JobRunner(maker, settings=settings, http=http)
        triggers = PeriodicTriggers(maker)
        # Notifications name courses and modules: this process keeps the content too.
        store = await ContentStore(maker).open()
        sender = sender_from_settings(
            settings,
            maker,
            http,
            email=email_sender_from_settings(settings, http),
            secret=settings.resolved_jwt_secret(),
            content=lambda: store.loaded,
        )
        await runner.start()
        triggers.start()
        sender.start()
        await stop.wait()
        await sender.stop()
        triggers.stop()
        await runner.stop()
        await store.stop()
    await engine.dispose()


@app.command()
def bot() -> None:
    """Run the Discord bot only (exactly one per server: it holds the gateway connection)."""
    settings = _settings()
    if not settings.discord_bot_token or not settings.discord_server_id:
        raise _fail("the bot needs DISCORD_BOT_TOKEN and DISCORD_SERVER_ID (see docs/discord.md)")
    from lens.logging import configure_logging

    configure_logging(
        level=settings.log_level,
        json=settings.log_format == "json"
        or (settings.log_format == "auto" and settings.is_production),
    )
    if not asyncio.run(_run_bot(settings)):
        raise typer.Exit(1)


async def _run_bot(settings: Settings) -> bool:
    """Run the bot until SIGINT/SIGTERM (True) or until it cannot go on (False)."""
    import httpx

    from lens import __version__
    from lens.bot.client import LensBot, running
    from lens.content.store import ContentStore
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker
    from lens.integrations.sentry import init_sentry
    from lens.jobs.registry import load_task_modules

    assert settings.discord_bot_token is not None
    init_sentry(settings)
    load_task_modules()  # commands enqueue jobs (grouping runs)
    engine = create_engine(settings.sqlalchemy_url)
    if not settings.is_production:
        await migrate.upgrade(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with httpx.AsyncClient(
            headers={"User-Agent": f"Lens/{__version__}"}, timeout=httpx.Timeout(20.0, connect=5.0)
        ) as http:
            maker = create_sessionmaker(engine)
            # /course names modules: this process keeps the content too.
            store = await ContentStore(maker).open()
            bot = LensBot(
                settings=settings,
                sessionmaker=maker,
                http=http,
                content=lambda: store.loaded,
            )
            try:
                async with running(bot, settings.discord_bot_token) as task:
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    # The bot ending by itself (a bad token, say) is a failure; why is logged.
                    ok = stop.is_set()
            finally:
                await store.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await engine.dispose()
    return ok


# -- db --------------------------------------------------------------------------


def _run_db(coro_factory: str, revision: str | None = None) -> None:
    settings = _settings(production_check=False)
    from lens.db import migrate
    from lens.db.engine import create_engine

    async def run() -> None:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            if coro_factory == "upgrade":
                await migrate.upgrade(engine, revision or "head")
            elif coro_factory == "downgrade":
                await migrate.downgrade(engine, revision or "-1")
            current = await migrate.current_revisions(engine)
            heads = migrate.head_revisions()
            state = "current" if current == heads else f"head is {', '.join(sorted(heads))}"
            typer.echo(f"database at {', '.join(sorted(current)) or '(empty)'} ({state})")
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"database error: {_one_line(exc)}", 1) from None


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    _run_db("upgrade", revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Undo migrations down to REVISION (default: one step)."""
    if revision == "base" and sys.stdin.isatty():
        typer.confirm("This drops every Lens table and its data. Continue?", abort=True)
    _run_db("downgrade", revision)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    _run_db("current")


# -- config ----------------------------------------------------------------------


@config_app.command("check")
def config_check() -> None:
    """Show which integrations are active and what is missing (secrets masked)."""
    settings = _settings(production_check=False)
    typer.echo(f"environment: {settings.environment}")
    typer.echo(f"public URL:  {settings.public_url}")
    width = max(len(s.name) for s in integration_status(settings))
    for status in integration_status(settings):
        mark = "on " if status.active else "off"
        line = f"  [{mark}] {status.name.ljust(width)}  {status.detail}"
        if status.missing:
            line += f"  (missing: {', '.join(status.missing)})"
        typer.echo(line)
    try:
        settings.check_production()
    except ConfigError as exc:
        raise _fail(f"not ready for production: {exc}", 1) from None
    typer.echo("configuration ok")


# -- user ------------------------------------------------------------------------


@user_app.command("make-admin")
def user_make_admin(
    identifier: Annotated[str, typer.Argument(help="E-mail address or Discord user id.")],
    create: Annotated[
        bool, typer.Option("--create", help="Create the account if it does not exist.")
    ] = False,
) -> None:
    """Give a user admin rights."""
    settings = _settings(production_check=False)
    from lens.db.engine import create_engine, create_sessionmaker, unit_of_work
    from lens.errors import LensError
    from lens.users.service import make_admin

    async def run() -> str:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await make_admin(session, identifier=identifier, create=create)
                return f"user {user.id} ({user.display_name}) is now an admin"
        finally:
            await engine.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except LensError as exc:
        raise _fail(exc.message, 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"database error: {_one_line(exc)}", 1) from None


# -- content ---------------------------------------------------------------------


@content_app.command("validate")
def content_validate(
    paths: Annotated[list[Path], typer.Argument(help="A content repository, or files inside one.")],
) -> None:
    """Check content against the Lens format; exit 1 when anything is invalid.

    Prints `path:line: context: message` per problem, then a summary. Meant for a
    content repository's own CI as well as for authors.
    """
    from lens.content.files import find_root, read_folder
    from lens.content.parser import load_content

    problems_out: list[str] = []
    checked = invalid = 0
    roots: dict[Path, list[str] | None] = {}
    for given in paths:
        if not given.exists():
            raise _fail(f"{given}: no such file or folder", 2)
        root = find_root(given)
        if root is None:
            raise _fail(
                f"{given}: not inside a content repository (no courses/, modules/, "
                "Lenses/, Learning Outcomes/, articles/ or video_transcripts/ folder found)",
                2,
            )
        if given.resolve() == root:
            roots[root] = None  # everything
        elif roots.get(root, []) is not None:
            selected = roots.setdefault(root, [])
            assert selected is not None
            if given.is_dir():
                selected.extend(
                    p.relative_to(root).as_posix() for p in given.resolve().rglob("*.md")
                )
            else:
                selected.append(given.resolve().relative_to(root).as_posix())
    for root, selected in roots.items():
        # Single files are checked in their repository, so links can be followed.
        content = load_content(read_folder(root))
        prefix = "" if root == Path.cwd().resolve() else f"{os.path.relpath(root)}/"
        for path in sorted(content.problems):
            if selected is not None and path not in selected:
                continue
            checked += 1
            if content.problems[path]:
                invalid += 1
                problems_out.extend(prefix + str(p) for p in content.problems[path])
    for line in problems_out:
        typer.echo(line)
    typer.echo(f"Validated {checked} files: {checked - invalid} valid, {invalid} invalid")
    if invalid:
        raise typer.Exit(1)


@content_app.command("sync")
def content_sync(
    full: Annotated[bool, typer.Option("--full", help="Read every file again.")] = False,
) -> None:
    """Sync content from its source now (CONTENT_DIR, CONTENT_REPO or the example)."""
    settings = _settings(production_check=False)
    from rich.console import Console

    console = Console(stderr=True, log_path=False)

    async def run() -> str:
        import httpx

        from lens import __version__
        from lens.content.service import sync_content
        from lens.content.sources import source_from_settings
        from lens.db import migrate
        from lens.db.engine import create_engine, create_sessionmaker, unit_of_work

        engine = create_engine(settings.sqlalchemy_url)
        try:
            if not settings.is_production:
                await migrate.upgrade(engine)
            async with httpx.AsyncClient(
                headers={"User-Agent": f"Lens/{__version__}"}, timeout=60
            ) as http:
                source = source_from_settings(settings, http)
                with console.status("starting") as status:

                    def progress(message: str) -> None:
                        console.log(message)
                        status.update(message)

                    async with unit_of_work(create_sessionmaker(engine)) as session:
                        result = await sync_content(
                            session, source=source, force_full=full, progress=progress
                        )
        finally:
            await engine.dispose()
        if not result.changed:
            return f"already at {result.commit[:12]}; nothing to do"
        kind = "full" if result.full else "incremental"
        return (
            f"synced {result.commit[:12]} ({kind}): {result.files} files, "
            f"{result.invalid} invalid, {result.seconds:.2f} s"
        )

    from lens.errors import IntegrationRejected, IntegrationUnavailable

    try:
        typer.echo(asyncio.run(run()))
    except (IntegrationUnavailable, IntegrationRejected) as exc:
        raise _fail(f"sync failed, the current content stays: {exc}", 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"database error: {_one_line(exc)}", 1) from None


@content_app.command("status")
def content_status() -> None:
    """Where content comes from, the last sync, and every invalid file."""
    settings = _settings(production_check=False)

    async def run() -> None:
        import httpx

        from lens.content.service import get_status
        from lens.content.sources import source_from_settings
        from lens.db.engine import create_engine, create_sessionmaker

        engine = create_engine(settings.sqlalchemy_url)
        try:
            async with httpx.AsyncClient() as http, create_sessionmaker(engine)() as session:
                name = source_from_settings(settings, http).name
                status = await get_status(session, source_name=name)
        finally:
            await engine.dispose()
        typer.echo(f"source:  {status.source}")
        typer.echo(f"commit:  {status.commit or '(never synced)'}")
        if status.synced_at:
            kind = "full" if status.full_sync else "incremental"
            typer.echo(
                f"synced:  {status.synced_at:%Y-%m-%d %H:%M:%S} UTC "
                f"({kind}, {status.sync_seconds:.2f} s)"
            )
        typer.echo(
            f"content: {status.files} files, {status.courses} courses, "
            f"{status.modules} modules served, {len(status.invalid)} invalid files"
        )
        if status.last_error:
            typer.echo(f"last sync failed: {status.last_error}")
        for lines in status.invalid.values():
            for line in lines:
                typer.echo(f"  {line}")

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"database error: {_one_line(exc)}", 1) from None


# -- cohort ----------------------------------------------------------------------


def _run_with_session(settings: Settings, work: Any) -> Any:
    """Run `work(session)` in one unit of work; expected errors end the command cleanly."""
    from lens.db import migrate
    from lens.db.engine import create_engine, create_sessionmaker, unit_of_work
    from lens.errors import LensError

    async def run() -> Any:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            if not settings.is_production:
                await migrate.upgrade(engine)
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except LensError as exc:
        raise _fail(exc.message, 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"database error: {_one_line(exc)}", 1) from None


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


@cohort_app.command("create")
def cohort_create(
    course: Annotated[str, typer.Option(help="Course slug, as in the content.")],
    name: Annotated[str, typer.Option(help="e.g. 'Spring 2027'.")],
    start: Annotated[str, typer.Option(help="Start date, YYYY-MM-DD.")],
    meetings: Annotated[int, typer.Option(help="Number of weekly meetings.")] = 8,
    length: Annotated[int, typer.Option(help="Meeting length in minutes: 60, 90 or 120.")] = 90,
    min_size: Annotated[int, typer.Option("--min", help="Smallest group (participants).")] = 4,
    max_size: Annotated[int, typer.Option("--max", help="Largest group (participants).")] = 8,
    no_facilitator: Annotated[
        bool, typer.Option("--no-facilitator", help="Groups meet without a facilitator.")
    ] = False,
    deadline: Annotated[
        str | None, typer.Option(help="Last day to enroll, YYYY-MM-DD (UTC).")
    ] = None,
) -> None:
    """Create a cohort, open for enrollment."""
    settings = _settings(production_check=False)
    start_date = _day(start, "--start")
    last_day = _day(deadline, "--deadline")
    assert start_date is not None
    from lens.cohorts.service import CohortFields, create_cohort
    from lens.content.service import load_current

    fields = CohortFields(
        course_slug=course,
        name=name,
        start_date=start_date,
        meetings=meetings,
        meeting_minutes=length,
        min_group_size=min_size,
        max_group_size=max_size,
        needs_facilitator=not no_facilitator,
        enrollment_deadline=datetime.combine(last_day, time(23, 59, 59), UTC) if last_day else None,
    )

    async def work(session: Any) -> str:
        _, snapshot, content = await load_current(session)
        courses = set(content.courses) if snapshot is not None else None
        cohort = await create_cohort(session, fields, courses=courses)
        return (
            f"cohort {cohort.id} created: {cohort.name} ({cohort.course_slug}), from "
            f"{cohort.start_date}, {cohort.meetings} x {cohort.meeting_minutes} min; "
            f"enrollment at /enroll/{cohort.id}"
        )

    typer.echo(_run_with_session(settings, work))


@cohort_app.command("list")
def cohort_list() -> None:
    """Every cohort with its status and signups."""
    settings = _settings(production_check=False)
    from lens.cohorts.service import list_cohorts

    rows = _run_with_session(settings, lambda session: list_cohorts(session))
    if not rows:
        typer.echo("no cohorts yet; create one with `lens cohort create`")
    for row in rows:
        c = row.cohort
        typer.echo(
            f"{c.id:>4}  {c.status:<8}  {c.start_date}  {c.name} ({c.course_slug}): "
            f"{row.participants} participants, {row.facilitators} facilitators"
        )


@cohort_app.command("show")
def cohort_show(cohort_id: Annotated[int, typer.Argument(help="Cohort id.")]) -> None:
    """A cohort's settings, signups by status, and its groups."""
    settings = _settings(production_check=False)
    from collections import Counter

    from lens.cohorts.models import GroupStatus
    from lens.cohorts.service import get_cohort, list_signups
    from lens.scheduling.service import get_preview

    async def work(session: Any) -> list[str]:
        c = await get_cohort(session, cohort_id)
        signups = await list_signups(session, cohort=c)
        counts = Counter(f"{r.signup.role} {r.signup.status}" for r in signups)
        status = GroupStatus.ACTIVE if c.status in ("running", "finished") else GroupStatus.DRAFT
        preview = await get_preview(session, cohort=c, status=status)
        lines = [
            f"cohort {c.id}: {c.name} ({c.course_slug}), {c.status}",
            f"  {c.meetings} weekly meetings of {c.meeting_minutes} min from {c.start_date}; "
            f"groups of {c.min_group_size}-{c.max_group_size}"
            + (" with a facilitator" if c.needs_facilitator else ""),
            "  signups: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"),
        ]
        label = "approved groups" if status is GroupStatus.ACTIVE else "preview groups"
        lines.append(f"  {label}: {len(preview.groups)}, {preview.placed} participants placed")
        for g in preview.groups:
            lead = g.facilitator.row.user.display_name if g.facilitator else "no facilitator"
            lines.append(
                f"    {g.group.name}: slot {g.group.start_slot} UTC, "
                f"{len(g.participants)} participants, {lead}"
            )
        return lines

    for line in _run_with_session(settings, work):
        typer.echo(line)


@cohort_app.command("group")
def cohort_group(
    cohort_id: Annotated[int, typer.Argument(help="Cohort id.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same groups.")] = 0,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve the groups when no rule is broken.")
    ] = False,
) -> None:
    """Form groups now and print the preview (the admin page shows the same)."""
    settings = _settings(production_check=False)
    from lens.cohorts.service import get_cohort
    from lens.scheduling import service

    async def work(session: Any) -> list[str]:
        cohort = await get_cohort(session, cohort_id)
        run = await service.request_grouping(session, cohort=cohort, by=None, seed=seed)
        built = await service.load_problem(session, cohort, seed=seed)
        typer.echo(
            f"grouping {len(built.problem.participants)} participants and "
            f"{len(built.problem.facilitators)} facilitators "
            f"(up to {built.problem.time_limit_seconds:.0f} s)...",
            err=True,
        )
        await service.run_grouping(session, run=run)
        preview = await service.get_preview(session, cohort=cohort)
        s = run.summary
        lines = [
            f"placed {s['placed']} of {s['participants']} participants in "
            f"{len(preview.groups)} groups ({s['placed_in_available']} in their 'available' "
            f"time); solver {s['solver']}, bound {s['upper_bound']}, {s['seconds']} s",
        ]
        for g in preview.groups:
            lead = g.facilitator.row.user.display_name if g.facilitator else "no facilitator"
            lines.append(
                f"  {g.group.name} at slot {g.group.start_slot} UTC: "
                f"{len(g.participants)} participants, {lead}"
            )
        for row, reason in preview.unplaced:
            lines.append(f"  not placed: {row.user.display_name}: {reason}")
        for violation in preview.violations:
            lines.append(f"  problem: {violation}")
        lines.append(f"preview saved; see it at /admin/cohorts/{cohort.id}/grouping")
        return lines

    # The preview is saved first, so a refused approval keeps it for the web page.
    for line in _run_with_session(settings, work):
        typer.echo(line)
    if approve:

        async def approve_now(session: Any) -> str:
            cohort = await get_cohort(session, cohort_id)
            await service.approve(session, cohort=cohort, by=None)
            return f"approved: cohort {cohort.id} is running"

        typer.echo(_run_with_session(settings, approve_now))


def main() -> None:
    app()
