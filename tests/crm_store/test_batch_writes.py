"""A batch's writes in few statements: changed tickets flushed one UPDATE per kind of change, and the events
that decide a follow-up's acknowledgement loaded for all tickets at once (what this transaction adds seen)."""

from __future__ import annotations

from sqlalchemy import event, select

from crm_store.grouped_flush import flush_grouped
from crm_store.models import Customer, Ticket, now
from crm_store.repositories import tickets as tickets_repo


def _count_statements(db) -> list[str]:
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def _tickets(s, n: int) -> list[Ticket]:
    customer = Customer(name="c")
    s.add(customer)
    await s.flush()
    tickets = [Ticket(customer_id=customer.id, channel="telegram", status="open") for _ in range(n)]
    s.add_all(tickets)
    await s.flush()
    return tickets


async def test_changed_rows_are_flushed_one_statement_per_kind_of_change(db):
    async with db.sessions() as s, s.begin():
        tickets = await _tickets(s, 9)
        ids = [t.id for t in tickets]
    seen = _count_statements(db)
    at = now()
    async with db.sessions() as s, s.begin():
        loaded = await tickets_repo.tickets_by_ids(s, ids)
        for i, ticket_id in enumerate(ids):  # three kinds of change, interleaved in id order
            t = loaded[ticket_id]
            if i % 3 == 0:
                t.intent, t.solved_at = "greet", at
            elif i % 3 == 1:
                t.priority = 1
            else:
                t.status, t.intent = "pending", "order_status"
        loaded[ids[0]].channel = loaded[ids[0]].channel  # set to what it was: no change
        del seen[:]
        await flush_grouped(s)
        assert sum(1 for x in seen if x.lstrip().upper().startswith("UPDATE")) == 3
    async with db.sessions() as s:
        rows = {t.id: t for t in await s.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    for i, ticket_id in enumerate(ids):
        t = rows[ticket_id]
        assert (t.intent, t.status) == [("greet", "open"), (None, "open"), ("order_status", "pending")][i % 3]
        assert (t.priority == 1) == (i % 3 == 1)
        assert (t.solved_at is not None) == (i % 3 == 0)


async def test_inserts_pending_are_flushed_as_the_unit_of_work_orders_them(db):
    async with db.sessions() as s, s.begin():
        tickets = await _tickets(s, 2)
        tickets[0].intent = "x"
        s.add(Ticket(customer_id=tickets[0].customer_id, channel="email", status="open"))
        await flush_grouped(s)
        assert not s.new and not s.dirty
        count = len(list(await s.scalars(select(Ticket.id).where(Ticket.customer_id == tickets[0].customer_id))))
        assert count == 3


async def test_event_kinds_of_the_batch_include_what_the_transaction_adds(db):
    async with db.sessions() as s, s.begin():
        old, quiet = await _tickets(s, 2)
        tickets_repo.add_event(s, old.id, "routed", at=now())
        tickets_repo.add_event(s, old.id, "note")  # not a kind asked for
        tickets_repo.add_event(s, old.id, "followup_acked", at=now())
    seen = _count_statements(db)
    async with db.sessions() as s, s.begin():
        kinds = tickets_repo.EventKinds(("routed", "replied", "followup_acked"))
        await kinds.load(s, [old.id, quiet.id])
        loaded_with = len(seen)
        fresh = Ticket(customer_id=old.customer_id, channel="telegram", status="open")
        s.add(fresh)
        await s.flush()
        kinds.opened([fresh.id])
        tickets_repo.add_event(s, old.id, "replied", at=now())
        assert await kinds.of(s, old.id) == ["routed", "followup_acked", "replied"]
        assert await kinds.of(s, quiet.id) == []
        assert await kinds.of(s, fresh.id) == []
        assert not [x for x in seen[loaded_with:] if "ticket_events" in x]  # no look-up per ticket
        # a ticket not loaded is read, and the pending events of the others are kept
        other = Ticket(customer_id=old.customer_id, channel="email", status="open")
        s.add(other)
        await s.flush()
        tickets_repo.add_event(s, other.id, "routed", at=now())
        tickets_repo.add_event(s, quiet.id, "replied", at=now())
        assert await kinds.of(s, other.id) == ["routed"]
        assert await kinds.of(s, quiet.id) == ["replied"]
        assert await kinds.of(s, old.id) == ["routed", "followup_acked", "replied"]
        # events written by someone else in the transaction: read from the table from then on
        tickets_repo.add_event(s, quiet.id, "followup_acked", at=now())
        await tickets_repo.flush_events(s)
        assert await kinds.of(s, quiet.id) == ["replied", "followup_acked"]
