"""Every feature's tables in one metadata, for migrations (`lens db revision`) and the tests.

At the top of the layers: it imports each feature's models, which nothing below may do.
"""

from lens.auth.models import OAuthState, SignInToken
from lens.cohorts.models import (
    Cohort,
    CohortChange,
    Group,
    GroupingRun,
    GroupMember,
    Signup,
    SwitchRequest,
)
from lens.completion.models import Certificate
from lens.content.models import ContentFile, ContentSnapshot, ContentState
from lens.courses.models import Progress, ReaderActivity
from lens.db.base import Base
from lens.discord_groups.models import DiscordRealization, DiscordSpace
from lens.integrations.email.models import OutboxEmail
from lens.jobs.models import Job
from lens.meetings.models import (
    Attendance,
    CalendarFeed,
    Meeting,
    MeetingGuest,
    PresenceSpan,
    Rsvp,
)
from lens.notifications.models import Delivery, DeliveryAttempt, NotificationOptOut
from lens.tutor.models import Conversation, CoursePrompt, Message, Transcription
from lens.users.models import User

metadata = Base.metadata

__all__ = [
    "Attendance",
    "CalendarFeed",
    "Certificate",
    "Cohort",
    "CohortChange",
    "ContentFile",
    "ContentSnapshot",
    "ContentState",
    "Conversation",
    "CoursePrompt",
    "Delivery",
    "DeliveryAttempt",
    "DiscordRealization",
    "DiscordSpace",
    "Group",
    "GroupMember",
    "GroupingRun",
    "Job",
    "Meeting",
    "MeetingGuest",
    "Message",
    "NotificationOptOut",
    "OAuthState",
    "OutboxEmail",
    "PresenceSpan",
    "Progress",
    "ReaderActivity",
    "Rsvp",
    "SignInToken",
    "Signup",
    "SwitchRequest",
    "Transcription",
    "User",
    "metadata",
]
