"""Outbound webhooks: ticket events POSTed as signed JSON to a configured URL, through the outbox.

The dispatcher (or the REST API) writes `OutboundMessage(channel="webhook", recipient=url,
text=ticket_event_payload(...))`; the outbox worker calls `send`, and retries with backoff whenever `send`
raises a non-permanent `DeliveryError`.

Receivers verify `X-Tierdesk-Signature: sha256=<hex>` = HMAC-SHA256(secret, f"{timestamp}.{body}") with
`X-Tierdesk-Timestamp` (Unix seconds), and should refuse timestamps older than a few minutes.

Every delivery of one event carries the same `Idempotency-Key` (also sent as `X-Tierdesk-Delivery`): a retry,
or a re-send after our process died between the POST and its record, repeats it, so receivers drop the copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

import httpx

from bot.core.messages import Deliver, DeliveryError, OutboundMessage
from channels.base import ChannelTraits
from channels.send_limits import SendLimits

EVENTS = ("ticket.created", "ticket.assigned", "ticket.replied", "ticket.closed", "ticket.sla_breached")
CUSTOMER_EVENTS = ("customer.tier_changed",)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def ticket_event_payload(
    event: str,
    *,
    ticket_id: int,
    customer_id: int | None,
    status: str,
    tier: str | None = None,
    queue: str | None = None,
    assignee_id: int | None = None,
    at: datetime | None = None,
    event_id: str = "",
    **extra: Any,
) -> str:
    """The JSON body of one ticket event. Pure: the same arguments give the same bytes.

    `event_id` should be stable per event (e.g. "T-17:assigned:<ticket_event id>") so receivers can dedupe retries.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; known: {', '.join(EVENTS)}")
    body = {
        "event": event,
        "id": event_id or f"T-{ticket_id}:{event}:{_iso(at) or ''}",
        "at": _iso(at),
        "ticket": {
            "id": ticket_id, "customer_id": customer_id, "status": status, "tier": tier, "queue": queue,
            "assignee_id": assignee_id,
        },
    }
    if extra:
        body["data"] = {k: _iso(v) for k, v in sorted(extra.items())}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def customer_event_payload(event: str, *, customer_id: int, at: datetime | None = None, event_id: str = "",
                           **extra: Any) -> str:
    """The JSON body of one customer event ("customer.tier_changed": data holds old_tier, new_tier, reason)."""
    if event not in CUSTOMER_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; known: {', '.join(CUSTOMER_EVENTS)}")
    body = {"event": event, "id": event_id or f"C-{customer_id}:{event}:{_iso(at) or ''}", "at": _iso(at),
            "customer": {"id": customer_id}}
    if extra:
        body["data"] = {k: _iso(v) for k, v in sorted(extra.items())}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sign(secret: str, timestamp: str, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(
    secret: str, timestamp: str, body: str, signature: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """What a receiver does (and our tests): a matching signature on a recent timestamp."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel(ChannelTraits):
    """Channel "webhook": each message's text is a JSON body POSTed to its recipient URL."""

    name = "webhook"
    section = "web"

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> WebhookChannel:
        return cls(section.webhook_secret, concurrency=getattr(section, "webhook_concurrency", 8))

    @classmethod
    def implied_by(cls, section: Any) -> bool:
        """Runs whenever a webhook URL is set, without being named in `channels`."""
        return bool(getattr(section, "webhook_url", ""))

    def __init__(self, secret: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None,
                 concurrency: int = 8) -> None:
        if not secret:
            raise ValueError("webhooks need a signing secret (web.webhook_secret)")
        self._secret = secret
        self.concurrency = concurrency
        self.limits = SendLimits()
        self._client = client
        self._own_client = client is None
        self._timeout = timeout_s

    async def start(self, deliver: Deliver) -> None:  # sends only
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def stop(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    def use_limits(self, limits: SendLimits) -> None:
        """Share the concurrency with every other process (limits kept in Redis)."""
        self.limits = limits

    async def send(self, message: OutboundMessage) -> str:
        if self._client is None:
            await self.start(None)  # type: ignore[arg-type]
        assert self._client is not None
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tierdesk-webhook/1",
            "X-Tierdesk-Timestamp": timestamp,
            "X-Tierdesk-Signature": sign(self._secret, timestamp, message.text),
        }
        if message.idempotency_key:
            headers["X-Tierdesk-Delivery"] = headers["Idempotency-Key"] = message.idempotency_key
        try:
            async with self.limits.slot("webhook", self.concurrency):
                response = await self._client.post(message.recipient, content=message.text.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {message.recipient}: {type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return message.idempotency_key or response.headers.get("X-Request-Id", "") or f"webhook-{timestamp}"
        retry_after = _retry_after(response.headers.get("Retry-After"))
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 425, 429)
        raise DeliveryError(
            f"webhook {message.recipient}: HTTP {response.status_code}", permanent=permanent, retry_after=retry_after
        )


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
