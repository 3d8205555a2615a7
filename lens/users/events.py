"""What happens to a person's account that features above care about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiscordAccountChanged:
    """The person's Discord account was linked, unlinked or replaced, or their account
    was deleted: what they may see on the Discord server changes (lens/discord_groups)."""

    user_id: int
