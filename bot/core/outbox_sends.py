"""One send of the outbox: the message a reply becomes, what the send produced, and when to try again.

Plain values and functions, kept apart from `outbox_worker` (which claims, sends and records) so that the
decisions can be read and tested without its I/O.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from bot.core.messages import Button, OutboundMessage
from bot.settings import OutboxSettings
from crm_store.repositories.outbox import Reply


def backoff(attempts: int, cfg: OutboxSettings, retry_after: float | None = None) -> float:
    """Seconds before the next try: exponential in the attempts so far, never less than the channel asked."""
    delay = min(cfg.backoff_base_s * (2 ** max(attempts - 1, 0)), cfg.backoff_max_s)
    return max(delay, retry_after or 0.0)


def to_message(item: Reply) -> OutboundMessage:
    return OutboundMessage(
        channel=item.channel,
        recipient=item.recipient,
        text=item.text,
        reply_to=item.reply_to or "",
        ticket_id=item.ticket_id,
        idempotency_key=item.idempotency_key,
        buttons=tuple(Button(label, data) for label, data in (item.buttons or [])),
        subject=item.subject or "",
        meta=tuple(sorted((item.meta or {}).items())),
    )


@dataclass(slots=True)
class SendOutcome:
    """What one send gave: an external id (sent), or an error, permanent or to retry."""

    item: Reply
    external_id: str | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    topic_ref: str = ""

    @property
    def kind(self) -> str:
        """sent | failed (a permanent error) | retry (not delivered this time): as counted in the metrics."""
        if self.external_id is not None:
            return "sent"
        return "failed" if self.permanent else "retry"


def default_sender_id() -> str:
    """host-pid-random: unique per process, so two processes never take each other's rows for their own."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
