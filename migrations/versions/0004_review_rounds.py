"""review rounds: evidence per review round, on-site visits after escalation, supervisors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00.000000

Every change is an added column. SQLite takes each as a plain ALTER TABLE ADD COLUMN (and
DROP COLUMN on the way back), so no table is rebuilt: other tables reference these, with
enforced foreign keys, and a rebuild would fail on a database with data. The CHECK and FOREIGN
KEY of the new response columns are written inline there — the only way SQLite accepts them on
an existing table — and as named constraints on PostgreSQL (batch mode, which runs the same
ALTERs there).
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

REVIEW_MODES = ('on_site', 'live_video')


def upgrade():
    modes = ", ".join(f"'{mode}'" for mode in REVIEW_MODES)
    if op.get_bind().dialect.name == 'sqlite':
        # Written out because Alembic's batch mode rebuilds the table for a column whose
        # default is an expression (false()) and for any added constraint, and a rebuilt
        # `users` cannot be dropped while rows reference it. SQLite adds a constraint to an
        # existing table only inline with a new column; each definition ends on a line of its
        # own ("\nNULL", a no-op column constraint) because SQLAlchemy's reflection of SQLite
        # CHECK constraints (which later batch migrations rely on) reads one per line.
        op.execute("ALTER TABLE users ADD COLUMN is_supervisor BOOLEAN DEFAULT 0 NOT NULL")
        op.execute(
            "ALTER TABLE rectification_notices"
            " ADD COLUMN onsite_required BOOLEAN DEFAULT 0 NOT NULL"
        )
        op.execute(
            "ALTER TABLE notice_responses ADD COLUMN review_mode VARCHAR(10)"
            f" CONSTRAINT ck_notice_responses_review_mode CHECK (review_mode IN ({modes}))\nNULL"
        )
        op.execute(
            "ALTER TABLE notice_responses ADD COLUMN review_snapshot_id INTEGER"
            " CONSTRAINT fk_notice_responses_review_snapshot_id_snapshots"
            " REFERENCES snapshots (id)\nNULL"
        )
    else:
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('is_supervisor', sa.Boolean(), server_default=sa.false(), nullable=False)
            )
        with op.batch_alter_table('rectification_notices', schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    'onsite_required', sa.Boolean(), server_default=sa.false(), nullable=False
                )
            )
        with op.batch_alter_table('notice_responses', schema=None) as batch_op:
            batch_op.add_column(sa.Column('review_mode', sa.String(length=10), nullable=True))
            batch_op.add_column(sa.Column('review_snapshot_id', sa.Integer(), nullable=True))
            batch_op.create_check_constraint(
                batch_op.f('ck_notice_responses_review_mode'), f"review_mode IN ({modes})"
            )
            batch_op.create_foreign_key(
                batch_op.f('fk_notice_responses_review_snapshot_id_snapshots'),
                'snapshots',
                ['review_snapshot_id'],
                ['id'],
            )

    # Rounds reviewed before this revision: the notice kept only its latest review, which was
    # made on its latest reviewed round.
    op.execute(
        """
        UPDATE notice_responses SET
            review_mode = (SELECT n.review_mode FROM rectification_notices n
                           WHERE n.id = notice_responses.notice_id),
            review_snapshot_id = (SELECT n.review_snapshot_id FROM rectification_notices n
                                  WHERE n.id = notice_responses.notice_id)
        WHERE reviewed_at IS NOT NULL
          AND round = (SELECT max(r.round) FROM notice_responses r
                       WHERE r.notice_id = notice_responses.notice_id
                         AND r.reviewed_at IS NOT NULL)
        """
    )
    # Notices already escalated need their on-site visit too.
    op.execute(
        "UPDATE rectification_notices SET onsite_required = true"
        " WHERE id IN (SELECT notice_id FROM notice_events WHERE to_status = 'escalated')"
    )


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite (3.35+) drops these columns in place, their inline constraints with them;
        # rebuilding the tables would trip over the rows that reference them.
        for table, column in (
            ('notice_responses', 'review_snapshot_id'),
            ('notice_responses', 'review_mode'),
            ('rectification_notices', 'onsite_required'),
            ('users', 'is_supervisor'),
        ):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        return
    with op.batch_alter_table('notice_responses', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_notice_responses_review_snapshot_id_snapshots'), type_='foreignkey'
        )
        batch_op.drop_constraint(batch_op.f('ck_notice_responses_review_mode'), type_='check')
        batch_op.drop_column('review_snapshot_id')
        batch_op.drop_column('review_mode')
    with op.batch_alter_table('rectification_notices', schema=None) as batch_op:
        batch_op.drop_column('onsite_required')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('is_supervisor')
