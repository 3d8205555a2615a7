"""`lens cohort`: create and list cohorts (lens/scheduling adds `show` and `group`)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

import typer

from lens.cli_support import load_settings, parse_day, run_with_session


def cohort_create(
    course: Annotated[str, typer.Option(help="Course slug, as in the content.")],
    name: Annotated[str, typer.Option(help="e.g. 'Spring 2027'.")],
    start: Annotated[str, typer.Option(help="Start date, YYYY-MM-DD.")],
    meetings: Annotated[int, typer.Option(help="Number of weekly meetings.")] = 8,
    length: Annotated[int, typer.Option(help="Meeting length in minutes: 60, 90 or 120.")] = 90,
    min_size: Annotated[int, typer.Option("--min", help="Smallest group (participants).")] = 4,
    max_size: Annotated[int, typer.Option("--max", help="Largest group (participants).")] = 8,
    no_facilitator: Annotated[
        bool, typer.Option("--no-facilitator", help="Groups meet without a facilitator.")
    ] = False,
    deadline: Annotated[
        str | None, typer.Option(help="Last day to enroll, YYYY-MM-DD (UTC).")
    ] = None,
) -> None:
    """Create a cohort, open for enrollment."""
    settings = load_settings(production_check=False)
    start_date = parse_day(start, "--start")
    last_day = parse_day(deadline, "--deadline")
    assert start_date is not None
    from lens.cohorts.service import CohortFields, create_cohort
    from lens.content.service import load_current

    fields = CohortFields(
        course_slug=course,
        name=name,
        start_date=start_date,
        meetings=meetings,
        meeting_minutes=length,
        min_group_size=min_size,
        max_group_size=max_size,
        needs_facilitator=not no_facilitator,
        enrollment_deadline=datetime.combine(last_day, time(23, 59, 59), UTC) if last_day else None,
    )

    async def work(session: Any) -> str:
        _, snapshot, content = await load_current(session)
        courses = set(content.courses) if snapshot is not None else None
        cohort = await create_cohort(session, fields, courses=courses)
        return (
            f"cohort {cohort.id} created: {cohort.name} ({cohort.course_slug}), from "
            f"{cohort.start_date}, {cohort.meetings} x {cohort.meeting_minutes} min; "
            f"enrollment at /enroll/{cohort.id}"
        )

    typer.echo(run_with_session(settings, work))


def cohort_list() -> None:
    """Every cohort with its status and signups."""
    settings = load_settings(production_check=False)
    from lens.cohorts.service import list_cohorts

    rows = run_with_session(settings, lambda session: list_cohorts(session))
    if not rows:
        typer.echo("no cohorts yet; create one with `lens cohort create`")
    for row in rows:
        c = row.cohort
        typer.echo(
            f"{c.id:>4}  {c.status:<8}  {c.start_date}  {c.name} ({c.course_slug}): "
            f"{row.participants} participants, {row.facilitators} facilitators"
        )


def register(app: typer.Typer) -> typer.Typer:
    """Add `lens cohort ...`; returns it, for lens/scheduling/cli.py to add to."""
    cohort_app = typer.Typer(help="Cohorts and grouping.", no_args_is_help=True)
    cohort_app.command("create")(cohort_create)
    cohort_app.command("list")(cohort_list)
    app.add_typer(cohort_app, name="cohort")
    return cohort_app
