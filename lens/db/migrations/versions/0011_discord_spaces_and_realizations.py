"""discord spaces and realizations

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 09:59:59.752391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discord_realizations",
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("failed_steps", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_discord_realizations_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort_id", name=op.f("pk_discord_realizations")),
    )
    op.create_table(
        "discord_spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("discord_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_discord_spaces_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_discord_spaces_group_id_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_discord_spaces_meeting_id_meetings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_spaces")),
        sa.UniqueConstraint("key", name=op.f("uq_discord_spaces_key")),
    )
    op.create_index(
        op.f("ix_discord_spaces_cohort_id"), "discord_spaces", ["cohort_id"], unique=False
    )
    op.create_index(
        op.f("ix_discord_spaces_group_id"), "discord_spaces", ["group_id"], unique=False
    )
    op.create_index(
        op.f("ix_discord_spaces_meeting_id"), "discord_spaces", ["meeting_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_discord_spaces_meeting_id"), table_name="discord_spaces")
    op.drop_index(op.f("ix_discord_spaces_group_id"), table_name="discord_spaces")
    op.drop_index(op.f("ix_discord_spaces_cohort_id"), table_name="discord_spaces")
    op.drop_table("discord_spaces")
    op.drop_table("discord_realizations")
