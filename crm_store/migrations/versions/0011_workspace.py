"""The agent workspace: canned responses, attachments, viewers.

Revision ID: 0011_workspace
Revises: 0010_nlu_review
"""

revision = "0011_workspace"
down_revision = "0010_nlu_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
