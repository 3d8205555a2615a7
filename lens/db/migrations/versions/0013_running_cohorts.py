"""running cohorts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:59:31.700658
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "cohort_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=True),
        sa.Column("group_ids", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_cohort_changes_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_cohort_changes_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_changes")),
    )
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_changes_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cohort_changes_cohort_id"), ["cohort_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cohort_changes_subject_user_id"), ["subject_user_id"], unique=False
        )

    op.create_table(
        "switch_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signup_id", sa.Integer(), nullable=False),
        sa.Column("from_group_id", sa.Integer(), nullable=False),
        sa.Column("to_group_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
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
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_switch_requests_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_group_id"],
            ["groups.id"],
            name=op.f("fk_switch_requests_from_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["signups.id"],
            name=op.f("fk_switch_requests_signup_id_signups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_group_id"],
            ["groups.id"],
            name=op.f("fk_switch_requests_to_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_switch_requests")),
    )
    with op.batch_alter_table("switch_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_switch_requests_signup_id"), ["signup_id"], unique=False
        )

    op.create_table(
        "meeting_guests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("signup_id", sa.Integer(), nullable=False),
        sa.Column("instead_of", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instead_of"],
            ["meetings.id"],
            name=op.f("fk_meeting_guests_instead_of_meetings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_guests_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["signups.id"],
            name=op.f("fk_meeting_guests_signup_id_signups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_guests")),
        sa.UniqueConstraint("meeting_id", "signup_id", name=op.f("uq_meeting_guests_meeting_id")),
    )
    with op.batch_alter_table("meeting_guests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_guests_signup_id"), ["signup_id"], unique=False
        )

    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "switch_needs_approval", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )

    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("location", sa.String(length=300), nullable=True))

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("substitute_signup_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_substitute_signup_id_signups"),
            "signups",
            ["substitute_signup_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deferred_to", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_signups_deferred_to_cohorts"),
            "cohorts",
            ["deferred_to"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:

    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_signups_deferred_to_cohorts"), type_="foreignkey")
        batch_op.drop_column("deferred_to")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_meetings_substitute_signup_id_signups"), type_="foreignkey"
        )
        batch_op.drop_column("substitute_signup_id")

    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("location")
        batch_op.drop_column("call_url")

    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.drop_column("switch_needs_approval")

    with op.batch_alter_table("meeting_guests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_guests_signup_id"))

    op.drop_table("meeting_guests")
    with op.batch_alter_table("switch_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_switch_requests_signup_id"))

    op.drop_table("switch_requests")
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_changes_subject_user_id"))
        batch_op.drop_index(batch_op.f("ix_cohort_changes_cohort_id"))
        batch_op.drop_index(batch_op.f("ix_cohort_changes_at"))

    op.drop_table("cohort_changes")
