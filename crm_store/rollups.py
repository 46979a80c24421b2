"""Tables the dashboard reads instead of scanning the contact log and the tickets.

- contact_days: customer contacts counted per UTC day, kept by crm_store.repositories.contact_days (whole days
  recomputed when touched), so a month's chart reads a few hundred rows instead of a few hundred thousand contacts.
- ticket_days, ticket_duration_days, ticket_backlog: the ticket figures, kept by the ticket writer in the
  transaction of each ticket change (crm_store.repositories.ticket_rollup).
- agent_reply_days: agents' replies to customers per UTC day, kept in the transaction that logs them
  (crm_store.repositories.reply_rollup).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Date, Integer, PrimaryKeyConstraint, SmallInteger, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, BigId, UtcDateTime


class ContactDay(Base):
    """Customer contacts (never desk traffic) on one UTC day by channel, the customer's tier ("unknown" without a
    customer) and direction."""

    __tablename__ = "contact_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    contacts: Mapped[int] = mapped_column(Integer)


class RollupMark(Base):
    """How far a rollup has looked: rows logged (or customers changed) before `mark` are counted in it."""

    __tablename__ = "rollup_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    mark: Mapped[datetime] = mapped_column(UtcDateTime)


DAY_COUNTERS = ("conversations", "handed_off", "bot_resolved", "breached", "csat_n", "csat_sum", "handled")
SLOTS = 32
"""Duration buckets per doubling; a row of ticket_duration_days holds one doubling (octave) [2^k, 2^(k+1)) s."""
NOBODY = 0
"""agent_id of tickets nobody is assigned (a key column cannot be NULL)."""


def _counter(name: str) -> Column:
    return Column(name, Integer, nullable=False, default=0, server_default="0")


ticket_days = Table(
    "ticket_days", Base.metadata,
    Column("day", Date, nullable=False), Column("tier", String(20), nullable=False),
    Column("channel", String(32), nullable=False), Column("agent_id", BigId, nullable=False),
    *(_counter(n) for n in DAY_COUNTERS),
    PrimaryKeyConstraint("day", "tier", "channel", "agent_id", name="pk_ticket_days"),
)
"""Counted tickets opened on `day` per (tier at open, channel, assignee): the additive figures; `breached` only
where the facts already decide it; `handled` on the day a ticket was resolved instead."""

ticket_duration_days = Table(
    "ticket_duration_days", Base.metadata,
    Column("dim", String(8), nullable=False), Column("day", Date, nullable=False),
    Column("key", String(32), nullable=False), Column("measure", String(16), nullable=False),
    Column("octave", SmallInteger, nullable=False), *(_counter(f"b{i}") for i in range(SLOTS)),
    *(Column(f"s{i}", BigInteger, nullable=False, default=0, server_default="0") for i in range(SLOTS)),
    PrimaryKeyConstraint("dim", "day", "key", "measure", "octave", name="pk_ticket_duration_days"),
)
"""First-response and resolution times of the handed-off counted tickets opened on `day`, per tier, channel or
assignee (`dim`, `key`): counts in log buckets (b0..), and the sum of each bucket's durations in milliseconds
(s0..), so a bucket's mean is exact."""

ticket_backlog = Table(
    "ticket_backlog", Base.metadata,
    Column("queue", String(64), nullable=False), Column("status", String(20), nullable=False),
    Column("tier", String(20), nullable=False), Column("agent_id", BigId, nullable=False), _counter("n"),
    PrimaryKeyConstraint("queue", "status", "tier", "agent_id", name="pk_ticket_backlog"),
)
"""Open and pending tickets (imported ones too) per queue, status, tier and assignee: backlog and load."""

agent_reply_days = Table(
    "agent_reply_days", Base.metadata,
    Column("agent_id", BigId, nullable=False), Column("day", Date, nullable=False), _counter("replies"),
    PrimaryKeyConstraint("agent_id", "day", name="pk_agent_reply_days"),
)
"""Agents' replies to customers (reply_rollup.AGENT_REPLY) with a created_at on `day`, per agent: an agent's days are
one range of the key."""

from crm_store.repositories import reply_rollup, ticket_rollup  # noqa: E402,F401  (their hooks keep the rollups)
