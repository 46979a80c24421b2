"""Tier history: each run's tier per customer.

Revision ID: 0012_tier_history
Revises: 0011_workspace
"""

revision = "0012_tier_history"
down_revision = "0011_workspace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
