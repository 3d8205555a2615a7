"""The notification kinds: what each is for, and how late it may still go out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

EMAIL = "email"
DISCORD = "discord"
CHANNELS = (EMAIL, DISCORD)


@dataclass(frozen=True)
class Kind:
    name: str
    label: str  # on the unsubscribe and preferences pages
    # How long after its send time it may still go out (None: any time). A reminder an
    # hour late is worse than none.
    late_after: timedelta | None = None
    # How long before a meeting it is due (timed kinds).
    before_meeting: timedelta | None = None
    can_unsubscribe: bool = True


_ALL = [
    Kind("welcome", "Welcome after you enroll"),
    Kind("group_assigned", "Your group and its meeting time"),
    Kind(
        "meeting_reminder_24h",
        "Meeting reminders, a day before",
        late_after=timedelta(hours=1),
        before_meeting=timedelta(hours=24),
    ),
    Kind(
        "meeting_reminder_1h",
        "Meeting reminders, an hour before",
        late_after=timedelta(minutes=30),
        before_meeting=timedelta(hours=1),
    ),
    Kind("meeting_changed", "A meeting moved"),
    Kind("membership_changed", "You were moved to another group or out of one"),
    Kind("roster_changed", "Someone joined or left a group you lead"),
    Kind("facilitator_changed", "Your group's facilitator changed, or a stand-in"),
    Kind("switch_requested", "Someone asks to switch into a group you lead"),
    Kind("switch_refused", "Your request to switch group was declined"),
    Kind("certificate_issued", "Your certificate is ready"),
    Kind("cohort_finished", "Your cohort has finished: where you ended"),
    Kind("missed_meetings", "You missed two meetings in a row: is the time still right?"),
    Kind("guest_visit", "A guest from another group visits your group's meeting"),
    Kind("unplaced_options", "No group yet: the groups you can still join"),
    Kind("meeting_cancelled", "A meeting was cancelled"),
    Kind("meeting_place_changed", "Where your group meets changed"),
    Kind(
        "module_nudge_3d",
        "Reading reminders, three days before a meeting",
        late_after=timedelta(hours=12),
        before_meeting=timedelta(days=3),
    ),
    Kind(
        "module_nudge_1d",
        "Reading reminders, a day before a meeting",
        late_after=timedelta(hours=6),
        before_meeting=timedelta(days=1),
    ),
]
KINDS: dict[str, Kind] = {k.name: k for k in _ALL}
MEETING_TIMED = [k for k in _ALL if k.before_meeting is not None]


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown notification kind {name!r}") from None
