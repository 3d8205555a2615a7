"""When the groups' Discord spaces must change: a realization is queued (a job) whenever
something below changes who is in a group, or when its meetings are."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.events import CohortFinished
from lens.discord_groups.service import request_realization, request_realization_for_user
from lens.events import reaction
from lens.meetings.events import MeetingCancelled, MeetingsMoved
from lens.scheduling.events import (
    FacilitatorChanged,
    GroupsApproved,
    GuestVisit,
    MemberJoined,
    MembershipChanged,
)
from lens.users.events import DiscordAccountChanged


@reaction(GroupsApproved)
async def approved(session: AsyncSession, event: GroupsApproved) -> None:
    await request_realization(session, cohort_id=event.cohort_id)


@reaction(MemberJoined)
async def joined(session: AsyncSession, event: MemberJoined) -> None:
    await request_realization(session, cohort_id=event.cohort_id)


@reaction(MembershipChanged)
async def membership_changed(session: AsyncSession, event: MembershipChanged) -> None:
    await request_realization(session, cohort_id=event.cohort_id)  # access follows


@reaction(FacilitatorChanged)
async def facilitator_changed(session: AsyncSession, event: FacilitatorChanged) -> None:
    await request_realization(session, cohort_id=event.cohort_id)


@reaction(GuestVisit)
async def guest_visit(session: AsyncSession, event: GuestVisit) -> None:
    await request_realization(session, cohort_id=event.cohort_id)  # the guest's access


@reaction(MeetingsMoved)
async def meetings_moved(session: AsyncSession, event: MeetingsMoved) -> None:
    await request_realization(session, cohort_id=event.cohort_id)  # the events move


@reaction(MeetingCancelled)
async def meeting_cancelled(session: AsyncSession, event: MeetingCancelled) -> None:
    await request_realization(session, cohort_id=event.cohort_id)  # its event goes


@reaction(DiscordAccountChanged)
async def discord_account_changed(session: AsyncSession, event: DiscordAccountChanged) -> None:
    # Access to their group channels follows the account: opened, moved, or closed.
    await request_realization_for_user(session, user_id=event.user_id)


@reaction(CohortFinished)
async def cohort_finished(session: AsyncSession, event: CohortFinished) -> None:
    await request_realization(session, cohort_id=event.cohort_id)  # channels read-only
