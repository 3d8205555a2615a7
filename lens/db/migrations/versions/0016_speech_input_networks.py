"""speech input networks

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 19:18:03.690731
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tutor_transcriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_net', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_tutor_transcriptions_client_net'), ['client_net'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tutor_transcriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tutor_transcriptions_client_net'))
        batch_op.drop_column('client_net')

