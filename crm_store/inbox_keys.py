"""The one-time keys of the web inbox's ticket forms that were written (see migration 0016): a key is inserted in
the transaction that writes what its form asked for, so the same form posted twice, to one web process or to
two, writes once — the unique key decides, not a process's memory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.models import Base, UtcDateTime, now


class InboxFormKey(Base):
    __tablename__ = "inbox_form_keys"
    __table_args__ = (Index("ix_inbox_form_keys_written_at", "written_at"),)

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    written_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
