"""Dashboard rollup: contacts per day by channel, tier and direction, and the indexes that find touched days.

Revision ID: 0003_contact_days
Revises: 0002_dashboard_search
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_contact_days"
down_revision = "0002_dashboard_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "tier", "direction", name="pk_contact_days"),
    )
    op.create_table(
        "rollup_marks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rollup_marks"),
    )
    op.create_index("ix_contacts_logged", "contacts", ["logged_at"])
    op.create_index("ix_customers_updated", "customers", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_customers_updated", table_name="customers")
    op.drop_index("ix_contacts_logged", table_name="contacts")
    op.drop_table("rollup_marks")
    op.drop_table("contact_days")
