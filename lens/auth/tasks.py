"""Daily clean-up of spent sign-in secrets and old development e-mail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from lens.auth.models import OAuthState, RevokedSession, SignInToken
from lens.db.base import utcnow
from lens.integrations.email.models import OutboxEmail
from lens.jobs.periodic import every
from lens.jobs.registry import JobContext, job

# Kept a while after expiry: the per-address and per-IP limits count the last hour.
KEEP = timedelta(days=2)


@job("auth.purge")
async def purge_sign_in_data(ctx: JobContext, payload: dict[str, Any]) -> None:
    cutoff = utcnow() - KEEP
    await ctx.session.execute(delete(OAuthState).where(OAuthState.expires_at < utcnow()))
    await ctx.session.execute(delete(RevokedSession).where(RevokedSession.expires_at < utcnow()))
    await ctx.session.execute(delete(SignInToken).where(SignInToken.expires_at < cutoff))
    await ctx.session.execute(delete(OutboxEmail).where(OutboxEmail.created_at < cutoff))


every("auth.purge", timedelta(days=1))
