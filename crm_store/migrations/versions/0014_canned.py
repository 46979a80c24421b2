"""Canned responses: snippets agents send by name, in Telegram and on the web.

- canned_responses: one row per (name, language); language "" is the default text of a name.

Revision ID: 0014_canned
Revises: 0013_channels
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_canned"
down_revision = "0013_channels"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "canned_responses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "created_by",
            BigId,
            sa.ForeignKey("agents.id", name="fk_canned_responses_created_by_agents", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.UniqueConstraint("name", "language", name="uq_canned_responses_name_language"),
    )


def downgrade() -> None:
    op.drop_table("canned_responses")
