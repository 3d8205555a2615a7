"""Meetings: weekly sessions of a group, calendar feeds and invitations."""
