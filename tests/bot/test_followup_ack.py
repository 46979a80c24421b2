"""A customer's follow-ups on a ticket already with people are acknowledged once per waiting spell ("added to
T-12"), in their language, and logged as outbound contacts once; on both databases."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.assistant.texts import say as text_of
from bot.core.conversation import FOLLOWUP_ACKED, followup_ack_due
from crm_store.models import Contact, Customer
from tests.bot.test_desk_support import customer_writes, kinds, say


def test_the_first_follow_up_of_each_waiting_spell_is_due():
    assert followup_ack_due("open", ["opened", "routed"])
    assert not followup_ack_due("open", ["opened", "routed", FOLLOWUP_ACKED])
    assert followup_ack_due("open", ["opened", "routed", FOLLOWUP_ACKED, "assigned", "replied"])
    assert not followup_ack_due("open", ["routed", FOLLOWUP_ACKED, "replied", FOLLOWUP_ACKED, "note"])
    assert not followup_ack_due("pending", ["routed"])  # an answer to the person waiting for it
    assert not followup_ack_due(None, [])  # a ticket opened by this very message


async def _acks(h, channel: str, address: str, ticket_id: int) -> list[str]:
    sent = [m.text for m in h.ch[channel].sent if m.recipient == address]
    return [t for t in sent if t.startswith(("Thanks, we've added", "Спасибо, мы добавили")) and f"T-{ticket_id}" in t]


async def _logged(h, ticket_id: int, text: str) -> int:
    async with h.app.sessions() as s:
        rows = await s.scalars(
            select(Contact).where(Contact.ticket_id == ticket_id, Contact.direction == "out", Contact.text == text)
        )
        return len(list(rows))


async def test_follow_ups_are_acknowledged_once_per_waiting_spell(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "901", "my parcel never came")
    added = text_of("followup_added", "en", ticket=tid)
    assert await _acks(h, "telegram", "901", tid) == []  # the hand-off's own acknowledgement names the ticket
    for text in ("hello?", "is anyone there?", "it was order 4411"):
        assert (await customer_writes(h, "901", text)) == tid
    assert await _acks(h, "telegram", "901", tid) == [added]
    assert await _logged(h, tid, added) == 1
    await say(h, "alice", f"/take {tid}")
    await say(h, "alice", f"/reply {tid} Looking into it: which address?")
    await customer_writes(h, "901", "Main street 5")  # the answer Alice waits for: not acknowledged
    assert await _acks(h, "telegram", "901", tid) == [added]
    await customer_writes(h, "901", "flat 2")
    await customer_writes(h, "901", "hello??")
    assert await _acks(h, "telegram", "901", tid) == [added, added]
    assert await _logged(h, tid, added) == 2
    assert (await kinds(h, tid)).count(FOLLOWUP_ACKED) == 2


async def test_a_web_visitor_hears_it_in_their_language_and_a_redelivery_adds_nothing(h):
    tid = await customer_writes(h, "v" + "ab" * 16, "мой заказ не пришёл", channel="webchat")
    async with h.app.writer_sessions() as s, s.begin():
        await s.execute(update(Customer).values(language="ru"))
    visitor = "v" + "ab" * 16
    await h.ch["webchat"].receive(visitor, "алло?", external_id="w-2")
    await h.settle()
    await h.ch["webchat"].receive(visitor, "алло?", external_id="w-2")  # the widget sent it again
    await h.settle()
    added = text_of("followup_added", "ru", ticket=tid)
    assert await _acks(h, "webchat", visitor, tid) == [added]
    assert await _logged(h, tid, added) == 1


async def test_no_acknowledgement_when_the_business_turned_them_off(harness_factory):
    from bot.settings import DispatchSettings

    h = await harness_factory(dispatch=DispatchSettings(batch_wait_ms=1.0, ack_new_ticket=False))
    tid = await customer_writes(h, "902", "my parcel never came")
    await customer_writes(h, "902", "hello?")
    assert await _acks(h, "telegram", "902", tid) == []


async def test_follow_ups_arriving_in_one_batch_are_acknowledged_once(harness_factory):
    import asyncio

    from bot.settings import DispatchSettings

    h = await harness_factory(dispatch=DispatchSettings(batch_wait_ms=50.0))
    tid = await customer_writes(h, "903", "my parcel never came")
    before = h.app.dispatcher.batches
    await asyncio.gather(*(h.ch["telegram"].receive("903", f"follow-up {i}", external_id=f"f{i}") for i in range(4)))
    assert h.app.dispatcher.batches == before + 1
    await h.settle()
    added = text_of("followup_added", "en", ticket=tid)
    assert await _acks(h, "telegram", "903", tid) == [added]
    assert await _logged(h, tid, added) == 1
