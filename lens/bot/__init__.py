"""The Discord bot: a thin adapter over the feature services (see docs/discord.md).

`client.py` builds the bot (intents, command sync, the one error handler); `cogs/` hold
the slash commands and event listeners. Importing this package does not import
discord.py: `nicknames.py` and `tasks.py` are used by web and worker processes too.
"""
