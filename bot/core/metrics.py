"""Prometheus metrics (`/metrics`): what an operator needs to see that intake, the bot and delivery keep up.

Two kinds, on purpose:
- **Counted in this process** as things happen (dispatch batches and their latency, the bot's decisions, tickets
  opened and closed, SLA breaches, sends by outcome). A `tierdesk worker` has no web app; `metrics_port`
  serves its own `/metrics`, so every process is scraped.
- **Read from the shared stores at scrape time** (contacts in and out per channel from the contact-days rollup,
  the outbox backlog and failures per channel, open and breached tickets per tier, stream lag, pending entries
  and dead letters): figures of the whole deployment, the same whichever process is scraped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
"""tierdesk's own registry: what `/metrics` shows, without the client library's process defaults doubled."""

BATCH_SIZE = Histogram(
    "tierdesk_dispatch_batch_messages", "Messages handled in one dispatch transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "tierdesk_dispatch_batch_seconds", "Time to handle and commit one dispatch batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=REGISTRY,
)
NLU_DECISIONS = Counter(
    "tierdesk_nlu_decisions_total", "What the bot did with a customer message", ["action", "language"],
    registry=REGISTRY,
)
TICKETS = Counter(
    "tierdesk_tickets_total", "Tickets opened, closed and reopened", ["change", "tier"], registry=REGISTRY
)
SLA_BREACHES = Counter("tierdesk_sla_breaches_total", "SLA escalations", ["tier"], registry=REGISTRY)
SENDS = Counter(
    "tierdesk_outbox_sends_total", "Outbox send attempts by outcome", ["channel", "outcome"], registry=REGISTRY
)

CONTACTS = Gauge(
    "tierdesk_contacts", "Customer contacts logged (all processes), by channel and direction",
    ["channel", "direction"], registry=REGISTRY,
)
OUTBOX = Gauge(
    "tierdesk_outbox_items", "Outbox items not yet sent (pending, sending) or given up (failed), by channel",
    ["channel", "status"], registry=REGISTRY,
)
OPEN_TICKETS = Gauge("tierdesk_open_tickets", "Tickets open or pending, by tier", ["tier"], registry=REGISTRY)
BREACHED_TICKETS = Gauge(
    "tierdesk_breached_open_tickets", "Open tickets past their first-response due time, by tier", ["tier"],
    registry=REGISTRY,
)
STREAM = Gauge(
    "tierdesk_stream_entries", "Inbound stream: entries not yet delivered to the group (lag), delivered but not "
    "acknowledged (pending), and dead letters", ["kind"], registry=REGISTRY,
)
SCRAPE_ERRORS = Counter(
    "tierdesk_metrics_scrape_errors_total", "Store reads that failed while serving /metrics", ["source"],
    registry=REGISTRY,
)


def observe_batch(messages: int, seconds: float) -> None:
    BATCH_SIZE.observe(messages)
    BATCH_SECONDS.observe(seconds)


def count_decision(action: str, language: str | None) -> None:
    NLU_DECISIONS.labels(action, language or "unknown").inc()


def count_ticket(change: str, tier: str | None) -> None:
    TICKETS.labels(change, tier or "unknown").inc()


def count_breach(tier: str | None) -> None:
    SLA_BREACHES.labels(tier or "unknown").inc()


def count_send(channel: str, outcome: str) -> None:
    SENDS.labels(channel, outcome).inc()


async def _read_database(sessions: Any) -> None:
    from crm_store.repositories import metrics_reads

    async with sessions() as session:
        contacts = await metrics_reads.contacts_by_channel(session)
        outbox = await metrics_reads.outbox_backlog(session)
        open_by_tier, breached_by_tier = await metrics_reads.open_tickets(session, datetime.now(UTC))
    _replace(CONTACTS, contacts)
    _replace(OUTBOX, outbox)
    _replace(OPEN_TICKETS, open_by_tier)
    _replace(BREACHED_TICKETS, breached_by_tier)


def _replace(gauge: Gauge, values: dict[tuple[str, ...], int]) -> None:
    """Set a labelled gauge to exactly these series (a channel whose backlog emptied drops to absent, not stale)."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


async def _read_stream(ingest: Any) -> None:
    redis, stream, group = ingest.redis, ingest.stream, ingest.group
    lag = pending = 0
    try:
        groups = await redis.xinfo_groups(stream)
    except Exception:  # no stream yet (nothing published since a restart)
        groups = []
    for info in groups:
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            lag = int(info.get("lag") or 0)
            pending = int(info.get("pending") or 0)
    STREAM.labels("lag").set(lag)
    STREAM.labels("pending").set(pending)
    STREAM.labels("dead").set(await redis.xlen(ingest.dead_letters))


async def render(sessions: Any, ingest: Any = None, *, timeout_s: float = 5.0) -> bytes:
    """The text exposition: this process's counters plus the shared stores read now. A store that does not
    answer in time leaves its gauges as last read and counts a scrape error, so /metrics itself stays up."""
    for source, read in (("database", lambda: _read_database(sessions)), ("stream", lambda: _read_stream(ingest))):
        if source == "stream" and ingest is None:
            continue
        try:
            await asyncio.wait_for(read(), timeout_s)
        except Exception as exc:
            SCRAPE_ERRORS.labels(source).inc()
            log.warning("metrics: reading the %s failed: %s", source, type(exc).__name__)
    return generate_latest(REGISTRY)


def serve_port(port: int, host: str) -> None:
    """This process's counters on their own port (for `tierdesk worker`, which has no web app)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=REGISTRY)
