"""Grouping a cohort's signups, the preview an admin edits, approval and late joiners."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.errors import Conflict, Invalid
from lens.scheduling import edits, joiners, service
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.users import make_user

TUESDAY, THURSDAY = 1, 3


async def _cohort_with_two_evenings(db) -> tuple[Cohort, list[Signup], list[Signup]]:
    """Five people free on Tuesday evening (Berlin), four on Thursday (New York); one
    facilitator for each evening; one person who can only make Sunday at dawn."""
    cohort = await make_cohort(db, min_group_size=3, max_group_size=5)
    tuesday = [
        await make_signup(db, cohort, timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2))
        for _ in range(5)
    ]
    thursday = [
        await make_signup(
            db, cohort, timezone="America/New_York", available=evening(THURSDAY, 18, 2)
        )
        for _ in range(4)
    ]
    await make_signup(db, cohort, timezone="UTC", available=evening(6, 5, 1))
    facilitators = [
        await make_signup(
            db,
            cohort,
            role="facilitator",
            timezone="Europe/Berlin",
            available=evening(TUESDAY, 19, 2),
        ),
        await make_signup(
            db,
            cohort,
            role="facilitator",
            timezone="America/New_York",
            available=evening(THURSDAY, 18, 2),
        ),
    ]
    return cohort, tuesday + thursday, facilitators


async def _run(db, cohort: Cohort):
    run = await service.request_grouping(db, cohort=cohort, by=None)
    await service.run_grouping(db, run=run)
    return await service.get_preview(db, cohort=cohort)


async def test_groups_are_formed_at_times_everyone_can_make(db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    assert preview.violations == []
    assert sorted(len(g.participants) for g in preview.groups) == [4, 5]
    assert all(g.facilitator is not None for g in preview.groups)
    # Tuesday 19:00 Berlin in January is 18:00 UTC; each member sees their own time.
    tuesday = next(g for g in preview.groups if len(g.participants) == 5)
    assert tuesday.group.start_slot in range(TUESDAY * 48 + 36, TUESDAY * 48 + 39)
    assert all(m.local.endswith("Europe/Berlin") for m in tuesday.participants)
    ((_, reason),) = preview.unplaced
    assert "shared by enough other participants" in reason
    assert preview.run.summary["placed"] == 9
    assert max(preview.heat_participants) == 5


async def test_the_page_says_when_no_grouping_places_more(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    await _run(db, cohort)
    sign_in(app_client, await make_user(db, is_admin=True))
    page = await app_client.get(f"/admin/cohorts/{cohort.id}/grouping")
    text = " ".join(page.text.split())
    assert "<strong>9</strong> of 10 participants — the most possible" in text
    assert "proven: no grouping places more" in text
    assert "could be placed" not in text
    # The one left out can only make Sunday at dawn, alone.
    assert (
        "no time they can make is shared by enough other participants."
        " No grouping could place them." in text
    )


async def test_the_page_says_what_would_place_those_left_out(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    # Three more, free on Wednesday from 09:00 UTC, when no facilitator is.
    for _ in range(3):
        await make_signup(db, cohort, timezone="UTC", available=evening(2, 9, 2))
    await _run(db, cohort)
    sign_in(app_client, await make_user(db, is_admin=True))
    page = await app_client.get(f"/admin/cohorts/{cohort.id}/grouping")
    text = " ".join(page.text.split())
    assert (
        text.count(
            "no facilitator can meet at any time that works for them. No grouping could place"
            " them. A facilitator free at Wed 09:00 UTC would lead a new group of 3 with them."
        )
        == 3
    )


async def test_a_move_that_breaks_a_rule_is_shown_and_blocks_approval(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    tuesday = next(g for g in preview.groups if len(g.participants) == 5)
    thursday = next(g for g in preview.groups if g is not tuesday)
    mover = tuesday.participants[0].row
    sign_in(app_client, await make_user(db, is_admin=True))
    moved = await app_client.post(
        f"/admin/cohorts/{cohort.id}/grouping/move",
        data={"signup": mover.signup.id, "to": str(thursday.group.number)},
        headers=ORIGIN,
    )
    assert moved.status_code == 303
    page = await app_client.get(f"/admin/cohorts/{cohort.id}/grouping")
    assert "cannot make this time" in page.text
    assert f"{mover.user.display_name}: " in page.text and "to fix before approving" in page.text
    refused = await app_client.post(
        f"/admin/cohorts/{cohort.id}/grouping/approve", data={"confirm": "yes"}, headers=ORIGIN
    )
    assert refused.status_code == 409 and "Fix the 1 problem" in refused.text
    # Move them back: valid again, and approval goes through.
    await app_client.post(
        f"/admin/cohorts/{cohort.id}/grouping/move",
        data={"signup": mover.signup.id, "to": f"Group {tuesday.group.number}"},
        headers=ORIGIN,
    )
    unconfirmed = await app_client.post(
        f"/admin/cohorts/{cohort.id}/grouping/approve", headers=ORIGIN
    )
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    approved = await app_client.post(
        f"/admin/cohorts/{cohort.id}/grouping/approve", data={"confirm": "yes"}, headers=ORIGIN
    )
    assert approved.status_code == 303
    db.expire_all()  # the app changed these rows through its own session
    await db.refresh(cohort)
    assert cohort.status == "running"
    statuses = sorted(s.status for s in await db.scalars(select(Signup)))
    assert statuses.count("grouped") == 11 and statuses.count("unplaced") == 1
    groups = list(await db.scalars(select(Group)))
    assert {g.status for g in groups} == {"active"}


async def test_merge_split_and_facilitator_swap(db) -> None:
    cohort, _, facilitators = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    tuesday = next(g for g in preview.groups if len(g.participants) == 5)
    thursday = next(g for g in preview.groups if g is not tuesday)

    half = await edits.split_group(db, cohort=cohort, group_id=tuesday.group.id)
    preview = await service.get_preview(db, cohort=cohort)
    assert sorted(len(g.participants) for g in preview.groups) == [2, 3, 4]
    # No free facilitator at that time, and two participants is under the minimum of 3.
    assert any("fewer than the minimum 3" in v for v in preview.violations)
    assert any(g.group.id == half.id and g.facilitator is None for g in preview.groups)

    await edits.merge_groups(db, cohort=cohort, into=tuesday.group.id, other=half.id)
    preview = await service.get_preview(db, cohort=cohort)
    assert preview.violations == [] and len(preview.groups) == 2
    assert [g.group.number for g in preview.groups] == [1, 2]

    # The Thursday facilitator cannot make Tuesday evening: the check says so.
    await edits.set_facilitator(
        db, cohort=cohort, group_id=tuesday.group.id, signup_id=facilitators[1].id
    )
    preview = await service.get_preview(db, cohort=cohort)
    name = (await db.get(User, facilitators[1].user_id)).display_name
    assert len(preview.violations) == 2
    assert preview.violations[0].startswith(f"{name}: ")
    assert "is not available for the whole meeting" in preview.violations[0]
    assert "leads 2 groups" in preview.violations[1]
    assert thursday.group.id in {g.group.id for g in preview.groups}


async def test_a_late_joiner_is_offered_groups_with_room_they_can_make(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    await _run(db, cohort)
    await service.approve(db, cohort=cohort, by=None)
    late = await make_user(db, nickname="Late")
    signup = await make_signup(
        db, cohort, user=late, timezone="America/Chicago", available=evening(THURSDAY, 17, 2)
    )
    sign_in(app_client, late)
    page = await app_client.get(f"/cohorts/{cohort.id}")
    assert "Groups with room at a time you can make" in page.text
    (offer,) = await joiners.openings(db, cohort=cohort, signup=signup)
    assert offer.participants == 4 and offer.local.startswith("Thursday 17:")
    full = await db.scalar(
        select(Group).where(Group.cohort_id == cohort.id, Group.id != offer.group.id)
    )
    refused = await app_client.post(
        f"/cohorts/{cohort.id}/join", data={"group": full.id}, headers=ORIGIN
    )
    assert refused.status_code == 409 and "full or meets at a time" in refused.text
    joined = await app_client.post(
        f"/cohorts/{cohort.id}/join", data={"group": offer.group.id}, headers=ORIGIN
    )
    assert joined.status_code == 303
    page = await app_client.get(f"/cohorts/{cohort.id}")
    assert "Meets weekly on" in page.text and "Late" in page.text
    members = list(
        await db.scalars(select(GroupMember).where(GroupMember.group_id == offer.group.id))
    )
    assert len(members) == 6  # five participants and the facilitator


async def test_the_grouping_job_runs_a_queued_run(db) -> None:
    from lens.jobs.registry import JobContext
    from lens.scheduling.tasks import group_cohort
    from lens.settings import Settings

    cohort, _, _ = await _cohort_with_two_evenings(db)
    run = await service.request_grouping(db, cohort=cohort, by=None)
    ctx = JobContext(session=db, job_id=1, kind="scheduling.group", attempt=1, settings=Settings())
    await group_cohort(ctx, {"run_id": run.id})
    assert run.status == "done" and run.summary["placed"] == 9
    # A run queued before the cohort started running fails with the reason, saved.
    late = await service.request_grouping(db, cohort=cohort, by=None)
    cohort.status = "running"
    await group_cohort(ctx, {"run_id": late.id})
    assert late.status == "failed" and "already approved" in late.error
    with pytest.raises(Conflict):
        await service.request_grouping(db, cohort=cohort, by=None)


async def test_no_second_group_and_no_group_after_withdrawing(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    await _run(db, cohort)
    await service.approve(db, cohort=cohort, by=None)
    grouped = await db.scalar(
        select(Signup).where(Signup.status == "grouped", Signup.role == "participant")
    )
    other = await db.scalar(
        select(Group).where(
            Group.id.not_in(select(GroupMember.group_id).where(GroupMember.signup_id == grouped.id))
        )
    )
    with pytest.raises(Conflict, match="already in a group"):
        await joiners.join_group(db, cohort=cohort, signup=grouped, group_id=other.id)
    assert await joiners.openings(db, cohort=cohort, signup=grouped) == []
    late = await make_signup(db, cohort, status="withdrawn", available=evening(TUESDAY, 19, 2))
    assert await joiners.openings(db, cohort=cohort, signup=late) == []
    with pytest.raises(Conflict, match="Enroll again"):
        await joiners.join_group(db, cohort=cohort, signup=late, group_id=other.id)


async def test_withdrawing_leaves_the_preview_and_a_stale_member_blocks_approval(db) -> None:
    from lens.cohorts.service import withdraw

    cohort, _, _ = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    leaver = preview.groups[0].participants[0].row.signup
    await withdraw(db, cohort=cohort, signup=leaver)
    preview = await service.get_preview(db, cohort=cohort)
    assert leaver.id not in {m.row.signup.id for g in preview.groups for m in g.participants}
    # Someone back to a draft while still in the preview (e.g. a re-started wizard).
    stale = preview.groups[0].participants[0].row.signup
    stale.status = "draft"
    await db.flush()
    preview = await service.get_preview(db, cohort=cohort)
    assert any("no longer enrolled" in v for v in preview.violations)
    with pytest.raises(Conflict, match="Fix the"):
        await service.approve(db, cohort=cohort, by=None)


async def test_one_run_at_a_time_and_seeds_in_range(db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    await service.request_grouping(db, cohort=cohort, by=None)
    with pytest.raises(Conflict, match="already under way"):
        await service.request_grouping(db, cohort=cohort, by=None)
    with pytest.raises(Conflict, match="under way"):
        await service.approve(db, cohort=cohort, by=None)
    other = await make_cohort(db)
    with pytest.raises(Invalid, match="seed"):
        await service.request_grouping(db, cohort=other, by=None, seed=2**40)


async def test_a_running_cohort_keeps_its_schedule(app_client, db) -> None:
    cohort = await make_cohort(db, status="running")
    sign_in(app_client, await make_user(db, is_admin=True))
    form = {
        "course_slug": cohort.course_slug,
        "name": "Renamed",
        "start_date": "2027-06-07",
        "meetings": str(cohort.meetings),
        "meeting_minutes": str(cohort.meeting_minutes),
        "min_group_size": "2",
        "max_group_size": "4",
        "needs_facilitator": "true",
    }
    moved = await app_client.post(f"/admin/cohorts/{cohort.id}", data=form, headers=ORIGIN)
    assert moved.status_code == 422 and "can no longer change" in moved.text
    form["start_date"] = cohort.start_date.isoformat()
    renamed = await app_client.post(f"/admin/cohorts/{cohort.id}", data=form, headers=ORIGIN)
    assert renamed.status_code == 303


async def test_typed_group_numbers_are_checked(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    someone = preview.groups[0].participants[0].row.signup
    sign_in(app_client, await make_user(db, is_admin=True))
    url = f"/admin/cohorts/{cohort.id}/grouping/move"
    for typed, fix in (("seven", "not a group number"), ("9", "There is no group 9")):
        response = await app_client.post(
            url, data={"signup": someone.id, "to": typed}, headers=ORIGIN
        )
        assert response.status_code == 422 and fix in response.text
    out = await app_client.post(url, data={"signup": someone.id, "to": "0"}, headers=ORIGIN)
    assert out.status_code == 303
    page = await app_client.get(f"/admin/cohorts/{cohort.id}/grouping")
    assert "moved out of the groups by hand" in page.text


async def test_edits_choose_from_lists_that_say_what_fits(app_client, db) -> None:
    cohort, _, _ = await _cohort_with_two_evenings(db)
    preview = await _run(db, cohort)
    tuesday = next(g for g in preview.groups if len(g.participants) == 5)
    mover = tuesday.participants[0].row
    sign_in(app_client, await make_user(db, is_admin=True))
    base = f"/admin/cohorts/{cohort.id}/grouping"
    page = await app_client.get(f"{base}/move", params={"signup": mover.signup.id})
    assert page.status_code == 200 and f"Move {mover.user.display_name}" in page.text
    assert page.text.count("cannot make this time") == 1  # the Thursday group
    assert "(now)" in page.text and "Out of every group" in page.text
    lead = await app_client.get(f"{base}/facilitator", params={"group": tuesday.group.id})
    assert "leads Group" in lead.text and "up to 1 group" in lead.text
    assert "at capacity" in lead.text  # the other evening's facilitator leads their own
    merge = await app_client.get(f"{base}/merge", params={"group": tuesday.group.id})
    assert "another time: check who can make it" in merge.text
    gone = await app_client.get(f"{base}/move", params={"signup": 10**9})
    assert gone.status_code == 404 and "not waiting for a group" in gone.text
    # The page links there instead of asking for typed numbers.
    preview_page = await app_client.get(base)
    assert f"{base}/move?signup={mover.signup.id}" in preview_page.text
    assert 'list="group-numbers"' not in preview_page.text


async def test_people_left_out_for_size_are_shown_what_a_smaller_minimum_would_do(
    app_client, db
) -> None:
    cohort = await make_cohort(db, min_group_size=3, max_group_size=5, needs_facilitator=False)
    for _ in range(3):
        await make_signup(db, cohort, timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2))
    for _ in range(2):
        await make_signup(db, cohort, timezone="UTC", available=evening(THURSDAY, 9, 2))
    preview = await _run(db, cohort)
    assert preview.run.summary["smaller_min"] == {"min": 2, "more": 2}
    sign_in(app_client, await make_user(db, is_admin=True))
    page = await app_client.get(f"/admin/cohorts/{cohort.id}/grouping")
    assert "With a minimum group size of 2, 2 more participants would be placed" in page.text
    # Nobody left out for size: no suggestion.
    other = await make_cohort(db, min_group_size=2, max_group_size=5, needs_facilitator=False)
    for _ in range(3):
        await make_signup(db, other, timezone="UTC", available=evening(TUESDAY, 9, 2))
    assert (await _run(db, other)).run.summary["smaller_min"] is None
