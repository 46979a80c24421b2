"""Ticket and customer numbers that are too large, negative or not numbers get the core's `parse_id` answer in
every desk command, never a database error, and change nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_store.models import OutboxItem, TicketEvent
from tests.bot.test_desk_support import BAD_TICKET_NUMBERS, customer_writes, kinds, say, ticket

TICKET_COMMANDS = ("/take {}", "/reply {} hello", "/close {} done", "/reopen {}", "/note {} hello",
                   "/transfer {} general", "/pending {} 2h", "/tag {} +x", "/priority {} 2", "/subject {} new",
                   "/history {}")


async def counts(h) -> tuple[int, int]:
    async with h.app.sessions() as s:
        customer_rows = await s.scalar(select(func.count()).select_from(OutboxItem)
                                       .where(OutboxItem.audience == "customer"))
        event_rows = await s.scalar(select(func.count()).select_from(TicketEvent))
    return int(customer_rows), int(event_rows)


async def test_every_ticket_command_answers_bad_numbers_with_the_core_rule(h):
    tid = await customer_writes(h, "1201", "real ticket")
    await h.agent("Alice")
    before, trail = await counts(h), await kinds(h, tid)
    for command in TICKET_COMMANDS:
        for ref, answer in BAD_TICKET_NUMBERS.items():
            if command.startswith("/history") and ref != "T-99999999999999999999":
                continue  # a bare word names a customer there (below)
            got = await say(h, "alice", command.format(ref))
            assert got.text == answer, command.format(ref)
    assert await counts(h) == before and await kinds(h, tid) == trail
    assert (await ticket(h, tid)).assignee_id is None


async def test_customer_numbers_too_large_or_negative_are_refused_plainly(h):
    await h.agent("Alice")
    answers = {ref: (await say(h, "alice", f"/customer {ref}")).text
               for ref in ("99999999999999999999", "C-99999999999999999999", "#99999999999999999999", "-3", "abc")}
    assert answers == {
        "99999999999999999999": "Customer C-99999999999999999999 does not exist.",
        "C-99999999999999999999": "Customer C-99999999999999999999 does not exist.",
        "#99999999999999999999": "Customer C-99999999999999999999 does not exist.",
        "-3": "'-3' is not a customer number (write 12 or C-12).",
        "abc": "No customer 'abc' in your tiers.",
    }
    assert (await say(h, "alice", "/history -3")).text == "'-3' is not a customer number (write 12 or C-12)."
