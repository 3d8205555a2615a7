"""Changing a running cohort's groups: add, move, remove, swap or stand-in facilitator;
what each checks, what it sets off (messages, calendars, Discord, the change log), who
may do it, and two admins at once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select

from lens.cohorts.models import Cohort, CohortChange, Group, GroupMember, Signup
from lens.db.engine import unit_of_work
from lens.errors import Conflict, Invalid, NotFound
from lens.jobs.models import Job
from lens.meetings.models import Meeting
from lens.notifications.models import Delivery
from lens.scheduling import changes, service
from lens.scheduling.changes import Ask
from lens.scheduling.joiners import join_group
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.running import (
    THU,
    THU_23_UTC,
    TUE,
    TUE_18_UTC,
    TUESDAY,
    World,
    add_group,
    running,
)
from tests.fixtures.users import make_user


async def _do(db, w: World, ask: Ask, reason: str = "") -> changes.Plan:
    planned = await changes.plan(db, cohort=w.cohort, ask=ask)
    return await changes.apply(
        db, cohort_id=w.cohort.id, ask=ask, token=planned.token, actor=w.admin, reason=reason
    )


async def _members(db, group: Group) -> dict[int, str]:
    rows = await db.execute(
        select(GroupMember.signup_id, GroupMember.role).where(GroupMember.group_id == group.id)
    )
    return dict(rows.all())


async def _user_id(db, signup: Signup) -> int:
    return signup.user_id


async def _deliveries(db, kind: str) -> list[Delivery]:
    return list(await db.scalars(select(Delivery).where(Delivery.kind == kind)))


async def _jobs(db, kind: str) -> list[Job]:
    return list(await db.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


# -- the approved groups page ------------------------------------------------------------


async def test_the_approved_page_lists_members_and_only_real_problems(app_client, db) -> None:
    w = await running(db)
    sign_in(app_client, w.admin)
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}/grouping")
    assert page.status_code == 200
    assert "no longer enrolled" not in page.text and "problem" not in page.text
    preview = await service.get_preview(db, cohort=w.cohort, status="active")
    assert preview.violations == []
    assert [len(g.participants) for g in preview.groups] == [3, 2]
    # The heat map counts the cohort's signups, grouped or not.
    assert max(preview.heat_participants) >= 4  # three on Tuesday and the flexible one
    assert all(m.local.startswith("Tue 19:00") for m in preview.groups[0].participants)
    assert {row.signup.id for row, _ in preview.unplaced} == {w.flexible.id, w.sunday.id}
    # A real problem is still shown: someone whose availability no longer fits.
    w.tue_people[0].availability = {"available": THU, "if_needed": []}
    await db.flush()
    preview = await service.get_preview(db, cohort=w.cohort, status="active")
    name = (await db.get(User, w.tue_people[0].user_id)).display_name
    assert len(preview.violations) == 1 and preview.violations[0].startswith(name)
    assert preview.groups[0].violations == preview.violations


# -- add, move, remove ------------------------------------------------------------------


async def test_adding_an_unplaced_person_tells_them_and_the_facilitator(db) -> None:
    w = await running(db)
    plan = await _do(db, w, Ask(changes.ADD, w.flexible.id, w.thu.id), reason="asked by e-mail")
    assert plan.warnings == [] and plan.problems == []
    assert (await _members(db, w.thu))[w.flexible.id] == "participant"
    assert w.flexible.status == "grouped" and w.flexible.unplaced_reason is None
    (entry,) = await db.scalars(select(CohortChange))
    assert (entry.action, entry.actor_id, entry.subject_user_id) == (
        "member.add",
        w.admin.id,
        w.flexible.user_id,
    )
    assert entry.group_ids == [w.thu.id] and entry.reason == "asked by e-mail"
    # The newcomer: the group message and reminders (a job); the facilitator: who came.
    (announce,) = await _jobs(db, "meetings.announce")
    assert announce.payload == {
        "group_id": w.thu.id,
        "user_ids": [w.flexible.user_id],
        "message": True,
    }
    roster = await _deliveries(db, "roster_changed")
    assert {(d.user_id, d.channel) for d in roster} == {
        (w.fac_thu.user_id, "email"),
        (w.fac_thu.user_id, "discord"),
    }
    assert await _deliveries(db, "membership_changed") == []
    # Calendar events of the group's meetings ahead; Discord access.
    syncs = await _jobs(db, "meetings.calendar_sync")
    meetings = await db.scalar(select(func.count()).where(Meeting.group_id == w.thu.id))
    assert len(syncs) == meetings
    assert len(await _jobs(db, "discord.realize")) == 1


async def test_moving_a_member_tells_everyone_once(db) -> None:
    w = await running(db, max_group_size=4)
    mover = w.thu_people[0]
    # Make them able to come on Tuesdays (Berlin evening = New York afternoon).
    mover.availability = {"available": [*THU, *evening(TUESDAY, 13, 2)], "if_needed": []}
    plan = await _do(db, w, Ask(changes.MOVE, mover.id, w.tue.id))
    assert plan.source.id == w.thu.id and plan.target.id == w.tue.id
    assert "Group 2 will have 1 participant, fewer than the cohort's minimum of 2." in plan.warnings
    assert mover.id not in await _members(db, w.thu)
    assert (await _members(db, w.tue))[mover.id] == "participant"
    moved = await _deliveries(db, "membership_changed")
    assert {(d.user_id, d.channel) for d in moved} == {
        (mover.user_id, "email"),
        (mover.user_id, "discord"),
    }
    assert moved[0].context["left_group_id"] == w.thu.id
    assert moved[0].context["joined_group_id"] == w.tue.id
    # Both facilitators, each once per channel.
    roster = await _deliveries(db, "roster_changed")
    assert sorted((d.user_id, d.context["joined"]) for d in roster) == sorted(
        [(w.fac_thu.user_id, False)] * 2 + [(w.fac_tue.user_id, True)] * 2
    )
    # Reminders for the new group, without a second group message.
    (announce,) = await _jobs(db, "meetings.announce")
    assert announce.payload["message"] is False


async def test_removing_a_member_leaves_them_enrolled_and_unplaced(db) -> None:
    w = await running(db)
    leaver = w.tue_people[1]
    await _do(db, w, Ask(changes.REMOVE, leaver.id))
    assert leaver.id not in await _members(db, w.tue)
    assert (leaver.status, leaver.unplaced_reason) == ("unplaced", "removed")
    (told,) = {d.context["action"] for d in await _deliveries(db, "membership_changed")}
    assert told == "member.remove"
    preview = await service.get_preview(db, cohort=w.cohort, status="active")
    assert dict((r.signup.id, reason) for r, reason in preview.unplaced)[leaver.id] == (
        "taken out of their group by an admin"
    )
    # Back in: another change, told again (not deduplicated away).
    await _do(db, w, Ask(changes.ADD, leaver.id, w.tue.id))
    assert leaver.status == "grouped"
    assert len(await _jobs(db, "meetings.announce")) == 1
    assert len(await _deliveries(db, "roster_changed")) == 4


@pytest.mark.parametrize(
    ("who", "where", "action", "fix"),
    [
        ("flexible", "tue", changes.ADD, "Group 1 is full (3 of at most 3 participants)"),
        ("sunday", "thu", changes.ADD, "cannot make 6 meetings of Group 2"),
        ("tue0", "tue", changes.MOVE, "is already in Group 1"),
        ("tue0", "thu", changes.ADD, "is already in Group 1; move them instead"),
        ("flexible", None, changes.REMOVE, "is in no group now"),
        ("thu0", "tue", changes.MOVE, "Group 1 is full"),
    ],
)
async def test_a_change_that_breaks_a_rule_is_refused_and_changes_nothing(
    db, who, where, action, fix
) -> None:
    w = await running(db)
    people = {
        "flexible": w.flexible,
        "sunday": w.sunday,
        "tue0": w.tue_people[0],
        "thu0": w.thu_people[0],
    }
    groups = {"tue": w.tue, "thu": w.thu, None: None}
    signup, group = people[who], groups[where]
    before = (await _members(db, w.tue), await _members(db, w.thu), signup.status)
    ask = Ask(action, signup.id, group.id if group else None)
    planned = await changes.plan(db, cohort=w.cohort, ask=ask)
    assert not planned.allowed and any(fix in p for p in planned.problems), planned.problems
    with pytest.raises(Conflict, match="Nothing was changed"):
        await changes.apply(db, cohort_id=w.cohort.id, ask=ask, token=planned.token, actor=w.admin)
    assert (await _members(db, w.tue), await _members(db, w.thu), signup.status) == before
    assert await db.scalar(select(func.count()).select_from(CohortChange)) == 0
    assert await db.scalar(select(func.count()).select_from(Delivery)) == 0


async def test_unknown_ids_and_the_wrong_cohort_state(db) -> None:
    w = await running(db)
    with pytest.raises(NotFound, match="not in this cohort"):
        await changes.plan(db, cohort=w.cohort, ask=Ask(changes.ADD, 10**9, w.tue.id))
    with pytest.raises(NotFound, match="not one of this cohort's groups"):
        await changes.plan(db, cohort=w.cohort, ask=Ask(changes.ADD, w.flexible.id, 10**9))
    with pytest.raises(Invalid, match="is a facilitator"):
        await changes.plan(db, cohort=w.cohort, ask=Ask(changes.MOVE, w.fac_tue.id, w.thu.id))
    with pytest.raises(Invalid, match="only facilitators lead"):
        await changes.plan(
            db, cohort=w.cohort, ask=Ask(changes.FACILITATOR, w.flexible.id, w.thu.id)
        )
    other = await make_cohort(db, status="closed")
    with pytest.raises(Conflict, match="edit the grouping preview"):
        await changes.plan(db, cohort=other, ask=Ask(changes.ADD, w.flexible.id, w.thu.id))


async def test_a_stale_form_is_refused(db) -> None:
    w = await running(db, max_group_size=4)
    ask = Ask(changes.ADD, w.flexible.id, w.tue.id)
    seen = await changes.plan(db, cohort=w.cohort, ask=ask)
    await _do(db, w, Ask(changes.ADD, w.flexible.id, w.thu.id))  # another admin, first
    with pytest.raises(Conflict, match="changed since this page was shown"):
        await changes.apply(db, cohort_id=w.cohort.id, ask=ask, token=seen.token, actor=w.admin)
    assert w.flexible.id not in await _members(db, w.tue)
    assert await db.scalar(select(func.count()).select_from(CohortChange)) == 1


async def test_two_admins_moving_the_same_member_at_once(committing_sessionmaker) -> None:
    """Both confirm a plan made on the same state, in two transactions at once: one
    change is made, the other is told and changes nothing."""
    async with unit_of_work(committing_sessionmaker) as db:
        w = await running(db, max_group_size=4)
        mover = w.flexible
        asks = [Ask(changes.ADD, mover.id, w.tue.id), Ask(changes.ADD, mover.id, w.thu.id)]
        tokens = [(await changes.plan(db, cohort=w.cohort, ask=a)).token for a in asks]
        admins = [w.admin, await make_user(db, is_admin=True)]
        ids = (w.cohort.id, mover.id, w.tue.id, w.thu.id)

    async def confirm(i: int) -> str:
        try:
            async with unit_of_work(committing_sessionmaker) as session:
                actor = await session.get(User, admins[i].id)
                await changes.apply(
                    session, cohort_id=ids[0], ask=asks[i], token=tokens[i], actor=actor
                )
            return "done"
        except Conflict as exc:
            return exc.message

    outcomes = await asyncio.gather(confirm(0), confirm(1))
    assert sorted(o == "done" for o in outcomes) == [False, True], outcomes
    refused = next(o for o in outcomes if o != "done")
    assert "nothing was changed" in refused.lower()
    async with committing_sessionmaker() as db:
        places = list(
            await db.scalars(select(GroupMember.group_id).where(GroupMember.signup_id == ids[1]))
        )
        assert len(places) == 1 and places[0] in ids[2:]
        assert await db.scalar(select(func.count()).select_from(CohortChange)) == 1


async def test_a_late_joiner_and_an_admin_take_the_last_seat_at_once(
    committing_sessionmaker,
) -> None:
    """Group 2 has one seat left: a person joins it from their cohort page while an admin
    adds someone else. One of the two gets the seat; the group is never over its size."""
    async with unit_of_work(committing_sessionmaker) as db:
        w = await running(db)
        other = await make_signup(
            db, w.cohort, timezone="America/New_York", available=THU, status="unplaced"
        )
        ask = Ask(changes.ADD, other.id, w.thu.id)
        token = (await changes.plan(db, cohort=w.cohort, ask=ask)).token
        ids = (w.cohort.id, w.flexible.id, w.thu.id, w.admin.id)

    async def admin_adds() -> str:
        try:
            async with unit_of_work(committing_sessionmaker) as session:
                actor = await session.get(User, ids[3])
                await changes.apply(session, cohort_id=ids[0], ask=ask, token=token, actor=actor)
            return "admin"
        except Conflict as exc:
            return exc.message

    async def joins() -> str:
        try:
            async with unit_of_work(committing_sessionmaker) as session:
                cohort = await session.get(Cohort, ids[0])
                signup = await session.get(Signup, ids[1])
                await join_group(session, cohort=cohort, signup=signup, group_id=ids[2])
            return "joined"
        except Conflict as exc:
            return exc.message

    outcomes = await asyncio.gather(admin_adds(), joins())
    assert sum(o in ("admin", "joined") for o in outcomes) == 1, outcomes
    async with committing_sessionmaker() as db:
        seated = await db.scalar(
            select(func.count())
            .select_from(GroupMember)
            .where(GroupMember.group_id == ids[2], GroupMember.role == "participant")
        )
        assert seated == 3


# -- facilitators ------------------------------------------------------------------------


async def test_a_new_facilitator_for_good(db) -> None:
    w = await running(db)
    busy = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.FACILITATOR, w.fac_tue.id, w.thu.id)
    )
    assert any("already leads Group 1" in p for p in busy.problems)
    await _do(db, w, Ask(changes.FACILITATOR, w.fac_free.id, w.tue.id))
    assert (await _members(db, w.tue))[w.fac_free.id] == "facilitator"
    assert w.fac_tue.id not in await _members(db, w.tue)
    assert (w.fac_tue.status, w.fac_tue.unplaced_reason) == ("unplaced", "replaced")
    told = {d.user_id for d in await _deliveries(db, "facilitator_changed")}
    members = {s.user_id for s in w.tue_people}
    assert told == members | {w.fac_tue.user_id, w.fac_free.user_id}
    (announce,) = await _jobs(db, "meetings.announce")
    assert announce.payload["user_ids"] == [w.fac_free.user_id]


async def test_a_stand_in_for_one_meeting(db) -> None:
    w = await running(db)
    ask = Ask(changes.SUBSTITUTE, w.fac_free.id, w.thu.id, 3)
    await _do(db, w, ask)
    meeting = await db.scalar(
        select(Meeting).where(Meeting.group_id == w.thu.id, Meeting.number == 3)
    )
    assert meeting.substitute_signup_id == w.fac_free.id and meeting.sequence == 1
    assert (await _members(db, w.thu))[w.fac_thu.id] == "facilitator"  # still theirs
    told = await _deliveries(db, "facilitator_changed")
    assert {d.user_id for d in told} == {
        *(s.user_id for s in w.thu_people),
        w.fac_thu.user_id,
        w.fac_free.user_id,
    }
    assert {d.context["meeting_id"] for d in told} == {meeting.id}
    syncs = await _jobs(db, "meetings.calendar_sync")
    assert [j.payload["meeting_id"] for j in syncs] == [meeting.id]
    again = await changes.plan(db, cohort=w.cohort, ask=ask)
    assert any("already stands in" in p for p in again.problems)
    # The group's own facilitator does not stand in for themselves.
    clash = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.SUBSTITUTE, w.fac_thu.id, w.thu.id, 2)
    )
    assert any("leads" in p for p in clash.problems)
    await _do(db, w, Ask(changes.UNSUBSTITUTE, w.fac_free.id, w.thu.id, 3))
    await db.refresh(meeting)
    assert meeting.substitute_signup_id is None and meeting.sequence == 2


async def test_a_new_stand_in_tells_the_one_they_replace(db) -> None:
    w = await running(db)
    other = await make_signup(
        db,
        w.cohort,
        role="facilitator",
        timezone="America/New_York",
        available=THU,
        status="unplaced",
    )
    await _do(db, w, Ask(changes.SUBSTITUTE, w.fac_free.id, w.thu.id, 3))
    await db.execute(delete(Delivery))
    planned = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.SUBSTITUTE, other.id, w.thu.id, 3)
    )
    assert planned.dropped is not None and planned.dropped.signup.id == w.fac_free.id
    assert any("the stand-in until now, no longer stands in" in e for e in planned.effects)
    await _do(db, w, Ask(changes.SUBSTITUTE, other.id, w.thu.id, 3))
    told = {d.user_id: d.context for d in await _deliveries(db, "facilitator_changed")}
    assert w.fac_free.user_id in told and other.user_id in told
    assert told[w.fac_free.user_id]["dropped_user_id"] == w.fac_free.user_id
    (entry,) = (
        await db.scalars(
            select(CohortChange)
            .where(CohortChange.action == changes.SUBSTITUTE)
            .order_by(CohortChange.id.desc())
            .limit(1)
        )
    ).all()
    assert entry.details["dropped"] == (await db.get(User, w.fac_free.user_id)).display_name


async def test_a_facilitator_is_not_given_two_meetings_at_once(db) -> None:
    w = await running(db)
    # A third group at Tuesday's time, and Group 1's facilitator offered to lead two.
    fac = await make_signup(
        db, w.cohort, role="facilitator", timezone="Europe/Berlin", available=TUE
    )
    third = await add_group(db, w.cohort, 3, TUE_18_UTC, [], fac)
    w.fac_tue.max_groups = 2
    same_time = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.FACILITATOR, w.fac_tue.id, third.id)
    )
    assert any(
        "already leads a meeting at that time (Group 1, meeting 1" in p for p in same_time.problems
    ), same_time.problems
    # Standing in on a Thursday counts too: then leading another Thursday group clashes.
    await _do(db, w, Ask(changes.SUBSTITUTE, w.fac_free.id, w.thu.id, 2))
    fac4 = await make_signup(
        db, w.cohort, role="facilitator", timezone="America/New_York", available=THU
    )
    fourth = await add_group(db, w.cohort, 4, THU_23_UTC, [], fac4)
    clash = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.FACILITATOR, w.fac_free.id, fourth.id)
    )
    assert any("(Group 2, meeting 2" in p for p in clash.problems), clash.problems
    # At a time of its own, the same facilitator is fine.
    fine = await changes.plan(
        db, cohort=w.cohort, ask=Ask(changes.FACILITATOR, w.fac_free.id, w.tue.id)
    )
    assert fine.allowed, fine.problems


# -- through the pages -------------------------------------------------------------------


async def test_review_then_confirm_through_the_pages(app_client, db) -> None:
    w = await running(db)
    sign_in(app_client, w.admin)
    url = f"/admin/cohorts/{w.cohort.id}/changes"
    review = await app_client.get(
        f"{url}/review",
        params={"action": "member.add", "signup": w.flexible.id, "group": w.thu.id},
    )
    assert review.status_code == 200 and "What happens when you confirm" in review.text
    assert "gets access to Group 2" in review.text
    token = review.text.split('name="token" value="')[1].split('"')[0]
    form = {
        "action": "member.add",
        "signup": str(w.flexible.id),
        "group": str(w.thu.id),
        "token": token,
        "reason": "late signup",
    }
    done = await app_client.post(url, data=form, headers=ORIGIN)
    assert done.status_code == 303 and done.headers["location"].endswith("done=change")
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}/grouping")
    assert "late signup" in page.text and "member.add" in page.text
    # The same form again: stale, told plainly, nothing changed twice.
    again = await app_client.post(url, data=form, headers=ORIGIN)
    assert again.status_code == 409 and "changed since this page was shown" in again.text
    full = await app_client.get(
        f"{url}/review", params={"action": "member.add", "signup": w.sunday.id, "group": w.tue.id}
    )
    assert full.status_code == 200 and "This change cannot be made" in full.text
    assert "Confirm" not in full.text
    for params, fix in (
        ({"action": "member.add", "signup": "x", "group": "1"}, "chosen from the list"),
        ({"action": "explode", "signup": "1"}, "Choose a change"),
        ({"action": "member.move", "signup": str(w.tue_people[0].id)}, "Choose the group"),
        ({"action": "member.add", "signup": "999999", "group": str(w.tue.id)}, "not in this"),
    ):
        bad = await app_client.get(f"{url}/review", params=params)
        assert bad.status_code in (404, 422) and fix in bad.text, (params, bad.text[:300])


async def test_only_admins_change_groups(app_client, db) -> None:
    w = await running(db)
    participant = await db.get(User, w.tue_people[0].user_id)
    facilitator = await db.get(User, w.fac_tue.user_id)
    form = {"action": "member.remove", "signup": str(w.thu_people[0].id), "token": "x"}
    for who in (participant, facilitator):
        sign_in(app_client, who)
        review = await app_client.get(
            f"/admin/cohorts/{w.cohort.id}/changes/review",
            params={"action": "member.remove", "signup": w.tue_people[1].id},
        )
        assert review.status_code == 403
        confirm = await app_client.post(
            f"/admin/cohorts/{w.cohort.id}/changes", data=form, headers=ORIGIN
        )
        assert confirm.status_code == 403
    assert w.thu_people[0].id in await _members(db, w.thu)


async def test_a_person_chosen_from_the_people_page_is_highlighted(app_client, db) -> None:
    w = await running(db)
    sign_in(app_client, w.admin)
    page = await app_client.get(
        f"/admin/cohorts/{w.cohort.id}/grouping", params={"person": w.flexible.id}
    )
    assert f'id="person-{w.flexible.id}" class="highlight"' in page.text
    assert page.text.count('class="highlight"') == 1


async def test_choosing_the_group_or_the_facilitator_before_the_review(app_client, db) -> None:
    w = await running(db)
    sign_in(app_client, w.admin)
    url = f"/admin/cohorts/{w.cohort.id}/changes/choose"
    # The groups page links to a choice per person, not a list of groups per row.
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}/grouping")
    assert "<select" not in page.text
    assert f"choose?action=member.add&amp;signup={w.flexible.id}" in page.text
    assert f"choose?action=member.move&amp;signup={w.thu_people[0].id}" in page.text
    # Adding someone who can make both evenings: Tuesday is full, Thursday has room.
    add = await app_client.get(url, params={"action": "member.add", "signup": w.flexible.id})
    assert add.status_code == 200, add.text[:300]
    assert f'action="/admin/cohorts/{w.cohort.id}/changes/review"' in add.text
    assert 'name="action" value="member.add"' in add.text
    assert "Group 1 · Tue 18:00 UTC (Tuesdays 19:00 in Europe/Berlin)" in add.text
    assert "full (3 of 3)" in add.text and "can make it" in add.text
    # Someone who can make neither is told so beside each group.
    sunday = await app_client.get(url, params={"action": "member.add", "signup": w.sunday.id})
    assert sunday.text.count("cannot make this time") == 1  # Thursday; Tuesday is full
    # Moving a member: their own group is not offered.
    move = await app_client.get(url, params={"action": "member.move", "signup": w.thu_people[0].id})
    assert "Group 1 ·" in move.text and "Group 2 ·" not in move.text
    # A new facilitator: the group's own is not listed; one who leads as many as offered
    # is marked.
    swap = await app_client.get(url, params={"action": "facilitator.swap", "group": w.tue.id})
    assert f'value="{w.fac_free.id}"' in swap.text and f'value="{w.fac_tue.id}"' not in swap.text
    assert "leads as many groups as they offered" in swap.text  # Group 2's facilitator
    # A stand-in: first the meeting, then who.
    first = await app_client.get(
        url, params={"action": "facilitator.substitute", "group": w.thu.id}
    )
    assert 'name="meeting"' in first.text and f'action="{url}"' in first.text
    second = await app_client.get(
        url, params={"action": "facilitator.substitute", "group": w.thu.id, "meeting": "2"}
    )
    assert "Stand-in for Group 2, meeting 2" in second.text
    assert 'name="meeting" value="2"' in second.text and f'value="{w.fac_free.id}"' in second.text
    # Bad input is a clear message on the groups page.
    for params, fix in (
        ({"action": "explode"}, "Choose a change"),
        ({"action": "member.add", "signup": "999999"}, "not in this cohort"),
        ({"action": "facilitator.swap", "group": "x"}, "chosen from the list"),
        ({"action": "facilitator.substitute", "group": w.thu.id, "meeting": "99"}, "no meeting 99"),
    ):
        bad = await app_client.get(url, params=params)
        assert bad.status_code in (404, 422) and fix in bad.text, (params, bad.text[:300])
