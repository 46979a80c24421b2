"""Ticket rollups kept by the ticket writer, so the figures read days, not tickets
(crm_store/repositories/ticket_rollup.py):

- ticket_days: the additive figures of the counted tickets opened on a UTC day, per (tier at open, channel,
  assignee; 0 = nobody), and "handled" on the day a ticket was resolved.
- ticket_duration_days: first-response and resolution times as per-day histograms in fixed log buckets (32 per
  doubling, a row per doubling: counts b0..b31 and their sums in milliseconds s0..s31), per tier, channel and
  assignee, so percentiles come from summed buckets.
- ticket_backlog: open and pending tickets per (queue, status, tier, assignee): the backlog and each agent's load.
- A partial index of the handed-off unresolved tickets the SLA clock has not marked: the breaches that
  depend on the moment the figures are read are counted from it.

The upgrade fills the rollups from the tickets there are (`rebuild_on`, also `tierdesk` admin's repair).

Revision ID: 0015_ticket_rollup
Revises: 0014_canned
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_ticket_rollup"
down_revision = "0014_canned"
branch_labels = None
depends_on = None

SLOTS = 32
"""Buckets per doubling of a duration: one row holds an octave [2^k, 2^(k+1)) seconds."""
AgentKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNMARKED = (
    "handoff_reason IS NOT NULL AND sla_breached_at IS NULL AND (status IN ('open', 'pending') "
    "OR (status = 'closed' AND closed_at IS NULL) OR (status = 'solved' AND solved_at IS NULL))"
)
"""Handed off, not marked by the SLA clock, not resolved: written as the figures' query writes it."""
UNMARKED_COLUMNS = [
    "created_at",
    "source",
    "tier_at_open",
    "channel",
    "assignee_id",
    "first_responded_at",
    "first_response_due",
    "resolution_due",
]


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "ticket_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("agent_id", AgentKey, nullable=False),
        *(
            _counter(n)
            for n in ("conversations", "handed_off", "bot_resolved", "breached", "csat_n", "csat_sum", "handled")
        ),
        sa.PrimaryKeyConstraint("day", "tier", "channel", "agent_id", name="pk_ticket_days"),
    )
    op.create_table(
        "ticket_duration_days",
        sa.Column("dim", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("octave", sa.SmallInteger(), nullable=False),
        *(_counter(f"b{i}") for i in range(SLOTS)),
        *(sa.Column(f"s{i}", sa.BigInteger(), nullable=False, server_default="0") for i in range(SLOTS)),
        sa.PrimaryKeyConstraint("dim", "day", "key", "measure", "octave", name="pk_ticket_duration_days"),
    )
    op.create_table(
        "ticket_backlog",
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("agent_id", AgentKey, nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint("queue", "status", "tier", "agent_id", name="pk_ticket_backlog"),
    )
    op.create_index(
        "ix_tickets_unmarked_active",
        "tickets",
        UNMARKED_COLUMNS,
        postgresql_where=sa.text(UNMARKED),
        sqlite_where=sa.text(UNMARKED),
    )
    from crm_store.repositories.ticket_rollup import rebuild_on

    rebuild_on(op.get_bind())  # the tickets there are, counted as the ticket writer will keep counting them


def downgrade() -> None:
    op.drop_index("ix_tickets_unmarked_active", table_name="tickets")
    op.drop_table("ticket_backlog")
    op.drop_table("ticket_duration_days")
    op.drop_table("ticket_days")
