"""Slash commands and listeners, one cog per audience (members, admins, facilitators)."""
