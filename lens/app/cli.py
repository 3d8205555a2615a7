"""`lens serve` (the web app, with the job runner and the bot unless told otherwise) and
`lens config check`."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from lens.cli_support import fail, load_settings
from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.settings import ConfigError, Settings, integration_status


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's handling of X-Forwarded-For/-Proto: believed only from the proxies named
    in LENS_FORWARDED_ALLOW_IPS; with none named (the default), never, so no client can
    choose the address that sign-in and tutor limits count against."""
    ips = settings.forwarded_allow_ips.strip()
    if not ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ips}


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
            **proxy_options(settings),
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
            **proxy_options(settings),
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        )
        return
    from lens.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        **proxy_options(settings),
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
    )


def config_check(
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also ask the tutor's model for a one-token answer (a real request; it "
            "costs a tiny amount with a paid provider).",
        ),
    ] = False,
) -> None:
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
    for line in discord_bot_report(settings):
        typer.echo(line)
    if live:
        typer.echo(asyncio.run(_try_the_tutor(settings)))
    try:
        settings.check_production()
    except ConfigError as exc:
        raise fail(f"not ready for production: {exc}", 1) from None
    typer.echo("configuration ok")


# What each permission the bot may lack is needed for (docs/discord.md, "Set it up").
_NEEDED_FOR = {
    "View Channels": "group channels",
    "Send Messages": "welcome messages",
    "Read Message History": "finding its welcome messages again",
    "Embed Links": "welcome messages",
    "Manage Channels": "group channels and breakout rooms",
    "Manage Roles": "opening group channels to their members",
    "Add Reactions": "granting it to members in group channels",
    "Attach Files": "granting it to members in group channels",
    "Connect": "voice channels and meeting events",
    "Speak": "granting it to members in voice channels",
    "Use Voice Activity": "granting it to members in voice channels",
    "Create Events": "creating meeting events",
    "Manage Events": "editing meeting events made by someone else",
    "Move Members": "breakout rooms",
    "Manage Nicknames": "nicknames changed on Lens",
}


async def _try_the_tutor(settings: Settings) -> str:
    """One real request to the tutor's model: the key, the address and the model name
    all have to be right for it to answer."""
    from lens.integrations.llm.client import Delta
    from lens.tutor.service import model_from_settings

    model = model_from_settings(settings)
    if model is None:
        return "  tutor: off, nothing to try"
    started = time.monotonic()
    try:
        async for event in model.stream(
            system="Answer with one word.",
            messages=[{"role": "user", "content": "Say OK."}],
            max_tokens=1,
        ):
            if isinstance(event, Delta):
                break
    except Exception as exc:
        raise fail(f"the tutor's model ({model.name}) did not answer: {exc}", 1) from None
    finally:
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()
    return f"  tutor: {model.name} answered in {time.monotonic() - started:.1f} s"


def _discord_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))


def discord_bot_report(settings: Settings) -> list[str]:
    """With the bot configured, its role's permissions in DISCORD_SERVER_ID, read from
    Discord (the server's roles and owner, the bot's roles): a warning naming each
    permission Lens needs that it lacks. Administrator or owning the server grants all."""
    if not settings.discord_bot_token or not settings.discord_server_id:
        return []
    return asyncio.run(_discord_bot_report(settings))


async def _discord_bot_report(settings: Settings) -> list[str]:
    from lens.integrations.discord.guild import DiscordGuild, invite_url, permission_names

    server = settings.discord_server_id
    async with _discord_http() as http:
        guild = DiscordGuild.from_settings(settings, http)
        try:
            missing = await guild.missing_permissions()
        except (IntegrationUnavailable, IntegrationRejected) as exc:
            return [f"  warning: could not read the bot's permissions in server {server}: {exc}"]
    if not missing:
        return [f"  discord bot permissions: every permission Lens needs, in server {server}"]
    lines = [f"  warning: the bot's role in server {server} lacks permissions Lens needs:"]
    for name in permission_names(missing):
        lines.append(f"    - {name}: {_NEEDED_FOR.get(name, 'Lens')}")
    client_id = settings.discord_client_id or "<DISCORD_CLIENT_ID>"
    lines.append(
        "    Give them to the bot's role in the server settings, or invite it again: "
        + invite_url(client_id)
    )
    return lines


def register(app: typer.Typer) -> None:
    """Add `lens serve` and `lens config check`."""
    app.command("serve")(serve)
    config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
    config_app.command("check")(config_check)
    app.add_typer(config_app, name="config")
