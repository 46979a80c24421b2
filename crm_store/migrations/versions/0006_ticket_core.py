"""The ticket core's columns, and desk traffic told apart from customer contacts.

- contacts.desk: agent commands, the bot's answers and notices to agents, supervisor alerts. Still logged once,
  but not a customer contact: volumes, the log page and exports leave them out unless asked. Existing rows are
  classified the way they were written (agent-authored inbound, system-authored outbound). Webhook deliveries
  were logged as contacts; they are events, and are removed from the log (the outbox keeps them).
- outbox.audience: customer | desk | event, so the sender logs each delivery as what it is.
- tickets.source (live | imported | api | agent | rasa), tags, snoozed_until.
- agents.auto_assign: whether routing may hand this person tickets (NULL: agents yes, supervisors and admins no).
- The contact-days rollup is recounted from scratch (it now counts customer contacts only).

Revision ID: 0006_ticket_core
Revises: 0005_contact_text_search
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_ticket_core"
down_revision = "0005_contact_text_search"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("contacts", sa.Column("desk", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE contacts SET desk = TRUE WHERE (direction = 'in' AND author = 'agent' AND customer_id IS NULL) "
        "OR (direction = 'out' AND author = 'system' AND channel <> 'webhook')"
    )
    op.execute("DELETE FROM contacts WHERE channel = 'webhook' AND direction = 'out'")
    op.add_column("outbox", sa.Column("audience", sa.String(8), nullable=False, server_default="customer"))
    op.execute("UPDATE outbox SET audience = 'desk' WHERE author = 'system'")
    op.execute("UPDATE outbox SET audience = 'event' WHERE channel = 'webhook'")
    op.add_column("tickets", sa.Column("source", sa.String(16), nullable=False, server_default="live"))
    op.add_column("tickets", sa.Column("tags", Json, nullable=True))
    op.add_column("tickets", sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_status_snoozed", "tickets", ["status", "snoozed_until"])
    op.add_column("agents", sa.Column("auto_assign", sa.Boolean(), nullable=True))
    op.execute("DELETE FROM contact_days")
    op.execute("DELETE FROM rollup_marks WHERE name = 'contact_days'")


def downgrade() -> None:
    op.drop_column("agents", "auto_assign")
    op.drop_index("ix_tickets_status_snoozed", table_name="tickets")
    for column in ("snoozed_until", "tags", "source"):
        op.drop_column("tickets", column)
    op.drop_column("outbox", "audience")
    op.drop_column("contacts", "desk")
    op.execute("DELETE FROM contact_days")
    op.execute("DELETE FROM rollup_marks WHERE name = 'contact_days'")
