"""`lens content`: validate, sync and inspect course content."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from lens.cli_support import fail, load_settings, one_line


def content_validate(
    paths: Annotated[list[Path], typer.Argument(help="A content repository, or files inside one.")],
) -> None:
    """Check content against the Lens format; exit 1 when a file cannot be served.

    Prints every error, then every warning, one per line as
    `path:line: level: message (in context) [rule]`, then `Validated N files: E errors,
    W warnings`. Warnings (served, but look) leave the exit code 0. Meant for a content
    repository's own CI as well as for authors.
    """
    from lens.content.files import find_root, list_folder_assets, read_folder
    from lens.content.parsing import file_kind, load_content
    from lens.content.problems import Problem

    shown: list[tuple[str, Problem]] = []
    checked = 0
    roots: dict[Path, list[str] | None] = {}
    for given in paths:
        if not given.exists():
            raise fail(f"{given}: no such file or folder", 2)
        root = find_root(given)
        if root is None:
            raise fail(
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
                    p.relative_to(root).as_posix()
                    for p in given.resolve().rglob("*")
                    if file_kind(p.relative_to(root).as_posix()) is not None
                )
            else:
                selected.append(given.resolve().relative_to(root).as_posix())
    for root, selected in roots.items():
        # Single files are checked in their repository, so links can be followed.
        content = load_content(read_folder(root), assets=list_folder_assets(root))
        prefix = "" if root == Path.cwd().resolve() else f"{os.path.relpath(root)}/"
        for path in sorted(content.problems):
            if selected is not None and path not in selected:
                continue
            checked += 1
            shown.extend((prefix, p) for p in content.problems[path])
    errors = [prefix + str(p) for prefix, p in shown if p.is_error]
    warnings = [prefix + str(p) for prefix, p in shown if not p.is_error]
    for line in errors + warnings:
        typer.echo(line)
    typer.echo(
        f"Validated {checked} file{'' if checked == 1 else 's'}: "
        f"{len(errors)} error{'' if len(errors) == 1 else 's'}, "
        f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'}"
    )
    if errors:
        raise typer.Exit(1)


def content_sync(
    full: Annotated[bool, typer.Option("--full", help="Read every file again.")] = False,
) -> None:
    """Sync content from its source now (CONTENT_DIR, CONTENT_REPO or the example)."""
    settings = load_settings(production_check=False)
    from rich.console import Console

    console = Console(stderr=True, log_path=False)

    async def run() -> str:
        import httpx

        from lens import __version__
        from lens.content.service import sync_content
        from lens.content.sources import source_from_settings
        from lens.db import migrate
        from lens.db.engine import create_engine, create_sessionmaker, unit_of_work

        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
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
        kind = "full" if result.full else "incremental"
        if not result.changed and result.unchanged_since is not None:
            return (
                f"content unchanged at {result.commit[:12]} ({kind} read): its {result.files} "
                f"files and {result.assets} embedded images are those of the current "
                f"snapshot ({result.unchanged_since[:12]}), which stays"
            )
        if not result.changed:
            return f"already at {result.commit[:12]}; nothing to do"
        return (
            f"synced {result.commit[:12]} ({kind}): {result.files} files, "
            f"{result.invalid} invalid, {result.seconds:.2f} s"
        )

    from lens.errors import IntegrationRejected, IntegrationUnavailable

    try:
        typer.echo(asyncio.run(run()))
    except (IntegrationUnavailable, IntegrationRejected) as exc:
        raise fail(f"sync failed, the current content stays: {exc}", 1) from None
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


def content_status() -> None:
    """Where content comes from, the last sync, and every invalid file."""
    settings = load_settings(production_check=False)

    async def run() -> None:
        import httpx

        from lens.content.service import get_status
        from lens.content.sources import source_from_settings
        from lens.db.engine import create_engine, create_sessionmaker

        engine = create_engine(settings.sqlalchemy_url, pgbouncer=settings.db_pgbouncer)
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
            f"{status.modules} modules served, {len(status.invalid)} files that cannot be "
            f"served, {len(status.warnings)} with warnings"
        )
        if status.last_error:
            typer.echo(f"last sync failed: {status.last_error}")
        for lines in [*status.invalid.values(), *status.warnings.values()]:
            for line in lines:
                typer.echo(f"  {line}")

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"database error: {one_line(exc)}", 1) from None


def register(app: typer.Typer) -> None:
    """Add `lens content ...`."""
    content_app = typer.Typer(help="Course content.", no_args_is_help=True)
    content_app.command("validate")(content_validate)
    content_app.command("sync")(content_sync)
    content_app.command("status")(content_status)
    app.add_typer(content_app, name="content")
