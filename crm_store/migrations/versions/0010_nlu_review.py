"""The assistant: clarification choices kept for review.

Revision ID: 0010_nlu_review
Revises: 0009_delivery
"""

revision = "0010_nlu_review"
down_revision = "0009_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
