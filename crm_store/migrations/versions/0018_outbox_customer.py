"""An index for the bot-answer cap: outbox rows by (customer, author, created_at).

The outbox keeps every reply ever sent. The dispatcher reads, once per batch, how often the bot answered each of
the batch's customers in the last hour (crm_store/repositories/bot_answers.py); without this index that is a
scan of the whole outbox per batch, slower with every reply sent. Erasing a customer (privacy) reads the same
rows by customer.

Revision ID: 0018_outbox_customer
Revises: 0017_agent_days
"""

from alembic import op

revision = "0018_outbox_customer"
down_revision = "0017_agent_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_customer_author_created", "outbox", ["customer_id", "author", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_customer_author_created", table_name="outbox")
