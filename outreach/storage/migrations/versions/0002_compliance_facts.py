"""compliance facts: inconvenient times, destination flags and relation, notice and SCRA dates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Server defaults fill the new NOT NULL columns of existing rows (and keep writers that do
    # not name them working). SQLite adds columns in place: batch mode only rebuilds on drop.
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inconvenient_times', sa.String(length=500), nullable=True))

    with op.batch_alter_table('contact_point', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_consent', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('used_by_consumer', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('no_calls_at_work', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('relation', sa.String(length=32), nullable=False,
                                      server_default='self'))

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validation_notice_sent_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('initial_communication_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('scra_checked_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('scra_active_duty', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('scra_active_duty')
        batch_op.drop_column('scra_checked_on')
        batch_op.drop_column('initial_communication_on')
        batch_op.drop_column('validation_notice_sent_on')

    with op.batch_alter_table('contact_point', schema=None) as batch_op:
        batch_op.drop_column('relation')
        batch_op.drop_column('no_calls_at_work')
        batch_op.drop_column('used_by_consumer')
        batch_op.drop_column('email_consent')

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('inconvenient_times')
