"""Every feature's jobs and reactions, loaded once by each process that runs Lens code.

A feature declares its jobs (`@job`, `every`) in `tasks.py` and its reactions to events
of the features below it (`@reaction`, lens/events.py) in `reactions.py`. Those modules
register themselves when imported; `load()` imports them all. Reactions to one event
run in the order of the imports below, and none may depend on another having run.
The web app, `lens worker`, `lens bot` and the `lens` command call `load()` before they
do anything else.

A new feature with jobs or reactions adds its modules here.
"""

from __future__ import annotations

from lens import events


def load() -> None:
    # Imported here, not at the top: importing lens.features must not register anything.
    import lens.auth.tasks
    import lens.completion.reactions
    import lens.completion.tasks
    import lens.content.tasks
    import lens.courses.reactions
    import lens.discord_groups.reactions
    import lens.discord_groups.tasks
    import lens.jobs.tasks
    import lens.meetings.tasks
    import lens.notifications.reactions
    import lens.notifications.tasks
    import lens.scheduling.tasks
    import lens.tutor.reactions
    import lens.users.tasks  # noqa: F401

    events.mark_loaded()
