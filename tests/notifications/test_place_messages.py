"""Where a group meets, in its messages: the change message (once per member and
change, as each person wants it, dropped when a newer change follows), and the place in
the group message and the reminders."""

from __future__ import annotations

import html

from sqlalchemy import select

from lens.meetings.place import set_meeting_place
from lens.notifications.announce import announce_group
from lens.notifications.models import Delivery, DeliveryStatus
from lens.notifications.service import set_preference
from tests.fixtures.users import make_user
from tests.notifications.fakes import RecordingDiscord, RecordingEmail
from tests.notifications.test_delivery import (
    group_of,
    make_due,
    next_march_first_monday,
    sender,
    settle,
)

CALL = "https://meet.example.org/abc-defg-hij?pwd=x1&lang=en"
PLACE = "Room 2.14, Library"


def unfolded(ics: bytes) -> str:
    return ics.decode().replace("\r\n ", "")


async def place_rows(db) -> list[Delivery]:
    return list(
        await db.scalars(
            select(Delivery)
            .where(Delivery.kind == "meeting_place_changed")
            .order_by(Delivery.id)
            .execution_options(populate_existing=True)
        )
    )


async def test_the_group_hears_of_a_change_as_each_wants_it(db, sessionmaker) -> None:
    _, group, users, series = await group_of(db, ["UTC"] * 3, start=next_march_first_monday())
    lead, ada, bob = users
    await set_preference(
        db, user_id=bob.id, kind="meeting_place_changed", channel="email", enabled=False
    )
    await set_meeting_place(db, group_id=group.id, by=lead, call_url=CALL, location=PLACE)

    email, discord = RecordingEmail(), RecordingDiscord()
    await sender(sessionmaker, email, discord).run_once()

    # Ada by e-mail and Discord; Bob, who turned off these e-mails, on Discord only;
    # the facilitator, who made the change, not at all.
    assert [m.to for m in email.sent] == [ada.email]
    assert sorted(u for u, _, _ in discord.sent) == sorted([ada.discord_id, bob.discord_id])
    reasons = {(r.user_id, r.channel): (r.status, r.last_error) for r in await place_rows(db)}
    assert reasons[(bob.id, "email")] == (DeliveryStatus.DROPPED, "unsubscribed from this kind")
    assert lead.id not in {user_id for user_id, _ in reasons}

    (message,) = email.sent
    assert message.subject == "Where Group 1 meets has changed"
    assert f"Call link: {CALL}\nWhere: {PLACE}\n" in message.text
    escaped = html.escape(CALL)
    assert f'<a href="{escaped}" style="word-break:break-all;">{escaped}</a>' in message.html
    # The invitation brings the new place to calendars that took the group's.
    (invite,) = message.attachments
    ics = unfolded(invite.content)
    assert ics.count("BEGIN:VEVENT") == len(series)
    assert ics.count("LOCATION:Room 2.14\\, Library\r\n") == len(series)
    assert ics.count(f"URL:{CALL}\r\n") == len(series)
    # In Discord the link is plain text, not a masked markdown link.
    (text,) = [t for u, t, _ in discord.sent if u == ada.discord_id]
    assert f"Call link: {CALL}\n" in text and f"]({CALL})" not in text
    assert "Where: Room 2.14, Library" in text


async def test_a_newer_change_replaces_the_message_of_an_older_one(db, sessionmaker) -> None:
    _, group, users, _ = await group_of(db, ["UTC"] * 2, start=next_march_first_monday())
    admin = await make_user(db, is_admin=True)
    await set_meeting_place(db, group_id=group.id, by=admin, call_url=CALL, location="")
    await set_meeting_place(db, group_id=group.id, by=admin, call_url="", location="")
    email, discord = RecordingEmail(), RecordingDiscord()
    await sender(sessionmaker, email, discord).run_once()

    # Everyone (the admin is not in the group) hears only the newest: it was cleared.
    assert sorted(m.to for m in email.sent) == sorted(u.email for u in users)
    assert {m.subject for m in email.sent} == {"Group 1 has no meeting place set any more"}
    assert len(discord.sent) == 2 and all("no call link or place" in t for _, t, _ in discord.sent)
    said = [" ".join(m.text.split()) for m in email.sent]
    assert all("Your facilitator will tell you where you meet." in text for text in said)
    stale = "the place changed again since (that change has its own message)"
    dropped = [r for r in await place_rows(db) if r.last_error == stale]
    # The first change's: both people, both channels.
    assert len(dropped) == 2 * 2 and {r.context["call_url"] for r in dropped} == {CALL}
    assert {r.status for r in dropped} == {DeliveryStatus.DROPPED}


async def test_the_group_message_and_reminders_say_where(db, sessionmaker) -> None:
    _, group, users, _ = await group_of(db, ["UTC"] * 2, start=next_march_first_monday())
    await set_meeting_place(db, group_id=group.id, by=users[0], call_url=CALL, location=PLACE)
    await announce_group(db, group_id=group.id)
    email, discord = RecordingEmail(), RecordingDiscord()
    await sender(sessionmaker, email, discord).run_once()
    (welcome,) = [m for m in email.to(users[1].email) if m.subject.startswith("Your group")]
    assert f"Call link: {CALL}\nWhere: {PLACE}\n" in welcome.text
    assert f'<a href="{html.escape(CALL)}"' in welcome.html
    assert unfolded(welcome.attachments[0].content).count("LOCATION:Room 2.14\\, Library") == 8

    await settle(db)
    await make_due(db, kind="meeting_reminder_24h")  # the day before each meeting
    email, discord = RecordingEmail(), RecordingDiscord()
    await sender(sessionmaker, email, discord).run_once()
    reminders = [m for m in email.sent if m.subject.startswith("Reminder")]
    assert reminders and all(f"Call link: {CALL}" in m.text for m in reminders)
    assert all(f"Where: {PLACE}" in m.text for m in reminders)
    assert discord.sent and all(f"Call link: {CALL}" in t for _, t, _ in discord.sent)
