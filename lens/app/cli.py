"""`lens serve` (the web app, with the job runner and the bot unless told otherwise) and
`lens config check`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lens.cli_support import fail, load_settings
from lens.settings import ConfigError, integration_status


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
    settings = load_settings()
    if reload:
        if settings.is_production:
            raise fail("--reload is a development tool; it is refused in production")
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


def config_check() -> None:
    """Show which integrations are active and what is missing (secrets masked)."""
    settings = load_settings(production_check=False)
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
        raise fail(f"not ready for production: {exc}", 1) from None
    typer.echo("configuration ok")


def register(app: typer.Typer) -> None:
    """Add `lens serve` and `lens config check`."""
    app.command("serve")(serve)
    config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
    config_app.command("check")(config_check)
    app.add_typer(config_app, name="config")
