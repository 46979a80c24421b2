"""Tables the dashboard reads instead of scanning the contact log: customer contacts counted per UTC day.

Kept by crm_store.repositories.contact_days (whole days recomputed when touched), so a month's chart reads a few
hundred rows instead of grouping a few hundred thousand contacts.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, UtcDateTime


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
