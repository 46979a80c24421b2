"""The message ids of many conversations read at once are those read one conversation at a time."""

from __future__ import annotations

from datetime import timedelta

from crm_store.models import Contact, Customer, Ticket, now
from crm_store.repositories import contacts as contacts_repo


async def test_many_conversations_at_once_match_one_at_a_time(db):
    at = now()
    async with db.sessions() as s, s.begin():
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        long, short, empty = (Ticket(customer_id=customer.id, channel="email", subject=n) for n in "lse")
        s.add_all([long, short, empty])
        await s.flush()
        for i in range(25):  # more than the 20 a References header carries; two share a timestamp
            s.add(
                Contact(
                    channel="email",
                    external_id=f"<l{i}@x>",
                    direction="in" if i % 2 else "out",
                    customer_id=customer.id,
                    ticket_id=long.id,
                    text="t",
                    attachments=[],
                    created_at=at + timedelta(seconds=min(i, 23)),
                )
            )
        s.add(
            Contact(
                channel="telegram",
                external_id="t1",
                direction="in",
                customer_id=customer.id,
                ticket_id=long.id,
                text="t",
                attachments=[],
                created_at=at,
            )
        )
        for i in range(3):
            s.add(
                Contact(
                    channel="email",
                    external_id=f"<s{i}@x>",
                    direction="in",
                    customer_id=customer.id,
                    ticket_id=short.id,
                    text="t",
                    attachments=[],
                    created_at=at - timedelta(minutes=i),
                )
            )
    ids = [long.id, short.id, empty.id]
    async with db.sessions() as s:
        many = await contacts_repo.thread_message_ids_many(s, ids, ["email", "telegram"])
        one = {(t, c): await contacts_repo.thread_message_ids(s, t, c) for t in ids for c in ("email", "telegram")}
    assert many == one
    assert many[(long.id, "email")] == [f"<l{i}@x>" for i in range(5, 25)]
    assert many[(short.id, "email")] == ["<s2@x>", "<s1@x>", "<s0@x>"]
    assert many[(long.id, "telegram")] == ["t1"] and many[(empty.id, "email")] == []
