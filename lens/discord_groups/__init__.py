"""A cohort's active groups, realized in the Discord server over the REST API.

Per cohort a private category; per active group a text channel `group-N` and a voice
channel `Group N` in it, open to the group's members and facilitator through member
permission overwrites; a welcome message in the text channel; one scheduled event per
meeting ahead. `realize_cohort` (apply.py) is an explicit diff between what the
database says should exist (plan.py) and what exists (the `discord_spaces` mapping of
models.py plus the server's channels and events, read fresh each run): create what is
missing, update what differs, delete what no longer belongs. Running it twice changes
nothing; after a partial failure, the next run finishes the job. Each run's report
(report.py) is kept for the admin's cohort page (pages.py).

It runs in jobs (tasks.py), asked for by reactions to what happens below
(reactions.py: groups approved, someone joining a group, meetings moved or cancelled,
a Discord account linked or unlinked), by the admin, by the bot, and daily. The rest
of Lens reads it through service.py (the group's channel link for notifications).

What Lens owns, and so changes back when someone edits it by hand in Discord: on its
channels, the name, topic, parent category, the @everyone and bot overwrites and every
member overwrite; role overwrites other than @everyone are left as an admin set them
(a "Mentors" role given access, say). Channels and events deleted by hand are made
again. A welcome message deleted by hand is posted again the next time its text
changes (keeping Discord's copy unread saves a request per group and run).

Steps are independent where Discord allows: one failing (IntegrationRejected or
IntegrationUnavailable) is recorded in the report and the run goes on with the steps
that do not need its result (no group channels without the category, no events
without the voice channel).

Crash safety. Each thing created is mapped (a `discord_spaces` row, flushed at once),
but the rows commit with the caller's transaction. If that rolls back (the worker dies
mid-run), Discord keeps what was made and the mapping is lost. The next run therefore
adopts before it creates: an unmapped channel of the same type and name under the same
parent, an unmapped voice event of the same name, or the bot's own message in the
group's text channel that carries the group page link, is taken over instead of made
twice. "Unmapped" is checked against every cohort's rows, so two cohorts with the same
name never share a category.

Concurrency: on PostgreSQL a transaction-scoped advisory lock per cohort makes two
realizations of one cohort wait for each other (the second sees the first's mapping),
without holding the cohort row while Discord answers.
"""
