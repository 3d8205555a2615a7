"""A participant's own changes in a running cohort: switch group (at once or asked), a
guest visit, deferral to a later cohort, leaving; and the messages on approval for
those left without a group."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from lens.cohorts.models import CohortChange, GroupMember, Signup, SwitchRequest
from lens.errors import Conflict, Forbidden
from lens.meetings.models import Meeting, MeetingGuest, Rsvp
from lens.notifications.models import Delivery
from lens.scheduling import selfservice, service
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.running import THU, TUESDAY, running


async def _user(db, signup: Signup) -> User:
    return await db.get(User, signup.user_id)


async def _group_of(db, signup: Signup) -> int | None:
    return await db.scalar(select(GroupMember.group_id).where(GroupMember.signup_id == signup.id))


def _can_do_both(signup: Signup) -> None:
    """A New Yorker who can also make Tuesday 19:00 Berlin (13:00 New York)."""
    signup.availability = {"available": [*THU, *evening(TUESDAY, 13, 2)], "if_needed": []}


async def test_switching_at_once(db) -> None:
    w = await running(db, max_group_size=4)
    mover = w.thu_people[0]
    user = await _user(db, mover)
    assert await selfservice.switch_options(db, cohort=w.cohort, signup=mover) == []
    _can_do_both(mover)
    (option,) = await selfservice.switch_options(db, cohort=w.cohort, signup=mover)
    assert option.group.id == w.tue.id and option.local.startswith("Tuesday 13:00")
    done = await selfservice.switch(db, cohort=w.cohort, signup=mover, user=user, group_id=w.tue.id)
    assert done == "switched" and await _group_of(db, mover) == w.tue.id
    (entry,) = await db.scalars(select(CohortChange))
    assert (entry.action, entry.actor_id) == ("member.switch", user.id)
    (told,) = {d.context["action"] for d in await db.scalars(
        select(Delivery).where(Delivery.kind == "membership_changed")
    )}  # fmt: skip
    assert told == "member.switch"
    with pytest.raises(Conflict, match="full or meets at a time you cannot make"):
        await selfservice.switch(db, cohort=w.cohort, signup=mover, user=user, group_id=w.tue.id)


async def test_switching_when_the_facilitator_decides(db) -> None:
    w = await running(db, max_group_size=4, switch_needs_approval=True)
    mover = w.thu_people[0]
    _can_do_both(mover)
    user = await _user(db, mover)
    assert (
        await selfservice.switch(db, cohort=w.cohort, signup=mover, user=user, group_id=w.tue.id)
        == "requested"
    )
    assert await _group_of(db, mover) == w.thu.id  # not yet
    asked = await db.scalars(select(Delivery).where(Delivery.kind == "switch_requested"))
    assert {d.user_id for d in asked} == {w.fac_tue.user_id}
    with pytest.raises(Conflict, match="already asked"):
        await selfservice.switch(db, cohort=w.cohort, signup=mover, user=user, group_id=w.tue.id)
    (request,) = await db.scalars(select(SwitchRequest))
    # Only the facilitator of the group asked to join (or an admin) decides.
    for outsider in (user, await _user(db, w.fac_thu)):
        with pytest.raises(Forbidden):
            await selfservice.decide_switch(db, request_id=request.id, approve=True, by=outsider)
    await selfservice.decide_switch(
        db, request_id=request.id, approve=True, by=await _user(db, w.fac_tue)
    )
    assert request.status == "approved" and await _group_of(db, mover) == w.tue.id
    with pytest.raises(Conflict, match="approved already"):
        await selfservice.decide_switch(db, request_id=request.id, approve=False, by=w.admin)
    assert not list(await db.scalars(select(Delivery).where(Delivery.kind == "switch_refused")))


async def test_a_refused_switch_request_is_told_to_the_one_who_asked(db) -> None:
    w = await running(db, max_group_size=4, switch_needs_approval=True)
    mover = w.thu_people[0]
    _can_do_both(mover)
    user = await _user(db, mover)
    await selfservice.switch(db, cohort=w.cohort, signup=mover, user=user, group_id=w.tue.id)
    (request,) = await db.scalars(select(SwitchRequest))
    await selfservice.decide_switch(
        db, request_id=request.id, approve=False, by=await _user(db, w.fac_tue)
    )
    assert request.status == "refused" and await _group_of(db, mover) == w.thu.id
    told = list(await db.scalars(select(Delivery).where(Delivery.kind == "switch_refused")))
    assert {d.user_id for d in told} == {user.id}
    prepared = await _prepared(db, "switch_refused", user.id)
    assert (prepared["group_name"], prepared["own_group"]) == ("Group 1", "Group 2")
    assert prepared["options_url"].endswith(f"/cohorts/{w.cohort.id}")


async def test_a_guest_visit_in_a_week_they_cannot_make(db) -> None:
    w = await running(db)
    guest = w.thu_people[1]
    _can_do_both(guest)
    user = await _user(db, guest)
    options = await selfservice.visit_options(db, cohort=w.cohort, signup=guest, meeting_number=2)
    (choice,) = options
    assert choice.group.id == w.tue.id and choice.meeting.number == 2
    await selfservice.visit(
        db, cohort=w.cohort, signup=guest, user=user, meeting_number=2, meeting_id=choice.meeting.id
    )
    own = await db.scalar(select(Meeting).where(Meeting.group_id == w.thu.id, Meeting.number == 2))
    (row,) = await db.scalars(select(MeetingGuest))
    assert (row.meeting_id, row.instead_of) == (choice.meeting.id, own.id)
    rsvp = await db.scalar(select(Rsvp).where(Rsvp.meeting_id == own.id, Rsvp.user_id == user.id))
    assert rsvp.status == "not_attending"
    host_told = await db.scalars(select(Delivery).where(Delivery.kind == "guest_visit"))
    assert {d.user_id for d in host_told} == {w.fac_tue.user_id}
    with pytest.raises(Conflict, match="not open to you"):
        await selfservice.visit(
            db,
            cohort=w.cohort,
            signup=guest,
            user=user,
            meeting_number=2,
            meeting_id=choice.meeting.id,
        )
    # A meeting they already visit is not offered again.
    assert (
        await selfservice.visit_options(db, cohort=w.cohort, signup=guest, meeting_number=2) == []
    )
    await selfservice.cancel_visit(db, signup=guest, user=user, guest_id=row.id)
    assert await db.scalar(select(func.count()).select_from(MeetingGuest)) == 0
    # Their own meeting is no longer marked as missed.
    assert await db.scalar(select(Rsvp).where(Rsvp.meeting_id == own.id)) is None
    # Someone who cannot make any other group's time has no options.
    assert (
        await selfservice.visit_options(
            db, cohort=w.cohort, signup=w.thu_people[0], meeting_number=2
        )
        == []
    )


async def test_deferring_keeps_profile_and_availability_and_frees_the_seat(db) -> None:
    w = await running(db)
    later = await make_cohort(db, name="Autumn 2027", start_date=date(2027, 9, 6), status="open")
    await make_cohort(db, name="Other course", course_slug="other", start_date=date(2027, 9, 6))
    leaver = w.tue_people[0]
    user = await _user(db, leaver)
    assert [c.id for c in await selfservice.later_cohorts(db, cohort=w.cohort)] == [later.id]
    new = await selfservice.defer(
        db, cohort=w.cohort, signup=leaver, user=user, to_cohort_id=later.id
    )
    assert (new.cohort_id, new.status, new.timezone) == (later.id, "enrolled", "Europe/Berlin")
    assert new.availability == leaver.availability
    assert (leaver.status, leaver.deferred_to) == ("deferred", later.id)
    assert await _group_of(db, leaver) is None
    roster = await db.scalars(select(Delivery).where(Delivery.kind == "roster_changed"))
    assert {d.user_id for d in roster} == {w.fac_tue.user_id}
    welcome = await db.scalars(select(Delivery).where(Delivery.kind == "welcome"))
    assert {d.context["signup_id"] for d in welcome} == {new.id}
    with pytest.raises(Conflict, match="Only someone enrolled"):
        await selfservice.defer(
            db, cohort=w.cohort, signup=leaver, user=user, to_cohort_id=later.id
        )


async def test_leaving_a_running_cohort_frees_the_seat(app_client, db) -> None:
    w = await running(db)
    leaver = w.tue_people[2]
    fac_tue_user = w.fac_tue.user_id
    sign_in(app_client, await _user(db, leaver))
    unconfirmed = await app_client.post(f"/cohorts/{w.cohort.id}/leave", headers=ORIGIN)
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    assert await _group_of(db, leaver) == w.tue.id
    left = await app_client.post(
        f"/cohorts/{w.cohort.id}/leave", data={"confirm": "yes"}, headers=ORIGIN
    )
    assert left.status_code == 303
    leaver_id = leaver.id
    db.expire_all()
    signup = await db.get(Signup, leaver_id)
    assert signup.status == "withdrawn" and await _group_of(db, signup) is None
    told = await db.scalars(select(Delivery).where(Delivery.kind == "roster_changed"))
    assert {(d.user_id, d.context["joined"]) for d in told} == {(fac_tue_user, False)}


async def test_the_cohort_page_offers_what_each_person_can_do(app_client, db) -> None:
    w = await running(db, max_group_size=4)
    mover = w.thu_people[0]
    _can_do_both(mover)
    await make_cohort(db, name="Autumn 2027", start_date=date(2027, 9, 6), status="open")
    sign_in(app_client, await _user(db, mover))
    page = await app_client.get(f"/cohorts/{w.cohort.id}")
    assert "Switch to another group" in page.text and "Group 1: Tuesday 13:00" in page.text
    assert "Move to a later cohort" in page.text and "Autumn 2027" in page.text
    visit = await app_client.get(f"/cohorts/{w.cohort.id}?visit=2")
    assert "instead of your meeting 2" in visit.text
    bad = await app_client.post(
        f"/cohorts/{w.cohort.id}/switch", data={"group": "x"}, headers=ORIGIN
    )
    assert bad.status_code == 422 and "Choose a group from the list" in bad.text
    switched = await app_client.post(
        f"/cohorts/{w.cohort.id}/switch", data={"group": str(w.tue.id)}, headers=ORIGIN
    )
    assert switched.status_code == 303
    page = await app_client.get(switched.headers["location"])
    assert "You switched groups" in page.text
    # The unplaced see the groups with room at a time they can make.
    sign_in(app_client, await _user(db, w.flexible))
    page = await app_client.get(f"/cohorts/{w.cohort.id}")
    assert "Groups with room at a time you can make" in page.text


async def test_approval_tells_those_left_out_their_options(db) -> None:
    cohort = await make_cohort(db, min_group_size=2, max_group_size=3)
    for _ in range(3):
        await make_signup(db, cohort, timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2))
    await make_signup(
        db, cohort, role="facilitator", timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2)
    )
    alone = await make_signup(db, cohort, timezone="UTC", available=evening(6, 5, 1))
    run = await service.request_grouping(db, cohort=cohort, by=None)
    await service.run_grouping(db, run=run)
    await service.approve(db, cohort=cohort, by=None)
    told = list(await db.scalars(select(Delivery).where(Delivery.kind == "unplaced_options")))
    assert {(d.user_id, d.context["signup_id"]) for d in told} == {(alone.user_id, alone.id)}


# -- the messages, as the sender prepares them -------------------------------------------


async def _prepared(db, kind: str, user_id: int):
    from lens.notifications.context import Drop, Site, prepare

    site = Site(
        base_url="https://lens.example.org", secret="s" * 40, from_email="t@x.org", content=None
    )
    delivery = await db.scalar(
        select(Delivery).where(
            Delivery.kind == kind, Delivery.user_id == user_id, Delivery.channel == "email"
        )
    )
    assert delivery is not None, kind
    user = await db.get(User, user_id)
    try:
        return (await prepare(db, delivery, user, site)).context
    except Drop as dropped:
        return str(dropped)


async def test_each_change_message_holds_at_send_time_or_is_dropped(db) -> None:
    from lens.scheduling import changes

    w = await running(db, max_group_size=4)
    mover = w.thu_people[0]
    _can_do_both(mover)
    await selfservice.switch(
        db, cohort=w.cohort, signup=mover, user=await _user(db, mover), group_id=w.tue.id
    )
    moved = await _prepared(db, "membership_changed", mover.user_id)
    assert moved["group_name"] == "Group 1" and moved["left_group"] == "Group 2"
    assert moved["by_themselves"] is True
    assert moved["weekly_time"] == "Tuesdays at 13:00 (America/New_York)"
    joined = await _prepared(db, "roster_changed", w.fac_tue.user_id)
    assert (joined["member"], joined["joined"], joined["participants"]) == (
        (await _user(db, mover)).display_name,
        True,
        4,
    )
    # Moved back before the messages went: the first move's messages no longer hold.
    ask = changes.Ask(changes.MOVE, mover.id, w.thu.id)
    plan = await changes.plan(db, cohort=w.cohort, ask=ask)
    await changes.apply(db, cohort_id=w.cohort.id, ask=ask, token=plan.token, actor=w.admin)
    first = await db.scalar(
        select(Delivery)
        .where(Delivery.kind == "membership_changed", Delivery.channel == "email")
        .order_by(Delivery.id)
    )
    from lens.notifications.context import Drop, Site, prepare

    site = Site(base_url="https://x.org", secret="s" * 40, from_email="t@x.org", content=None)
    with pytest.raises(Drop, match="no longer in the group"):
        await prepare(db, first, await _user(db, mover), site)

    await _do_stand_in(db, w)
    stand_in = await _prepared(db, "facilitator_changed", w.fac_free.user_id)
    assert stand_in["you_new"] is True and stand_in["meeting_number"] == 2
    assert stand_in["old"] == (await _user(db, w.fac_thu)).display_name


async def _do_stand_in(db, w) -> None:
    from lens.scheduling import changes

    ask = changes.Ask(changes.SUBSTITUTE, w.fac_free.id, w.thu.id, 2)
    plan = await changes.plan(db, cohort=w.cohort, ask=ask)
    await changes.apply(db, cohort_id=w.cohort.id, ask=ask, token=plan.token, actor=w.admin)


async def test_the_unplaced_message_lists_groups_with_room(db) -> None:
    from lens.notifications.service import notify

    w = await running(db, max_group_size=4)
    await notify(
        db,
        kind="unplaced_options",
        user_ids=[w.flexible.user_id],
        subject="unplaced:x",
        context={"cohort_id": w.cohort.id, "signup_id": w.flexible.id},
    )
    told = await _prepared(db, "unplaced_options", w.flexible.user_id)
    assert [o["group"] for o in told["offers"]] == ["Group 2", "Group 1"]
    w.flexible.status = "grouped"
    await db.flush()
    assert "no longer waiting" in await _prepared(db, "unplaced_options", w.flexible.user_id)


async def test_the_cohort_form_sets_whether_switches_wait_for_a_yes(app_client, db) -> None:
    w = await running(db)
    sign_in(app_client, w.admin)
    form = {
        "course_slug": w.cohort.course_slug,
        "name": w.cohort.name,
        "start_date": w.cohort.start_date.isoformat(),
        "meetings": str(w.cohort.meetings),
        "meeting_minutes": str(w.cohort.meeting_minutes),
        "min_group_size": "2",
        "max_group_size": "3",
        "needs_facilitator": "true",
        "switch_needs_approval": "true",
    }
    saved = await app_client.post(f"/admin/cohorts/{w.cohort.id}", data=form, headers=ORIGIN)
    assert saved.status_code == 303
    await db.refresh(w.cohort)
    assert w.cohort.switch_needs_approval is True
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}")
    assert 'name="switch_needs_approval" value="true" checked' in page.text


async def test_deferring_before_approval_leaves_the_preview(db) -> None:
    cohort = await make_cohort(db, min_group_size=2, max_group_size=4, status="closed")
    later = await make_cohort(db, name="Autumn 2027", start_date=date(2027, 9, 6), status="open")
    people = [
        await make_signup(db, cohort, timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2))
        for _ in range(3)
    ]
    await make_signup(
        db, cohort, role="facilitator", timezone="Europe/Berlin", available=evening(TUESDAY, 19, 2)
    )
    run = await service.request_grouping(db, cohort=cohort, by=None)
    await service.run_grouping(db, run=run)
    leaver = people[0]
    assert await _group_of(db, leaver) is not None
    await selfservice.defer(
        db, cohort=cohort, signup=leaver, user=await _user(db, leaver), to_cohort_id=later.id
    )
    assert await _group_of(db, leaver) is None and leaver.status == "deferred"
    preview = await service.get_preview(db, cohort=cohort)
    assert preview.violations == [] and preview.placed == 2


async def test_calendar_feeds_carry_visits_and_stand_ins(db) -> None:
    from lens.meetings.service import meetings_for_user

    w = await running(db)
    guest = w.thu_people[1]
    _can_do_both(guest)
    (choice,) = await selfservice.visit_options(db, cohort=w.cohort, signup=guest, meeting_number=2)
    await selfservice.visit(
        db,
        cohort=w.cohort,
        signup=guest,
        user=await _user(db, guest),
        meeting_number=2,
        meeting_id=choice.meeting.id,
    )
    feed = [m.meeting.id for m in await meetings_for_user(db, user_id=guest.user_id)]
    assert choice.meeting.id in feed and len(feed) == len(set(feed)) == w.cohort.meetings + 1
    assert await meetings_for_user(db, user_id=w.fac_free.user_id) == []
    await _do_stand_in(db, w)
    (stand_in,) = await meetings_for_user(db, user_id=w.fac_free.user_id)
    assert (stand_in.group.id, stand_in.meeting.number) == (w.thu.id, 2)


# -- from review: leaving settles what was pending; who may defer -------------------------


async def test_leaving_takes_back_visits_and_open_switch_requests(db) -> None:
    w = await running(db, max_group_size=4, switch_needs_approval=True)
    person = w.thu_people[1]
    _can_do_both(person)
    user = await _user(db, person)
    (choice,) = await selfservice.visit_options(
        db, cohort=w.cohort, signup=person, meeting_number=2
    )
    await selfservice.visit(
        db,
        cohort=w.cohort,
        signup=person,
        user=user,
        meeting_number=2,
        meeting_id=choice.meeting.id,
    )
    assert (
        await selfservice.switch(db, cohort=w.cohort, signup=person, user=user, group_id=w.tue.id)
        == "requested"
    )
    await selfservice.withdraw_running(db, cohort=w.cohort, signup=person, user=user)
    assert await db.scalar(select(func.count()).select_from(MeetingGuest)) == 0
    assert await selfservice.switch_requests_for(db, group=w.tue) == []
    with pytest.raises(Exception, match="no request to take back"):
        await selfservice.withdraw_switch(db, signup=person)


async def test_a_facilitator_leading_a_group_or_a_finished_cohort_cannot_defer(db) -> None:
    w = await running(db)
    later = await make_cohort(db, name="Autumn 2027", start_date=date(2027, 9, 6), status="open")
    with pytest.raises(Conflict, match="You lead Group 1"):
        await selfservice.defer(
            db,
            cohort=w.cohort,
            signup=w.fac_tue,
            user=await _user(db, w.fac_tue),
            to_cohort_id=later.id,
        )
    w.cohort.status = "finished"
    await db.flush()
    member = w.tue_people[0]
    with pytest.raises(Conflict, match="is finished"):
        await selfservice.defer(
            db, cohort=w.cohort, signup=member, user=await _user(db, member), to_cohort_id=later.id
        )
    assert member.status == "grouped" and await _group_of(db, member) == w.tue.id
