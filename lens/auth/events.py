"""What happens at sign-in that features above care about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisitorSignedIn:
    """Someone who read as a visitor (`a:<visitor_id>`) signed in as `user_id`: what
    they did as a visitor (reading progress, tutor conversations) joins the account."""

    visitor_id: str
    user_id: int
