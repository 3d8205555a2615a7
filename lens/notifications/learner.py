"""At send time, the messages of a learner's way through a cohort: to someone marked
absent at two meetings of their group in a row (missed_meetings: when the next one is,
and what they can do if the time no longer suits them; dropped if a mark was changed
since), the news of a certificate (certificate_issued; dropped if revoked since), and where a
participant ended when the cohort finished (cohort_finished; not for those whose
certificate message says it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.completion.models import Certificate, CertificateKind
from lens.completion.service import standings
from lens.db.base import utcnow
from lens.meetings import attendance
from lens.meetings.models import Meeting
from lens.notifications.context import Drop, Prepared, Site, _course_title, builder
from lens.notifications.models import Delivery
from lens.users.models import User
from lens.web.messages import local_time


@builder("missed_meetings")
async def _missed_meetings(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    meeting = await session.get(Meeting, ctx["meeting_id"])
    signup = await session.get(Signup, ctx["signup_id"])
    if meeting is None or signup is None or signup.user_id != user.id:
        raise Drop("the meeting or the signup is gone")
    if not await attendance.missed_twice(session, meeting=meeting, signup_ids=[signup.id]):
        raise Drop("the attendance was corrected since")
    group = await session.get(Group, meeting.group_id)
    cohort = await session.get(Cohort, signup.cohort_id)
    assert group is not None and cohort is not None
    member = await session.scalar(
        select(GroupMember.signup_id).where(
            GroupMember.group_id == group.id, GroupMember.signup_id == signup.id
        )
    )
    if member is None:
        raise Drop("no longer in the group")
    following = await session.scalar(
        select(Meeting)
        .where(
            Meeting.group_id == group.id,
            Meeting.status == "scheduled",
            Meeting.starts_at > utcnow(),
        )
        .order_by(Meeting.starts_at)
        .limit(1)
    )
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "group_name": group.name,
            "next_meeting": local_time(following.starts_at, user.timezone or "UTC")
            if following
            else None,
            "group_url": f"{site.base_url}/groups/{group.id}",
            "options_url": f"{site.base_url}/cohorts/{cohort.id}",
        }
    )


@builder("certificate_issued")
async def _certificate_issued(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    cert = await session.get(Certificate, delivery.context["certificate_id"])
    if cert is None or cert.user_id != user.id:
        raise Drop("the certificate is gone")
    if cert.revoked_at is not None:
        raise Drop("the certificate was revoked")
    return Prepared(
        {
            **base,
            "course_title": cert.course_title,
            "cohort_name": cert.cohort_name,
            "facilitation": cert.kind == CertificateKind.FACILITATION,
            "certificate_url": f"{site.base_url}/certificates/{cert.token}",
        }
    )


@builder("cohort_finished")
async def _cohort_finished(
    session: AsyncSession, delivery: Delivery, user: User, site: Site, base: dict[str, Any]
) -> Prepared:
    ctx = delivery.context
    cohort = await session.get(Cohort, ctx["cohort_id"])
    if cohort is None:
        raise Drop("the cohort is gone")
    certified = await session.scalar(
        select(Certificate.id).where(
            Certificate.signup_id == ctx["signup_id"], Certificate.revoked_at.is_(None)
        )
    )
    if certified is not None:
        raise Drop("told by the certificate's own message")
    _, rows = await standings(
        session, cohort=cohort, content=site.content, signup_ids=[ctx["signup_id"]]
    )
    if not rows or rows[0].row.user.id != user.id:
        raise Drop("no longer in the cohort")
    mine = rows[0]
    return Prepared(
        {
            **base,
            "course_title": _course_title(site, cohort),
            "cohort_name": cohort.name,
            "attended": mine.attended,
            "meetings_needed": mine.meetings_needed,
            "complete": mine.complete,
            "missing": mine.missing,
            "my_course_url": f"{site.base_url}/my-course",
        }
    )
