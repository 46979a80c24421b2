"""The CRM's tables as typed SQLAlchemy 2 models; one `Base`, portable across SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key."""

Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


TIERS = ("VIP", "important", "ordinary", "potential")
TICKET_STATUSES = ("open", "pending", "solved", "closed")
ROLES = ("agent", "supervisor", "admin")


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    tiers: Mapped[list[str]] = mapped_column(Json, default=list)
    """Tiers this agent serves; empty means all."""
    queues: Mapped[list[str]] = mapped_column(Json, default=list)
    languages: Mapped[list[str]] = mapped_column(Json, default=list)
    skills: Mapped[list[str]] = mapped_column(Json, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(20), default="online")
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    auto_assign: Mapped[bool | None] = mapped_column(default=None)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    """A second factor for the dashboard (pyotp), when the agent enabled one."""
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Whether routing may hand this person tickets; None: agents yes, supervisors and admins only if they opt in."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class AgentAddress(Base):
    """Where an agent can be reached and recognised (a Telegram user id, a console name, ...)."""

    __tablename__ = "agent_addresses"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    """The business's own customer id, from imports."""
    name: Mapped[str] = mapped_column(String(255), default="")
    tier: Mapped[str] = mapped_column(String(20), default="potential", index=True)
    manual_tier: Mapped[str | None] = mapped_column(String(20))
    tier_reason: Mapped[str] = mapped_column(Text, default="no purchases yet")
    key_account_manager_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default="lead")
    language: Mapped[str | None] = mapped_column(String(8))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    legal_hold: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Erasure is refused while set."""
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class Identity(Base):
    """A (channel, address) that belongs to a customer: how we recognise them across channels."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_queue_due", "status", "queue", "first_response_due"),
        Index("ix_tickets_customer_status", "customer_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_status_resolution_due", "status", "resolution_due"),
        Index("ix_tickets_status_snoozed", "status", "snoozed_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(32))
    """The channel the customer opened it on; replies go back there."""
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[int] = mapped_column(Integer, default=3)
    """1 is most urgent."""
    tier_at_open: Mapped[str] = mapped_column(String(20), default="potential")
    queue: Mapped[str] = mapped_column(String(64), default="general")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(255), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    skill: Mapped[str | None] = mapped_column(String(64))
    intent: Mapped[str | None] = mapped_column(String(64))
    handoff_reason: Mapped[str | None] = mapped_column(String(255))
    first_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    solved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    sla_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    csat: Mapped[int | None] = mapped_column(Integer)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    topic_ref: Mapped[str | None] = mapped_column(String(64))
    """Forum-mode topic (chat:thread) that mirrors this ticket, if any."""
    delivery_problem: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="live", server_default="live")
    """live | imported (migrated history: no SLA, left out of the figures) | api | agent | rasa."""
    tags: Mapped[list[str] | None] = mapped_column(Json, default=list)
    snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """A pending ticket comes back to its agent by itself at this time."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class Contact(Base):
    """Every message in or out, on every channel: the contact log. Unique per (channel, external id, way)."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "direction"),
        Index("ix_contacts_customer_created", "customer_id", "created_at"),
        Index("ix_contacts_ticket_created", "ticket_id", "created_at"),
        Index("ix_contacts_channel_created", "channel", "created_at"),
        Index("ix_contacts_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    author: Mapped[str] = mapped_column(String(16), default="customer")  # customer | agent | bot | system
    address: Mapped[str] = mapped_column(String(255), default="")
    """The other side's address on the channel (sender inbound, recipient outbound)."""
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str | None] = mapped_column(String(255))
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    nlu: Mapped[dict[str, Any] | None] = mapped_column(Json)
    thread_ref: Mapped[str | None] = mapped_column(Text)
    raw_ref: Mapped[str | None] = mapped_column(Text)
    edit_of_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    truncated: Mapped[bool] = mapped_column(default=False)
    desk: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Desk traffic (agent commands, notices and answers to agents): logged, but not a customer contact."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    """When it was received (inbound) or delivered (outbound)."""
    logged_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class TicketEvent(Base):
    """The audit trail: who did what to a ticket, when."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    actor: Mapped[str] = mapped_column(String(16), default="system")  # agent | customer | bot | system
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Note(Base):
    """A private note by an agent on a customer (and optionally a ticket); never sent to the customer."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class ValueEvent(Base):
    """A purchase, payment or refund (negative amount): the value data tiers are computed from."""

    __tablename__ = "value_events"
    __table_args__ = (Index("ix_value_events_customer_at", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    referrals: Mapped[int] = mapped_column(Integer, default=0)
    loyalty_points: Mapped[int] = mapped_column(Integer, default=0)
    source_key: Mapped[str] = mapped_column(String(64), unique=True)
    """A hash of the imported row, so importing the same file twice changes nothing."""


class TierRun(Base):
    __tablename__ = "tier_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    method: Mapped[str] = mapped_column(String(16))
    k: Mapped[int | None] = mapped_column(Integer)
    silhouette: Mapped[float | None]
    stability_ari: Mapped[float | None]
    changed: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")


class TierChange(Base):
    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_customer_run", "customer_id", "run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("tier_runs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    old_tier: Mapped[str | None] = mapped_column(String(20))
    new_tier: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class TierAssignment(Base):
    """One run's tier for one customer, with the predicted 12-month value and probability alive behind it."""

    __tablename__ = "tier_assignments"
    __table_args__ = (Index("ix_tier_assignments_customer_run", "customer_id", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("tier_runs.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))
    computed_tier: Mapped[str] = mapped_column(String(20))
    predicted_value: Mapped[float | None]
    p_alive: Mapped[float | None]


class OutboxItem(Base):
    """A reply waiting to be delivered; written in the same transaction as the contact that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_channel_recipient_ext", "channel", "recipient", "external_id"),
        Index("ix_outbox_claimed_by", "claimed_by"),
        # The per-sender cap reads each batch's customers' recent bot answers (bot_answers_since); the outbox
        # keeps every reply ever sent, so without it that read scans the whole table once per batch.
        Index("ix_outbox_customer_author_created", "customer_id", "author", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(255), default="")
    reply_to: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[list[list[str]]] = mapped_column(Json, default=list)
    meta: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(16), default="bot")
    audience: Mapped[str] = mapped_column(String(8), default="customer", server_default="customer")
    """customer (a contact once sent) | desk (logged as desk traffic) | event (a webhook: not a contact)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    """The sender holding the lease (next_attempt_at) while the row is pending; see OutboxSettings.sender_id."""


class ApiToken(Base):
    """A bearer token for the REST API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
class CannedResponse(Base):
    """A snippet agents send by name (Telegram `/canned <name>`, the web inbox); one row per (name, language).

    language "" is the snippet's default text, used when the customer's language has no version of its own.
    """

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("name", "language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="")
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


from crm_store import inbox_keys, receipts, rollups, trust  # noqa: E402,F401  (their tables: one Base)
