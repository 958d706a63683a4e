"""the Regulation F itemization of an account: reference date, its kind and amount, interest
and fees since (issue 13 item 12)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (
    ('itemization_date', sa.Date()),
    ('itemization_kind', sa.String(length=16)),
    ('itemization_amount', sa.Numeric(14, 2)),
    ('interest_since_itemization', sa.Numeric(14, 2)),
    ('fees_since_itemization', sa.Numeric(14, 2)),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('account', schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('account', schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
