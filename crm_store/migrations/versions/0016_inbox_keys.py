"""The web inbox's written form keys, so a ticket form posted twice writes once across web processes.

- inbox_form_keys: one row per form key whose post was written, inserted in the same transaction; a second
  post of the key finds it (or waits for the first post's transaction and then finds it) and writes nothing.

Revision ID: 0016_inbox_keys
Revises: 0015_ticket_rollup
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_inbox_keys"
down_revision = "0015_ticket_rollup"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_form_keys",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column(
            "ticket_id",
            BigId,
            sa.ForeignKey("tickets.id", name="fk_inbox_form_keys_ticket_id_tickets", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("written_at", When, nullable=False),
    )
    op.create_index("ix_inbox_form_keys_written_at", "inbox_form_keys", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_form_keys_written_at", table_name="inbox_form_keys")
    op.drop_table("inbox_form_keys")
