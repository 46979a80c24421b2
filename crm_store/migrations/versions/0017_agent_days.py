"""Agents' replies per day kept by the contact writers, so the agents page reads a row per agent and day instead
of counting the contact log (crm_store/repositories/reply_rollup.py):

- agent_reply_days: outbound contacts by an agent that are not desk traffic, per (agent, UTC day of created_at).

The upgrade fills it from the log there is (`rebuild_on`, also the repair after a bulk load).

Revision ID: 0017_agent_days
Revises: 0016_inbox_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_agent_days"
down_revision = "0016_inbox_keys"
branch_labels = None
depends_on = None

AgentKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agent_reply_days",
        sa.Column("agent_id", AgentKey, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("agent_id", "day", name="pk_agent_reply_days"),  # an agent's days: one range
    )
    from crm_store.repositories.reply_rollup import rebuild_on

    rebuild_on(op.get_bind())  # the replies logged so far, counted as the contact writers will keep counting them


def downgrade() -> None:
    op.drop_table("agent_reply_days")
