"""Indexes for the dashboard at ten million contacts, each read by an index-only scan (proven by EXPLAIN in
tests/crm_store/test_dashboard_plans.py):

- Agents' replies to customers by contact time first: the figures count a range of days per agent, so the range
  is one contiguous slice of the index (the old (agent_id, created_at) partial index read every agent's part and
  the table's rows).
- (status, assignee_id, id): routing's load per agent (it counts ids), open and pending tickets only.
- "Handled" (tickets resolved in the range per agent) reads (status, closed_at / solved_at) with the assignee and
  source in the index too: no table row per resolved ticket.
- (status, id): the ticket queue by status, newest first, one page without reading other statuses' rows.
- PostgreSQL: contacts by intent, newest first (the log's intent filter as contact_search writes it): a rare
  intent is a short range, not a walk back through the whole log; its statistics also tell the planner how
  common an intent is.

Revision ID: 0011_workspace
Revises: 0010_nlu_review
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_workspace"
down_revision = "0010_nlu_review"
branch_labels = None
depends_on = None

AGENT_REPLY = "direction = 'out' AND author = 'agent' AND desk = {false}"
"""As the figures' query writes it (literals), so both databases see that the index applies."""


INTENT = "(CAST((nlu ->> 'intent') AS VARCHAR))"
"""contact_search's intent filter, as PostgreSQL sees it once the key is bound."""


def _replies_index(name: str, columns: list[str]) -> None:
    op.create_index(
        name,
        "contacts",
        columns,
        postgresql_where=sa.text(AGENT_REPLY.format(false="false")),
        sqlite_where=sa.text(AGENT_REPLY.format(false="0")),
    )


def upgrade() -> None:
    op.drop_index("ix_contacts_agent_replies", table_name="contacts")
    _replies_index("ix_contacts_agent_replies_at", ["created_at", "agent_id"])
    op.create_index("ix_tickets_status_assignee", "tickets", ["status", "assignee_id", "id"])
    op.create_index("ix_tickets_status_id", "tickets", ["status", "id"])
    for column in ("closed_at", "solved_at"):
        op.drop_index(f"ix_tickets_status_{column[:-3]}", table_name="tickets")
        op.create_index(f"ix_tickets_status_{column[:-3]}_by", "tickets", ["status", column, "assignee_id", "source"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_contacts_intent_created ON contacts ({INTENT}, created_at) WHERE nlu IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_contacts_intent_created")
    for column in ("closed_at", "solved_at"):
        op.drop_index(f"ix_tickets_status_{column[:-3]}_by", table_name="tickets")
        op.create_index(f"ix_tickets_status_{column[:-3]}", "tickets", ["status", column])
    op.drop_index("ix_tickets_status_id", table_name="tickets")
    op.drop_index("ix_tickets_status_assignee", table_name="tickets")
    op.drop_index("ix_contacts_agent_replies_at", table_name="contacts")
    _replies_index("ix_contacts_agent_replies", ["agent_id", "created_at"])
