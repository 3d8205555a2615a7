"""tutor budget holds

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 22:30:22.851738
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tutor_budget_holds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_usd", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tutor_budget_holds")),
    )
    with op.batch_alter_table("tutor_budget_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tutor_budget_holds_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tutor_budget_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tutor_budget_holds_created_at"))

    op.drop_table("tutor_budget_holds")
