"""Group pages: members see their group; its facilitator (and admins) also see each
member's progress and tutor transcripts; nobody else does."""

from __future__ import annotations

from sqlalchemy import select

from lens.auth.visitors import user_actor
from lens.cohorts.models import Group
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key
from lens.db.base import utcnow
from lens.scheduling import service
from lens.tutor.models import Conversation, Message
from lens.users.models import User
from tests.fixtures.auth import sign_in
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.users import make_user


async def _two_groups(db):
    cohort = await make_cohort(db, min_group_size=2, max_group_size=3)
    signups = {}
    for name, day in (("Ada", 1), ("Bo", 1), ("Cy", 3), ("Di", 3)):
        user = await make_user(db, nickname=name)
        signups[name] = await make_signup(db, cohort, user=user, available=evening(day, 18, 2))
    for name, day in (("Fay", 1), ("Gus", 3)):
        user = await make_user(db, nickname=name)
        signups[name] = await make_signup(
            db, cohort, user=user, role="facilitator", available=evening(day, 18, 2)
        )
    run = await service.request_grouping(db, cohort=cohort, by=None)
    await service.run_grouping(db, run=run)
    await service.approve(db, cohort=cohort, by=None)
    groups = {g.start_slot // 48: g for g in await db.scalars(select(Group))}
    return cohort, signups, groups


async def test_who_sees_what(client_factory, db) -> None:
    _, signups, groups = await _two_groups(db)
    tuesday = groups[1]
    ada, fay, gus = signups["Ada"], signups["Fay"], signups["Gus"]
    ada_user, fay_user, gus_user = [await db.get(User, s.user_id) for s in (ada, fay, gus)]
    stranger, admin = await make_user(db), await make_user(db, is_admin=True)
    # Ada has finished the first module and read for two minutes; she asked the tutor.
    async with client_factory() as client:
        content = client.app.state.content.content
        course = content.courses["intro-to-ai-safety"]
        first = course_modules(content, course)[0][1]
        key = module_key(first)
        db.add_all(
            [
                Progress(actor=user_actor(ada_user.id), user_id=ada_user.id, module_key=key,
                         content_id="", completed_at=utcnow()),
                Progress(actor=user_actor(ada_user.id), user_id=ada_user.id, module_key=key,
                         content_id=first.sections[0].content_id, seconds=120),
            ]
        )  # fmt: skip
        conversation = Conversation(
            actor=user_actor(ada_user.id), user_id=ada_user.id, module_key=key,
            content_id=first.sections[0].content_id, segment_index=1,
        )  # fmt: skip
        db.add(conversation)
        await db.flush()
        db.add(Message(conversation_id=conversation.id, role="user", content="Is AI risky?"))
        await db.flush()

        page = f"/groups/{tuesday.id}"
        transcripts = f"/groups/{tuesday.id}/members/{ada.id}/transcripts"
        assert (await client.get(page)).status_code == 401
        sign_in(client, stranger)
        assert (await client.get(page)).status_code == 403
        sign_in(client, ada_user)
        as_member = await client.get(page)
        assert as_member.status_code == 200 and "Bo" in as_member.text
        assert "Members' progress" not in as_member.text
        assert (await client.get(transcripts)).status_code == 403
        sign_in(client, gus_user)  # leads the Thursday group, not this one
        assert (await client.get(page)).status_code == 403
        assert (await client.get(transcripts)).status_code == 403
        sign_in(client, fay_user)
        as_lead = await client.get(page)
        assert as_lead.status_code == 200 and "Members' progress" in as_lead.text
        assert "<td>Ada</td><td>1 of " in as_lead.text and "<td>2 min</td>" in as_lead.text
        lead_reads = await client.get(transcripts)
        assert lead_reads.status_code == 200 and "Is AI risky?" in lead_reads.text
        other = await client.get(f"/groups/{tuesday.id}/members/{signups['Cy'].id}/transcripts")
        assert other.status_code == 404  # Cy is in the other group
        mine = await client.get("/groups")
        assert f'href="/groups/{tuesday.id}"' in mine.text and "you facilitate" in mine.text
        sign_in(client, admin)
        assert (await client.get(transcripts)).status_code == 200
