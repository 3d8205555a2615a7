"""The nickname push to the Discord server, run by any worker (REST, no gateway connection)."""

from __future__ import annotations

from typing import Any

from lens.errors import IntegrationRejected
from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.users.models import User
from lens.users.nicknames import NICKNAME_KIND, push_nickname

log = get_logger("lens.users.nicknames")


@job(NICKNAME_KIND, max_attempts=5)
async def push_nickname_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Set a person's current Lens nickname on the server. IntegrationUnavailable is
    retried with back-off; a refusal is logged, as retrying cannot help."""
    user = await ctx.session.get(User, int(payload["user_id"]))
    if user is None or user.deleted_at is not None or not user.discord_id:
        return
    if ctx.http is None:
        raise RuntimeError("pushing a nickname needs the runner's HTTP client")
    try:
        await push_nickname(
            ctx.http, settings=ctx.settings, discord_id=user.discord_id, nickname=user.nickname
        )
    except IntegrationRejected as exc:
        log.warning("bot.nickname.refused", user_id=user.id, error=str(exc))
