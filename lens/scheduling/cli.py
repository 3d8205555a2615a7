"""`lens cohort show` and `lens cohort group`: a cohort's groups, and grouping now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lens.cli_support import load_settings, run_with_session


def cohort_show(cohort_id: Annotated[int, typer.Argument(help="Cohort id.")]) -> None:
    """A cohort's settings, signups by status, and its groups."""
    settings = load_settings(production_check=False)
    from collections import Counter

    from lens.cohorts.models import GroupStatus
    from lens.cohorts.service import get_cohort, list_signups
    from lens.scheduling.service import get_preview

    async def work(session: Any) -> list[str]:
        c = await get_cohort(session, cohort_id)
        signups = await list_signups(session, cohort=c)
        counts = Counter(f"{r.signup.role} {r.signup.status}" for r in signups)
        status = GroupStatus.ACTIVE if c.status in ("running", "finished") else GroupStatus.DRAFT
        preview = await get_preview(session, cohort=c, status=status)
        lines = [
            f"cohort {c.id}: {c.name} ({c.course_slug}), {c.status}",
            f"  {c.meetings} weekly meetings of {c.meeting_minutes} min from {c.start_date}; "
            f"groups of {c.min_group_size}-{c.max_group_size}"
            + (" with a facilitator" if c.needs_facilitator else ""),
            "  signups: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"),
        ]
        label = "approved groups" if status is GroupStatus.ACTIVE else "preview groups"
        lines.append(f"  {label}: {len(preview.groups)}, {preview.placed} participants placed")
        for g in preview.groups:
            lead = g.facilitator.row.user.display_name if g.facilitator else "no facilitator"
            lines.append(
                f"    {g.group.name}: slot {g.group.start_slot} UTC, "
                f"{len(g.participants)} participants, {lead}"
            )
        return lines

    for line in run_with_session(settings, work):
        typer.echo(line)


def cohort_group(
    cohort_id: Annotated[int, typer.Argument(help="Cohort id.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same groups.")] = 0,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve the groups when no rule is broken.")
    ] = False,
) -> None:
    """Form groups now and print the preview (the admin page shows the same)."""
    settings = load_settings(production_check=False)
    from lens.cohorts.service import get_cohort
    from lens.scheduling import service

    async def work(session: Any) -> list[str]:
        cohort = await get_cohort(session, cohort_id)
        run = await service.request_grouping(session, cohort=cohort, by=None, seed=seed)
        built = await service.load_problem(session, cohort, seed=seed)
        typer.echo(
            f"grouping {len(built.problem.participants)} participants and "
            f"{len(built.problem.facilitators)} facilitators "
            f"(up to {built.problem.time_limit_seconds:.0f} s)...",
            err=True,
        )
        await service.run_grouping(session, run=run)
        preview = await service.get_preview(session, cohort=cohort)
        s = run.summary
        lines = [
            f"placed {s['placed']} of {s['participants']} participants in "
            f"{len(preview.groups)} groups ({s['placed_in_available']} in their 'available' "
            f"time); solver {s['solver']}, bound {s['upper_bound']}, {s['seconds']} s",
        ]
        for g in preview.groups:
            lead = g.facilitator.row.user.display_name if g.facilitator else "no facilitator"
            lines.append(
                f"  {g.group.name} at slot {g.group.start_slot} UTC: "
                f"{len(g.participants)} participants, {lead}"
            )
        for row, reason in preview.unplaced:
            lines.append(f"  not placed: {row.user.display_name}: {reason}")
        for violation in preview.violations:
            lines.append(f"  problem: {violation}")
        lines.append(f"preview saved; see it at /admin/cohorts/{cohort.id}/grouping")
        return lines

    # The preview is saved first, so a refused approval keeps it for the web page.
    for line in run_with_session(settings, work):
        typer.echo(line)
    if approve:

        async def approve_now(session: Any) -> str:
            cohort = await get_cohort(session, cohort_id)
            await service.approve(session, cohort=cohort, by=None)
            return f"approved: cohort {cohort.id} is running"

        typer.echo(run_with_session(settings, approve_now))


def register(cohort_app: typer.Typer) -> None:
    """Add `show` and `group` to `lens cohort` (made by lens/cohorts/cli.py)."""
    cohort_app.command("show")(cohort_show)
    cohort_app.command("group")(cohort_group)
