"""Waiting tickets announced to an agent in one message per transaction, not one message each.

A ticket that waits in a queue is announced to every online agent who serves it, with a Take button. A burst of
new conversations (a dispatch batch holds up to 200 messages) would page each agent once per waiting ticket:
twenty agents and a hundred waiting tickets are two thousand messages in a few seconds, which on Telegram (about
30 messages a second per bot) hold the customers' replies back for a minute. So an agent who would get two or
more such announcements from one transaction gets one digest in their place, where the first one was: the
tickets by queue, a Take button for the first few, /queue for the rest. A lone announcement goes out as it was.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bot.core.messages import Button

LINES = 10
"""Tickets listed by name in one digest; the rest are counted (an agent's /queue shows them all)."""
TAKE_BUTTONS = 3


@dataclass(frozen=True, slots=True)
class WaitingNotice:
    """One announcement of a waiting ticket to one agent, as queued in the outbox."""

    row: dict[str, Any]
    queue: str
    line: str
    """The ticket in one line: "T-12 · vip · telegram · Ann: where is my order"."""
    ticket_id: int


def merge_waiting(outbox: list[dict[str, Any]], notices: list[WaitingNotice]) -> None:
    """Replace, in `outbox`, each agent's two or more waiting-ticket announcements by one digest."""
    by_agent: dict[Any, list[WaitingNotice]] = defaultdict(list)
    for notice in notices:
        by_agent[(notice.row["channel"], notice.row["recipient"])].append(notice)
    replaced: dict[int, dict[str, Any] | None] = {}
    for group in by_agent.values():
        if len(group) < 2:
            continue
        replaced[id(group[0].row)] = digest_row(group)
        replaced.update((id(n.row), None) for n in group[1:])
    if replaced:
        outbox[:] = [r for r in (replaced.get(id(row), row) for row in outbox) if r is not None]
    notices.clear()


def digest_text(group: list[WaitingNotice]) -> str:
    by_queue: dict[str, list[str]] = defaultdict(list)
    for notice in group[:LINES]:
        by_queue[notice.queue].append(notice.line)
    lines = [f"{len(group)} new tickets are waiting:"]
    for queue, tickets in by_queue.items():
        lines += [f"Queue {queue}:", *tickets]
    if len(group) > LINES:
        lines.append(f"…and {len(group) - LINES} more.")
    lines.append(f"/take T-{group[0].ticket_id} takes one; /queue lists everything waiting for you.")
    return "\n".join(lines)


def digest_row(group: list[WaitingNotice]) -> dict[str, Any]:
    """The digest: the agent's first announcement's row (address, audience, time) with the digest's text and
    buttons, about no one ticket. Its key names that first one, so a retried transaction makes the same digest."""
    first = group[0].row
    buttons = [Button(f"Take T-{n.ticket_id}", f"/take {n.ticket_id}") for n in group[:TAKE_BUTTONS]]
    buttons.append(Button("Queue", "/queue"))
    return {
        **first,
        "idempotency_key": f"digest:{first['idempotency_key']}"[:255],
        "text": digest_text(group),
        "ticket_id": None,
        "customer_id": None,
        "buttons": [[b.label, b.data] for b in buttons],
    }
