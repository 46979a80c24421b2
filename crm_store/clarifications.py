"""Clarifications: the bot asked which topic a message meant, and what the customer chose (see migration 0010).

A chosen row is a labelled example an admin may accept into the training data (`tierdesk nlu review`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, BigId, Json, UtcDateTime, now

STATUSES = ("asked", "chosen", "expired")
"""expired: nobody chose within `nlu.clarify_expiry_hours`; the ticket went to a person."""
REVIEWS = ("pending", "accepted", "rejected")


class Clarification(Base):
    """One question the bot asked instead of guessing, with its buttons, and the customer's answer."""

    __tablename__ = "clarifications"
    __table_args__ = (
        Index("ix_clarifications_customer_created", "customer_id", "created_at"),
        Index("ix_clarifications_review_chosen", "review", "chosen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    """Random; carried by the buttons, so a press names its question and nobody can guess another's."""
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(BigId)
    """The customer's message the question was about."""
    channel: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(8))
    script: Mapped[str | None] = mapped_column(String(8))
    """"zh-Hant" when the customer wrote Traditional Chinese (the answer is converted), else None."""
    options: Mapped[list[str]] = mapped_column(Json, default=list)
    """The intents offered, in button order (the person option last)."""
    ranking: Mapped[list[Any]] = mapped_column(Json, default=list)
    status: Mapped[str] = mapped_column(String(16), default="asked", server_default="asked")
    chosen_intent: Mapped[str | None] = mapped_column(String(64))
    review: Mapped[str | None] = mapped_column(String(16))
    """None until chosen; then pending, accepted or rejected."""
    reviewed_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    chosen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
