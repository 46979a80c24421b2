"""Delivery under faults: sends recorded one by one, and each leased outbox row names its sender.

- outbox.claimed_by: the sender (a stable name per process, see OutboxSettings.sender_id) that holds the row's
  lease. It renews the lease while it lives; on start it re-sends the rows it still held when it died, before
  anything else; a row whose lease ran out is taken by any sender.

Revision ID: 0009_delivery
Revises: 0008_identity_security
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_delivery"
down_revision = "0008_identity_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("claimed_by", sa.String(64), nullable=True))
    op.create_index("ix_outbox_claimed_by", "outbox", ["claimed_by"])


def downgrade() -> None:
    op.drop_index("ix_outbox_claimed_by", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
