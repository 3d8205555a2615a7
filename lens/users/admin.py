"""People as the course team finds and changes them: the search, the admin role.

The admin's pages (lens/cohorts/people_pages.py) add what the features above know about
a person: their cohorts, groups, reading and messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import Conflict, Invalid
from lens.logging import get_logger
from lens.users.models import User

log = get_logger("lens.users")

PER_PAGE = 50
QUERY_MAX = 100


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    total: int  # every match, all pages
    page: int  # 1-based
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def check_query(text: str) -> str:
    """The search text with spaces tidied, or Invalid when it cannot be a search."""
    text = " ".join(text.split())
    if len(text) > QUERY_MAX:
        raise Invalid(f"Search for at most {QUERY_MAX} characters: part of a name or address.")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise Invalid("The search has characters no name or address has; type it again.")
    return text


def check_page(raw: str) -> int:
    raw = raw.strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise Invalid(f"The page must be a whole number from 1, not {raw!r}.")
    return int(raw)


def _spellings(text: str) -> list[str]:
    """The text in the case forms a name is usually written in.

    ILIKE folds case only where the database knows the letters: SQLite's (and
    PostgreSQL's under the C locale) only for ASCII, so "zoë" would miss "ZOË". Asking
    for the usual forms as well finds them on both.
    """
    return list(dict.fromkeys([text, text.lower(), text.upper(), text.capitalize(), text.title()]))


def _matches(text: str) -> ColumnElement[bool]:
    fields = (User.nickname, User.discord_username, User.discord_global_name, User.email)
    found: list[ColumnElement[bool]] = [
        field.icontains(spelling, autoescape=True)
        for spelling in _spellings(text)
        for field in fields
    ]
    if text.isdigit():  # an account number, or a Discord user id copied from Discord
        found.append(User.discord_id == text)
        if len(text) < 10:
            found.append(User.id == int(text))
    return or_(false(), *found)


async def search_users(session: AsyncSession, *, query: str, page: int = 1) -> UserPage:
    """People whose name, e-mail address or Discord name contains `query` (any case),
    newest first; all people when it is empty. Deleted accounts are kept (anonymous)."""
    query = check_query(query)
    where = _matches(query) if query else None
    count = select(func.count()).select_from(User)
    rows = select(User).order_by(User.created_at.desc(), User.id.desc())
    if where is not None:
        count, rows = count.where(where), rows.where(where)
    total = await session.scalar(count) or 0
    users = await session.scalars(rows.limit(PER_PAGE).offset((page - 1) * PER_PAGE))
    return UserPage(list(users), total, page, PER_PAGE)


async def set_admin(session: AsyncSession, *, user: User, is_admin: bool, by: User) -> bool:
    """Give or take the admin role; returns whether anything changed.

    Admins cannot take their own role away: Lens could be left with no admin, and a
    slip of the finger would lock the person out of the page that undoes it.
    """
    if user.deleted_at is not None:
        raise Conflict("This account was deleted; it can have no roles.")
    if not is_admin and user.id == by.id:
        raise Conflict(
            "You cannot remove your own admin role; ask another admin to do it "
            "(so Lens always keeps one)."
        )
    if user.is_admin == is_admin:
        return False
    user.is_admin = is_admin
    await session.flush()
    log.info("users.admin.changed", user=user.id, admin=is_admin, by=by.id)
    return True
