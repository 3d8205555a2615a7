"""A group's page links to the group's Discord text channel once it exists (a panel the
app adds to the page of lens/meetings, below this package)."""

from __future__ import annotations

from lens.cohorts.models import Group, GroupMember
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.discord_groups.plan import space_key
from lens.users.models import User
from tests.fixtures.auth import sign_in
from tests.fixtures.cohorts import make_cohort, make_signup

SERVER = "900000000000000001"
CHANNEL = "900000000000000123"
LINK = f'href="https://discord.com/channels/{SERVER}/{CHANNEL}"'


async def test_the_group_page_links_to_the_groups_channel(client_factory, db) -> None:
    cohort = await make_cohort(db, status="running")
    group = Group(cohort_id=cohort.id, number=1, start_slot=36, status="active")
    db.add(group)
    await db.flush()
    member = await make_signup(db, cohort, status="grouped")
    db.add(GroupMember(group_id=group.id, signup_id=member.id, role="participant"))
    await db.flush()
    user = await db.get(User, member.user_id)
    page = f"/groups/{group.id}"

    async with client_factory(DISCORD_SERVER_ID=SERVER) as client:
        sign_in(client, user)
        before = await client.get(page)
        assert before.status_code == 200 and "discord.com/channels" not in before.text

        db.add(
            DiscordSpace(
                key=space_key(SpaceKind.TEXT, "group", group.id), kind=SpaceKind.TEXT,
                cohort_id=cohort.id, group_id=group.id, discord_id=CHANNEL,
            )
        )  # fmt: skip
        await db.flush()
        after = await client.get(page)
        assert LINK in after.text and "Open Group 1's channel in Discord" in after.text

    # Without the server's id there is no address to link to.
    async with client_factory() as client:
        sign_in(client, user)
        assert "discord.com/channels" not in (await client.get(page)).text
