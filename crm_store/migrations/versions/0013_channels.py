"""More channels: API channels and WhatsApp.

- delivery_receipts: what a channel reports after a send (WhatsApp's sent, delivered, read, failed), once per
  (channel, external id, status), with the ticket of the message it is about.

API channels need no table of their own: pulled replies are the channel's outbound contacts.

Revision ID: 0013_channels
Revises: 0012_tier_history
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_channels"
down_revision = "0012_tier_history"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=False, server_default=""),
        sa.Column(
            "ticket_id",
            BigId,
            sa.ForeignKey("tickets.id", name="fk_delivery_receipts_ticket_id_tickets", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("at", When, nullable=False),
        sa.Column("logged_at", When, nullable=False),
        sa.UniqueConstraint("channel", "external_id", "status", name="uq_delivery_receipts_channel_external_id_status"),
    )
    op.create_index("ix_delivery_receipts_ticket", "delivery_receipts", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_receipts_ticket", table_name="delivery_receipts")
    op.drop_table("delivery_receipts")
