"""tutor transcriptions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 06:56:09.803748
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tutor_transcriptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("audio_bytes", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tutor_transcriptions")),
    )
    op.create_index(
        "ix_tutor_transcriptions_actor_created",
        "tutor_transcriptions",
        ["actor", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_tutor_transcriptions_created", "tutor_transcriptions", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tutor_transcriptions_created", table_name="tutor_transcriptions")
    op.drop_index("ix_tutor_transcriptions_actor_created", table_name="tutor_transcriptions")
    op.drop_table("tutor_transcriptions")
