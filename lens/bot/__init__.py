"""The Discord bot: a thin adapter over the feature services (see docs/discord.md).

`client.py` builds the bot (intents, command sync, the one error handler); `cogs/` hold
the slash commands and event listeners. Each cog is given the bot and a `BotServices`
(`services.py`: settings, database, HTTP client, course content), so no cog imports
`client.py`. Importing this package does not import discord.py.
"""
