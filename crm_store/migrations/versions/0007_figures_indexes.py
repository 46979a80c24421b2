"""Indexes for the figures (crm_store/repositories/figures.py), each measured on 200,000 tickets and a million
contacts:

- The overview's covering index is widened to every column the figures read of the tickets opened in a range
  (source, channel, assignee, status, hand-off and due times were table lookups): the counts and percentiles
  read the index alone.
- (status, closed_at) and (status, solved_at): "handled" counts tickets resolved in the range, a range scan
  instead of a scan of every ticket.
- A partial index of agents' replies to customers (outbound, author agent, not desk traffic): their count per
  agent reads only those rows, not every contact of the range.

Revision ID: 0007_figures_indexes
Revises: 0006_ticket_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_figures_indexes"
down_revision = "0006_ticket_core"
branch_labels = None
depends_on = None

OLD_COLUMNS = ["created_at", "tier_at_open", "first_responded_at", "solved_at", "closed_at", "sla_breached_at", "csat"]
COLUMNS = ["created_at", "source", "tier_at_open", "channel", "assignee_id", "status", "handoff_reason",
           "first_responded_at", "solved_at", "closed_at", "first_response_due", "resolution_due", "sla_breached_at",
           "csat"]
AGENT_REPLY = "direction = 'out' AND author = 'agent' AND desk = {false}"
"""Written as the figures' query writes it (literals), so both databases see the index applies."""


def upgrade() -> None:
    op.drop_index("ix_tickets_created_figures", table_name="tickets")
    op.create_index("ix_tickets_opened_figures", "tickets", COLUMNS)
    op.create_index("ix_tickets_status_closed", "tickets", ["status", "closed_at"])
    op.create_index("ix_tickets_status_solved", "tickets", ["status", "solved_at"])
    op.create_index(
        "ix_contacts_agent_replies", "contacts", ["agent_id", "created_at"],
        postgresql_where=sa.text(AGENT_REPLY.format(false="false")), sqlite_where=sa.text(AGENT_REPLY.format(false="0")),
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_agent_replies", table_name="contacts")
    op.drop_index("ix_tickets_status_solved", table_name="tickets")
    op.drop_index("ix_tickets_status_closed", table_name="tickets")
    op.drop_index("ix_tickets_opened_figures", table_name="tickets")
    op.create_index("ix_tickets_created_figures", "tickets", OLD_COLUMNS)
