"""More channels: API channels and WhatsApp.

Revision ID: 0013_channels
Revises: 0012_tier_history
"""

revision = "0013_channels"
down_revision = "0012_tier_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
