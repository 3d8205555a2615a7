"""The web application: `create_app(settings)` assembles every feature's routes, and its
lifespan owns what the process runs (database engine, HTTP client, content store, job
runner, notification sender, Discord bot)."""

from lens.app.factory import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
