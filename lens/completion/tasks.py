"""Issuing a finished cohort's certificates: everyone complete then, and its
facilitators (lens/completion/certificates.py)."""

from __future__ import annotations

from typing import Any

from lens.cohorts.models import Cohort
from lens.completion.certificates import issue
from lens.content.service import load_current
from lens.jobs.registry import JobContext, job
from lens.logging import get_logger

CERTIFY_KIND = "completion.certify"
log = get_logger("lens.completion")


@job(CERTIFY_KIND, max_attempts=3)
async def certify(ctx: JobContext, payload: dict[str, Any]) -> None:
    cohort = await ctx.session.get(Cohort, payload["cohort_id"])
    if cohort is None:
        return
    _, _, content = await load_current(ctx.session)
    course = content.courses.get(cohort.course_slug)
    made = await issue(
        ctx.session,
        cohort=cohort,
        content=content,
        course_title=course.title if course else cohort.course_slug,
        by=None,
    )
    log.info("completion.certified", cohort=cohort.id, issued=len(made))
