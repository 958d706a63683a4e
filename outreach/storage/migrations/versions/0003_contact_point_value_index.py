"""index contact points by kind and value, for the webhooks' lookups by phone number or address

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:00:00

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # An inbound STOP names only the number; without this, each one scans every contact point.
    op.create_index('ix_contact_point_value', 'contact_point', ['kind', 'value'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_contact_point_value', table_name='contact_point')
