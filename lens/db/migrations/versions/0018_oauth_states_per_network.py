"""oauth states per network

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 22:43:36.916578
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_net', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_oauth_states_client_net'), ['client_net'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_client_net'))
        batch_op.drop_column('client_net')

