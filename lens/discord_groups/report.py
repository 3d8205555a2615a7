"""What one realization did, and what it skipped or could not do; the last one is stored
per cohort for the admin's cohort page."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.discord_groups.models import DiscordRealization, SpaceKind

KIND_NAMES = {
    SpaceKind.CATEGORY: ("category", "categories"),
    SpaceKind.TEXT: ("text channel", "text channels"),
    SpaceKind.VOICE: ("voice channel", "voice channels"),
    SpaceKind.WELCOME: ("welcome message", "welcome messages"),
    SpaceKind.EVENT: ("event", "events"),
}


@dataclass
class RealizeReport:
    """What one realization did, and what it skipped or could not do."""

    cohort_id: int
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Failures worth trying again later (Discord down, rate limited): a job re-runs.
    temporary_failures: int = 0

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def summary(self) -> str:
        """A few lines for the admin."""
        parts = []
        for verb, counts in (
            ("created", self.created),
            ("updated", self.updated),
            ("deleted", self.deleted),
        ):
            if counts:
                parts.append(f"{verb} " + ", ".join(_counted(k, n) for k, n in _ordered(counts)))
        lines = [
            f"Discord for cohort {self.cohort_id}: "
            + ("; ".join(parts) if parts else "nothing to change")
            + "."
        ]
        if self.skipped:
            lines.append(f"Skipped ({len(self.skipped)}):")
            lines += [f"- {line}" for line in self.skipped]
        if self.failed:
            lines.append(f"Failed ({len(self.failed)}):")
            lines += [f"- {line}" for line in self.failed]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": {str(k): n for k, n in self.created.items()},
            "updated": {str(k): n for k, n in self.updated.items()},
            "deleted": {str(k): n for k, n in self.deleted.items()},
            "skipped": list(self.skipped),
            "failed": list(self.failed),
            "temporary_failures": self.temporary_failures,
        }


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    order = list(KIND_NAMES)
    return sorted(counts.items(), key=lambda kv: order.index(SpaceKind(kv[0])))


def _counted(kind: str, n: int) -> str:
    one, many = KIND_NAMES[SpaceKind(kind)]
    return f"{n} {one if n == 1 else many}"


async def save_report(session: AsyncSession, report: RealizeReport, *, now: datetime) -> None:
    row = await session.get(DiscordRealization, report.cohort_id)
    if row is None:
        row = DiscordRealization(cohort_id=report.cohort_id)
        session.add(row)
    row.ran_at = now
    row.summary = report.summary()
    row.report = report.to_json()
    row.failed_steps = len(report.failed)
    await session.flush()


async def get_last_report(session: AsyncSession, *, cohort_id: int) -> DiscordRealization | None:
    """The last realization of the cohort in Discord (summary, counts, skipped, failed)."""
    return await session.get(DiscordRealization, cohort_id, populate_existing=True)


async def record_not_configured(session: AsyncSession, *, cohort_id: int, reason: str) -> None:
    """Say in the cohort's report why nothing was done in Discord."""
    report = RealizeReport(cohort_id=cohort_id)
    report.failed.append(reason)
    await save_report(session, report, now=utcnow())
