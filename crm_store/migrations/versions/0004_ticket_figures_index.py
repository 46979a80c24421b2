"""Overview ticket figures: one index covering what the response-time, SLA and CSAT figures read, so a month of
tickets is read from the index alone instead of one table lookup per ticket.

Revision ID: 0004_ticket_figures_index
Revises: 0003_contact_days
"""

from alembic import op

revision = "0004_ticket_figures_index"
down_revision = "0003_contact_days"
branch_labels = None
depends_on = None

COLUMNS = ["created_at", "tier_at_open", "first_responded_at", "solved_at", "closed_at", "sla_breached_at", "csat"]


def upgrade() -> None:
    op.create_index("ix_tickets_created_figures", "tickets", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_tickets_created_figures", table_name="tickets")
