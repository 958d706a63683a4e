"""ladder versions: proposed by one person, approved by another, one active

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'ladder_version',
        sa.Column('version', sa.String(length=32), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('proposed_by', sa.String(length=64), nullable=False),
        sa.Column('proposed_at', sa.DateTime(), nullable=False),
        sa.Column('approved_by', sa.String(length=64), nullable=True),
        sa.Column('approved_at', sa.DateTime(), nullable=True),
        sa.Column('retired_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('version'),
    )
    with op.batch_alter_table('ladder_version', schema=None) as batch_op:
        batch_op.create_index('uq_ladder_version_active', ['state'], unique=True,
                              sqlite_where=sa.text("state = 'active'"),
                              postgresql_where=sa.text("state = 'active'"))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('ladder_version', schema=None) as batch_op:
        batch_op.drop_index('uq_ladder_version_active', sqlite_where=sa.text("state = 'active'"),
                            postgresql_where=sa.text("state = 'active'"))
    op.drop_table('ladder_version')
