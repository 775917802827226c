"""media nodes: heartbeats, so a dead node's cameras are taken over

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

import app.models.base


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_nodes',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('started_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_media_nodes'))
    )
    with op.batch_alter_table('media_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_nodes_last_seen_at'), ['last_seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('media_nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_nodes_last_seen_at'))

    op.drop_table('media_nodes')
