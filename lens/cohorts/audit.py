"""The audit trail of a running cohort: every change to its groups after approval (who,
when, what, why), written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import CohortChange
from lens.users.models import User


async def record(
    session: AsyncSession,
    *,
    cohort_id: int,
    actor: User | None,
    action: str,
    subject_user_id: int | None = None,
    group_ids: Iterable[int] = (),
    details: dict[str, Any] | None = None,
    reason: str | None = None,
) -> CohortChange:
    entry = CohortChange(
        cohort_id=cohort_id,
        actor_id=actor.id if actor else None,
        action=action,
        subject_user_id=subject_user_id,
        group_ids=list(dict.fromkeys(group_ids)),
        details=details or {},
        reason=(reason or "").strip()[:2000] or None,
    )
    session.add(entry)
    await session.flush()
    return entry


async def changes(
    session: AsyncSession,
    *,
    cohort_id: int | None = None,
    subject_user_id: int | None = None,
    limit: int = 100,
) -> list[CohortChange]:
    """The newest first."""
    query = select(CohortChange).order_by(CohortChange.id.desc()).limit(limit)
    if cohort_id is not None:
        query = query.where(CohortChange.cohort_id == cohort_id)
    if subject_user_id is not None:
        query = query.where(CohortChange.subject_user_id == subject_user_id)
    return list(await session.scalars(query))
