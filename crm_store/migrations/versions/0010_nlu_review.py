"""The assistant: clarification choices kept for review.

- clarifications: a question the bot asked instead of guessing between two topics (token carried by its buttons,
  the options offered, the customer's message), the customer's choice, and an admin's review of it as training
  data (pending / accepted / rejected).

Revision ID: 0010_nlu_review
Revises: 0009_delivery
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_nlu_review"
down_revision = "0009_delivery"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clarifications",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column(
            "customer_id",
            BigId,
            sa.ForeignKey("customers.id", name="fk_clarifications_customer_id_customers", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "ticket_id",
            BigId,
            sa.ForeignKey("tickets.id", name="fk_clarifications_ticket_id_tickets", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("contact_id", BigId, nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("script", sa.String(8), nullable=True),
        sa.Column("options", Json, nullable=False),
        sa.Column("ranking", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="asked"),
        sa.Column("chosen_intent", sa.String(64), nullable=True),
        sa.Column("review", sa.String(16), nullable=True),
        sa.Column("reviewed_by", sa.String(255), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("chosen_at", When, nullable=True),
        sa.Column("reviewed_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_clarifications"),
        sa.UniqueConstraint("token", name="uq_clarifications_token"),
    )
    op.create_index("ix_clarifications_customer_created", "clarifications", ["customer_id", "created_at"])
    op.create_index("ix_clarifications_review_chosen", "clarifications", ["review", "chosen_at"])


def downgrade() -> None:
    op.drop_index("ix_clarifications_review_chosen", table_name="clarifications")
    op.drop_index("ix_clarifications_customer_created", table_name="clarifications")
    op.drop_table("clarifications")
