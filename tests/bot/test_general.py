"""Commands for everyone: /signup, /availability, /profile, /course, /ping."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lens.auth.models import SignInToken
from lens.auth.service import SignInProblem, consume_bot_code, token_hash
from lens.auth.visitors import user_actor
from lens.bot.cogs.general import General
from lens.cohorts.models import Group, GroupMember, GroupStatus
from lens.courses.models import Progress
from lens.courses.service import module_key
from lens.db.base import utcnow
from lens.meetings.service import create_meetings
from lens.users.models import User
from tests.bot.conftest import BASE_URL
from tests.bot.fakes import invoke, make_interaction, make_member, only_reply
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.users import make_user

LINK = re.compile(r"<(https://lens\.test/auth/code\?[^>]+)>")


@pytest.fixture
def cog(bot) -> General:
    return General(bot, bot.services)


def links(text: str) -> list[tuple[str, str]]:
    """(code, next) of each sign-in link in a reply."""
    out = []
    for url in LINK.findall(text):
        query = parse_qs(urlsplit(url).query)
        assert urlsplit(url).path == "/auth/code"
        out.append((query["code"][0], query["next"][0]))
    return out


async def as_member_of(db, user: User) -> tuple:
    """An active group with `user` in it, and its weekly meetings from next week."""
    start = (utcnow() + timedelta(days=7)).date()
    cohort = await make_cohort(db, start_date=start, status="running", meetings=3)
    signup = await make_signup(db, cohort, user=user, status="grouped", available=evening(0, 18, 2))
    group = Group(cohort_id=cohort.id, number=2, start_slot=36, status=GroupStatus.ACTIVE)
    db.add(group)
    await db.flush()
    db.add(GroupMember(group_id=group.id, signup_id=signup.id, role="participant"))
    await db.flush()
    await create_meetings(db, cohort=cohort, group=group)
    return cohort, group


# -- /signup -------------------------------------------------------------------------------


async def test_signup_replies_privately_with_a_single_use_link_to_enrollment(cog, db) -> None:
    interaction = make_interaction(make_member(name="grace"))
    await cog.signup.callback(cog, interaction)

    reply = only_reply(interaction)
    assert reply.ephemeral
    assert "works once" in reply.text and "10 minutes" in reply.text
    ((code, next_path),) = links(reply.text)
    assert next_path == "/enroll"
    # The code is one lens.auth accepts, for a new account tied to this Discord user.
    user = await consume_bot_code(db, code=code)
    assert user.discord_id == str(interaction.user.id)
    assert user.discord_username == "grace"
    token = await db.scalar(select(SignInToken).where(SignInToken.token_hash == token_hash(code)))
    assert token.next_path == "/enroll"
    with pytest.raises(SignInProblem, match="already used"):
        await consume_bot_code(db, code=code)


async def test_signup_signs_in_the_existing_account(cog, db) -> None:
    user = await make_user(db, nickname="Ada")
    interaction = make_interaction(user_id=int(user.discord_id))
    await cog.signup.callback(cog, interaction)
    ((code, _),) = links(only_reply(interaction).text)
    assert (await consume_bot_code(db, code=code)).id == user.id


# -- /availability -------------------------------------------------------------------------


async def test_availability_links_to_the_availability_step_of_each_open_signup(cog, db) -> None:
    user = await make_user(db)
    spring = await make_cohort(db, name="Spring 2027")
    await make_signup(db, spring, user=user, available=evening(1, 18, 2))
    summer = await make_cohort(db, name="Summer 2027")
    await make_signup(db, summer, user=user, status="draft")
    withdrawn = await make_cohort(db, name="Autumn 2026")
    await make_signup(db, withdrawn, user=user, status="withdrawn")

    interaction = make_interaction(user_id=int(user.discord_id))
    await cog.availability.callback(cog, interaction)

    reply = only_reply(interaction)
    assert reply.ephemeral
    found = links(reply.text)
    assert sorted(next_path for _, next_path in found) == sorted(
        [f"/enroll/{spring.id}/availability", f"/enroll/{summer.id}"]  # draft: finish the wizard
    )
    assert "Spring 2027" in reply.text and "Autumn 2026" not in reply.text
    for code, _ in found:
        assert (await consume_bot_code(db, code=code)).id == user.id


async def test_availability_without_an_account_says_to_sign_up(cog) -> None:
    interaction = make_interaction()
    await invoke(cog.availability, cog, interaction)
    reply = only_reply(interaction)
    assert reply.ephemeral and "/signup" in reply.text
    assert not links(reply.text)


async def test_availability_in_a_group_says_whom_to_ask(cog, db) -> None:
    user = await make_user(db)
    await as_member_of(db, user)
    interaction = make_interaction(user_id=int(user.discord_id))
    await invoke(cog.availability, cog, interaction)
    assert "ask your facilitator" in only_reply(interaction).text


# -- /profile ------------------------------------------------------------------------------


async def test_profile_shows_the_account_and_groups_with_an_edit_link(cog, db) -> None:
    user = await make_user(db, nickname="Ada", timezone="Europe/Berlin", email_verified_at=utcnow())
    cohort, _group = await as_member_of(db, user)
    interaction = make_interaction(user_id=int(user.discord_id))
    await cog.profile.callback(cog, interaction)

    reply = only_reply(interaction)
    assert reply.ephemeral
    assert "**Ada**" in reply.text
    assert "Time zone: Europe/Berlin" in reply.text
    assert f"E-mail: {user.email}\n" in reply.text
    assert f"Groups: Group 2 of {cohort.name}" in reply.text
    assert "admin" not in reply.text
    ((_code, next_path),) = links(reply.text)
    assert next_path == "/account"


async def test_profile_without_an_account(cog) -> None:
    interaction = make_interaction()
    await invoke(cog.profile, cog, interaction)
    assert "no Lens account" in only_reply(interaction).text


# -- /course -------------------------------------------------------------------------------


async def test_course_for_someone_new_shows_the_first_module(cog, example_content) -> None:
    interaction = make_interaction()
    await cog.course.callback(cog, interaction)
    reply = only_reply(interaction)
    course = example_content.courses["intro-to-ai-safety"]
    assert reply.text.startswith(f"**{course.title}**: 0 of ")
    assert (
        f"Next module: Welcome to the course (not started): <{BASE_URL}/course/intro-to-ai-safety/"
        in (reply.text)
    )
    assert "/signup" in reply.text


async def test_course_shows_progress_next_module_and_next_meeting(cog, db) -> None:

    user = await make_user(db)
    cohort, _group = await as_member_of(db, user)
    content = cog.bot.content
    course = content.courses[cohort.course_slug]
    first = content.modules[course.units[0].modules[0].path]
    db.add(
        Progress(
            actor=user_actor(user.id),
            user_id=user.id,
            module_key=module_key(first),
            content_id="",
            completed_at=utcnow(),
        )
    )
    await db.flush()

    interaction = make_interaction(user_id=int(user.discord_id))
    await cog.course.callback(cog, interaction)
    text = only_reply(interaction).text
    assert ": 1 of " in text.splitlines()[0]
    assert first.title not in text.splitlines()[1]
    assert "Next module: " in text
    meeting = re.search(r"Next meeting: Group 2, meeting 1 of 3, <t:(\d+):F> \(<t:\1:R>\)", text)
    assert meeting, text


async def test_course_before_the_content_is_loaded(cog, bot) -> None:
    bot.test_content["content"] = None
    interaction = make_interaction()
    await invoke(cog.course, cog, interaction)
    assert "still loading" in only_reply(interaction).text


async def test_ping(cog) -> None:
    interaction = make_interaction()
    await cog.ping.callback(cog, interaction)
    assert only_reply(interaction).text.startswith("Pong")
