"""Alembic environment. Lens always hands in an open connection (lens.db.migrate), and,
for `lens db revision`, the metadata of every table (lens.schema, which sits above
every feature and so cannot be imported from here)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `lens db ...` (lens.db.migrate), not alembic")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("metadata"),
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
