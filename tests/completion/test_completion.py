"""Completion: the rule (cohort over course over default), each participant's standing
from attendance and reading (excused is not attended, a guest visit is, a module
completed after the cohort ended counts), and the admin's, facilitator's pages and CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from lens.auth.visitors import user_actor
from lens.completion.service import rule_for, standings
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key
from lens.db.base import utcnow
from lens.meetings.models import Attendance, Meeting, MeetingGuest
from lens.users.models import User
from tests.fixtures.auth import sign_in
from tests.fixtures.cohorts import COURSE, make_cohort
from tests.fixtures.running import running


def _content(app_client):
    return app_client.app.state.content.content


async def _mark(db, group, number: int, signup, status: str) -> Meeting:
    meeting = await db.scalar(
        select(Meeting).where(Meeting.group_id == group.id, Meeting.number == number)
    )
    db.add(Attendance(meeting_id=meeting.id, signup_id=signup.id, status=status))
    await db.flush()
    return meeting


def _complete(db, signup, module) -> None:
    db.add(
        Progress(
            actor=user_actor(signup.user_id), user_id=signup.user_id, module_key=module_key(module),
            content_id="", completed_at=utcnow(), seconds=600,
        )
    )  # fmt: skip


async def test_the_rule_cohort_over_course_over_default(app_client, db) -> None:
    course = _content(app_client).courses[COURSE]
    cohort = await make_cohort(db, meetings=6)
    assert (rule_for(cohort, None).meetings, rule_for(cohort, None).source) == (4, "default")
    seven = await make_cohort(db, meetings=7)
    assert rule_for(seven, None).meetings == 5  # 14/3 rounded up
    told = replace(course, completion_meetings=3, completion_modules="all")
    assert (rule_for(cohort, told).meetings, rule_for(cohort, told).modules) == (3, "all")
    assert rule_for(cohort, replace(course, completion_meetings=20)).meetings == 6  # capped
    cohort.completion_meetings, cohort.completion_modules = 2, "none"
    rule = rule_for(cohort, told)
    assert (rule.meetings, rule.modules, rule.source) == (2, "none", "cohort")


async def test_standing_from_attendance_and_reading(app_client, db) -> None:
    content = _content(app_client)
    course = content.courses[COURSE]
    required = [m for item, m in course_modules(content, course) if not item.optional]
    w = await running(db, completion_meetings=2)
    a, b, c = w.tue_people
    await _mark(db, w.tue, 1, a, "present")
    await _mark(db, w.tue, 2, a, "late")
    await _mark(db, w.tue, 1, b, "present")
    await _mark(db, w.tue, 2, b, "excused")  # excused is not attended
    # c missed meeting 2 of their group but visited Thursday's meeting 2: it counts.
    await _mark(db, w.tue, 1, c, "present")
    thu2 = await _mark(db, w.thu, 2, c, "present")
    db.add(MeetingGuest(meeting_id=thu2.id, signup_id=c.id))
    for module in required:
        _complete(db, a, module)
        _complete(db, c, module)
    _complete(db, b, required[0])
    await db.flush()
    rule, rows = await standings(db, cohort=w.cohort, content=content)
    by = {s.row.signup.id: s for s in rows}
    assert rule.meetings == 2 and rule.modules == "required"
    assert by[a.id].complete and by[a.id].missing == []
    assert (by[b.id].attended, by[b.id].complete) == (1, False)
    assert by[b.id].missing[0] == "1 more meeting"
    assert f"{required[1].title}" in by[b.id].missing[1]
    assert by[c.id].attended == 2 and by[c.id].complete
    assert by[a.id].group.id == w.tue.id
    # Facilitators and the unplaced without attendance are not complete.
    assert w.fac_tue.id not in by and not by[w.flexible.id].complete


async def test_a_module_completed_after_the_cohort_ended_counts(app_client, db) -> None:
    content = _content(app_client)
    course = content.courses[COURSE]
    required = [m for item, m in course_modules(content, course) if not item.optional]
    w = await running(db, completion_meetings=1)
    a = w.tue_people[0]
    await _mark(db, w.tue, 1, a, "present")
    for module in required[:-1]:
        _complete(db, a, module)
    await db.flush()
    w.cohort.status = "finished"
    _, rows = await standings(db, cohort=w.cohort, content=content, signup_ids=[a.id])
    assert not rows[0].complete
    _complete(db, a, required[-1])  # weeks later
    await db.flush()
    _, rows = await standings(db, cohort=w.cohort, content=content, signup_ids=[a.id])
    assert rows[0].complete


async def test_the_admin_page_the_csv_and_the_facilitators_panel(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    a, b, _ = w.tue_people
    await _mark(db, w.tue, 1, a, "present")
    user_a = await db.get(User, a.user_id)
    user_a.nickname = "=HYPERLINK(1)"
    await db.flush()
    sign_in(app_client, w.admin)
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}/completion")
    assert page.status_code == 200
    # 5 in groups and 2 waiting; a is complete (one meeting, no modules asked).
    assert "<strong>1 of 7</strong> participants complete" in page.text
    cohort_page = await app_client.get(f"/admin/cohorts/{w.cohort.id}")
    assert f'href="/admin/cohorts/{w.cohort.id}/completion"' in cohort_page.text
    exported = await app_client.get(f"/admin/cohorts/{w.cohort.id}/completion.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:3] == ["name", "group", "meetings attended"]
    mine = next(r for r in rows if r[0] == "'=HYPERLINK(1)")  # not a formula
    assert mine[1:7] == ["Group 1", "1", "1", "0", "0", "yes"]
    # The facilitator sees their group's members only; a participant sees no panel.
    sign_in(app_client, await db.get(User, w.fac_tue.user_id))
    group_page = await app_client.get(f"/groups/{w.tue.id}")
    assert "On the way to completion" in group_page.text
    assert (await db.get(User, w.thu_people[0].user_id)).display_name not in group_page.text
    sign_in(app_client, await db.get(User, b.user_id))
    assert "On the way to completion" not in (await app_client.get(f"/groups/{w.tue.id}")).text
    assert (await app_client.get(f"/admin/cohorts/{w.cohort.id}/completion")).status_code == 403


async def test_only_the_modules_from_the_cohort(app_client, db) -> None:
    cohort = await make_cohort(db, meetings=6, completion_modules="all")
    rule = rule_for(cohort, None)
    assert (rule.meetings, rule.modules, rule.source) == (4, "all", "cohort and default")


async def test_a_cohort_name_in_any_script_downloads(app_client, db) -> None:
    w = await running(db, name="春のコホート 2027")
    sign_in(app_client, w.admin)
    exported = await app_client.get(f"/admin/cohorts/{w.cohort.id}/completion.csv")
    assert exported.status_code == 200
    assert 'filename="completion-2027.csv"' in exported.headers["content-disposition"]


async def _run_certify_jobs(db) -> None:
    from lens.completion.tasks import CERTIFY_KIND, certify
    from lens.jobs.models import Job
    from lens.jobs.registry import JobContext
    from lens.settings import Settings

    for job in await db.scalars(
        select(Job).where(Job.kind == CERTIFY_KIND, Job.status == "queued")
    ):
        ctx = JobContext(
            session=db, job_id=job.id, kind=CERTIFY_KIND, attempt=1, settings=Settings()
        )
        await certify(ctx, job.payload)
        job.status = "done"
    await db.flush()


async def test_completing_after_the_end_brings_the_certificate_by_itself(app_client, db) -> None:
    from lens.cohorts.service import set_status
    from lens.completion.models import Certificate
    from lens.courses.service import complete_section, required_sections
    from lens.meetings import attendance

    content = _content(app_client)
    course = content.courses[COURSE]
    required = [m for item, m in course_modules(content, course) if not item.optional]
    w = await running(db, completion_meetings=1)
    a, b, _ = w.tue_people
    await _mark(db, w.tue, 1, a, "present")
    for signup in (a, b):
        for module in required[:-1]:
            _complete(db, signup, module)
    _complete(db, b, required[-1])  # b read everything but missed the meeting
    await db.flush()
    await set_status(db, w.cohort, "finished")
    await _run_certify_jobs(db)

    def completion_of(signup):
        return select(Certificate).where(
            Certificate.signup_id == signup.id, Certificate.kind == "completion"
        )

    assert await db.scalar(completion_of(a)) is None and await db.scalar(completion_of(b)) is None
    # Weeks later, a reads the last module: no admin needed.
    for section in required_sections(required[-1]):
        await complete_section(
            db, actor=user_actor(a.user_id), user_id=a.user_id, module=required[-1],
            content_id=section.content_id,
        )  # fmt: skip
    await _run_certify_jobs(db)
    assert (await db.scalar(completion_of(a))).detail.startswith("attended 1 meeting")
    # The facilitator corrects meeting 1: b was there after all.
    meeting = await db.scalar(
        select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == 1)
    )
    meeting.starts_at = utcnow() - timedelta(days=30)
    facilitator = await db.get(User, w.fac_tue.user_id)
    await attendance.take(db, meeting=meeting, group=w.tue, by=facilitator, marks={b.id: "present"})
    await _run_certify_jobs(db)
    assert await db.scalar(completion_of(b)) is not None
    # A reader in no finished cohort sets nothing off.
    assert (await db.scalar(completion_of(w.tue_people[2]))) is None
