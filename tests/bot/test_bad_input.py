"""Bad input gets a clear error or a defined behaviour, and nothing already accepted is lost."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.core.messages import InboundMessage, InvalidMessage
from crm_store.errors import StoreUnavailable
from crm_store.models import Contact, OutboxItem


async def test_empty_huge_nul_and_surrogate_texts_are_all_logged(h):
    texts = ["", "   ", "x" * 1_000_000, "nul\x00inside", "bad \ud800 surrogate", "ctrl\x07\x1b chars", "🙂🙂"]
    results = [await h.ch["telegram"].receive("10", t, external_id=f"t{i}") for i, t in enumerate(texts)]
    assert len({r.contact_id for r in results}) == len(texts)
    async with h.app.sessions() as s:
        rows = {c.external_id: c for c in await s.scalars(select(Contact).where(Contact.direction == "in"))}
    assert not rows["t2"].truncated and rows["t2"].text == "x" * 1_000_000  # stored whole, never cut
    assert rows["t3"].text == "nulinside"
    assert "\ud800" not in rows["t4"].text and rows["t4"].text.startswith("bad ")
    assert rows["t5"].text == "ctrl chars"
    assert all(r.ticket_id for r in results[2:])  # everything with content is on a ticket a person can see
    await h.settle()
    answers = h.ch["telegram"].sent_to("10")
    assert answers[0].startswith("We received an empty message")  # the first, empty one is answered, not paged
    assert sum("empty message" in a for a in answers) == 2


def test_messages_without_identity_are_refused_clearly():
    with pytest.raises(InvalidMessage, match="no external id"):
        InboundMessage.build(channel="telegram", external_id="", sender="1", text="x")
    with pytest.raises(InvalidMessage, match="no sender"):
        InboundMessage.build(channel="telegram", external_id="1", sender=" ", text="x")
    with pytest.raises(InvalidMessage, match="no channel"):
        InboundMessage.build(channel="", external_id="1", sender="1", text="x")
    with pytest.raises(InvalidMessage, match="longer than"):
        InboundMessage.build(channel="telegram", external_id="1" * 300, sender="1", text="x")
    msg = InboundMessage.build(channel="t", external_id="1", sender="1", text=b"\xff\xfebytes")
    assert msg.text.endswith("bytes")


async def test_reply_for_a_channel_this_process_lacks_waits_visibly_for_one_that_has_it(harness_factory):
    from channels.memory import MemoryChannel

    h = await harness_factory()
    await h.agent("Alice")
    # a message from a channel this process does not run (say, the SMS connector lives in another process)
    r = await h.app.deliver(InboundMessage.build(channel="sms", external_id="s1", sender="+100", text="hi"))
    await h.ch["console"].receive("alice", f"/reply {r.ticket_id} hello")
    await h.settle()
    async with h.app.sessions() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.text == "hello"))
    assert item.channel == "sms" and item.status == "pending" and item.attempts == 0  # not burnt, still visible
    sms = MemoryChannel("sms")
    h.app.registry.add(sms)  # the process that has the channel picks it up
    await h.settle()
    sent = sms.sent_to("+100")
    assert len(sent) == 2 and sent[0].startswith("Thanks for your message") and sent[1] == "hello"  # in order


async def _refuse_inserts_of(db, external_id: str) -> None:
    """A database that refuses one write: a trigger that raises for one message."""
    async with db.engine.begin() as conn:
        if db.kind == "sqlite":
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON contacts WHEN NEW.external_id = "
                f"'{external_id}' BEGIN SELECT RAISE(ABORT, 'refused by policy'); END"
            )
        else:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.external_id = "
                f"'{external_id}' THEN RAISE EXCEPTION 'refused by policy'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


async def test_a_refused_write_fails_only_its_own_message(h, db):
    await _refuse_inserts_of(db, "poison")
    results = await asyncio.gather(
        *(h.ch["telegram"].receive(str(i), f"m{i}", external_id=f"ok{i}") for i in range(10)),
        h.ch["telegram"].receive("99", "poison pill", external_id="poison"),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable) and "refused" in str(errors[0])
    async with h.app.sessions() as s:
        stored = await s.scalar(select(func.count()).select_from(Contact).where(Contact.external_id.like("ok%")))
    assert stored == 10
    ok = await h.ch["telegram"].receive("5", "still working", external_id="after")
    assert ok.contact_id and not ok.duplicate


async def test_bounces_land_on_the_bounced_ticket_and_unknown_ones_create_nobody(h):
    from crm_store.models import Customer, Ticket

    await h.agent("Alice")
    r = await h.ch["email"].receive("ann@example.com", "hello", external_id="<q1@example.com>")
    await h.ch["console"].receive("alice", f"/reply {r.ticket_id} answer")
    await h.settle()
    async with h.app.sessions() as s:
        sent = await s.scalar(select(OutboxItem).where(OutboxItem.text == "answer"))
    bounce = await h.ch["email"].receive("mailer-daemon@example.org", "550 no such user", external_id="<b1@x>",
                                         meta={"bounce_of": sent.external_id, "no_auto_reply": "1"})
    stray = await h.ch["email"].receive("mailer-daemon@example.org", "550 unknown", external_id="<b2@x>",
                                        meta={"bounce_of": "<never-sent@example.com>", "no_auto_reply": "1"})
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, r.ticket_id)
        customers = (await s.scalars(select(Customer.name))).all()
    assert bounce.ticket_id == r.ticket_id and bounce.customer_id == r.customer_id
    assert "bounced" in ticket.delivery_problem
    assert stray.ticket_id is None and stray.customer_id is None
    assert customers == ["ann@example.com"]  # no customer for the mailer daemon
