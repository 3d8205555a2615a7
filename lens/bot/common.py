"""What the cogs share: replying, sign-in links, and who is asking."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import discord
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.service import BOT_CODE_LIFETIME, create_bot_code
from lens.errors import Forbidden
from lens.settings import Settings
from lens.users.models import User
from lens.users.service import get_user_by_discord_id

MAX_MESSAGE = 2000  # Discord's limit for a message's text
CODE_MINUTES = int(BOT_CODE_LIFETIME.total_seconds() // 60)
NO_MENTIONS = discord.AllowedMentions.none()


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """Cut at a line break to fit one message (lists of cohorts or rooms can be long)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 2)
    return text[: cut if cut > 0 else limit - 2].rstrip() + "\n…"


async def reply(
    interaction: discord.Interaction[Any], text: str, *, ephemeral: bool = True
) -> None:
    """Answer the command, or follow up when it was already answered or deferred.

    Names in replies never ping anyone (no allowed mentions).
    """
    text = shorten(text)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )


def discord_id_of(interaction: discord.Interaction[Any]) -> str:
    # Snowflakes are kept as text (they exceed 2**53).
    return str(interaction.user.id)


async def lens_user(session: AsyncSession, interaction: discord.Interaction[Any]) -> User | None:
    """The Lens account of whoever used the command, if they have one."""
    user = await get_user_by_discord_id(session, discord_id=discord_id_of(interaction))
    return user if user is not None and user.deleted_at is None else None


async def require_admin(
    session: AsyncSession, interaction: discord.Interaction[Any], *, to: str
) -> User:
    """The caller's Lens account if it has admin rights; Discord roles do not count."""
    user = await lens_user(session, interaction)
    if user is None or not user.is_admin:
        raise Forbidden(f"Only Lens admins can {to}.")
    return user


async def sign_in_link(
    session: AsyncSession,
    interaction: discord.Interaction[Any],
    *,
    settings: Settings,
    next_path: str,
) -> str:
    """A single-use link that signs the caller in and then opens `next_path`.

    It leads to the confirmation page (GET /auth/code), which signs in only when its
    button is pressed: a link preview fetching the address does not use the code up.
    The angle brackets stop Discord from showing a preview at all.
    """
    code = await create_bot_code(
        session,
        discord_id=discord_id_of(interaction),
        username=interaction.user.name,
        next_path=next_path,
    )
    return f"<{settings.public_url}/auth/code?{urlencode({'code': code, 'next': next_path})}>"


def plural(count: int, noun: str) -> str:
    """ "1 group", "3 groups" (the nouns the bot uses take an s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def discord_time(moment: datetime, style: str = "F") -> str:
    """A timestamp Discord shows in each reader's own time zone and language."""
    return f"<t:{int(moment.timestamp())}:{style}>"
