"""content assets

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:14:27.153846
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Snapshots stored so far list no images: false makes the next sync read everything.
    op.add_column(
        "content_snapshots",
        sa.Column("assets_listed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    # The images of a snapshot's commit; only those the content embeds keep their bytes.
    op.create_table(
        "content_assets",
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["content_snapshots.id"],
            name=op.f("fk_content_assets_snapshot_id_content_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "path", name=op.f("pk_content_assets")),
    )


def downgrade() -> None:
    op.drop_table("content_assets")
    # Not batch mode: rebuilding content_snapshots on SQLite would drop the old table,
    # and with foreign keys on that deletes every snapshot's files (ON DELETE CASCADE).
    # SQLite drops a plain column in place (3.35 and later).
    op.drop_column("content_snapshots", "assets_listed")
