"""Alembic environment. Lens always hands in an open connection (lens.db.migrate)."""

from __future__ import annotations

from alembic import context

from lens.db.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `lens db ...` (lens.db.migrate), not alembic")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
