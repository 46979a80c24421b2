"""Delivery receipts channels report after a send (WhatsApp's sent, delivered, read and failed statuses), each
stored once per (channel, external id, status) however often the channel redelivers it (see migration 0013). No
address is kept: who it was sent to is on the outbound contact, which erasure and retention already handle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, BigId, UtcDateTime, now


class DeliveryReceipt(Base):
    __tablename__ = "delivery_receipts"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "status", name="uq_delivery_receipts_channel_external_id_status"),
        Index("ix_delivery_receipts_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    """The id the channel gave the message when it was sent (the outbound contact's external id)."""
    status: Mapped[str] = mapped_column(String(16))
    """sent | delivered | read | failed."""
    error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    """When the channel says it happened."""
    logged_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
