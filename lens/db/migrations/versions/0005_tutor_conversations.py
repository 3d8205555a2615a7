"""tutor conversations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 05:55:23.369743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tutor_conversations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("module_key", sa.String(length=100), nullable=False),
        sa.Column("content_id", sa.String(length=100), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
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
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tutor_conversations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tutor_conversations")),
        sa.UniqueConstraint(
            "actor", "module_key", "content_id", "segment_index", name="uq_tutor_conversation"
        ),
    )
    op.create_index(
        op.f("ix_tutor_conversations_actor"), "tutor_conversations", ["actor"], unique=False
    )
    op.create_table(
        "tutor_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["tutor_conversations.id"],
            name=op.f("fk_tutor_messages_conversation_id_tutor_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tutor_messages")),
    )
    op.create_index(
        "ix_tutor_messages_conversation", "tutor_messages", ["conversation_id", "id"], unique=False
    )
    op.create_index("ix_tutor_messages_created", "tutor_messages", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tutor_messages_created", table_name="tutor_messages")
    op.drop_index("ix_tutor_messages_conversation", table_name="tutor_messages")
    op.drop_table("tutor_messages")
    op.drop_index(op.f("ix_tutor_conversations_actor"), table_name="tutor_conversations")
    op.drop_table("tutor_conversations")
