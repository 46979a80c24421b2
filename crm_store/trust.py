"""Tables of trust and privacy on the same Base: identity claims waiting for their code, dashboard sessions,
login throttles and the audit log (see migration 0008)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, BigId, Json, UtcDateTime, now


class IdentityClaim(Base):
    """An identity a customer claimed but nobody vouched for: it links once the code sent there is entered."""

    __tablename__ = "identity_claims"
    __table_args__ = (
        Index("ix_identity_claims_customer_status", "customer_id", "status"),
        Index("ix_identity_claims_channel_address", "channel", "address"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    """Who claimed it (the customer the claim was made from)."""
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    via_channel: Mapped[str] = mapped_column(String(32), default="", server_default="")
    via_address: Mapped[str] = mapped_column(String(255), default="", server_default="")
    """Where the claim was made (to ask for the code there)."""
    code_hash: Mapped[str] = mapped_column(String(128), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    """pending | verified | expired | refused."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    codes_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A dashboard session kept on the server: the cookie holds only its random id (stored hashed)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """The absolute timeout; the idle timeout is counted from `last_seen_at`."""
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    second_factor_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    client: Mapped[str] = mapped_column(String(255), default="", server_default="")


class LoginThrottle(Base):
    """Failed logins of one (client, account): each failure makes the next try wait longer; nothing locks."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), default="", server_default="")
    account: Mapped[str] = mapped_column(String(255), default="", server_default="")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_allowed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who did what that a supervisor or a data-protection officer may ask about: exports, merges, links,
    erasures, session revocations."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_subject", "subject", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """What it was about, e.g. "customer:12", "contacts"."""
    data: Mapped[dict[str, Any] | None] = mapped_column(Json, default=dict)
